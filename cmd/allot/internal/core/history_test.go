package core_test

import (
	"database/sql"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
)

// AllocationHistory finds an experiment's changes in the audit log by key,
// even when other allocations moved it to another position and a long
// targeting list was diffed as a set, and stops at the flag's creation
// (a flag deleted and created again under its key starts a new history).
func TestAllocationHistory(t *testing.T) {
	forEachDB(t, func(t *testing.T, c *core.Core, db *store.DB) {
		const env = core.DefaultEnvironment
		step := func(ch core.Change, err error) int64 {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
			return ch.After.Version
		}
		// An old life of the flag, deleted: none of it is in the history.
		old, _, err := c.CreateFlagWith(ctx, abcFlag("h"), core.FlagSettings{Environment: env, Allocations: []core.Allocation{experiment("exp", core.Running)}})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.DeleteFlag(ctx, "h", old.Version); err != nil {
			t.Fatal(err)
		}
		_, ch, err := c.CreateFlagWith(ctx, abcFlag("h"), core.FlagSettings{Environment: env, Allocations: []core.Allocation{experiment("exp", core.Draft)}})
		v := step(ch, err)
		v = step(c.SetStatus(ctx, env, "h", "exp", v, core.Running))
		ten := core.Percent(1000)
		v = step(c.PatchAllocation(ctx, env, "h", "exp", v, core.AllocationPatch{Traffic: &ten}))
		// A targeted allocation in front of it: exp moves to index 1.
		ids := make([]string, 40)
		for i := range ids {
			ids[i] = fmt.Sprintf(`"id-%d"`, i)
		}
		tg := core.Allocation{Key: "vip", Type: core.Targeted, Variation: "b", Rules: cond("id", "ONE_OF", "["+strings.Join(ids, ",")+"]")}
		v = step(c.AddAllocation(ctx, env, "h", v, tg, 0))
		// A set diff on the long list, then changes to exp at index 1.
		more := cond("id", "ONE_OF", "["+strings.Join(append(ids[1:], `"id-new"`), ",")+"]")
		v = step(c.PatchAllocation(ctx, env, "h", "vip", v, core.AllocationPatch{Rules: &more}))
		half := core.Percent(5000)
		v = step(c.PatchAllocation(ctx, env, "h", "exp", v, core.AllocationPatch{Traffic: &half}))
		ws := []core.Weight{{Variation: "a", Weight: 2000}, {Variation: "c", Weight: 8000}}
		v = step(c.PatchAllocation(ctx, env, "h", "exp", v, core.AllocationPatch{Weights: &ws}))
		v = step(c.SetEnabled(ctx, env, "h", v, false))
		step(c.SetStatus(ctx, env, "h", "exp", v, core.Stopped))

		h, err := c.AllocationHistory(ctx, env, "h", "exp")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range h.Events {
			s := strings.Join(e.Kinds, "+")
			if slices.Contains(e.Kinds, "traffic") {
				s += fmt.Sprintf("(%d→%d)", e.Before.Traffic, e.After.Traffic)
			}
			if slices.Contains(e.Kinds, "weights") {
				s += fmt.Sprintf("(%d→%d)", e.Before.Weights[0].Weight, e.After.Weights[0].Weight)
			}
			if e.Actor != "tester" || e.At.IsZero() || e.AuditID == 0 {
				t.Errorf("event %+v: no actor, time or id", e)
			}
			got = append(got, s)
		}
		// Starting an experiment turns its flag on (docs/rules.md).
		want := []string{"added", "started+enabled", "traffic(10000→1000)", "traffic(1000→5000)", "weights(5000→2000)", "disabled", "stopped"}
		if !slices.Equal(got, want) || !h.Complete {
			t.Fatalf("history %q complete=%v\nwant %q", got, h.Complete, want)
		}
		// The targeted allocation's history went through the set diff.
		h, err = c.AllocationHistory(ctx, env, "h", "vip")
		if err != nil || len(h.Events) != 3 || h.Events[0].Kinds[0] != "added" || h.Events[1].Kinds[0] != "rules" || !h.Complete {
			t.Fatalf("vip history %+v %v", h, err)
		}
		if _, err := c.AllocationHistory(ctx, env, "nope", "exp"); core.ErrorCode(err) != core.ENOTFOUND {
			t.Fatalf("unknown flag: %v", err)
		}
	})
}

// BenchmarkAllocationHistory times the history of an experiment with 40
// changes while the audit log holds N entries of other flags (written
// straight into SQLite; ALLOT_BENCH_AUDIT, default 0,100000): the audit
// table has no index on the entity, so the query reads the log backwards
// past them, and this is what that costs.
func BenchmarkAllocationHistory(b *testing.B) {
	sizes := []int{0, 100_000}
	if v := os.Getenv("ALLOT_BENCH_AUDIT"); v != "" {
		sizes = nil
		for _, s := range strings.Split(v, ",") {
			n, err := strconv.Atoi(s)
			if err != nil {
				b.Fatal(err)
			}
			sizes = append(sizes, n)
		}
	}
	for _, n := range sizes {
		path := storetest.DSN(b, "sqlite")
		db, err := store.Open(ctx, path, nil)
		if err != nil {
			b.Fatal(err)
		}
		c := core.New(db, core.Options{})
		const env = core.DefaultEnvironment
		_, ch, err := c.CreateFlagWith(ctx, abcFlag("h"), core.FlagSettings{Environment: env, Allocations: []core.Allocation{experiment("exp", core.Running)}})
		if err != nil {
			b.Fatal(err)
		}
		v := ch.After.Version
		for i := range 40 {
			p := core.Percent(100 * (i + 1))
			if ch, err = c.PatchAllocation(ctx, env, "h", "exp", v, core.AllocationPatch{Traffic: &p}); err != nil {
				b.Fatal(err)
			}
			v = ch.After.Version
		}
		raw, err := sql.Open("sqlite", path)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := raw.Exec(fmt.Sprintf(`WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < %d)
			INSERT INTO audit_log (at, actor, action, entity, entity_key, environment, before, after)
			SELECT 0, 'x', 'update', 'flag_settings', 'other-' || (i %% 100), 'production', '{"allocations[0].traffic":100}', '{"allocations[0].traffic":200}' FROM s`, max(n-1, 0))); err != nil && n > 0 {
			b.Fatal(err)
		}
		raw.Close()
		b.Run(fmt.Sprintf("other-entries=%d", n), func(b *testing.B) {
			for b.Loop() {
				h, err := c.AllocationHistory(ctx, env, "h", "exp")
				if err != nil || len(h.Events) != 41 || !h.Complete {
					b.Fatalf("%d events, complete %v, %v", len(h.Events), h.Complete, err)
				}
			}
		})
		db.Close()
	}
}
