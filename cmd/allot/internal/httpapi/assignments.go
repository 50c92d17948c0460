package httpapi

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/srm"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

// exportFilter reads the filter of GET /api/v1/assignments.
func exportFilter(r *http.Request) (store.AssignmentFilter, error) {
	q := r.URL.Query()
	f := store.AssignmentFilter{Environment: q.Get("environment"), FeatureFlag: q.Get("flag"), Experiment: q.Get("experiment")}
	return f, timeRange(q, &f)
}

// timeRange reads the from and to parameters (RFC 3339 times or dates) into f.
func timeRange(q url.Values, f *store.AssignmentFilter) error {
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		v := q.Get(p.name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			if t, err = time.Parse(time.DateOnly, v); err != nil {
				return core.Invalid(p.name, "%q is not an RFC 3339 time or a date", v)
			}
		}
		*p.t = t
	}
	return nil
}

// exportStall is how long an export may wait on a client that reads
// nothing. The deadline moves on with every page sent, so a large table
// takes as long as it needs while a stalled client is cut off.
const exportStall = time.Minute

// exportAssignments streams the assignment table as CSV, JSON lines or
// Parquet: GET /api/v1/assignments?environment=&flag=&experiment=&from=&to=&format=csv|jsonl|parquet
// or, with table=first-exposures, the first-exposure table (one row per
// subject and allocation; filtered by environment, flag and allocation).
// It reads the store a page at a time (no read snapshot is held while the
// client reads) and writes each page through the table's writers.
func (s *Server) exportAssignments(w http.ResponseWriter, r *http.Request) error {
	f, err := exportFilter(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	firstExposures := false
	switch t := q.Get("table"); t {
	case "", "assignments":
		if q.Has("allocation") {
			return core.Invalid("allocation", "filters the first-exposure table only (table=first-exposures); use experiment")
		}
	case "first-exposures":
		firstExposures = true
		for _, p := range []string{"experiment", "from", "to"} {
			if q.Has(p) {
				return core.Invalid(p, "does not filter the first-exposure table (use environment, flag and allocation)")
			}
		}
		f.Allocation = q.Get("allocation")
	default:
		return core.Invalid("table", "%q is not assignments or first-exposures", t)
	}
	name := r.URL.Query().Get("format")
	if name == "" {
		name = "csv"
	}
	format, err := table.ParseFormat(name)
	if err != nil {
		return core.Invalid("format", "%s", err)
	}
	filename := "assignments"
	if firstExposures {
		filename = "first-exposures"
	}
	if f.FeatureFlag != "" {
		filename += "-" + f.FeatureFlag
	}
	// A streaming export holds a database connection while it reads a
	// page: a few at a time, so that ingestion and the API keep theirs.
	select {
	case s.exports <- struct{}{}:
		defer func() { <-s.exports }()
	default:
		w.Header().Set("Retry-After", "5")
		return core.Errorf(core.EUNAVAILABLE, "%d exports are running; retry later", cap(s.exports))
	}
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Content-Type", format.ContentType())
	hdr.Set("Content-Disposition", contentDisposition(filename+format.Ext()))

	ew := &exportWriter{w: w, rc: http.NewResponseController(w)}
	bw := bufio.NewWriterSize(ew, 64<<10)
	ctx := r.Context()
	var closeSink func(context.Context) error
	if firstExposures {
		sink := table.NewFirstExposureWriter(bw, format)
		closeSink = sink.Close
		err = s.db.FirstExposurePages(ctx, f, func(page []table.FirstExposure) error {
			ew.rc.SetWriteDeadline(time.Now().Add(exportStall))
			return sink.Write(ctx, page)
		})
	} else {
		sink := table.NewWriter(bw, format)
		closeSink = sink.Close
		err = s.db.AssignmentPages(ctx, f, func(page []table.Row) error {
			ew.rc.SetWriteDeadline(time.Now().Add(exportStall))
			return sink.Write(ctx, page)
		})
	}
	if err == nil {
		ew.rc.SetWriteDeadline(time.Now().Add(exportStall))
		if err = closeSink(ctx); err == nil {
			err = bw.Flush()
		}
	}
	switch {
	case err == nil:
		return nil
	case !ew.sent:
		// Nothing went out: answer with the error, not a partial table.
		hdr.Del("Content-Disposition")
		return err
	}
	// The table is partly sent: abort the connection so the client sees a
	// broken transfer rather than a table that merely looks short.
	s.log.Error("export failed midway", "err", err)
	panic(http.ErrAbortHandler)
}

// contentDisposition names an attachment as RFC 6266 says: filename* holds
// the name, percent-encoded UTF-8; filename, for old clients, holds it with
// every character outside a safe set replaced, so that nothing the caller
// put in the name (a quote, a semicolon) can end the parameter.
func contentDisposition(name string) string {
	safe := []byte(name)
	for i, c := range safe {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			safe[i] = '_'
		}
	}
	var enc strings.Builder
	for i := 0; i < len(name); i++ {
		// attr-char of RFC 8187; everything else is percent-encoded.
		c := name[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$&+-.^_`|~", c) >= 0 {
			enc.WriteByte(c)
		} else {
			fmt.Fprintf(&enc, "%%%02X", c)
		}
	}
	return `attachment; filename="` + string(safe) + `"; filename*=UTF-8''` + enc.String()
}

// exportWriter remembers whether anything of an export was sent.
type exportWriter struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	sent bool
}

func (e *exportWriter) Write(p []byte) (int, error) {
	e.sent = true
	return e.w.Write(p)
}

// SummaryResponse is the answer of GET .../allocations/{alloc}/summary: the
// allocation's assignment counts and, for an experiment, the sample ratio
// mismatch check against its configured weights.
type SummaryResponse struct {
	Environment string `json:"environment"`
	Flag        string `json:"flag"`
	Allocation  string `json:"allocation"`
	Experiment  string `json:"experiment"`
	store.AssignmentSummary
	// Weights are the configured weights (percent) of an experiment.
	Weights map[string]float64 `json:"weights,omitempty"`
	// SRM is the chi-square test of the subjects seen only in one variation
	// against Weights; absent when it cannot be computed (SRMNote says why).
	SRM     *srm.Result `json:"srm,omitempty"`
	SRMNote string      `json:"srmNote,omitempty"`
	// Holdout is the summary of the experiment's holdout, when it is in
	// one (issue 15).
	Holdout *HoldoutSummary `json:"holdout,omitempty"`
}

// HoldoutSummary is the assignment summary of the allocation a holdout
// places before an experiment (<allocation>-<holdout>), whose
// holdoutHalves split it by half, and the sample ratio check of the halves
// against the 50/50 the holdout's split salt makes.
type HoldoutSummary struct {
	Key        string `json:"key"`
	Allocation string `json:"allocation"`
	store.AssignmentSummary
	SRM     *srm.Result `json:"srm,omitempty"`
	SRMNote string      `json:"srmNote,omitempty"`
}

// SummarizeHoldout reads the holdout part of experiment a's summary from
// db (f: the experiment's filter), or nil when a is in no holdout. The web
// UI shows the same.
func SummarizeHoldout(ctx context.Context, db *store.DB, f store.AssignmentFilter, a *core.Allocation) (*HoldoutSummary, error) {
	if a == nil || a.Holdout == nil {
		return nil, nil
	}
	h := &HoldoutSummary{Key: a.Holdout.Key, Allocation: a.Key + "-" + a.Holdout.Key}
	f.Allocation = h.Allocation
	var err error
	if h.AssignmentSummary, err = db.SummarizeAssignments(ctx, f); err != nil {
		return nil, err
	}
	var quo, shipped int64
	for _, x := range h.HoldoutHalves {
		switch x.HoldoutVariation {
		case core.HoldoutStatusQuo:
			quo = x.Subjects
		case core.HoldoutAllShipped:
			shipped = x.Subjects
		}
	}
	res, err := srm.TestHalves(quo, shipped)
	if err != nil {
		h.SRMNote = "no subjects in the holdout yet"
	} else {
		h.SRM = &res
	}
	return h, nil
}

func (s *Server) assignmentSummary(w http.ResponseWriter, r *http.Request) error {
	env, flag, alloc := r.PathValue("env"), r.PathValue("flag"), r.PathValue("alloc")
	f := store.AssignmentFilter{Environment: env, FeatureFlag: flag, Allocation: alloc}
	if err := timeRange(r.URL.Query(), &f); err != nil {
		return err
	}
	sum, err := s.db.SummarizeAssignments(r.Context(), f)
	if err != nil {
		return err
	}
	resp := SummaryResponse{Environment: env, Flag: flag, Allocation: alloc, Experiment: flag + "-" + alloc, AssignmentSummary: sum}
	settings, err := s.core.FlagSettings(r.Context(), env, flag)
	if err != nil && core.ErrorCode(err) != core.ENOTFOUND {
		return err
	}
	var weights []core.Weight
	known := false
	for i, a := range settings.Allocations {
		if a.Key == alloc {
			known = true
			if a.Type == core.Experiment {
				weights = a.Weights
				if resp.Holdout, err = SummarizeHoldout(r.Context(), s.db, f, &settings.Allocations[i]); err != nil {
					return err
				}
			}
		}
	}
	// An allocation that is not configured but has assignments (deleted
	// since) still has a summary; one with neither does not exist.
	if !known && sum.Assignments == 0 && f.From.IsZero() && f.To.IsZero() {
		return core.Errorf(core.ENOTFOUND, "allocation %q of flag %q in environment %q is not configured and has no assignments", alloc, flag, env)
	}
	switch {
	case len(weights) == 0:
		resp.SRMNote = "not an experiment of this flag: no configured weights to test against"
	default:
		resp.Weights = map[string]float64{}
		ws := make([]srm.Weight, len(weights))
		for i, wt := range weights {
			resp.Weights[wt.Variation] = float64(wt.Weight) / 100
			ws[i] = srm.Weight{Variation: wt.Variation, Weight: float64(wt.Weight)}
		}
		res, err := srm.TestVariations(ws, sum.Variations)
		if err != nil {
			resp.SRMNote = err.Error()
		} else {
			resp.SRM = &res
		}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}
