package web_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/allot-dev/allot/cmd/allot/internal/apiclient"
	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/httpapi"
	"github.com/allot-dev/allot/cmd/allot/internal/server"
)

// TestBrowserLayers: a layer with two experiments and a holdout, made
// through the API, as the layers page shows them in Chromium (its
// screenshot is docs/images/layers.png with ALLOT_UPDATE_SCREENSHOTS=1).
func TestBrowserLayers(t *testing.T) {
	ctx, cancel := browser(t)
	defer cancel()
	srv, err := server.Start(context.Background(), server.Config{
		Addr: "127.0.0.1:0", DB: filepath.Join(t.TempDir(), "allot.db"), AdminToken: browserAdminToken,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	api := apiclient.New(srv.URL(), browserAdminToken)
	bg := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err = api.CreateLayer(bg, "production", "checkout")
	must(err)
	_, err = api.CreateHoldout(bg, "production", "q3-launches", 1000, false)
	must(err)
	for i, f := range []string{"checkout-button", "checkout-copy"} {
		_, err := api.CreateFlag(bg, core.Flag{Key: f, VariationType: "STRING", Variations: []core.Variation{
			{Key: "control", Value: []byte(`"old"`)}, {Key: "treatment", Value: []byte(`"new"`)}}})
		must(err)
		_, err = api.AddAllocation(bg, "production", f, 0, core.Allocation{Key: "test", Type: core.Experiment, Traffic: core.Whole,
			Weights: []core.Weight{{Variation: "control", Weight: 5000}, {Variation: "treatment", Weight: 5000}},
			Layer:   &core.LayerPart{Name: "checkout", Share: core.Percent(4000 - 1500*i)}})
		must(err)
	}
	_, err = api.AddHoldoutFlag(bg, "production", "q3-launches", httpapi.HoldoutFlagRequest{Flag: "checkout-button"})
	must(err)
	_, err = api.ShipHoldout(bg, "production", "q3-launches", httpapi.HoldoutFlagRequest{Flag: "checkout-button", Winner: "treatment"})
	must(err)

	steps := []step{
		chromedp.Navigate(srv.URL() + "/layers"), visible("#token"),
		sendKeys("#token", browserAdminToken), submit("#signin"),
		visible("#layer-checkout svg.layerbar"),
	}
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
	n, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.querySelectorAll("#layer-checkout rect").length`))
	if err != nil || n != 3 {
		t.Fatalf("bar parts: %v %v", n, err)
	}
	w, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.querySelector("#layer-checkout rect.m1").getBoundingClientRect().width / document.querySelector("#layer-checkout svg").getBoundingClientRect().width`))
	if err != nil || w < 0.24 || w > 0.26 {
		t.Fatalf("the second experiment's part is %.3f of the bar, want 0.25 (%v)", w, err)
	}
	body, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main"), chromedp.NodeVisible))
	if err != nil {
		t.Fatal(err)
	}
	contains(t, "layers page", body, "checkout-copy / test")
	contains(t, "layers page", body, "35 %")
	contains(t, "holdouts", body, "control → treatment")
	if err := chromedp.Do(ctx, shot("layers")); err != nil {
		t.Fatal(err)
	}
}
