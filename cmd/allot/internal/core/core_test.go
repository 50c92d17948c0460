package core_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
	"github.com/allot-dev/allot/internal/ufc"
)

// The core runs against real databases: SQLite, and PostgreSQL unless
// ALLOT_TEST_POSTGRES=off.
func forEachDB(t *testing.T, fn func(t *testing.T, c *core.Core, db *store.DB)) {
	t.Helper()
	for _, d := range storetest.Dialects() {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			db := storetest.Open(t, d)
			fn(t, core.New(db, core.Options{}), db)
		})
	}
}

var ctx = core.WithActor(context.Background(), "tester")

func wantInvalid(t *testing.T, err error, field, text string) {
	t.Helper()
	var e *core.Error
	if core.ErrorCode(err) != core.EINVALID || !asError(err, &e) || e.Field != field || !strings.Contains(e.Message, text) {
		t.Fatalf("error %v (code %s): want EINVALID on %q containing %q", err, core.ErrorCode(err), field, text)
	}
}

func asError(err error, e **core.Error) bool {
	x, ok := err.(*core.Error)
	*e = x
	return ok
}

func abcFlag(key string) core.Flag {
	return core.Flag{Key: key, VariationType: ufc.TypeString, Variations: []core.Variation{
		{Key: "a", Value: json.RawMessage(`"a"`)},
		{Key: "b", Value: json.RawMessage(`"b"`)},
		{Key: "c", Value: json.RawMessage(`"c"`)},
	}}
}

func experiment(key, status string) core.Allocation {
	return core.Allocation{Key: key, Type: core.Experiment, Status: status, Traffic: core.Whole,
		Weights: []core.Weight{{Variation: "a", Weight: 5000}, {Variation: "c", Weight: 5000}}}
}

func cond(attr, op, value string) []core.Rule {
	return []core.Rule{{Conditions: []core.Condition{{Attribute: attr, Operator: op, Value: json.RawMessage(value)}}}}
}

// TestEngineJudges: what the engine accepts is accepted, what it refuses
// is refused with a field error, drafts included.
func TestEngineJudges(t *testing.T) {
	forEachDB(t, func(t *testing.T, c *core.Core, db *store.DB) {
		if _, err := c.CreateFlag(ctx, abcFlag("f")); err != nil {
			t.Fatal(err)
		}
		add := func(a core.Allocation) error {
			s, err := c.FlagSettings(ctx, "production", "f")
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.AddAllocation(ctx, "production", "f", s.Version, a, -1)
			return err
		}
		// The old store refused a pre-release version the engine accepts.
		beta := core.Allocation{Key: "beta", Type: core.Targeted, Variation: "b", Rules: cond("version", "GTE", `"2.1.0-beta"`)}
		if err := add(beta); err != nil {
			t.Fatalf("a semver pre-release: %v", err)
		}
		bad := core.Allocation{Key: "re", Type: core.Targeted, Variation: "b", Rules: cond("email", "MATCHES", `"("`)}
		wantInvalid(t, add(bad), "allocations[1].rules[0].conditions[0].value", "regular expression")
		op := core.Allocation{Key: "op", Type: core.Targeted, Variation: "b", Rules: cond("email", "SOUNDS_LIKE", `"x"`)}
		wantInvalid(t, add(op), "allocations[1].rules[0].conditions[0].operator", "operator")
		// A draft is not published, but is judged as if it were running,
		// so that starting it cannot fail.
		draft := experiment("exp", core.Draft)
		draft.Rules = cond("age", "GT", `"old"`)
		wantInvalid(t, add(draft), "allocations[1].rules[0].conditions[0].value", "needs a number or a version")

		intFlag := core.Flag{Key: "n", VariationType: ufc.TypeInteger, Variations: []core.Variation{{Key: "x", Value: json.RawMessage(`"seven"`)}}}
		_, err := c.CreateFlag(ctx, intFlag)
		wantInvalid(t, err, "variations[0].value", "incompatible value")
		twice := abcFlag("twice")
		twice.Variations[2].Key = "a"
		_, err = c.CreateFlag(ctx, twice)
		wantInvalid(t, err, "variations[2].key", "appears twice")
		// Nothing half-written.
		if flags, _ := c.Flags(ctx); len(flags) != 1 {
			t.Fatalf("flags: %v", flags)
		}
	})
}

// TestStartingTurnsTheFlagOn: starting an experiment in a disabled flag
// turns the flag on, and says so, however it is started.
func TestStartingTurnsTheFlagOn(t *testing.T) {
	forEachDB(t, func(t *testing.T, c *core.Core, db *store.DB) {
		for _, key := range []string{"created-running", "patched", "set-status"} {
			if _, err := c.CreateFlag(ctx, abcFlag(key)); err != nil {
				t.Fatal(err)
			}
		}
		ch, err := c.AddAllocation(ctx, "production", "created-running", 0, experiment("exp", core.Running), -1)
		if err != nil || !ch.After.Enabled || len(ch.Warnings) != 1 || !strings.Contains(ch.Warnings[0], "is now on") {
			t.Fatalf("added running: %+v %v", ch, err)
		}
		ch, err = c.AddAllocation(ctx, "production", "patched", 0, experiment("exp", core.Draft), -1)
		if err != nil || ch.After.Enabled || len(ch.Warnings) != 0 {
			t.Fatalf("added draft: %+v %v", ch, err)
		}
		running := core.Running
		ch, err = c.PatchAllocation(ctx, "production", "patched", "exp", ch.After.Version, core.AllocationPatch{Status: &running})
		if err != nil || !ch.After.Enabled || len(ch.Warnings) != 1 {
			t.Fatalf("patched: %+v %v", ch, err)
		}
		ch, _ = c.AddAllocation(ctx, "production", "set-status", 0, experiment("exp", core.Draft), -1)
		ch, err = c.SetStatus(ctx, "production", "set-status", "exp", ch.After.Version, core.Running)
		if err != nil || !ch.After.Enabled {
			t.Fatalf("set status: %+v %v", ch, err)
		}
		// Turning the flag off afterwards is the user's call, and stays.
		ch, err = c.SetEnabled(ctx, "production", "set-status", ch.After.Version, false)
		if err != nil || ch.After.Enabled {
			t.Fatalf("turn off: %+v %v", ch, err)
		}
		// Weights: the core warns.
		w := []core.Weight{{Variation: "a", Weight: 2000}, {Variation: "c", Weight: 8000}}
		ch, err = c.PatchAllocation(ctx, "production", "set-status", "exp", ch.After.Version, core.AllocationPatch{Weights: &w})
		if err != nil || len(ch.Warnings) != 1 || !strings.Contains(ch.Warnings[0], "re-randomizes") {
			t.Fatalf("weights: %+v %v", ch, err)
		}
	})
}

// TestLastAdminToken: the last live admin token cannot be revoked, even by
// two concurrent revocations of the last two.
func TestLastAdminToken(t *testing.T) {
	forEachDB(t, func(t *testing.T, c *core.Core, db *store.DB) {
		a, err := c.CreateAdminToken(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		err = c.RevokeAdminToken(ctx, a.ID)
		if core.ErrorCode(err) != core.ECONFLICT || !strings.Contains(err.Error(), "last live one") {
			t.Fatalf("revoking the last token: %v", err)
		}
		if _, err := c.Authenticate(ctx, a.Secret); err != nil {
			t.Fatalf("the token was revoked anyway: %v", err)
		}
		for trial := range 10 {
			b, err := c.CreateAdminToken(ctx, fmt.Sprint("b", trial))
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i, id := range []int64{a.ID, b.ID} {
				wg.Go(func() { errs[i] = c.RevokeAdminToken(ctx, id) })
			}
			wg.Wait()
			toks, _ := c.AdminTokens(ctx)
			live := 0
			for _, t := range toks {
				if t.RevokedAt == nil {
					live++
				}
			}
			if live != 1 {
				t.Fatalf("trial %d: %d live tokens after two concurrent revocations (%v)", trial, live, errs)
			}
			if errs[0] == nil {
				a = b // a was revoked; b is the live one
			}
		}
	})
}

// TestInvalidUTF8 is refused with a field error, not stored as U+FFFD.
func TestInvalidUTF8(t *testing.T) {
	forEachDB(t, func(t *testing.T, c *core.Core, db *store.DB) {
		_, err := c.CreateSDKKey(ctx, "production", "web\xff")
		wantInvalid(t, err, "name", "UTF-8")
		_, err = c.CreateAdminToken(ctx, "ops\xc3")
		wantInvalid(t, err, "name", "UTF-8")
		f := abcFlag("k\xff")
		_, err = c.CreateFlag(ctx, f)
		wantInvalid(t, err, "key", "UTF-8")
		f = abcFlag("k")
		f.Description = "caf\xe9"
		_, err = c.CreateFlag(ctx, f)
		wantInvalid(t, err, "description", "UTF-8")
		f = abcFlag("k")
		f.Variations[0].Value = json.RawMessage("\"\xff\"")
		_, err = c.CreateFlag(ctx, f)
		wantInvalid(t, err, "variations[0].value", "UTF-8")
		if _, err := c.CreateFlag(ctx, abcFlag("k")); err != nil {
			t.Fatal(err)
		}
		a := core.Allocation{Key: "t", Type: core.Targeted, Variation: "a", Rules: cond("country\xff", "ONE_OF", `["US"]`)}
		_, err = c.AddAllocation(ctx, "production", "k", 0, a, -1)
		wantInvalid(t, err, "allocations[0].rules[0].conditions[0].attribute", "UTF-8")
	})
}

// TestLimits: each limit is enforced and named.
func TestLimits(t *testing.T) {
	forEachDB(t, func(t *testing.T, c *core.Core, db *store.DB) {
		f := core.Flag{Key: "many", VariationType: ufc.TypeInteger}
		for i := range core.MaxVariations + 1 {
			f.Variations = append(f.Variations, core.Variation{Key: fmt.Sprint("v", i), Value: json.RawMessage(fmt.Sprint(i))})
		}
		_, err := c.CreateFlag(ctx, f)
		wantInvalid(t, err, "variations", fmt.Sprintf("the limit is %d", core.MaxVariations))
		f.Variations = f.Variations[:core.MaxVariations]
		if _, err := c.CreateFlag(ctx, f); err != nil {
			t.Fatalf("at the limit: %v", err)
		}
		ids := make([]string, core.MaxListValues+1)
		for i := range ids {
			ids[i] = fmt.Sprint("user-", i)
		}
		list, _ := json.Marshal(ids)
		a := core.Allocation{Key: "t", Type: core.Targeted, Variation: "v1", Rules: cond("id", "ONE_OF", string(list))}
		_, err = c.AddAllocation(ctx, "production", "many", 0, a, -1)
		wantInvalid(t, err, "allocations[0].rules[0].conditions[0].value", fmt.Sprintf("the limit is %d", core.MaxListValues))
		long := abcFlag(strings.Repeat("k", core.MaxKeyLength+1))
		_, err = c.CreateFlag(ctx, long)
		wantInvalid(t, err, "key", "1 to 128")
	})
}

// TestEnvironmentConfigIsOneSnapshot: a write that commits between the
// statements of EnvironmentConfig is wholly outside what it returns (the
// revision read and the keys read agree).
func TestEnvironmentConfigIsOneSnapshot(t *testing.T) {
	forEachDB(t, func(t *testing.T, c *core.Core, db *store.DB) {
		var once sync.Once
		var hookErr error
		db.SetConfigHook(func() {
			once.Do(func() {
				// Another connection, another transaction.
				_, hookErr = c.CreateSDKKey(ctx, "production", "sneaky")
			})
		})
		cfg, err := c.EnvironmentConfig(ctx, "production")
		if err != nil || hookErr != nil {
			t.Fatal(err, hookErr)
		}
		if len(cfg.KeyHashes) != 0 {
			t.Fatalf("revision %d with %d keys: the key created after the revision was read is in the snapshot", cfg.Environment.Revision, len(cfg.KeyHashes))
		}
		db.SetConfigHook(nil)
		cfg, _ = c.EnvironmentConfig(ctx, "production")
		if len(cfg.KeyHashes) != 1 {
			t.Fatalf("the key is missing afterwards: %d", len(cfg.KeyHashes))
		}
	})
}

// TestAuditIsBounded: an update stores what changed, not the whole
// settings, and a page of the audit log is bounded by bytes.
func TestAuditIsBounded(t *testing.T) {
	forEachDB(t, func(t *testing.T, c *core.Core, db *store.DB) {
		ids := make([]string, core.MaxListValues)
		for i := range ids {
			ids[i] = fmt.Sprintf("%08d-0000-4000-8000-000000000000", i)
		}
		list, _ := json.Marshal(ids)
		for f := range 12 {
			key := fmt.Sprint("f", f)
			if _, err := c.CreateFlag(ctx, abcFlag(key)); err != nil {
				t.Fatal(err)
			}
			a := core.Allocation{Key: "t", Type: core.Targeted, Variation: "a", Rules: cond("id", "ONE_OF", string(list))}
			ch, err := c.AddAllocation(ctx, "production", key, 0, a, -1)
			if err != nil {
				t.Fatal(err)
			}
			// Edits of the big flag: each entry holds only the change.
			for i := range 5 {
				ch, err = c.SetEnabled(ctx, "production", key, ch.After.Version, i%2 == 0)
				if err != nil {
					t.Fatal(err)
				}
			}
		}
		// One more id: kept as the id added, not the list twice.
		s, _ := c.FlagSettings(ctx, "production", "f0")
		s.Allocations[0].Rules[0].Conditions[0].Value, _ = json.Marshal(append(ids[1:], "new-id"))
		if _, err := c.UpdateSettings(ctx, s); err != nil {
			t.Fatal(err)
		}
		page, err := c.Audit(ctx, 1, 0)
		if err != nil || len(page.Entries) != 1 {
			t.Fatal(page, err)
		}
		e := page.Entries[0]
		if len(e.Before)+len(e.After) > 1000 || !strings.Contains(string(e.After), "new-id") || !strings.Contains(string(e.Before), ids[0]) {
			t.Fatalf("list edit entry: %d bytes: %s / %s", len(e.Before)+len(e.After), e.Before, e.After)
		}
		total, pages, before := 0, 0, int64(0)
		for {
			page, err := c.Audit(ctx, core.MaxAuditLimit, before)
			if err != nil {
				t.Fatal(err)
			}
			size := 0
			for _, e := range page.Entries {
				size += len(e.Before) + len(e.After)
				if e.Action == "update" && e.Entity == "flag_settings" && len(e.Before) > 0 && len(e.Before)+len(e.After) > 1000 && strings.Contains(string(e.Before), "enabled") {
					t.Fatalf("an enable/disable entry holds %d bytes", len(e.Before)+len(e.After))
				}
			}
			if size > core.MaxAuditPageBytes {
				t.Fatalf("a page of %d bytes", size)
			}
			total += len(page.Entries)
			pages++
			if page.Next == 0 {
				break
			}
			before = page.Next
		}
		// 12 × (create flag, add allocation, 5 edits) + 1 list edit.
		if total != 12*7+1 || pages < 2 {
			t.Fatalf("%d entries in %d pages", total, pages)
		}
	})
}

// TestWriteSkew is issue 10's scenario on PostgreSQL, with two replicas
// (two stores on one database): one removes variation b from a flag while
// the other adds an allocation using b, both from the same versions. At
// most one may commit, in every trial.
func TestWriteSkew(t *testing.T) {
	dialects := storetest.Dialects()
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			dsn := storetest.DSN(t, d)
			var replicas [2]*core.Core
			for i := range replicas {
				db, err := store.Open(context.Background(), dsn, nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				replicas[i] = core.New(db, core.Options{})
			}
			a, b := replicas[0], replicas[1]
			const trials = 100
			both := 0
			for trial := range trials {
				key := fmt.Sprint("skew-", trial)
				f, err := a.CreateFlag(ctx, abcFlag(key))
				if err != nil {
					t.Fatal(err)
				}
				ch, err := a.AddAllocation(ctx, "production", key, 0, experiment("exp", core.Running), -1)
				if err != nil {
					t.Fatal(err)
				}
				noB := f
				noB.Variations = []core.Variation{f.Variations[0], f.Variations[2]}
				var wg sync.WaitGroup
				var errA, errB error
				wg.Go(func() { _, errA = a.UpdateFlag(ctx, noB) })
				wg.Go(func() {
					_, errB = b.AddAllocation(ctx, "production", key, ch.After.Version,
						core.Allocation{Key: "to-b", Type: core.Targeted, Variation: "b", Rules: cond("country", "ONE_OF", `["FR"]`)}, 0)
				})
				wg.Wait()
				if errA == nil && errB == nil {
					both++
				}
				// Whatever committed, the flag still publishes as stored.
				cfg, err := a.EnvironmentConfig(ctx, "production")
				if err != nil {
					t.Fatal(err)
				}
				for _, fc := range cfg.Flags {
					if fc.Flag.Key != key {
						continue
					}
					vars := map[string]bool{}
					for _, v := range fc.Flag.Variations {
						vars[v.Key] = true
					}
					for _, al := range fc.Settings.Allocations {
						if al.Variation != "" && !vars[al.Variation] {
							t.Errorf("trial %d: allocation %s names the removed variation %s (A: %v, B: %v)", trial, al.Key, al.Variation, errA, errB)
						}
					}
				}
			}
			if both > 0 {
				t.Fatalf("%d of %d trials committed both writes", both, trials)
			}
		})
	}
}

// TestUFCFlagRefusesUnknownVariations: a stored allocation naming a
// variation the flag lacks is refused, not published as another variation
// (before, an experiment's weight for it went to the first variation).
func TestUFCFlagRefusesUnknownVariations(t *testing.T) {
	f := abcFlag("f")
	for _, a := range []core.Allocation{
		{Key: "exp", Type: core.Experiment, Status: core.Running, Traffic: core.Whole, TrafficSalt: "s", SplitSalt: "t",
			Weights: []core.Weight{{Variation: "a", Weight: 5000}, {Variation: "gone", Weight: 5000}}},
		{Key: "ramp", Type: core.Rollout, Percent: 100, Variation: "gone", SplitSalt: "s"},
		{Key: "t", Type: core.Targeted, Variation: "gone"},
	} {
		_, err := core.UFCFlag(&f, &core.FlagSettings{Flag: "f", Enabled: true, Allocations: []core.Allocation{a}})
		if err == nil || !strings.Contains(err.Error(), `"gone"`) {
			t.Errorf("%s: %v", a.Key, err)
		}
	}
}

func TestCheckPreview(t *testing.T) {
	wantInvalid(t, core.CheckPreview("", nil), "subject", "required")
	wantInvalid(t, core.CheckPreview("u\xff", nil), "subject", "UTF-8")
	many := map[string]any{}
	for i := range core.MaxAttributes + 1 {
		many[fmt.Sprint("a", i)] = i
	}
	wantInvalid(t, core.CheckPreview("u", many), "attributes", "the limit is 1000")
	if err := core.CheckPreview("u", map[string]any{"country": "FR"}); err != nil {
		t.Fatal(err)
	}
}
