package web_test

import (
	"encoding/json"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/internal/ufc"
)

// TestLayersPage: the page draws each layer's parts (members and free) and
// lists the holdouts with their experiments.
func TestLayersPage(t *testing.T) {
	e := newEnv(t)
	e.signIn()
	r := e.get("/layers")
	want(t, r, 200, "No layers in this environment", "No holdouts in this environment")
	ctx := core.WithActor(t.Context(), "seeder")
	c := e.core
	if _, err := c.CreateLayer(ctx, "production", "checkout"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateHoldout(ctx, "production", "q3", 1000, false); err != nil {
		t.Fatal(err)
	}
	for i, f := range []string{"page", "copy"} {
		if _, err := c.CreateFlag(ctx, core.Flag{Key: f, VariationType: ufc.TypeString, Variations: []core.Variation{
			{Key: "control", Value: json.RawMessage(`"a"`)}, {Key: "treatment", Value: json.RawMessage(`"b"`)}}}); err != nil {
			t.Fatal(err)
		}
		a := core.Allocation{Key: "exp", Type: core.Experiment, Traffic: core.Whole,
			Weights: []core.Weight{{Variation: "control", Weight: 5000}, {Variation: "treatment", Weight: 5000}},
			Layer:   &core.LayerPart{Name: "checkout", Share: core.Percent(3000 + 2000*i)}}
		if _, err := c.AddAllocation(ctx, "production", f, 0, a, -1); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := c.AddHoldoutFlag(ctx, "production", "q3", "page", "exp", ""); err != nil {
		t.Fatal(err)
	}
	r = e.get("/layers?env=production")
	want(t, r, 200, `id="layer-checkout"`, `<rect class="m0" x="0" y="0" width="3000"`, `<rect class="m1" x="3000" y="0" width="5000"`,
		`<rect class="free" x="8000" y="0" width="2000"`, "page / exp", "30 %", "20 %", "<code>q3</code>", "control (not shipped)")
}
