package core_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
	"github.com/allot-dev/allot/internal/ufc"
	"github.com/allot-dev/allot/internal/ufctest"
)

func importCore(t *testing.T) *core.Core {
	t.Helper()
	return core.New(storetest.Open(t, "sqlite"), core.Options{})
}

// TestImportAndOriginsBothStores runs an import and an origins change on
// SQLite and PostgreSQL.
func TestImportAndOriginsBothStores(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d, func(t *testing.T) {
			c := core.New(storetest.Open(t, d), core.Options{})
			ctx := context.Background()
			doc := ufctest.Document(t, "flags-v1.json")
			rep, err := c.Import(ctx, core.ImportRequest{Environment: core.DefaultEnvironment, Document: doc})
			if err != nil || len(rep.Created) != 20 || len(rep.Refused) != 2 {
				t.Fatalf("import: %v %+v", err, rep)
			}
			again, err := c.Import(ctx, core.ImportRequest{Environment: core.DefaultEnvironment, Document: doc, KeepFaults: true})
			if err != nil || len(again.Created) != 2 || len(again.Unchanged) != 20 || len(again.Faults) != 2 {
				t.Fatalf("second import: %v %+v", err, again)
			}
			k, err := c.CreateClientKey(ctx, core.DefaultEnvironment, "page", nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.SetKeyOrigins(ctx, k.ID, []string{"https://A.example.com/"})
			if err != nil || len(got.Origins) != 1 || got.Origins[0] != "https://a.example.com" {
				t.Fatalf("origins: %v %+v", err, got)
			}
			cfg, err := c.EnvironmentConfig(ctx, core.DefaultEnvironment)
			if err != nil || len(cfg.ClientKeys) != 1 || len(cfg.ClientKeys[0].Origins) != 1 {
				t.Fatalf("published client keys: %v %+v", err, cfg.ClientKeys)
			}
			if _, err := c.SetKeyOrigins(ctx, 999, nil); core.ErrorCode(err) != core.ENOTFOUND {
				t.Fatalf("unknown key: %v", err)
			}
		})
	}
}

// TestImportGuards: what an import refuses, and what the rest of the core
// refuses of imported allocations: a client cannot create one or change
// its splits (salts are never chosen by a client), a faulty flag kept by
// KeepFaults cannot be edited before its faults are fixed, an existing
// flag's variation keeps its value, and limits hold with nothing written.
func TestImportGuards(t *testing.T) {
	c := importCore(t)
	ctx := core.WithActor(context.Background(), "test")
	env := core.DefaultEnvironment
	doc := ufctest.Document(t, "flags-v1.json")
	rep, err := c.Import(ctx, core.ImportRequest{Environment: env, Document: doc, KeepFaults: true})
	if err != nil || len(rep.Created) != 22 {
		t.Fatalf("import: %v %+v", err, rep)
	}

	// The audit log has the import, with its report.
	page, err := c.Audit(ctx, 1, 0)
	if err != nil || len(page.Entries) != 1 || page.Entries[0].Action != "import" || page.Entries[0].Actor != "test" ||
		!strings.Contains(string(page.Entries[0].After), "new-user-onboarding") {
		t.Fatalf("audit: %v %+v", err, page.Entries)
	}

	// Editing an imported flag keeps its splits, whatever the client sends.
	s, err := c.FlagSettings(ctx, env, "integer-flag")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(s.Allocations[1].Splits)
	s.Allocations[1].Splits[0].Shards[0].Salt = "chosen-by-a-client"
	s.Enabled = false
	ch, err := c.UpdateSettings(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := json.Marshal(ch.After.Allocations[1].Splits); string(got) != string(want) || ch.After.Enabled {
		t.Fatalf("splits after an edit: %s, want %s", got, want)
	}

	// A new imported allocation only comes from an import.
	_, err = c.AddAllocation(ctx, env, "integer-flag", ch.After.Version, core.Allocation{Key: "mine", Type: core.Imported,
		Splits: []core.Split{{Variation: "one", Shards: []core.Shard{}}}}, -1)
	if core.ErrorCode(err) != core.EINVALID || !strings.Contains(err.Error(), "only from allot import") {
		t.Fatalf("client-made imported allocation: %v", err)
	}

	// A flag kept with its faults cannot be edited until they are fixed.
	s, err = c.FlagSettings(ctx, env, "invalid-value-flag")
	if err != nil {
		t.Fatal(err)
	}
	s.Enabled = false
	if _, err := c.UpdateSettings(ctx, s); core.ErrorCode(err) != core.EINVALID || !strings.Contains(err.Error(), "INTEGER") {
		t.Fatalf("edit of a faulty flag: %v", err)
	}

	// An existing flag's variation keeps its value; a type cannot change.
	bad := strings.Replace(string(doc), `"value": "red"`, `"value": "crimson"`, 1)
	if bad == string(doc) {
		t.Fatal("fixture changed: no red variation")
	}
	bad = strings.Replace(bad, `"variationType": "NUMERIC"`, `"variationType": "STRING"`, 1)
	rep, err = c.Import(ctx, core.ImportRequest{Environment: env, Document: []byte(bad)})
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{}
	for _, r := range rep.Refused {
		reasons[r.Flag] = r.Field + ": " + r.Reason
	}
	if !strings.Contains(reasons["new-user-onboarding"], "other environments may assign it") ||
		!strings.Contains(reasons["numeric_flag"], "exists as NUMERIC") {
		t.Fatalf("refusals: %v", reasons)
	}

	// Limits and unreadable documents: an error, and nothing changes.
	before, _ := c.Audit(ctx, 1, 0)
	for name, d := range map[string][]byte{
		"too large": make([]byte, core.MaxImportBytes+1),
		"not JSON":  []byte(`{"flags": `),
		"too many":  manyFlags(core.MaxImportFlags + 1),
	} {
		_, err := c.Import(ctx, core.ImportRequest{Environment: env, Document: d})
		if core.ErrorCode(err) != core.EINVALID || !strings.Contains(err.Error(), "document") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := c.Import(ctx, core.ImportRequest{Environment: "nowhere", Document: doc}); core.ErrorCode(err) != core.ENOTFOUND {
		t.Errorf("unknown environment: %v", err)
	}
	after, _ := c.Audit(ctx, 1, 0)
	if after.Entries[0].ID != before.Entries[0].ID {
		t.Errorf("a refused import wrote %+v", after.Entries[0])
	}
}

// TestImportOtherShardCounts: a document whose shards are not out of
// 10000 cannot keep its subjects' variations here, and is refused.
func TestImportOtherShardCounts(t *testing.T) {
	c := importCore(t)
	doc := `{"format": "SERVER", "createdAt": "2026-01-01T00:00:00Z", "environment": {"name": "x"}, "flags": {"f": {
		"key": "f", "enabled": true, "variationType": "STRING", "totalShards": 100,
		"variations": {"a": {"key": "a", "value": "a"}},
		"allocations": [{"key": "all", "splits": [{"variationKey": "a", "shards": [{"salt": "s", "ranges": [{"start": 0, "end": 50}]}]}]}]}}}`
	rep, err := c.Import(context.Background(), core.ImportRequest{Environment: core.DefaultEnvironment, Document: []byte(doc)})
	if err != nil || len(rep.Refused) != 1 || !strings.Contains(rep.Refused[0].Reason, "totalShards 100") {
		t.Fatalf("%v %+v", err, rep)
	}
}

func manyFlags(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"format": "SERVER", "createdAt": "2026-01-01T00:00:00Z", "environment": {"name": "x"}, "flags": {`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"f%d": {"key": "f%d", "enabled": false, "variationType": "%s", "totalShards": 10000, "variations": {}, "allocations": []}`, i, i, ufc.TypeString)
	}
	b.WriteString(`}}`)
	return []byte(b.String())
}
