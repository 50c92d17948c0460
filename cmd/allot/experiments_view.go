package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/allot-dev/allot/cmd/allot/internal/apiclient"
	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/httpapi"
	"github.com/allot-dev/allot/cmd/allot/internal/srm"
)

// experimentRow is one experiment in `allot experiments list --json`.
type experimentRow struct {
	Environment string        `json:"environment"`
	Flag        string        `json:"flag"`
	Experiment  string        `json:"experiment"`
	Status      string        `json:"status"`
	Traffic     core.Percent  `json:"traffic"`
	Weights     []core.Weight `json:"weights"`
	Layer       string        `json:"layer,omitempty"`
	Holdout     string        `json:"holdout,omitempty"`
}

// listExperiments prints the experiments of an environment (of one flag
// when flagKey is set), in flag order then allocation order. It reads each
// flag's settings: one request per flag, bounded by the flag limit.
func listExperiments(ctx context.Context, e *env, c *apiclient.Client, envName, flagKey string, asJSON bool) error {
	var keys []string
	if flagKey != "" {
		keys = []string{flagKey}
	} else {
		flags, err := c.Flags(ctx)
		if err != nil {
			return err
		}
		for _, f := range flags {
			keys = append(keys, f.Key)
		}
		slices.Sort(keys)
	}
	rows := []experimentRow{}
	for _, k := range keys {
		s, err := c.Settings(ctx, envName, k)
		if err != nil {
			// A flag with no settings in this environment has no
			// experiment there; only a named flag must exist.
			var ae *apiclient.Error
			if flagKey == "" && errors.As(err, &ae) && ae.Code == core.ENOTFOUND {
				continue
			}
			return fmt.Errorf("flag %s: %w", k, err)
		}
		for _, a := range s.Allocations {
			if a.Type != core.Experiment {
				continue
			}
			r := experimentRow{Environment: envName, Flag: k, Experiment: a.Key, Status: a.Status, Traffic: a.Traffic, Weights: a.Weights}
			if a.Layer != nil {
				r.Layer = a.Layer.Name
			}
			if a.Holdout != nil {
				r.Holdout = a.Holdout.Key
			}
			rows = append(rows, r)
		}
	}
	if asJSON {
		return printJSON(e.stdout, rows)
	}
	if len(rows) == 0 {
		fmt.Fprintf(e.stdout, "no experiments in %s\n", envName)
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FLAG\tEXPERIMENT\tSTATUS\tTRAFFIC\tWEIGHTS\tLAYER")
	for _, r := range rows {
		ws := make([]string, len(r.Weights))
		for i, w := range r.Weights {
			ws[i] = w.Variation + "=" + percentText(w.Weight)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Flag, r.Experiment, r.Status, percentText(r.Traffic), strings.Join(ws, " "), r.Layer)
	}
	return tw.Flush()
}

// percentText prints a percentage without trailing zeros: 12.5%.
func percentText(p core.Percent) string {
	b, _ := p.MarshalJSON()
	return string(b) + "%"
}

// summarizeExperiment prints an experiment's assignment counts and the
// sample ratio mismatch verdict the server computed.
func summarizeExperiment(ctx context.Context, e *env, c *apiclient.Client, envName, flagKey, exp string, asJSON bool) error {
	s, err := c.AssignmentSummary(ctx, envName, flagKey, exp)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(e.stdout, s)
	}
	fmt.Fprintf(e.stdout, "experiment %s (flag %s, environment %s)\n", s.Experiment, s.Flag, s.Environment)
	fmt.Fprintf(e.stdout, "assignments %d, subjects %d, in more than one variation %d (excluded)\n\n", s.Assignments, s.Subjects, s.MultipleVariations)
	names := make([]string, 0, len(s.Variations)+len(s.Weights))
	for v := range s.Variations {
		names = append(names, v)
	}
	for v := range s.Weights {
		if _, ok := s.Variations[v]; !ok {
			names = append(names, v)
		}
	}
	slices.Sort(names)
	var total int64
	for _, n := range s.Variations {
		total += n
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "VARIATION\tSUBJECTS\tSHARE\tEXPECTED\t")
	for _, v := range names {
		share := "-"
		if total > 0 {
			share = fmt.Sprintf("%.1f%%", 100*float64(s.Variations[v])/float64(total))
		}
		expected := "-"
		if w, ok := s.Weights[v]; ok {
			expected = fmt.Sprintf("%.1f%%", w) // Weights are in percent
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t\n", v, s.Variations[v], share, expected)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout)
	switch {
	case s.SRM == nil:
		fmt.Fprintf(e.stdout, "sample ratio mismatch: not tested (%s)\n", s.SRMNote)
	case s.SRM.Mismatch:
		fmt.Fprintf(e.stdout, "sample ratio MISMATCH: p = %.3g < %g (chi-square %.2f, %d df): the split differs from the weights; check assignment logging and targeting before reading results\n",
			s.SRM.PValue, srm.Threshold, s.SRM.ChiSquare, s.SRM.DegreesOfFreedom)
	default:
		fmt.Fprintf(e.stdout, "sample ratio mismatch: none (p = %.3g, chi-square %.2f, %d df)\n", s.SRM.PValue, s.SRM.ChiSquare, s.SRM.DegreesOfFreedom)
	}
	if s.Holdout != nil {
		return printHoldoutSummary(e, s.Holdout)
	}
	return nil
}

// printHoldoutSummary prints the holdout part of an experiment's summary:
// its subjects per half and the check that the halves split 50/50.
func printHoldoutSummary(e *env, h *httpapi.HoldoutSummary) error {
	fmt.Fprintf(e.stdout, "\nholdout %s (allocation %s): assignments %d, subjects %d\n\n", h.Key, h.Allocation, h.Assignments, h.Subjects)
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HALF\tSUBJECTS\tSHARE\tEXPECTED\tVARIATIONS")
	for _, x := range h.HoldoutHalves {
		share := "-"
		if h.Subjects > 0 {
			share = fmt.Sprintf("%.1f%%", 100*float64(x.Subjects)/float64(h.Subjects))
		}
		vs := make([]string, 0, len(x.Variations))
		for v, n := range x.Variations {
			vs = append(vs, fmt.Sprintf("%s %d", v, n))
		}
		slices.Sort(vs)
		fmt.Fprintf(tw, "%s\t%d\t%s\t50.0%%\t%s\n", x.HoldoutVariation, x.Subjects, share, strings.Join(vs, ", "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	switch {
	case h.SRM == nil:
		fmt.Fprintf(e.stdout, "holdout halves: not tested (%s)\n", h.SRMNote)
	case h.SRM.Mismatch:
		fmt.Fprintf(e.stdout, "holdout halves: sample ratio MISMATCH: p = %.3g < %g (chi-square %.2f): the halves are not 50/50\n", h.SRM.PValue, srm.Threshold, h.SRM.ChiSquare)
	default:
		fmt.Fprintf(e.stdout, "holdout halves: no sample ratio mismatch (p = %.3g, chi-square %.2f)\n", h.SRM.PValue, h.SRM.ChiSquare)
	}
	return nil
}
