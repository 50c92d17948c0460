package compat_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/apiclient"
	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/httpapi"
)

// TestLayersAndHoldouts (issue 15): a layer with two experiments on two
// flags and a 10 % holdout over a third flag with a shipped winner, served
// by `allot serve`: Eppo's Node SDK and Allot's Go SDK give identical
// assignments and events (extraLogging included) for 10,000 subjects, and
// the layer's promise holds in what they answered.
func TestLayersAndHoldouts(t *testing.T) {
	const token = "allot_admin_compat-test-token-0123456789"
	url := startServe(t, token)
	c := apiclient.New(url, token)
	ctx := context.Background()
	env := core.DefaultEnvironment
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := c.CreateLayer(ctx, env, "checkout")
	must(err)
	_, err = c.CreateHoldout(ctx, env, "q3", 1000, false)
	must(err)
	exp := func(layer string, share core.Percent) core.Allocation {
		a := core.Allocation{Key: "exp", Type: core.Experiment, Status: core.Running, Traffic: 9000,
			Weights: []core.Weight{{Variation: "control", Weight: 5000}, {Variation: "treatment", Weight: 5000}}}
		if layer != "" {
			a.Layer = &core.LayerPart{Name: layer, Share: share}
		}
		return a
	}
	var flags []flagSpec
	for _, f := range []string{"page", "copy", "price"} {
		_, err := c.CreateFlag(ctx, core.Flag{Key: f, VariationType: "STRING", Variations: []core.Variation{
			{Key: "control", Value: json.RawMessage(`"control"`)}, {Key: "treatment", Value: json.RawMessage(`"treatment"`)}}})
		must(err)
		flags = append(flags, flagSpec{Key: f, Type: "STRING", Default: json.RawMessage(`"default"`)})
	}
	_, err = c.AddAllocation(ctx, env, "page", 0, exp("checkout", 4000))
	must(err)
	_, err = c.AddAllocation(ctx, env, "copy", 0, exp("checkout", 3500))
	must(err)
	draft := exp("", 0)
	draft.Status = core.Draft
	s, err := c.AddAllocation(ctx, env, "price", 0, draft)
	must(err)
	_, err = c.AddHoldoutFlag(ctx, env, "q3", httpapi.HoldoutFlagRequest{Flag: "price"})
	must(err)
	running := core.Running
	_, err = c.PatchAllocation(ctx, env, "price", "exp", s.Version+1, httpapi.AllocationPatch{Status: &running})
	must(err)
	_, err = c.ShipHoldout(ctx, env, "q3", httpapi.HoldoutFlagRequest{Flag: "price", Winner: "treatment"})
	must(err)
	key, err := c.CreateSDKKey(ctx, env, "compat")
	must(err)

	subjects := randomSubjects(10_000, 3)
	vals := compare(t, flags, subjects, url+"/api", key.Secret, nil)

	// What the SDKs answered keeps the promises: nobody is in both
	// experiments of the layer (answers other than "default" come only
	// from the experiments), and the holdout's halves got what they should.
	got := map[string]map[string]string{}
	for _, v := range vals {
		if got[v.subject] == nil {
			got[v.subject] = map[string]string{}
		}
		got[v.subject][v.flag] = strings.Trim(v.value, `"`)
	}
	both, page, cp := 0, 0, 0
	for _, m := range got {
		if m["page"] != "default" {
			page++
		}
		if m["copy"] != "default" {
			cp++
		}
		if m["page"] != "default" && m["copy"] != "default" {
			both++
		}
	}
	if both != 0 || page < 3300 || page > 3900 || cp < 2850 || cp > 3450 {
		t.Fatalf("page %d, copy %d, both %d of 10,000", page, cp, both)
	}
	_, events := runGo(t, url+"/api", key.Secret, flags[2:], subjects)
	halves := map[string]int{}
	for _, e := range events {
		if e.Allocation != "exp-q3" {
			continue
		}
		h := e.ExtraLogging["holdoutVariation"]
		halves[h]++
		if e.ExtraLogging["holdoutKey"] != "q3" || (h == core.HoldoutAllShipped) != (e.Variation == "treatment") {
			t.Fatalf("holdout event %+v", e)
		}
	}
	if n := halves[core.HoldoutStatusQuo] + halves[core.HoldoutAllShipped]; n < 900 || n > 1100 || halves[core.HoldoutStatusQuo] == 0 || halves[core.HoldoutAllShipped] == 0 {
		t.Fatalf("holdout halves %v", halves)
	}
	t.Logf("layer: page %d, copy %d, both %d; holdout halves %v", page, cp, both, halves)
}
