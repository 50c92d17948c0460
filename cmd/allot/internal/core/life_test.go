package core_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/publish"
)

func lifeExp(key string, status string, traffic core.Percent) core.Allocation {
	return core.Allocation{Key: key, Type: core.Experiment, Status: status, Traffic: traffic,
		Weights: []core.Weight{{Variation: "red", Weight: 5000}, {Variation: "blue", Weight: 5000}}}
}

func published(t *testing.T, db *ops, env string) map[string]bool {
	t.Helper()
	cfg, err := db.EnvironmentConfig(ctxAs("t"), env)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := publish.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for k := range doc.Flags {
		out[k] = true
	}
	return out
}

func TestArchiveRestore(t *testing.T) {
	forEachOps(t, func(t *testing.T, db *ops) {
		ctx := ctxAs("editor")
		f := colorFlag()
		f.Tags, f.Owner = []string{"checkout", "web", "checkout"}, "team-pay"
		f, _, err := db.CreateFlagWith(ctx, f, core.FlagSettings{Environment: "production",
			Allocations: []core.Allocation{lifeExp("exp", core.Running, 1000)}})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(f.Tags, []string{"checkout", "web"}) || f.Owner != "team-pay" || f.ArchivedAt != nil {
			t.Fatalf("created %+v: want tags deduplicated, the owner, not archived", f)
		}
		if !published(t, db, "production")["color"] {
			t.Fatal("a live flag is not published")
		}
		_, err = db.ArchiveFlag(ctx, "color", f.Version)
		wantCode(t, err, core.ECONFLICT)
		if !strings.Contains(err.Error(), "running") {
			t.Fatalf("archiving with a running experiment: %v, want the reason", err)
		}
		s, _ := db.FlagSettings(ctx, "production", "color")
		if _, err := db.SetStatus(ctx, "production", "color", "exp", s.Version, core.Stopped); err != nil {
			t.Fatal(err)
		}
		_, err = db.ArchiveFlag(ctx, "color", f.Version+5)
		wantCode(t, err, core.ECONFLICT)
		a, err := db.ArchiveFlag(ctx, "color", f.Version)
		if err != nil || a.ArchivedAt == nil || a.Version != f.Version+1 {
			t.Fatalf("archive: %+v, %v", a, err)
		}
		if published(t, db, "production")["color"] {
			t.Fatal("an archived flag is still published")
		}
		s, _ = db.FlagSettings(ctx, "production", "color")
		_, err = db.SetEnabled(ctx, "production", "color", s.Version, false)
		wantCode(t, err, core.ECONFLICT)
		// Editing the definition keeps it archived.
		a.Description = "kept"
		if a, err = db.UpdateFlag(ctx, a); err != nil || a.ArchivedAt == nil {
			t.Fatalf("update of an archived flag: %+v, %v", a, err)
		}
		entries, _ := db.Audit(ctx, 5, 0)
		if entries[1].Action != "archive" || entries[1].Actor != "editor" || entries[1].Key != "color" {
			t.Fatalf("audit: %+v, want the archive entry by editor", entries[1])
		}
		_, err = db.ArchiveFlag(ctx, "color", a.Version)
		wantCode(t, err, core.ECONFLICT)
		r, err := db.RestoreFlag(ctx, "color", a.Version)
		if err != nil || r.ArchivedAt != nil {
			t.Fatalf("restore: %+v, %v", r, err)
		}
		if !published(t, db, "production")["color"] {
			t.Fatal("a restored flag is not published")
		}
		entries, _ = db.Audit(ctx, 1, 0)
		if entries[0].Action != "restore" {
			t.Fatalf("audit: %+v, want restore", entries[0])
		}
	})
}

func TestMoveReplaceAllocation(t *testing.T) {
	forEachOps(t, func(t *testing.T, db *ops) {
		ctx := ctxAs("editor")
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		exp := lifeExp("exp", core.Draft, 1000)
		exp.StartAt = &start
		_, ch, err := db.CreateFlagWith(ctx, colorFlag(), core.FlagSettings{Environment: "production", Allocations: []core.Allocation{
			exp,
			{Key: "ramp", Type: core.Rollout, Variation: "blue", Percent: 2500},
			{Key: "vip", Type: core.Targeted, Variation: "red", Rules: []core.Rule{{Conditions: []core.Condition{{Attribute: "plan", Operator: "ONE_OF", Value: json.RawMessage(`["vip"]`)}}}}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		v := ch.After.Version
		ch, err = db.MoveAllocation(ctx, "production", "color", "vip", v, 0)
		if err != nil {
			t.Fatal(err)
		}
		var order []string
		for _, a := range ch.After.Allocations {
			order = append(order, a.Key)
		}
		if !slices.Equal(order, []string{"vip", "exp", "ramp"}) {
			t.Fatalf("order %v", order)
		}
		_, err = db.MoveAllocation(ctx, "production", "color", "vip", ch.After.Version, 3)
		wantCode(t, err, core.EINVALID)
		salt := ch.After.Allocations[1].SplitSalt
		next := lifeExp("exp", core.Draft, 2000)
		next.Rules = []core.Rule{{Conditions: []core.Condition{{Attribute: "country", Operator: "ONE_OF", Value: json.RawMessage(`["FR"]`)}}}}
		ch, err = db.ReplaceAllocation(ctx, "production", "color", "exp", ch.After.Version, next)
		if err != nil {
			t.Fatal(err)
		}
		got := ch.After.Allocations[1]
		if got.StartAt != nil || got.Traffic != 2000 || len(got.Rules) != 1 || got.SplitSalt != salt {
			t.Fatalf("replaced: %+v; want no schedule, 20 %%, one rule, the same salt", got)
		}
		// Changing the rules of a running experiment warns.
		next.Status = core.Running
		ch, err = db.ReplaceAllocation(ctx, "production", "color", "exp", ch.After.Version, next)
		if err != nil || len(ch.Warnings) != 1 || !strings.Contains(ch.Warnings[0], "started") {
			t.Fatalf("start: %v %v", ch.Warnings, err)
		}
		next.Rules = nil
		ch, err = db.ReplaceAllocation(ctx, "production", "color", "exp", ch.After.Version, next)
		if err != nil || len(ch.Warnings) != 1 || !strings.Contains(ch.Warnings[0], "changing the rules of a running experiment") {
			t.Fatalf("rules of a running experiment: %v %v", ch.Warnings, err)
		}
		next.Key = "renamed"
		_, err = db.ReplaceAllocation(ctx, "production", "color", "exp", ch.After.Version, next)
		wantCode(t, err, core.EINVALID)
	})
}

func TestRunningVariationValue(t *testing.T) {
	forEachOps(t, func(t *testing.T, db *ops) {
		ctx := ctxAs("editor")
		f, _, err := db.CreateFlagWith(ctx, colorFlag(), core.FlagSettings{Environment: "production",
			Allocations: []core.Allocation{lifeExp("exp", core.Running, 1000)}})
		if err != nil {
			t.Fatal(err)
		}
		f.Variations[1].Value = json.RawMessage(`"navy"`)
		_, err = db.UpdateFlag(ctx, f)
		wantCode(t, err, core.EINVALID)
		if !strings.Contains(err.Error(), "running") {
			t.Fatalf("%v: want the reason", err)
		}
		// A new variation is fine.
		f.Variations[1].Value = json.RawMessage(`"blue"`)
		f.Variations = append(f.Variations, core.Variation{Key: "navy", Value: json.RawMessage(`"navy"`)})
		if _, err := db.UpdateFlag(ctx, f); err != nil {
			t.Fatal(err)
		}
	})
}

func TestCopyFlagSettings(t *testing.T) {
	forEachOps(t, func(t *testing.T, db *ops) {
		ctx := ctxAs("editor")
		if _, err := db.CreateEnvironment(ctx, "staging"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.CreateFlag(ctx, colorFlag()); err != nil {
			t.Fatal(err)
		}
		st, err := db.UpdateSettings(ctx, core.FlagSettings{Flag: "color", Environment: "staging", Enabled: true, Allocations: []core.Allocation{
			{Key: "ramp", Type: core.Rollout, Variation: "blue", Percent: 2500},
			lifeExp("exp", core.Draft, 1000),
		}})
		if err != nil {
			t.Fatal(err)
		}
		prod, _ := db.FlagSettings(ctx, "production", "color")
		diff := core.DiffSettings(prod, st.After)
		var paths []string
		for _, d := range diff {
			paths = append(paths, d.Path)
		}
		if !slices.Equal(paths, []string{"enabled", "order", "allocation ramp", "allocation exp"}) {
			t.Fatalf("diff paths %v", paths)
		}
		if strings.Contains(diff[2].After, "Salt") {
			t.Fatalf("the diff shows salts: %s", diff[2].After)
		}
		_, err = db.CopyFlagSettings(ctx, "color", "staging", "production", 7)
		wantCode(t, err, core.ECONFLICT)
		_, err = db.CopyFlagSettings(ctx, "color", "staging", "staging", 0)
		wantCode(t, err, core.EINVALID)
		ch, err := db.CopyFlagSettings(ctx, "color", "staging", "production", prod.Version)
		if err != nil {
			t.Fatal(err)
		}
		if d := core.DiffSettings(ch.After, st.After); len(d) != 0 {
			t.Fatalf("after the copy, still different: %+v", d)
		}
		if ch.After.Allocations[0].SplitSalt == st.After.Allocations[0].SplitSalt {
			t.Fatal("the copy reused the other environment's salt")
		}
		// A second copy after a change in staging shows only that change.
		traffic := core.Percent(3000)
		st, err = db.PatchAllocation(ctx, "staging", "color", "exp", st.After.Version, core.AllocationPatch{Traffic: &traffic})
		if err != nil {
			t.Fatal(err)
		}
		diff = core.DiffSettings(ch.After, st.After)
		if len(diff) != 1 || diff[0].Path != "allocation exp: traffic" || diff[0].Before != "10" || diff[0].After != "30" {
			t.Fatalf("diff %+v", diff)
		}
		salt := ch.After.Allocations[1].SplitSalt
		ch, err = db.CopyFlagSettings(ctx, "color", "staging", "production", ch.After.Version)
		if err != nil || ch.After.Allocations[1].SplitSalt != salt {
			t.Fatalf("second copy: %v; an allocation already there must keep its salt", err)
		}
	})
}

// Layers are per environment: a copy does not carry the source's, and an
// experiment already in a layer in the target stays in it.
func TestCopyKeepsTargetLayer(t *testing.T) {
	forEachOps(t, func(t *testing.T, db *ops) {
		ctx := ctxAs("editor")
		if _, err := db.CreateEnvironment(ctx, "staging"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.CreateFlag(ctx, colorFlag()); err != nil {
			t.Fatal(err)
		}
		if _, err := db.CreateLayer(ctx, "production", "checkout"); err != nil {
			t.Fatal(err)
		}
		inLayer := lifeExp("exp", core.Draft, 1000)
		inLayer.Layer = &core.LayerPart{Name: "checkout", Share: 3000}
		prod, err := db.UpdateSettings(ctx, core.FlagSettings{Flag: "color", Environment: "production", Allocations: []core.Allocation{inLayer}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.UpdateSettings(ctx, core.FlagSettings{Flag: "color", Environment: "staging", Allocations: []core.Allocation{
			lifeExp("exp", core.Draft, 4000), {Key: "ramp", Type: core.Rollout, Variation: "blue", Percent: 2500}}}); err != nil {
			t.Fatal(err)
		}
		ch, err := db.CopyFlagSettings(ctx, "color", "staging", "production", prod.After.Version)
		if err != nil {
			t.Fatal(err)
		}
		a := ch.After.Allocations[0]
		if a.Layer == nil || a.Layer.Name != "checkout" || a.Traffic != 4000 || len(ch.After.Allocations) != 2 {
			t.Fatalf("after the copy: %+v", ch.After.Allocations)
		}
		l, err := db.Layer(ctx, "production", "checkout")
		if err != nil || len(l.Members) != 1 {
			t.Fatalf("layer after the copy: %+v %v", l, err)
		}
	})
}
