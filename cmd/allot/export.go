package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/allot-dev/allot/internal/apiclient"
)

func init() {
	register("export", "export the assignment table (CSV or JSON lines) from a server", runExport)
}

func runExport(ctx context.Context, e *env, args []string) error {
	a := newAdminFlags(e, "allot export", "allot export [--flag KEY] [--experiment FLAG-ALLOCATION] [--from TIME] [--to TIME] [--format csv|jsonl] [--out FILE]")
	flagKey := a.fs.String("flag", "", "only this flag's assignments")
	experiment := a.fs.String("experiment", "", "only this experiment (flag-allocation, as in events)")
	from := a.fs.String("from", "", "only assignments at or after this time (RFC 3339 or YYYY-MM-DD)")
	to := a.fs.String("to", "", "only assignments before this time (RFC 3339 or YYYY-MM-DD)")
	format := a.fs.String("format", "csv", "csv or jsonl")
	out := a.fs.String("out", "-", "output file (- for stdout)")
	pos, err := a.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErr(a)
	}
	q := apiclient.ExportQuery{Environment: *a.env, Flag: *flagKey, Experiment: *experiment, Format: *format}
	for _, t := range []struct {
		name, v string
		dst     *time.Time
	}{{"--from", *from, &q.From}, {"--to", *to, &q.To}} {
		if t.v == "" {
			continue
		}
		parsed, err := time.Parse(time.RFC3339Nano, t.v)
		if err != nil {
			if parsed, err = time.Parse("2006-01-02", t.v); err != nil {
				return &exitError{code: 2, err: fmt.Errorf("%s %q is not an RFC 3339 time or a date", t.name, t.v)}
			}
		}
		*t.dst = parsed
	}
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
