package web

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/export"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
)

// The experiment page (issue 17 item 3): an allocation's assignments per
// variation and day as a server-rendered SVG chart with its data as a
// table, the audited changes marked on the same time axis, and the
// assignment and first-exposure tables as downloads. It reads the per-day
// aggregates (never the raw table) and a bounded slice of the audit log,
// so it costs the same at a thousand rows as at a billion.

// MaxChartDays is how many days the chart and its table show: the last
// ones with assignments.
const MaxChartDays = 366

// Okabe and Ito's palette, which people with the common colour vision
// deficiencies can tell apart, without its light colours (its orange
// darkened to ochre, sky blue and yellow left out) so that every line
// stands out on white; the dash patterns tell the lines apart without
// colour.
var (
	seriesColors = []string{"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#7A5800", "#3C3C3C"}
	seriesDashes = []string{"", "8 4", "2 3", "10 3 2 3"}
)

type experimentData struct {
	Flag       core.Flag
	Alloc      core.Allocation
	Configured bool // false: deleted since, known from its assignments only
	Status     string
	Sentence   string
	Summary    *assignmentSummary
	Metric     string // "assignments" or "subjects"
	Chart      *chart
	Events     []timelineEvent
	Complete   bool
	Downloads  []download
}

type download struct {
	Label, Href, ID string
}

type timelineEvent struct {
	N       int // its number on the chart, 0 if off the chart
	At      string
	Actor   string
	Text    string
	OnChart bool
}

// chart is an SVG line chart in a viewBox of W×H, the plot inside the
// margins.
type chart struct {
	W, H                     int
	Left, Right, Top, Bottom float64
	Title, Desc, YLabel      string
	XTicks, YTicks           []tick
	Series                   []series
	Marks                    []mark
	// The data as a table: one row per day.
	Variations []string
	Rows       []chartRow
}

type tick struct {
	X, Y  float64
	Label string
}

type series struct {
	Variation, Color, Dash string
	Line                   string // polyline points
	Points                 []point
	Total                  int64
}

type point struct {
	X, Y  float64
	Day   string
	Value int64
}

type mark struct {
	X, BadgeX, TextX, Width float64
	N, Last                 int    // the first and last change it marks
	Text                    string // "3", or "2–40" for several
	Label                   string // one line per change
}

type chartRow struct {
	Day   string
	Cells []chartCell
}

type chartCell struct {
	Assignments, Subjects int64
}

func (u *UI) experimentPage(w http.ResponseWriter, r *http.Request, p *page) error {
	ctx := r.Context()
	key, alloc := r.PathValue("flag"), r.PathValue("alloc")
	f, s, err := u.flagAndSettings(ctx, p.Env, key)
	if err != nil {
		return err
	}
	a, i := findAllocation(s, alloc)
	d := &experimentData{Flag: f, Alloc: a, Configured: i >= 0, Metric: "assignments"}
	if !d.Configured {
		a = core.Allocation{Key: alloc}
		d.Alloc = a
	}
	if r.URL.Query().Get("metric") == "subjects" {
		d.Metric = "subjects"
	}
	if d.Summary, err = u.summarize(ctx, p.Env, key, &a); err != nil {
		return err
	}
	if !d.Configured && d.Summary.Assignments == 0 {
		return core.Errorf(core.ENOTFOUND, "flag %s has no allocation %s in %s, and no assignments through one", key, alloc, p.Env)
	}
	if d.Configured {
		d.Status, d.Sentence = strings.ToUpper(a.Status), describeAllocation(&a)
	}
	h, err := u.core.AllocationHistory(ctx, p.Env, key, alloc)
	if err != nil {
		return err
	}
	d.Complete = h.Complete
	d.Chart, d.Events = buildChart(d.Summary.Daily, h.Events, chartVariations(&a, d.Summary.Daily), d.Metric)
	base := "/flags/" + url.PathEscape(key) + "/experiments/" + url.PathEscape(alloc) + "/export?env=" + url.QueryEscape(p.Env)
	for _, dl := range []struct{ label, table, format string }{
		{"Assignments (CSV)", "assignments", "csv"},
		{"Assignments (Parquet)", "assignments", "parquet"},
		{"First exposures (CSV)", "first-exposures", "csv"},
		{"First exposures (Parquet)", "first-exposures", "parquet"},
	} {
		d.Downloads = append(d.Downloads, download{Label: dl.label, ID: "download-" + dl.table + "-" + dl.format,
			Href: base + "&table=" + dl.table + "&format=" + dl.format})
	}
	p.Title, p.Nav, p.Data = key+" · "+alloc, "flags", d
	u.render(w, r, "experiment", p)
	return nil
}

// experimentExport streams the allocation's rows of the assignment table,
// or of the first-exposure table, through the exporter the API uses.
func (u *UI) experimentExport(w http.ResponseWriter, r *http.Request, p *page) error {
	key, alloc := r.PathValue("flag"), r.PathValue("alloc")
	if _, err := u.core.Flag(r.Context(), key); err != nil {
		return err
	}
	q := export.Request{Filter: store.AssignmentFilter{Environment: p.Env, FeatureFlag: key, Allocation: alloc}}
	if err := export.ParseTable(r.URL.Query(), &q); err != nil {
		return err
	}
	return u.exporter.Serve(w, r, q)
}

// chartVariations orders the lines: the allocation's variations as
// configured, then any others the table holds (a variation removed since).
func chartVariations(a *core.Allocation, days []store.DailyCount) []string {
	var out []string
	for _, w := range a.Weights {
		out = append(out, w.Variation)
	}
	if a.Variation != "" && !slices.Contains(out, a.Variation) {
		out = append(out, a.Variation)
	}
	var extra []string
	for _, c := range days {
		if !slices.Contains(out, c.Variation) && !slices.Contains(extra, c.Variation) {
			extra = append(extra, c.Variation)
		}
	}
	slices.Sort(extra)
	return append(out, extra...)
}

// buildChart lays out the per-day counts (days sorted, several variations
// a day) and the audited events on one time axis: day i of n is at x =
// Left + i*step, an event at its fraction of its day.
func buildChart(daily []store.DailyCount, events []core.AllocationEvent, variations []string, metric string) (*chart, []timelineEvent) {
	var tl []timelineEvent
	for _, e := range events {
		tl = append(tl, timelineEvent{At: when(e.At), Actor: e.Actor, Text: e.Describe()})
	}
	if len(daily) == 0 {
		return nil, tl
	}
	first, _ := time.Parse(time.DateOnly, daily[0].Day)
	last, _ := time.Parse(time.DateOnly, daily[len(daily)-1].Day)
	// The axis runs on to the last change, so that a change made since
	// the last assignment is on it too.
	if n := len(events); n > 0 && events[n-1].At.After(last) {
		last = events[n-1].At.UTC().Truncate(24 * time.Hour)
	}
	if n := int(last.Sub(first).Hours()/24) + 1; n > MaxChartDays {
		first = last.AddDate(0, 0, -(MaxChartDays - 1))
	}
	ndays := int(last.Sub(first).Hours()/24) + 1
	col := map[string]int{}
	for i, v := range variations {
		col[v] = i
	}
	rows := make([]chartRow, ndays)
	for i := range rows {
		rows[i] = chartRow{Day: first.AddDate(0, 0, i).Format(time.DateOnly), Cells: make([]chartCell, len(variations))}
	}
	for _, c := range daily {
		t, err := time.Parse(time.DateOnly, c.Day)
		if err != nil || t.Before(first) {
			continue
		}
		i := int(t.Sub(first).Hours() / 24)
		rows[i].Cells[col[c.Variation]].Assignments += c.Assignments
		rows[i].Cells[col[c.Variation]].Subjects += c.Subjects
	}
	value := func(c chartCell) int64 {
		if metric == "subjects" {
			return c.Subjects
		}
		return c.Assignments
	}
	var top int64
	for _, r := range rows {
		for _, c := range r.Cells {
			top = max(top, value(c))
		}
	}
	ch := &chart{W: 800, H: 320, Left: 72, Right: 780, Top: 28, Bottom: 272, Variations: variations, Rows: rows}
	ch.YLabel = "Assignments per day"
	if metric == "subjects" {
		ch.YLabel = "New subjects per day"
	}
	ymax, ystep := niceScale(top)
	for v := int64(0); v <= ymax; v += ystep {
		ch.YTicks = append(ch.YTicks, tick{Y: ch.y(v, ymax), Label: thousands(v)})
	}
	// Each day is a band of equal width, its point in the middle, so that
	// an event lands within the band of its day.
	band := (ch.Right - ch.Left) / float64(ndays)
	x := func(days float64) float64 { return round1(ch.Left + days*band) }
	every := max(1, (ndays+5)/6)
	for i := 0; i < ndays; i += every {
		ch.XTicks = append(ch.XTicks, tick{X: x(float64(i) + .5), Label: rows[i].Day})
	}
	for vi, v := range variations {
		s := series{Variation: v, Color: seriesColors[vi%len(seriesColors)], Dash: seriesDashes[vi%len(seriesDashes)]}
		var line []string
		for i, r := range rows {
			val := value(r.Cells[vi])
			p := point{X: x(float64(i) + .5), Y: ch.y(val, ymax), Day: r.Day, Value: val}
			s.Points = append(s.Points, p)
			s.Total += val
			line = append(line, strconv.FormatFloat(p.X, 'f', -1, 64)+","+strconv.FormatFloat(p.Y, 'f', -1, 64))
		}
		s.Line = strings.Join(line, " ")
		ch.Series = append(ch.Series, s)
	}
	// Marks: an event's position within the chart's days; those before
	// or after are listed only.
	end := last.AddDate(0, 0, 1)
	n := 0
	for i, e := range events {
		if e.At.Before(first) || !e.At.Before(end) {
			continue
		}
		n++
		tl[i].N, tl[i].OnChart = n, true
		mx := x(e.At.Sub(first).Hours() / 24)
		line := fmt.Sprintf("%d. %s: %s", n, tl[i].At, tl[i].Text)
		// Changes closer together than a badge is wide share one mark,
		// "2–40", whose tooltip lists them all.
		if l := len(ch.Marks); l > 0 && mx-ch.Marks[l-1].X < 24 {
			m := &ch.Marks[l-1]
			m.Last, m.Text = n, fmt.Sprintf("%d–%d", m.N, n)
			m.Label += "\n" + line
			m.Width = 10 + 7*float64(len([]rune(m.Text)))
			continue
		}
		ch.Marks = append(ch.Marks, mark{X: mx, N: n, Last: n, Text: strconv.Itoa(n), Label: line, Width: 10 + 7*float64(len(strconv.Itoa(n)))})
	}
	for i := range ch.Marks {
		// Badges are centred on their line, but kept inside the viewBox.
		m := &ch.Marks[i]
		m.BadgeX = min(max(m.X-m.Width/2, 0), float64(ch.W)-m.Width)
		m.TextX = m.BadgeX + m.Width/2
	}
	ch.Title = fmt.Sprintf("%s of %s, %s to %s", ch.YLabel, strings.Join(variations, ", "), rows[0].Day, rows[ndays-1].Day)
	var totals []string
	for _, s := range ch.Series {
		totals = append(totals, fmt.Sprintf("%s %s", s.Variation, thousands(s.Total)))
	}
	ch.Desc = fmt.Sprintf("%d days; totals: %s; %d changes marked. The same data is in the table below.", ndays, strings.Join(totals, ", "), n)
	return ch, tl
}

func (c *chart) y(v, ymax int64) float64 {
	if ymax == 0 {
		return c.Bottom
	}
	return round1(c.Bottom - float64(v)/float64(ymax)*(c.Bottom-c.Top))
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }

// niceScale picks an axis maximum of at least top and a step dividing it
// into 4 or 5 round intervals (1, 2 or 5 times a power of ten).
func niceScale(top int64) (ymax, step int64) {
	if top <= 4 {
		return 4, 1
	}
	raw := float64(top) / 4
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if s := int64(m * pow); s > 0 && float64(s)*5 >= float64(top) && m*pow == float64(s) {
			step = s
			break
		}
	}
	if step == 0 {
		step = int64(10 * pow)
	}
	return (top + step - 1) / step * step, step
}

// thousands writes n with thin spaces between thousands.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	if n < 0 || len(s) <= 3 {
		return s
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString("\u202f")
		}
		b.WriteRune(c)
	}
	return b.String()
}

func init() {
	// Arithmetic on the chart's float coordinates, for the template.
	funcs["add1"] = func(a, b float64) float64 { return a + b }
	funcs["sub1"] = func(a, b float64) float64 { return a - b }
	funcs["mid"] = func(a, b float64) float64 { return (a + b) / 2 }
	funcs["maxHistory"] = func() int { return core.MaxHistoryEntries }
}
