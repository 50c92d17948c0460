package web_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/server"
	"github.com/allot-dev/allot/cmd/allot/internal/table"
	"github.com/allot-dev/allot/internal/ufc"
)

// TestBrowserExperimentPage: two weeks of an experiment (started, its
// traffic raised twice) as the experiment page draws them in Chromium,
// and a download made from the page (its screenshot is
// docs/images/experiment.png with ALLOT_UPDATE_SCREENSHOTS=1).
//
// The audit log can only record changes as they happen, so the fixture
// moves its entries' times back onto the fortnight the rows cover, with
// SQL on the audit table: the page reads them as it would real ones.
func TestBrowserExperimentPage(t *testing.T) {
	ctx, cancel := browser(t)
	defer cancel()
	path := filepath.Join(t.TempDir(), "allot.db")
	srv, err := server.Start(context.Background(), server.Config{Addr: "127.0.0.1:0", DB: path, AdminToken: browserAdminToken})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	bg := core.WithActor(context.Background(), "admin:maria (allot_admin_3f9a…)")
	c := srv.Core()
	must := func(ch core.Change, err error) int64 {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return ch.After.Version
	}
	_, ch, err := c.CreateFlagWith(bg, core.Flag{Key: "checkout-button", VariationType: ufc.TypeString, Variations: []core.Variation{
		{Key: "control", Value: json.RawMessage(`"blue"`)}, {Key: "treatment", Value: json.RawMessage(`"green"`)}}},
		core.FlagSettings{Environment: "production", Allocations: []core.Allocation{{Key: "button-test", Type: core.Experiment, Status: core.Draft,
			Traffic: 1000, Weights: []core.Weight{{Variation: "control", Weight: 5000}, {Variation: "treatment", Weight: 5000}}}}})
	v := must(ch, err)
	v = must(c.SetStatus(bg, "production", "checkout-button", "button-test", v, core.Running))
	for _, p := range []core.Percent{3000, 6000} {
		v = must(c.PatchAllocation(bg, "production", "checkout-button", "button-test", v, core.AllocationPatch{Traffic: &p}))
	}

	// Fourteen days up to today; traffic 10 %, then 30 % from day 5, 60 %
	// from day 9: the day's new subjects follow it.
	today := time.Now().UTC().Truncate(24 * time.Hour)
	day0 := today.AddDate(0, 0, -13)
	changedAt := []time.Time{day0.Add(9 * time.Hour), day0.Add(9*time.Hour + 5*time.Minute), day0.AddDate(0, 0, 5).Add(14 * time.Hour), day0.AddDate(0, 0, 9).Add(10 * time.Hour)}
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	ids := []int64{}
	rows, err := raw.Query(`SELECT id FROM audit_log WHERE entity IN ('flag', 'flag_settings') ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		rows.Scan(&id)
		ids = append(ids, id)
	}
	rows.Close()
	if len(ids) != 5 { // flag create, its settings, start, two traffic changes
		t.Fatalf("audit entries %v", ids)
	}
	for i, id := range ids[1:] {
		if _, err := raw.Exec(`UPDATE audit_log SET at = ? WHERE id = ?`, changedAt[i].UnixMicro(), id); err != nil {
			t.Fatal(err)
		}
	}
	raw.Exec(`UPDATE audit_log SET at = ? WHERE id = ?`, changedAt[0].UnixMicro(), ids[0])
	raw.Close()

	var events []table.Row
	subject := 0
	for d := range 14 {
		traffic := 10
		if d >= 9 {
			traffic = 60
		} else if d >= 5 {
			traffic = 30
		}
		at := day0.AddDate(0, 0, d).Add(12 * time.Hour)
		n := traffic*4 + (d*37)%23 // some day-to-day noise
		for i := range n {
			// A fixed pseudo-random split near 50/50.
			v := "control"
			if uint32(subject+i)*2654435761>>16%100 >= 50 {
				v = "treatment"
			}
			events = append(events, table.Row{EventID: fmt.Sprintf("ev-%d-%d", d, i), Environment: "production", Experiment: "checkout-button-button-test",
				FeatureFlag: "checkout-button", Allocation: "button-test", Variation: v, Subject: fmt.Sprintf("user-%d", subject+i),
				SubjectAttributes: []byte(`{}`), Timestamp: at, ReceivedAt: at})
		}
		subject += n
	}
	if _, err := srv.DB().InsertAssignments(context.Background(), events); err != nil {
		t.Fatal(err)
	}

	page := srv.URL() + "/flags/checkout-button/experiments/button-test?env=production"
	if err := chromedp.Do(ctx, laptop(), chromedp.Navigate(page), visible("#token"),
		sendKeys("#token", browserAdminToken), submit("#signin"), visible("#chart")); err != nil {
		t.Fatal(err)
	}
	num := func(expr string) float64 {
		t.Helper()
		n, err := chromedp.Run(ctx, chromedp.Evaluate[float64](expr, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return n
	}
	if n := num(`document.querySelectorAll("#chart g.series circle").length`); n != 28 {
		t.Fatalf("points: %v, want 14 days × 2 variations", n)
	}
	// Three marks: creation and start share one, then each traffic change.
	if n := num(`document.querySelectorAll("#chart g.mark").length`); n != 3 {
		t.Fatalf("marks: %v", n)
	}
	// The chart is drawn at a readable size and the page does not scroll
	// sideways.
	if w := num(`document.getElementById("chart").getBoundingClientRect().width`); w < 600 {
		t.Fatalf("chart width %v", w)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#timeline"), chromedp.NodeVisible))
	if err != nil {
		t.Fatal(err)
	}
	contains(t, "timeline", text, "Traffic 10 % → 30 %")
	contains(t, "timeline", text, "Traffic 30 % → 60 %")
	contains(t, "timeline", text, "by admin:maria")
	if err := chromedp.Do(ctx, shot("experiment")); err != nil {
		t.Fatal(err)
	}
	// The download, fetched by the page with its session: one line per
	// row, and the header.
	lines := num(`fetch(document.getElementById("download-assignments-csv").href).then(r => r.text()).then(t => t.trim().split("\n").length)`)
	if int(lines) != len(events)+1 {
		t.Fatalf("downloaded %v lines, want %d", lines, len(events)+1)
	}
	if err := chromedp.Do(ctx, phone(), chromedp.Reload(), visible("#chart")); err != nil {
		t.Fatal(err)
	}
	if n := num(`document.documentElement.scrollWidth - window.innerWidth`); n > 0 {
		t.Fatalf("the phone page scrolls sideways by %v px", n)
	}
	// On a phone the chart keeps a readable size and scrolls in its box.
	if w := num(`document.getElementById("chart").getBoundingClientRect().width`); w < 500 {
		t.Fatalf("phone chart width %v", w)
	}
	if err := chromedp.Do(ctx, shot("experiment-phone")); err != nil {
		t.Fatal(err)
	}
}
