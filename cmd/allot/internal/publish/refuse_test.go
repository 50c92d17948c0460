package publish_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/publish"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
	"github.com/allot-dev/allot/internal/ufc"
)

func colorDef(key string) core.Flag {
	return core.Flag{Key: key, VariationType: ufc.TypeString, Variations: []core.Variation{
		{Key: "control", Value: json.RawMessage(`"grey"`)},
		{Key: "red", Value: json.RawMessage(`"red"`)},
		{Key: "blue", Value: json.RawMessage(`"blue"`)},
	}}
}

// everyoneTo is a running experiment that gives all traffic to variation.
func everyoneTo(key, variation string, version int64) core.FlagSettings {
	return core.FlagSettings{Flag: key, Environment: core.DefaultEnvironment, Enabled: true, Version: version,
		Allocations: []core.Allocation{{Key: "exp", Type: core.Experiment, Status: core.Running, Traffic: core.Whole,
			Weights: []core.Weight{{Variation: variation, Weight: core.Whole}}}}}
}

// corrupt writes allocations into a flag's settings behind the store's
// validation, as two concurrent writes validated against different
// versions of a flag can (issue 10, item 1), and moves the revision.
func corrupt(t *testing.T, path, flag, allocations string) {
	t.Helper()
	raw, err := sql.Open("sqlite", store.SQLiteDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`UPDATE flag_settings SET allocations = ?, version = version + 1 WHERE flag_id = (SELECT id FROM flags WHERE key = ?)`, allocations, flag); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`UPDATE environments SET revision = revision + 1`); err != nil {
		t.Fatal(err)
	}
}

// assigned evaluates flag for a few subjects on the published snapshot.
func assigned(p *publish.Published, flag string) map[string]int {
	out := map[string]int{}
	for i := range 200 {
		r := p.Snapshot.Evaluate(flag, "user-"+strconv.Itoa(i), nil, ufc.TypeString, time.Now())
		out[r.Code.String()+":"+r.VariationKey()]++
	}
	return out
}

func TestRefusesOnlyTheFlagNamingAnUnknownVariation(t *testing.T) {
	ctx := context.Background()
	path := storetest.DSN(t, "sqlite")
	db, err := store.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, k := range []string{"a", "b"} {
		if _, err := storetest.OpsOn(db).CreateFlag(ctx, colorDef(k)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := storetest.OpsOn(db).UpdateFlagSettings(ctx, everyoneTo(k, "red", 0)); err != nil {
			t.Fatal(err)
		}
	}
	c := publish.NewCache(db, nil)
	var mu sync.Mutex
	gauge := map[string]int{}
	added := 0
	c.OnRefused = func(env string, refused, n int) {
		mu.Lock()
		gauge[env] = refused
		added += n
		mu.Unlock()
	}
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}

	// b's only weight now names a variation the flag does not have. The
	// old compiler gave its whole share to the first variation.
	corrupt(t, path, "b", `[{"key":"exp","type":"experiment","status":"running","traffic":10000,"trafficSalt":"t1","splitSalt":"s1","weights":[{"variation":"purple","weight":10000}]}]`)
	if _, _, err := storetest.OpsOn(db).UpdateFlagSettings(ctx, everyoneTo("a", "blue", 1)); err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	p := c.Environment(core.DefaultEnvironment)
	if got := assigned(p, "a"); got["MATCH:blue"] != 200 {
		t.Fatalf("the rest of the environment was not published: a assigns %v", got)
	}
	if got := assigned(p, "b"); got["MATCH:red"] != 200 {
		t.Fatalf("refused flag b should keep its last good form (all red), assigns %v", got)
	}
	probs := c.Problems()
	if len(probs) != 1 || !strings.Contains(probs[0], "production/b") || !strings.Contains(probs[0], `"purple"`) {
		t.Fatalf("problems: %q", probs)
	}
	mu.Lock()
	if gauge["production"] != 1 || added != 1 {
		t.Fatalf("OnRefused: gauge %v, added %d", gauge, added)
	}
	mu.Unlock()
	if c.Ready() != nil {
		t.Fatalf("a refused flag made the replica unready: %v", c.Ready())
	}

	// A replica that never saw b's good form leaves it out.
	fresh := publish.NewCache(db, nil)
	if err := fresh.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	fp := fresh.Environment(core.DefaultEnvironment)
	if fp.Snapshot.Flag("b") != nil || fp.Snapshot.Flag("a") == nil || strings.Contains(string(fp.Body), `"b":`) {
		t.Fatalf("fresh replica: b should be left out: %s", fp.Body)
	}

	// Fixing b clears the refusal.
	s, err := storetest.OpsOn(db).FlagSettings(ctx, core.DefaultEnvironment, "b")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := storetest.OpsOn(db).UpdateFlagSettings(ctx, everyoneTo("b", "control", s.Version)); err != nil {
		t.Fatal(err)
	}
	c.Changed(core.DefaultEnvironment, []string{"b"})
	if got := assigned(c.Environment(core.DefaultEnvironment), "b"); got["MATCH:control"] != 200 {
		t.Fatalf("fixed b assigns %v", got)
	}
	if probs := c.Problems(); len(probs) != 0 {
		t.Fatalf("problems after the fix: %q", probs)
	}
}

// Issue 10, item 10: the server never publishes an empty document for an
// environment that has flags.
func TestNeverPublishesAnEmptyDocumentForAnEnvironmentWithFlags(t *testing.T) {
	ctx := context.Background()
	path := storetest.DSN(t, "sqlite")
	db, err := store.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	key, err := storetest.OpsOn(db).CreateSDKKey(ctx, core.DefaultEnvironment, "web")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := storetest.OpsOn(db).CreateFlag(ctx, colorDef("only")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := storetest.OpsOn(db).UpdateFlagSettings(ctx, everyoneTo("only", "red", 0)); err != nil {
		t.Fatal(err)
	}
	bad := `[{"key":"exp","type":"experiment","status":"running","traffic":10000,"trafficSalt":"t1","splitSalt":"s1","weights":[{"variation":"purple","weight":10000}]}]`

	// A replica that had a good document keeps it.
	c := publish.NewCache(db, nil)
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	good := c.ForKey(key.Secret)
	corrupt(t, path, "only", bad)
	c.Refresh(ctx)
	p := c.ForKey(key.Secret)
	if p == nil || p.Flags == 0 || string(p.Body) != string(good.Body) {
		t.Fatalf("published %+v, want the previous document", p)
	}

	// A replica starting now has nothing good to serve: it serves nothing
	// (the SDK endpoint answers 503) rather than an empty document.
	fresh := publish.NewCache(db, nil)
	fresh.Refresh(ctx)
	fp := fresh.ForKey(key.Secret)
	if fp == nil || fp.Body != nil || fp.Environment != core.DefaultEnvironment {
		t.Fatalf("fresh replica published %+v", fp)
	}
	if probs := fresh.Problems(); len(probs) != 2 || !strings.Contains(strings.Join(probs, "\n"), "production: not published") {
		t.Fatalf("problems: %q", probs)
	}
}
