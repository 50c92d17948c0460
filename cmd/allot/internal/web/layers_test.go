package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/table"
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

// TestLayerAndHoldoutForms drives every layer and holdout form: each change
// goes through the core (read back from it), a refusal shows the core's
// reason and changes nothing, and a form without the CSRF token is refused.
func TestLayerAndHoldoutForms(t *testing.T) {
	e := newEnv(t)
	e.signIn()
	ctx := core.WithActor(t.Context(), "seeder")
	c := e.core
	for _, f := range []string{"page", "copy", "price"} {
		if _, err := c.CreateFlag(ctx, core.Flag{Key: f, VariationType: ufc.TypeString, Variations: []core.Variation{
			{Key: "control", Value: json.RawMessage(`"a"`)}, {Key: "treatment", Value: json.RawMessage(`"b"`)}}}); err != nil {
			t.Fatal(err)
		}
		status := core.Draft
		if f == "price" {
			status = core.Running
		}
		a := core.Allocation{Key: "exp", Type: core.Experiment, Traffic: core.Whole, Status: status,
			Weights: []core.Weight{{Variation: "control", Weight: 5000}, {Variation: "treatment", Weight: 5000}}}
		if _, err := c.AddAllocation(ctx, "production", f, 0, a, -1); err != nil {
			t.Fatal(err)
		}
	}
	layer := func() core.Layer {
		t.Helper()
		l, err := c.Layer(ctx, "production", "checkout")
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	follow := func(r resp, contains ...string) {
		t.Helper()
		if r.status != http.StatusSeeOther {
			t.Fatalf("status %d, want 303:\n%s", r.status, r.body)
		}
		want(t, e.get(r.loc), 200, contains...)
	}
	form := func(kv ...string) url.Values {
		v := url.Values{"env": {"production"}}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}

	// Layers.
	want(t, e.post("/layers", form("name", "bad name")), 400, `id="layer-name-error"`, "letters, digits")
	if r := e.do("POST", "/layers", form("name", "checkout")); r.status != http.StatusForbidden {
		t.Fatalf("no CSRF token: %d", r.status)
	}
	if _, err := c.Layer(ctx, "production", "checkout"); core.ErrorCode(err) != core.ENOTFOUND {
		t.Fatalf("created without a CSRF token: %v", err)
	}
	follow(e.post("/layers", form("name", "checkout")), "Created layer checkout", `id="layer-checkout"`, `id="join-checkout"`)
	follow(e.post("/layers/checkout/share", form("experiment", "page/exp", "share", "30")), "joined layer checkout with 30 %")
	follow(e.post("/layers/checkout/share", form("experiment", "copy/exp", "share", "50")), "joined layer checkout with 50 %")
	// A running experiment joins only when the re-randomization is
	// confirmed, and only into free space: the core's reasons, nothing
	// changed.
	want(t, e.post("/layers/checkout/share", form("experiment", "price/exp", "share", "10")), 409, "is running", "rerandomize")
	r := e.post("/layers/checkout/share", form("experiment", "price/exp", "share", "30", "rerandomize", "on"))
	want(t, r, 409, "layer checkout has 20 % free")
	if l := layer(); len(l.Members) != 2 {
		t.Fatalf("a refused join changed the layer: %+v", l.Members)
	}
	follow(e.post("/layers/checkout/share", form("experiment", "price/exp", "share", "10", "rerandomize", "on")),
		"joined layer checkout with 10 %", "no longer assigned")
	// Shrink and grow.
	follow(e.post("/layers/checkout/share", form("experiment", "copy/exp", "share", "40")), "40 % of layer checkout (was 50 %)")
	follow(e.post("/layers/checkout/share", form("experiment", "page/exp", "share", "40")), "40 % of layer checkout (was 30 %)",
		`<rect class="m0" x="0" y="0" width="3000"`, "[0, 3000)", "[7000, 8000)")
	if l := layer(); l.Members[0].Share() != 4000 || l.Members[1].Share() != 4000 || l.Members[2].Share() != 1000 {
		t.Fatalf("layout: %+v", l.Members)
	}
	want(t, e.post("/layers/checkout/share", form("experiment", "page/exp", "share", "0")), 400, "1 to 100 percent")
	want(t, e.post("/layers/checkout/delete", form()), 409, "has 3 experiments")
	for _, x := range []string{"page/exp", "copy/exp", "price/exp"} {
		follow(e.post("/layers/checkout/leave", form("experiment", x)), "left layer checkout")
	}
	want(t, e.post("/layers/checkout/leave", form("experiment", "page/exp")), 409, "not in layer checkout")
	follow(e.post("/layers/checkout/delete", form()), "Deleted layer checkout", "No layers in this environment")

	// Holdouts.
	want(t, e.post("/holdouts", form("key", "q3", "percent", "60")), 400, `id="holdout-percent-error"`, "50 percent")
	follow(e.post("/holdouts", form("key", "q3", "percent", "10")), "Created holdout q3: 10 %", "covers no experiment yet", `<option value="page/exp">`)
	want(t, e.get("/holdouts/q3?env=production"), 200, `<option value="copy/exp">`)
	if r := e.get("/holdouts/q3?env=production"); strings.Contains(r.body, `<option value="price/exp">`) {
		t.Fatal("a running experiment is offered to the holdout")
	}
	want(t, e.get("/holdouts/nope?env=production"), 404)
	follow(e.post("/holdouts/q3/flags", form("experiment", "page/exp")), "now covers experiment exp of page", `id="hf-page-exp"`, "not shipped")
	want(t, e.post("/holdouts/q3/flags", form("experiment", "copy/exp", "statusQuo", "purple")), 400, "names no variation")
	follow(e.post("/holdouts/q3/ship", form("experiment", "page/exp", "winner", "treatment")), "Shipped treatment of page", "(holding out)")
	h, _ := c.Holdout(ctx, "production", "q3")
	if len(h.Flags) != 1 || h.Flags[0].Shipped != "treatment" {
		t.Fatalf("holdout after ship: %+v", h)
	}
	// Shipped: removing it moves the held-out subjects, so it wants a confirmation.
	want(t, e.post("/holdouts/q3/remove", form("experiment", "page/exp")), 409, "confirm")
	if h, _ := c.Holdout(ctx, "production", "q3"); len(h.Flags) != 1 {
		t.Fatal("a refused removal changed the holdout")
	}
	follow(e.post("/holdouts/q3/remove", form("experiment", "page/exp", "confirm", "on")), "no longer covers experiment exp of page", "left holdout q3")
	if h, _ := c.Holdout(ctx, "production", "q3"); len(h.Flags) != 0 {
		t.Fatalf("after removal: %+v", h)
	}
	want(t, e.get("/layers?env=production"), 200, `href="/holdouts/q3?env=production"`)
}

// TestHoldoutSummaryOnFlagPage: the experiment's assignment summary on the
// flag page shows its holdout's halves and their 50/50 check, read from the
// aggregates the insert path keeps.
func TestHoldoutSummaryOnFlagPage(t *testing.T) {
	e := newEnv(t)
	e.signIn()
	ctx := core.WithActor(t.Context(), "seeder")
	c := e.core
	if _, err := c.CreateHoldout(ctx, "production", "q3", 1000, false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateFlag(ctx, core.Flag{Key: "page", VariationType: ufc.TypeString, Variations: []core.Variation{
		{Key: "control", Value: json.RawMessage(`"a"`)}, {Key: "treatment", Value: json.RawMessage(`"b"`)}}}); err != nil {
		t.Fatal(err)
	}
	a := core.Allocation{Key: "exp", Type: core.Experiment, Traffic: core.Whole, Status: core.Draft,
		Weights: []core.Weight{{Variation: "control", Weight: 5000}, {Variation: "treatment", Weight: 5000}}}
	if _, err := c.AddAllocation(ctx, "production", "page", 0, a, -1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.AddHoldoutFlag(ctx, "production", "q3", "page", "exp", ""); err != nil {
		t.Fatal(err)
	}
	r := e.get("/flags/page?env=production")
	want(t, r, 200, `id="holdout-summary-q3"`, `href="/holdouts/q3?env=production"`, "0 subjects held out", "Holdout check not run")
	// 300 in the status-quo half, 200 in the all-shipped half: not 50/50.
	now := time.Now()
	var rows []table.Row
	for i := range 500 {
		half, v := core.HoldoutStatusQuo, "control"
		if i >= 300 {
			half, v = core.HoldoutAllShipped, "treatment"
		}
		rows = append(rows, table.Row{EventID: fmt.Sprintf("e%d", i), Environment: "production", Experiment: "page-exp-q3", FeatureFlag: "page",
			Allocation: "exp-q3", Variation: v, Subject: fmt.Sprintf("s%d", i), SubjectAttributes: []byte("{}"), Timestamp: now, ReceivedAt: now,
			Holdout: "q3", HoldoutVariation: half})
	}
	if _, err := e.db.InsertAssignments(t.Context(), rows); err != nil {
		t.Fatal(err)
	}
	r = e.get("/flags/page?env=production")
	want(t, r, 200, "500 subjects held out", "<code>status_quo</code></td><td data-label=\"Subjects\">300", "60.0 %",
		"<code>all_shipped</code></td><td data-label=\"Subjects\">200", "<code>treatment</code> 200", `class="srm mismatch" id="holdout-srm-q3"`)
}
