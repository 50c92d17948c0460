package core_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/publish"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
	"github.com/allot-dev/allot/internal/eval"
	"github.com/allot-dev/allot/internal/ufc"
)

// The properties of issue 15, over 200,000 subjects, evaluated by the engine
// on the configuration exactly as it is published.

const propertySubjects = 200000

func abFlag(key string) core.Flag {
	return core.Flag{Key: key, VariationType: ufc.TypeString, Variations: []core.Variation{
		{Key: "control", Value: json.RawMessage(`"control"`)},
		{Key: "treatment", Value: json.RawMessage(`"treatment"`)},
	}}
}

func abExperiment(key, layer string, share core.Percent) core.Allocation {
	a := core.Allocation{Key: key, Type: core.Experiment, Status: core.Running, Traffic: core.Whole,
		Weights: []core.Weight{{Variation: "control", Weight: 5000}, {Variation: "treatment", Weight: 5000}}}
	if layer != "" {
		a.Layer = &core.LayerPart{Name: layer, Share: share}
	}
	return a
}

// assigned is, per flag, what each subject gets from the experiment
// allocation named exp (subjects it does not assign are absent).
type assigned map[string]map[int]string

func assignAll(t *testing.T, c *core.Core, env, exp string, flags ...string) (assigned, *eval.Snapshot) {
	t.Helper()
	cfg, err := c.EnvironmentConfig(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := publish.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := eval.Compile(doc)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	out := assigned{}
	for _, f := range flags {
		m := map[int]string{}
		for i := range propertySubjects {
			r := snap.Evaluate(f, fmt.Sprintf("user-%d", i), nil, ufc.TypeString, now)
			if r.Matched() && r.AllocationKey() == exp {
				m[i] = r.VariationKey()
			}
		}
		out[f] = m
	}
	return out, snap
}

func setShare(t *testing.T, c *core.Core, flag string, share core.Percent) core.Change {
	t.Helper()
	ctx := ctxAs("tester")
	s, err := c.FlagSettings(ctx, "production", flag)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := c.PatchAllocation(ctx, "production", flag, "exp", s.Version, core.AllocationPatch{Layer: &core.LayerPart{Name: "checkout", Share: share}})
	if err != nil {
		t.Fatalf("share of %s to %v: %v", flag, share, err)
	}
	return ch
}

func near(t *testing.T, what string, got int, wantPercent, tolPercent float64) {
	t.Helper()
	p := 100 * float64(got) / propertySubjects
	if p < wantPercent-tolPercent || p > wantPercent+tolPercent {
		t.Errorf("%s: %.3f %% of subjects, want %.2f ± %.2f", what, p, wantPercent, tolPercent)
	}
}

func TestLayerProperties(t *testing.T) {
	if testing.Short() {
		t.Skip("200,000 subjects")
	}
	ctx := ctxAs("tester")
	c := core.New(storetest.Open(t, "sqlite"), core.Options{})
	if _, err := c.CreateLayer(ctx, "production", "checkout"); err != nil {
		t.Fatal(err)
	}
	flags := []string{"f1", "f2", "f3"}
	shares := []core.Percent{3000, 3000, 2000}
	for i, f := range flags {
		if _, err := c.CreateFlag(ctx, abFlag(f)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.AddAllocation(ctx, "production", f, 0, abExperiment("exp", "checkout", shares[i]), -1); err != nil {
			t.Fatal(err)
		}
	}
	l, err := c.Layer(ctx, "production", "checkout")
	if err != nil || len(l.Members) != 3 || len(l.Free) != 1 || l.Free[0] != (core.Range{Start: 8000, End: 10000}) {
		t.Fatalf("layout %+v, %v", l, err)
	}

	// 1. No subject in two experiments of the layer; each gets its share.
	first, _ := assignAll(t, c, "production", "exp", flags...)
	owner := map[int]string{}
	for _, f := range flags {
		for s := range first[f] {
			if o, ok := owner[s]; ok {
				t.Fatalf("subject user-%d is in the experiments of %s and %s", s, o, f)
			}
			owner[s] = f
		}
	}
	near(t, "f1", len(first["f1"]), 30, 1)
	near(t, "f3", len(first["f3"]), 20, 1)

	// 2. Growing f1 to 40 % moves no subject of any experiment.
	setShare(t, c, "f1", 4000)
	grown, _ := assignAll(t, c, "production", "exp", flags...)
	for _, f := range flags {
		for s, v := range first[f] {
			if grown[f][s] != v {
				t.Fatalf("growing f1 moved user-%d of %s from %s to %q", s, f, v, grown[f][s])
			}
		}
	}
	if len(grown["f2"]) != len(first["f2"]) || len(grown["f3"]) != len(first["f3"]) {
		t.Fatal("growing f1 changed the other experiments")
	}
	near(t, "f1 grown", len(grown["f1"]), 40, 1)

	// 3. Shrinking f1 keeps a subset; f3 then grows into free space (not
	// into what f1 gave back); growing f1 again gives back exactly the
	// same subjects.
	ch := setShare(t, c, "f1", 1000)
	if len(ch.Warnings) == 0 || !strings.Contains(strings.Join(ch.Warnings, " "), "layer checkout") {
		t.Errorf("shrinking a running experiment: warnings %q", ch.Warnings)
	}
	shrunk, _ := assignAll(t, c, "production", "exp", "f1")
	for s, v := range shrunk["f1"] {
		if grown["f1"][s] != v {
			t.Fatalf("shrinking moved user-%d from %q to %s", s, grown["f1"][s], v)
		}
	}
	near(t, "f1 shrunk", len(shrunk["f1"]), 10, 1)
	setShare(t, c, "f3", 2500)
	setShare(t, c, "f1", 4000)
	again, _ := assignAll(t, c, "production", "exp", flags...)
	if len(again["f1"]) != len(grown["f1"]) {
		t.Fatalf("re-grown f1 has %d subjects, had %d", len(again["f1"]), len(grown["f1"]))
	}
	for s, v := range grown["f1"] {
		if again["f1"][s] != v {
			t.Fatalf("shrink then re-grow: user-%d was %s, now %q", s, v, again["f1"][s])
		}
	}
	for s, v := range grown["f3"] {
		if again["f3"][s] != v {
			t.Fatalf("growing f3 moved user-%d", s)
		}
	}
	owner = map[int]string{}
	for _, f := range flags {
		for s := range again[f] {
			if o, ok := owner[s]; ok {
				t.Fatalf("after the edits, user-%d is in %s and %s", s, o, f)
			}
			owner[s] = f
		}
	}
}

func TestLayerRefusals(t *testing.T) {
	forEachOps(t, func(t *testing.T, db *ops) {
		ctx := ctxAs("tester")
		c := db.Core
		if _, err := c.CreateLayer(ctx, "production", "checkout"); err != nil {
			t.Fatal(err)
		}
		_, err := c.CreateLayer(ctx, "production", "checkout")
		wantCode(t, err, core.ECONFLICT)
		for _, f := range []string{"a", "b", "c"} {
			if _, err := c.CreateFlag(ctx, abFlag(f)); err != nil {
				t.Fatal(err)
			}
		}
		// A client cannot choose its ranges or salt.
		a := abExperiment("exp", "checkout", 6000)
		a.Layer.Salt, a.Layer.Ranges = "mine", []core.Range{{Start: 0, End: 10000}}
		ch, err := c.AddAllocation(ctx, "production", "a", 0, a, -1)
		if err != nil {
			t.Fatal(err)
		}
		got := ch.After.Allocations[0].Layer
		if got.Salt == "mine" || !strings.HasPrefix(got.Salt, "layer-checkout-") || len(got.Ranges) != 1 || got.Ranges[0] != (core.Range{Start: 0, End: 6000}) {
			t.Fatalf("layer part %+v", got)
		}
		// Too little free space: refused, naming the layer and the free share.
		_, err = c.AddAllocation(ctx, "production", "b", 0, abExperiment("exp", "checkout", 5000), -1)
		wantCode(t, err, core.ECONFLICT)
		if !strings.Contains(err.Error(), "layer checkout has 40 % free") {
			t.Fatalf("message: %v", err)
		}
		if s, _ := c.FlagSettings(ctx, "production", "b"); len(s.Allocations) != 0 {
			t.Fatal("a refused join changed the settings")
		}
		// An unknown layer, a rollout, a share out of range.
		_, err = c.AddAllocation(ctx, "production", "b", 0, abExperiment("exp", "nope", 1000), -1)
		wantCode(t, err, core.EINVALID)
		r := core.Allocation{Key: "ro", Type: core.Rollout, Variation: "control", Percent: 100, Layer: &core.LayerPart{Name: "checkout", Share: 100}}
		_, err = c.AddAllocation(ctx, "production", "b", 0, r, -1)
		wantCode(t, err, core.EINVALID)
		_, err = c.AddAllocation(ctx, "production", "b", 0, abExperiment("exp", "checkout", 50), -1)
		wantCode(t, err, core.EINVALID)
		// A running experiment cannot join: it would lose subjects.
		ch, err = c.AddAllocation(ctx, "production", "c", 0, abExperiment("exp", "", 0), -1)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.PatchAllocation(ctx, "production", "c", "exp", ch.After.Version, core.AllocationPatch{Layer: &core.LayerPart{Name: "checkout", Share: 1000}})
		wantCode(t, err, core.ECONFLICT)
		if !strings.Contains(err.Error(), "running") {
			t.Fatalf("message: %v", err)
		}
		// A layer with members cannot be deleted, nor a flag in a layer.
		err = c.DeleteLayer(ctx, "production", "checkout")
		wantCode(t, err, core.ECONFLICT)
		fa, _ := c.Flag(ctx, "a")
		wantCode(t, c.DeleteFlag(ctx, "a", fa.Version), core.ECONFLICT)
		// Removing the experiment frees its part; then the layer can go.
		s, _ := c.FlagSettings(ctx, "production", "a")
		if _, err := c.RemoveAllocation(ctx, "production", "a", "exp", s.Version); err != nil {
			t.Fatal(err)
		}
		l, err := c.Layer(ctx, "production", "checkout")
		if err != nil || len(l.Members) != 0 || len(l.Free) != 1 || l.Free[0] != (core.Range{Start: 0, End: core.Whole}) {
			t.Fatalf("after removal: %+v %v", l, err)
		}
		// The audit log has the layer's before and after.
		entries, err := db.Audit(ctx, 100, 0)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range entries {
			if e.Entity == "layer" && e.Action == "update" && e.Before != nil && e.After != nil {
				n++
			}
		}
		if n != 2 {
			t.Fatalf("%d layer updates audited, want 2 (join, leave)", n)
		}
		if err := c.DeleteLayer(ctx, "production", "checkout"); err != nil {
			t.Fatal(err)
		}
		_, err = c.Layer(ctx, "production", "checkout")
		wantCode(t, err, core.ENOTFOUND)
	})
}

func TestHoldoutProperties(t *testing.T) {
	if testing.Short() {
		t.Skip("200,000 subjects")
	}
	ctx := ctxAs("tester")
	c := core.New(storetest.Open(t, "sqlite"), core.Options{})
	if _, err := c.CreateHoldout(ctx, "production", "q3", 1000, false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateFlag(ctx, abFlag("f")); err != nil {
		t.Fatal(err)
	}
	draft := abExperiment("exp", "", 0)
	draft.Status = core.Draft
	if _, err := c.AddAllocation(ctx, "production", "f", 0, draft, -1); err != nil {
		t.Fatal(err)
	}
	h, _, err := c.AddHoldoutFlag(ctx, "production", "q3", "f", "", "")
	if err != nil || len(h.Flags) != 1 || h.Flags[0].StatusQuo != "control" {
		t.Fatalf("add-flag: %+v %v", h, err)
	}
	s, _ := c.FlagSettings(ctx, "production", "f")
	if _, err := c.SetStatus(ctx, "production", "f", "exp", s.Version, core.Running); err != nil {
		t.Fatal(err)
	}

	type got struct{ variation, half string }
	run := func() map[int]got {
		cfg, err := c.EnvironmentConfig(context.Background(), "production")
		if err != nil {
			t.Fatal(err)
		}
		doc, err := publish.Compile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		snap, err := eval.Compile(doc)
		if err != nil {
			t.Fatal(err)
		}
		out := map[int]got{}
		now := time.Now()
		for i := range propertySubjects {
			r := snap.Evaluate("f", fmt.Sprintf("user-%d", i), nil, ufc.TypeString, now)
			if !r.Matched() {
				t.Fatalf("user-%d: %v", i, r.Code)
			}
			half := ""
			if r.AllocationKey() == "exp-q3" {
				half = r.Split.ExtraLogging["holdoutVariation"]
				if r.Split.ExtraLogging["holdoutKey"] != "q3" || half == "" {
					t.Fatalf("extraLogging %v", r.Split.ExtraLogging)
				}
			} else if r.AllocationKey() != "exp" {
				t.Fatalf("user-%d matched %s", i, r.AllocationKey())
			}
			out[i] = got{r.VariationKey(), half}
		}
		return out
	}
	before := run()
	held := 0
	for i, g := range before {
		if g.half != "" {
			held++
			if g.variation != "control" {
				t.Fatalf("user-%d is in the holdout (%s) and sees %s before ship", i, g.half, g.variation)
			}
		}
	}
	near(t, "holdout", held, 10, 0.3)

	if _, _, err := c.ShipHoldout(ctx, "production", "q3", "f", "exp", "treatment"); err != nil {
		t.Fatal(err)
	}
	after := run()
	shipped, quo := 0, 0
	for i, g := range after {
		b := before[i]
		if (b.half == "") != (g.half == "") || b.half != g.half {
			t.Fatalf("ship moved user-%d between holdout groups (%q -> %q)", i, b.half, g.half)
		}
		switch g.half {
		case "":
			if g != b {
				t.Fatalf("ship changed user-%d outside the holdout", i)
			}
		case core.HoldoutAllShipped:
			shipped++
			if g.variation != "treatment" {
				t.Fatalf("all-shipped user-%d sees %s after ship", i, g.variation)
			}
		case core.HoldoutStatusQuo:
			quo++
			if g.variation != "control" {
				t.Fatalf("status-quo user-%d sees %s after ship", i, g.variation)
			}
		}
	}
	if shipped == 0 || quo == 0 || shipped+quo != held {
		t.Fatalf("halves %d + %d, held %d", shipped, quo, held)
	}
	near(t, "all-shipped half", shipped, 5, 0.3)
}

func TestHoldoutRefusals(t *testing.T) {
	forEachOps(t, func(t *testing.T, db *ops) {
		ctx := ctxAs("tester")
		c := db.Core
		_, err := c.CreateHoldout(ctx, "production", "q3", 6000, false)
		wantCode(t, err, core.EINVALID)
		if _, err := c.CreateHoldout(ctx, "production", "q3", 1000, false); err != nil {
			t.Fatal(err)
		}
		_, err = c.CreateHoldout(ctx, "production", "q3", 1000, false)
		wantCode(t, err, core.ECONFLICT)
		if _, err := c.CreateFlag(ctx, abFlag("f")); err != nil {
			t.Fatal(err)
		}
		ch, err := c.AddAllocation(ctx, "production", "f", 0, abExperiment("exp", "", 0), -1)
		if err != nil {
			t.Fatal(err)
		}
		// Running: covering it would move subjects.
		_, _, err = c.AddHoldoutFlag(ctx, "production", "q3", "f", "exp", "")
		wantCode(t, err, core.ECONFLICT)
		if _, err := c.SetStatus(ctx, "production", "f", "exp", ch.After.Version, core.Stopped); err != nil {
			t.Fatal(err)
		}
		_, _, err = c.AddHoldoutFlag(ctx, "production", "q3", "f", "exp", "nope")
		wantCode(t, err, core.EINVALID)
		if _, _, err := c.AddHoldoutFlag(ctx, "production", "q3", "f", "exp", ""); err != nil {
			t.Fatal(err)
		}
		_, _, err = c.AddHoldoutFlag(ctx, "production", "q3", "f", "exp", "")
		wantCode(t, err, core.ECONFLICT)
		// A client cannot drop or alter the holdout through the settings.
		s, _ := c.FlagSettings(ctx, "production", "f")
		s.Allocations[0].Holdout = nil
		ch, err = c.UpdateSettings(ctx, s)
		if err != nil || ch.After.Allocations[0].Holdout == nil || ch.After.Allocations[0].Holdout.Key != "q3" {
			t.Fatalf("holdout after a settings write: %+v %v", ch.After.Allocations[0].Holdout, err)
		}
		// Nor remove the experiment, nor delete the flag.
		_, err = c.RemoveAllocation(ctx, "production", "f", "exp", ch.After.Version)
		wantCode(t, err, core.ECONFLICT)
		fl, _ := c.Flag(ctx, "f")
		wantCode(t, c.DeleteFlag(ctx, "f", fl.Version), core.ECONFLICT)
		_, _, err = c.ShipHoldout(ctx, "production", "q3", "f", "exp", "purple")
		wantCode(t, err, core.EINVALID)
		hs, err := c.Holdouts(ctx, "production")
		if err != nil || len(hs) != 1 || len(hs[0].Flags) != 1 {
			t.Fatalf("list: %+v %v", hs, err)
		}
	})
}

func TestGlobalHoldout(t *testing.T) {
	forEachOps(t, func(t *testing.T, db *ops) {
		ctx := ctxAs("tester")
		c := db.Core
		if _, err := c.CreateFlag(ctx, abFlag("f")); err != nil {
			t.Fatal(err)
		}
		if _, err := c.AddAllocation(ctx, "production", "f", 0, abExperiment("before", "", 0), -1); err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateHoldout(ctx, "production", "g", 500, true); err != nil {
			t.Fatal(err)
		}
		_, err := c.CreateHoldout(ctx, "production", "g2", 500, true)
		wantCode(t, err, core.ECONFLICT)
		s, _ := c.FlagSettings(ctx, "production", "f")
		ch, err := c.AddAllocation(ctx, "production", "f", s.Version, abExperiment("after", "", 0), 0)
		if err != nil {
			t.Fatal(err)
		}
		if a := ch.After.Allocations; a[0].Holdout == nil || a[0].Holdout.Key != "g" || a[0].Holdout.StatusQuo != "control" || a[1].Holdout != nil {
			t.Fatalf("new experiment covered, old one not: %+v / %+v", a[0].Holdout, a[1].Holdout)
		}
		// Later edits keep it.
		traffic := core.Percent(5000)
		ch, err = c.PatchAllocation(ctx, "production", "f", "after", ch.After.Version, core.AllocationPatch{Traffic: &traffic})
		if err != nil || ch.After.Allocations[0].Holdout == nil {
			t.Fatalf("after an edit: %+v %v", ch.After.Allocations[0], err)
		}
		h, err := c.Holdout(ctx, "production", "g")
		if err != nil || !h.Global || len(h.Flags) != 1 || h.Flags[0].Allocation != "after" {
			t.Fatalf("holdout %+v %v", h, err)
		}
		fl, _ := c.Flag(ctx, "f")
		w, err := core.UFCFlag(&fl, &ch.After)
		if err != nil || len(w.Allocations) != 3 || w.Allocations[0].Key != "after-g" || w.Allocations[1].Key != "after" {
			t.Fatalf("published: %+v %v", w, err)
		}
	})
}

func TestLayerJoinRerandomize(t *testing.T) {
	forEachOps(t, func(t *testing.T, db *ops) {
		ctx := ctxAs("tester")
		c := db.Core
		if _, err := c.CreateLayer(ctx, "production", "checkout"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateFlag(ctx, abFlag("f")); err != nil {
			t.Fatal(err)
		}
		ch, err := c.AddAllocation(ctx, "production", "f", 0, abExperiment("exp", "", 0), -1)
		if err != nil {
			t.Fatal(err)
		}
		join := &core.LayerPart{Name: "checkout", Share: 2000}
		_, err = c.PatchAllocation(ctx, "production", "f", "exp", ch.After.Version, core.AllocationPatch{Layer: join})
		wantCode(t, err, core.ECONFLICT)
		join.Rerandomize = true
		ch, err = c.PatchAllocation(ctx, "production", "f", "exp", ch.After.Version, core.AllocationPatch{Layer: join})
		if err != nil {
			t.Fatal(err)
		}
		l := ch.After.Allocations[0].Layer
		if l == nil || l.Rerandomize || len(l.Ranges) != 1 || !strings.Contains(strings.Join(ch.Warnings, " "), "no longer assigned") {
			t.Fatalf("confirmed join: %+v, warnings %q", l, ch.Warnings)
		}
	})
}

// Concurrent joins of one layer never overlap: a join that raced another is
// refused as a conflict (retry), never written over it.
func TestLayerConcurrentJoins(t *testing.T) {
	forEachOps(t, func(t *testing.T, db *ops) {
		ctx := ctxAs("tester")
		c := db.Core
		if _, err := c.CreateLayer(ctx, "production", "checkout"); err != nil {
			t.Fatal(err)
		}
		const n = 8
		for i := range n {
			if _, err := c.CreateFlag(ctx, abFlag(fmt.Sprintf("f%d", i))); err != nil {
				t.Fatal(err)
			}
		}
		errs := make(chan error, n)
		for i := range n {
			go func() {
				_, err := c.AddAllocation(ctx, "production", fmt.Sprintf("f%d", i), 0, abExperiment("exp", "checkout", 1000), -1)
				errs <- err
			}()
		}
		joined := 0
		for range n {
			switch err := <-errs; core.ErrorCode(err) {
			case "":
				joined++
			case core.ECONFLICT, core.EUNAVAILABLE:
			default:
				t.Errorf("join: %v", err)
			}
		}
		l, err := c.Layer(ctx, "production", "checkout")
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Members) != joined || joined == 0 {
			t.Fatalf("%d joined, layer has %d members", joined, len(l.Members))
		}
		seen := make([]bool, core.Whole)
		for _, m := range l.Members {
			for _, r := range m.Ranges {
				for s := r.Start; s < r.End; s++ {
					if seen[s] {
						t.Fatalf("shard %d is in two members: %+v", s, l.Members)
					}
					seen[s] = true
				}
			}
		}
		// Every member's settings carry exactly its stored ranges.
		for _, m := range l.Members {
			s, _ := c.FlagSettings(ctx, "production", m.Flag)
			if got := s.Allocations[0].Layer.Ranges; fmt.Sprint(got) != fmt.Sprint(m.Ranges) {
				t.Fatalf("%s: settings %v, layer %v", m.Flag, got, m.Ranges)
			}
		}
	})
}

func TestHoldoutRemoveFlag(t *testing.T) {
	forEachOps(t, func(t *testing.T, db *ops) {
		ctx := ctxAs("tester")
		c := db.Core
		if _, err := c.CreateHoldout(ctx, "production", "q3", 1000, false); err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateFlag(ctx, abFlag("f")); err != nil {
			t.Fatal(err)
		}
		ch, err := c.AddAllocation(ctx, "production", "f", 0, abExperiment("exp", "", 0), -1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.SetStatus(ctx, "production", "f", "exp", ch.After.Version, core.Stopped); err != nil {
			t.Fatal(err)
		}
		_, _, err = c.RemoveHoldoutFlag(ctx, "production", "q3", "f", "exp", false)
		wantCode(t, err, core.ENOTFOUND)
		if _, _, err := c.AddHoldoutFlag(ctx, "production", "q3", "f", "exp", ""); err != nil {
			t.Fatal(err)
		}
		// Stopped and not shipped: nobody is held out yet, so it just goes.
		h, ch, err := c.RemoveHoldoutFlag(ctx, "production", "q3", "f", "exp", false)
		if err != nil || len(h.Flags) != 0 || ch.After.Allocations[0].Holdout != nil || len(ch.Warnings) != 0 {
			t.Fatalf("remove: %+v %+v %v", h, ch, err)
		}
		entries, err := db.Audit(ctx, 1, 0)
		if err != nil || len(entries) != 1 || entries[0].Entity != "holdout" || !strings.Contains(string(entries[0].Before), `"exp"`) || strings.Contains(string(entries[0].After), `"exp"`) {
			t.Fatalf("audit: %+v %v", entries, err)
		}
		// Running: its held-out subjects would move.
		if _, _, err := c.AddHoldoutFlag(ctx, "production", "q3", "f", "exp", ""); err != nil {
			t.Fatal(err)
		}
		s, _ := c.FlagSettings(ctx, "production", "f")
		if _, err := c.SetStatus(ctx, "production", "f", "exp", s.Version, core.Running); err != nil {
			t.Fatal(err)
		}
		before, _ := c.FlagSettings(ctx, "production", "f")
		_, _, err = c.RemoveHoldoutFlag(ctx, "production", "q3", "f", "exp", false)
		wantCode(t, err, core.ECONFLICT)
		if !strings.Contains(err.Error(), "confirm") {
			t.Fatalf("refusal does not say how to go on: %v", err)
		}
		if after, _ := c.FlagSettings(ctx, "production", "f"); after.Version != before.Version {
			t.Fatal("a refused removal changed the settings")
		}
		if h, _ := c.Holdout(ctx, "production", "q3"); len(h.Flags) != 1 {
			t.Fatalf("a refused removal changed the holdout: %+v", h)
		}
		h, ch, err = c.RemoveHoldoutFlag(ctx, "production", "q3", "f", "exp", true)
		if err != nil || len(h.Flags) != 0 || len(ch.Warnings) != 1 {
			t.Fatalf("confirmed remove: %+v %v %v", h, ch.Warnings, err)
		}
		fl, _ := c.Flag(ctx, "f")
		w, err := core.UFCFlag(&fl, &ch.After)
		if err != nil || len(w.Allocations) != 1 || w.Allocations[0].Key != "exp" {
			t.Fatalf("published after removal: %+v %v", w, err)
		}
		// Back in it is refused while running, as adding always is.
		_, _, err = c.AddHoldoutFlag(ctx, "production", "q3", "f", "exp", "")
		wantCode(t, err, core.ECONFLICT)
	})
}
