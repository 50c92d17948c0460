package web_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

// svgDoc is what the tests read of the experiment page's chart.
type svgDoc struct {
	Title  string `xml:"title"`
	Groups []struct {
		Class     string `xml:"class,attr"`
		Variation string `xml:"data-variation,attr"`
		Polyline  struct {
			Points string `xml:"points,attr"`
		} `xml:"polyline"`
		Circles []struct {
			Day   string `xml:"data-day,attr"`
			Value int64  `xml:"data-value,attr"`
		} `xml:"circle"`
		Marks []struct {
			N     int    `xml:"data-n,attr"`
			Last  int    `xml:"data-last,attr"`
			Title string `xml:"title"`
			Line  struct {
				X string `xml:"x1,attr"`
			} `xml:"line"`
		} `xml:"g"`
	} `xml:"g"`
}

func chartOf(t *testing.T, body string) svgDoc {
	t.Helper()
	i := strings.Index(body, `<svg id="chart"`)
	j := strings.Index(body[max(i, 0):], "</svg>")
	if i < 0 || j < 0 {
		t.Fatalf("no chart on the page:\n%s", body)
	}
	var doc svgDoc
	if err := xml.Unmarshal([]byte(body[i:i+j+len("</svg>")]), &doc); err != nil {
		t.Fatalf("the chart is not well-formed XML: %v\n%s", err, body[i:i+j+6])
	}
	return doc
}

// seedExperiment creates experiment checkout through the UI, starts it,
// raises its traffic (two audited changes), and stores assignments over
// the three days up to now.
func seedExperiment(t *testing.T, e *env) (now time.Time, rows []table.Row) {
	t.Helper()
	if r := e.post("/flags/new?env=production", experimentForm("checkout")); r.status != http.StatusSeeOther {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	version := func() string {
		s, _ := e.core.FlagSettings(context.Background(), "production", "checkout")
		return itoa(s.Version)
	}
	if r := e.post("/flags/checkout/allocations/checkout/status", url.Values{"env": {"production"}, "version": {version()}, "status": {"running"}}); r.status != http.StatusSeeOther {
		t.Fatalf("start: %d %s", r.status, r.body)
	}
	if r := e.post("/flags/checkout/allocations/checkout/traffic", url.Values{"env": {"production"}, "version": {version()}, "traffic": {"40"}}); r.status != http.StatusSeeOther {
		t.Fatalf("traffic: %d %s", r.status, r.body)
	}
	now = time.Now().UTC()
	n := 0
	for d := 2; d >= 0; d-- {
		at := now.AddDate(0, 0, -d)
		for i := range 30 * (3 - d) {
			v := "control"
			if i%3 == 0 {
				v = "treatment"
			}
			n++
			rows = append(rows, table.Row{EventID: fmt.Sprintf("ev-%d", n), Environment: "production", Experiment: "checkout-checkout",
				FeatureFlag: "checkout", Allocation: "checkout", Variation: v, Subject: fmt.Sprintf("u-%d", i), Timestamp: at, ReceivedAt: at})
		}
	}
	// Another allocation's rows stay out of everything below.
	rows2 := []table.Row{{EventID: "other", Environment: "production", FeatureFlag: "checkout", Allocation: "ramp", Variation: "treatment",
		Subject: "x", Timestamp: now, ReceivedAt: now}}
	if _, err := e.db.InsertAssignments(context.Background(), append(rows, rows2...)); err != nil {
		t.Fatal(err)
	}
	return now, rows
}

// The chart draws one point per variation and day, each equal to the
// per-day aggregate; the audited start and traffic change are marked on
// it and listed in the timeline; the data is also a table.
func TestExperimentChart(t *testing.T) {
	e := newEnv(t)
	e.signIn()
	now, _ := seedExperiment(t, e)

	r := e.get("/flags/checkout?env=production")
	want(t, r, 200, `href="/flags/checkout/experiments/checkout?env=production"`)
	r = e.get("/flags/checkout/experiments/checkout?env=production")
	want(t, r, 200, `role="img"`, `aria-labelledby="chart-title chart-desc"`, "The chart's data as a table", "Day (UTC)", "Assignments per day",
		"Traffic 10 % → 40 %", "Started; Flag turned on", "(token tester")

	aggs, err := e.db.Aggregates(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantPoints := map[string]int64{} // variation/day → assignments
	days := map[string]bool{}
	for _, d := range aggs.Days {
		if d.Allocation == "checkout" {
			wantPoints[d.Variation+"/"+d.Day] = d.Assignments
			days[d.Day] = true
		}
	}
	if len(days) != 3 || len(wantPoints) != 6 {
		t.Fatalf("seeded aggregates: %v", wantPoints)
	}
	doc := chartOf(t, r.body)
	got := map[string]int64{}
	var marks []string
	series := 0
	for _, g := range doc.Groups {
		switch g.Class {
		case "series":
			series++
			if len(g.Circles) != 3 || strings.Count(g.Polyline.Points, ",") != 3 {
				t.Errorf("%s: %d points, line %q; want one per day", g.Variation, len(g.Circles), g.Polyline.Points)
			}
			for _, c := range g.Circles {
				got[g.Variation+"/"+c.Day] = c.Value
			}
		case "marks":
			for _, m := range g.Marks {
				marks = append(marks, fmt.Sprintf("%d-%d %s", m.N, m.Last, m.Title))
				if x, err := strconv.ParseFloat(m.Line.X, 64); err != nil || x < 72 || x > 780 {
					t.Errorf("mark %d at x=%q, outside the plot", m.N, m.Line.X)
				}
			}
		}
	}
	if series != 2 || fmt.Sprint(got) != fmt.Sprint(wantPoints) {
		t.Fatalf("chart points %v\nwant (aggregates) %v", got, wantPoints)
	}
	// The flag's creation, its start and the traffic change all happened
	// today, within a badge's width: one mark for the three.
	if len(marks) != 1 || !strings.HasPrefix(marks[0], "1-3 ") || !strings.Contains(marks[0], "3. ") ||
		!strings.Contains(marks[0], "Traffic 10 % → 40 %") || !strings.Contains(marks[0], "2. ") || !strings.Contains(marks[0], "Started") {
		t.Fatalf("marks %q", marks)
	}
	if !strings.Contains(doc.Title, now.AddDate(0, 0, -2).Format(time.DateOnly)) {
		t.Errorf("chart title %q", doc.Title)
	}

	// New subjects per day: the same layout from the first-exposure counts.
	r = e.get("/flags/checkout/experiments/checkout?env=production&metric=subjects")
	want(t, r, 200, "New subjects per day")
	var first int64
	for _, g := range chartOf(t, r.body).Groups {
		for _, c := range g.Circles {
			first += c.Value
		}
	}
	if first != 90 { // subjects u-0..u-89 across both variations, each new once
		t.Errorf("new subjects on the chart: %d, want 90", first)
	}

	// Unknown allocation, unknown flag: 404.
	want(t, e.get("/flags/checkout/experiments/nope?env=production"), 404)
	want(t, e.get("/flags/nope/experiments/checkout?env=production"), 404)
}

// The downloads stream the allocation's rows through the API's exporter:
// as many rows as the table holds, Parquet readable, named files.
func TestExperimentDownloads(t *testing.T) {
	e := newEnv(t)
	e.signIn()
	_, rows := seedExperiment(t, e)
	page := e.get("/flags/checkout/experiments/checkout?env=production")
	for _, id := range []string{"download-assignments-csv", "download-assignments-parquet", "download-first-exposures-csv", "download-first-exposures-parquet"} {
		want(t, page, 200, `id="`+id+`"`)
	}
	subjects := map[string]bool{}
	for _, r := range rows {
		subjects[r.Subject] = true
	}
	base := "/flags/checkout/experiments/checkout/export?env=production"
	filename := func(r resp) string {
		_, params, err := mime.ParseMediaType(r.header.Get("Content-Disposition"))
		if err != nil {
			t.Fatalf("Content-Disposition %q: %v", r.header.Get("Content-Disposition"), err)
		}
		return params["filename"]
	}

	r := e.get(base + "&table=assignments&format=csv")
	if r.status != 200 || strings.Count(r.body, "\n") != len(rows)+1 || filename(r) != "assignments-checkout-checkout.csv" ||
		!strings.HasPrefix(r.body, strings.Join(table.Columns, ",")+"\n") || strings.Contains(r.body, "ramp") {
		t.Fatalf("csv: %d %q %d lines, want %d", r.status, filename(r), strings.Count(r.body, "\n"), len(rows)+1)
	}
	r = e.get(base + "&table=assignments&format=parquet")
	got, err := table.ReadParquet(strings.NewReader(r.body), int64(len(r.body)))
	if r.status != 200 || err != nil || len(got) != len(rows) || filename(r) != "assignments-checkout-checkout.parquet" {
		t.Fatalf("parquet: %d %v %d rows, want %d", r.status, err, len(got), len(rows))
	}
	for _, g := range got {
		if g.Allocation != "checkout" || g.FeatureFlag != "checkout" {
			t.Fatalf("parquet row of another allocation: %+v", g)
		}
	}
	r = e.get(base + "&table=first-exposures&format=csv")
	if r.status != 200 || strings.Count(r.body, "\n") != len(subjects)+1 || filename(r) != "first-exposures-checkout-checkout.csv" {
		t.Fatalf("first exposures csv: %d %q %d lines, want %d", r.status, filename(r), strings.Count(r.body, "\n"), len(subjects)+1)
	}
	r = e.get(base + "&table=first-exposures&format=parquet")
	fe, err := table.ReadFirstExposuresParquet(strings.NewReader(r.body), int64(len(r.body)))
	if r.status != 200 || err != nil || len(fe) != len(subjects) {
		t.Fatalf("first exposures parquet: %d %v %d rows, want %d", r.status, err, len(fe), len(subjects))
	}
	// A bad format is a 400 page, not a file.
	r = e.get(base + "&format=xlsx")
	if r.status != 400 || r.header.Get("Content-Disposition") != "" || !strings.Contains(r.body, "format") {
		t.Fatalf("bad format: %d %q", r.status, r.header.Get("Content-Disposition"))
	}
}
