package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/store"
)

func init() {
	register("tables", "offline maintenance of the assignment table (tables rebuild: the aggregates from the raw rows)", runTables)
}

// runTables runs `allot tables rebuild`: it recomputes the aggregates the
// summaries read (first exposures, per-day counts) from the raw assignment
// table, in one transaction, straight in the database like `allot admin
// recover`. Ingestion keeps them itself; this is for after a restore, a
// manual edit of the raw table, or to check them.
func runTables(ctx context.Context, e *env, args []string) error {
	usage := `usage: allot tables rebuild --db PATH_OR_URL

Recomputes the assignment aggregates (first_exposures, assignment_daily)
from the raw assignment table, in one transaction, in the database that
allot serve uses (the SQLite file or the postgres:// URL). It may run while
the server runs; on SQLite ingestion waits for it (one pass over the table:
seconds per million rows), so prefer a quiet time.

flags:`
	if len(args) == 0 || args[0] != "rebuild" {
		fmt.Fprintln(e.stderr, usage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return &exitError{code: 0}
		}
		return &exitError{code: 2}
	}
	fset := flag.NewFlagSet("tables rebuild", flag.ContinueOnError)
	fset.SetOutput(e.stderr)
	fset.Usage = func() {
		fmt.Fprintln(e.stderr, usage)
		fset.PrintDefaults()
	}
	db := fset.String("db", "", "SQLite file, or a postgres:// URL (default: from ALLOT_DB, else allot.db)")
	if err := parseFlags(fset, args[1:]); err != nil {
		return err
	}
	if fset.NArg() != 0 {
		fset.Usage()
		return &exitError{code: 2}
	}
	if *db == "" {
		*db = envOr(e, "ALLOT_DB", "allot.db")
	}
	if !store.IsPostgres(*db) {
		if err := mustExist(*db); err != nil {
			return err
		}
	}
	d, err := store.Open(ctx, *db, nil)
	if err != nil {
		return fmt.Errorf("open the database: %w", err)
	}
	defer d.Close()
	start := time.Now()
	if err := d.RebuildAggregates(ctx); err != nil {
		return err
	}
	fes, days, err := d.CountAggregates(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "rebuilt the aggregates: %d first exposures, %d allocation-days, in %s\n",
		fes, days, time.Since(start).Round(time.Millisecond))
	return nil
}
