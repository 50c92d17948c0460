package main

import (
	"context"
	"fmt"
	"os"

	"github.com/allot-dev/allot/cmd/allot/internal/apiclient"
	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

func init() {
	register("export", "export the assignment table (CSV, JSON lines or Parquet) from a server", runExport)
}

func runExport(ctx context.Context, e *env, args []string) error {
	a := newAdminFlags(e, "allot export", "allot export [--flag KEY] [--experiment FLAG-ALLOCATION] [--from TIME] [--to TIME] [--format csv|jsonl|parquet] [--out FILE]\n       allot export --table first-exposures [--flag KEY] [--allocation KEY] [--format ...] [--out FILE]")
	flagKey := a.fs.String("flag", "", "only this flag's assignments")
	experiment := a.fs.String("experiment", "", "only this experiment (flag-allocation, as in events)")
	var from, to timeFlag
	a.fs.Var(&from, "from", "only assignments at or after this `time` (RFC 3339 or YYYY-MM-DD)")
	a.fs.Var(&to, "to", "only assignments before this `time` (RFC 3339 or YYYY-MM-DD)")
	format := a.fs.String("format", "csv", "csv, jsonl or parquet (the columns of docs/assignment-tables.md)")
	out := a.fs.String("out", "-", "output file (- for stdout)")
	tableName := a.fs.String("table", "assignments", "assignments (one row per event) or first-exposures (one row per subject and allocation)")
	allocation := a.fs.String("allocation", "", "with --table first-exposures: only this allocation")
	pos, err := a.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErr(a)
	}
	if _, err := table.ParseFormat(*format); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--format: %w", err)}
	}
	q := apiclient.ExportQuery{Environment: *a.env, Flag: *flagKey, Experiment: *experiment, Format: *format, From: from.Time, To: to.Time,
		Table: *tableName, Allocation: *allocation}
	c, err := a.client()
	if err != nil {
		return err
	}
	w := e.stdout
	var f *os.File
	if *out != "-" {
		if f, err = os.Create(*out); err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	if err := c.ExportAssignments(ctx, q, w); err != nil {
		return err
	}
	if f != nil {
		return f.Close()
	}
	return nil
}
