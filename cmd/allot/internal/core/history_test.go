package core_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
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
