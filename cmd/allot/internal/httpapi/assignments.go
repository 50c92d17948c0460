package httpapi

import (
	"context"
	"net/http"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/export"
	"github.com/allot-dev/allot/cmd/allot/internal/srm"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
)

// exportAssignments streams the assignment table as CSV, JSON lines or
// Parquet: GET /api/v1/assignments?environment=&flag=&experiment=&from=&to=&format=csv|jsonl|parquet
// or, with table=first-exposures, the first-exposure table (one row per
// subject and allocation; filtered by environment, flag and allocation).
// The exporter (internal/export) streams it, as it does the web UI's
// downloads.
func (s *Server) exportAssignments(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	req := export.Request{Filter: store.AssignmentFilter{Environment: q.Get("environment"), FeatureFlag: q.Get("flag"), Experiment: q.Get("experiment")}}
	if err := export.TimeRange(q, &req.Filter); err != nil {
		return err
	}
	if err := export.ParseTable(q, &req); err != nil {
		return err
	}
	if req.FirstExposures {
		for _, p := range []string{"experiment", "from", "to"} {
			if q.Has(p) {
				return core.Invalid(p, "does not filter the first-exposure table (use environment, flag and allocation)")
			}
		}
		req.Filter.Allocation = q.Get("allocation")
	} else if q.Has("allocation") {
		return core.Invalid("allocation", "filters the first-exposure table only (table=first-exposures); use experiment")
	}
	return s.exports.Serve(w, r, req)
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
	if err := export.TimeRange(r.URL.Query(), &f); err != nil {
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
