package web_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/allot-dev/allot/cmd/allot/internal/apiclient"
	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/server"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

// TestBrowserLayers walks through the layer and holdout forms in Chromium
// (issue 15): create a layer, add two experiments to it, see a third
// refused for want of free space, create a holdout, add a flag to it, ship
// a winner. Each step is read back through the API, which the forms must
// have changed through the core. With ALLOT_UPDATE_SCREENSHOTS=1 it writes
// docs/images/layers-*.png and holdout.png for docs/layers-and-holdouts.md.
func TestBrowserLayers(t *testing.T) {
	ctx, cancel := browser(t)
	defer cancel()
	dbPath := filepath.Join(t.TempDir(), "allot.db")
	srv, err := server.Start(context.Background(), server.Config{
		Addr: "127.0.0.1:0", DB: dbPath, AdminToken: browserAdminToken,
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
	// Three flags, each with an experiment not started yet.
	for _, f := range []string{"checkout-button", "checkout-copy", "pricing-page"} {
		_, err := api.CreateFlag(bg, core.Flag{Key: f, VariationType: "STRING", Variations: []core.Variation{
			{Key: "control", Value: []byte(`"old"`)}, {Key: "treatment", Value: []byte(`"new"`)}}})
		must(err)
		_, err = api.AddAllocation(bg, "production", f, 0, core.Allocation{Key: "test", Type: core.Experiment, Traffic: core.Whole, Status: core.Draft,
			Weights: []core.Weight{{Variation: "control", Weight: 5000}, {Variation: "treatment", Weight: 5000}}})
		must(err)
	}

	do := func(what string, steps ...step) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	choose := func(sel, value string) step {
		return js(`document.querySelector(` + strconv.Quote(sel) + `).value = ` + strconv.Quote(value))
	}

	do("sign in", chromedp.Navigate(srv.URL()+"/layers"), visible("#token"),
		sendKeys("#token", browserAdminToken), submit("#signin"), visible("#create-layer"))

	// A layer, and two experiments in it.
	do("create layer", sendKeys("#layer-name", "checkout"), submit("#create-layer"), visible("#layer-checkout"))
	contains(t, "create layer", text("#flash"), "Created layer checkout")
	do("join 1", choose("#join-checkout", "checkout-button/test"), typeInto("#join-share-checkout", "40"), submit("#join-submit-checkout"))
	contains(t, "join 1", text("#flash"), "joined layer checkout with 40 %")
	do("join 2", choose("#join-checkout", "checkout-copy/test"), typeInto("#join-share-checkout", "35"), submit("#join-submit-checkout"))
	contains(t, "join 2", text("#flash"), "joined layer checkout with 35 %")
	// A third does not fit: the core's reason, on the page.
	do("join 3", choose("#join-checkout", "pricing-page/test"), typeInto("#join-share-checkout", "50"), submit("#join-submit-checkout"))
	contains(t, "join 3", text("#page-error"), "layer checkout has 25 % free; experiment test of flag pricing-page needs 50 % more")
	do("refused", shot("layers-refused"))
	l, err := api.Layer(bg, "production", "checkout")
	must(err)
	if len(l.Members) != 2 || l.Members[0].Share() != 4000 || l.Members[1].Share() != 3500 {
		t.Fatalf("layer after the forms: %+v", l.Members)
	}

	// A holdout, a flag in it, a winner shipped.
	do("create holdout", chromedp.Navigate(srv.URL()+"/layers"), visible("#create-holdout"),
		sendKeys("#holdout-key", "q3-launches"), typeInto("#holdout-percent", "10"), submit("#create-holdout"))
	contains(t, "create holdout", text("#flash"), "Created holdout q3-launches: 10 %")
	do("add flag", choose("#add-experiment", "pricing-page/test"), submit("#add-flag"))
	contains(t, "add flag", text("#flash"), "now covers experiment test of pricing-page: its subjects will get control")
	// Started (through the API), it runs; the holdout keeps its 10 % on control.
	set, err := api.Settings(bg, "production", "pricing-page")
	must(err)
	running := core.Running
	_, err = api.PatchAllocation(bg, "production", "pricing-page", "test", set.Version, core.AllocationPatch{Status: &running})
	must(err)
	do("reload", chromedp.Navigate(srv.URL()+"/holdouts/q3-launches"), visible("#ship-pricing-page-test"))
	contains(t, "running", text("#hf-pricing-page-test"), "running (holding out)")
	do("ship", choose("#winner-pricing-page-test", "treatment"), submit("#ship-pricing-page-test"))
	contains(t, "ship", text("#flash"), "Shipped treatment of pricing-page")
	contains(t, "holdout page", text("#hf-pricing-page-test"), "treatment")
	do("holdout", shot("holdout"))
	h, err := api.Holdout(bg, "production", "q3-launches")
	must(err)
	if len(h.Flags) != 1 || h.Flags[0].Flag != "pricing-page" || h.Flags[0].Shipped != "treatment" || h.Percent != 1000 {
		t.Fatalf("holdout after the forms: %+v", h)
	}

	// The layers page draws it all.
	do("layers page", chromedp.Navigate(srv.URL()+"/layers"), visible("#layer-checkout svg.layerbar"))
	n, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.querySelectorAll("#layer-checkout rect").length`))
	if err != nil || n != 3 {
		t.Fatalf("bar parts: %v %v", n, err)
	}
	w, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.querySelector("#layer-checkout rect.m1").getBoundingClientRect().width / document.querySelector("#layer-checkout svg").getBoundingClientRect().width`))
	if err != nil || w < 0.34 || w > 0.36 {
		t.Fatalf("the second experiment's part is %.3f of the bar, want 0.35 (%v)", w, err)
	}
	body := text("main")
	contains(t, "layers page", body, "checkout-copy / test")
	contains(t, "layers page", body, "25 %")
	contains(t, "holdouts", body, "control → treatment")
	do("screenshot", shot("layers"))

	// The experiment's summary on its flag page, split by holdout half:
	// events written to the table as the SDKs would log them (through a
	// second connection to the database file, as ingestion writes).
	db, err := store.Open(bg, dbPath, nil)
	must(err)
	defer db.Close()
	now := time.Now()
	var rows []table.Row
	for i := range 2000 {
		half, v := core.HoldoutStatusQuo, "control"
		if i%2 == 1 {
			half, v = core.HoldoutAllShipped, "treatment"
		}
		rows = append(rows, table.Row{EventID: fmt.Sprintf("e%d", i), Environment: "production", Experiment: "pricing-page-test-q3-launches",
			FeatureFlag: "pricing-page", Allocation: "test-q3-launches", Variation: v, Subject: fmt.Sprintf("user-%d", i),
			SubjectAttributes: []byte("{}"), Timestamp: now, ReceivedAt: now, Holdout: "q3-launches", HoldoutVariation: half})
	}
	_, err = db.InsertAssignments(bg, rows)
	must(err)
	do("flag page", chromedp.Navigate(srv.URL()+"/flags/pricing-page"), visible("#assignments-test summary"),
		chromedp.Click(chromedp.CSS("#assignments-test summary")), visible("#holdout-summary-q3-launches"))
	contains(t, "holdout summary", text("#holdout-summary-q3-launches"), "2000 subjects held out")
	contains(t, "holdout summary", text("#holdout-srm-q3-launches"), "split as expected")
	do("holdout summary", js(`document.querySelector("#holdout-summary-q3-launches").scrollIntoView()`), shot("holdout-summary"))
}
