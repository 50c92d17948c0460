package store

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

// The aggregates of the assignment table (migration 0006, keyed by holdout
// half as well since 0012): first_exposures,
// one row per subject and allocation; assignment_daily, per allocation,
// variation and UTC day; assignment_multiple, per allocation and first
// variation, the subjects seen in more than one variation. The insert path
// keeps them, in the inserting transaction (updateAggregates, which took
// over from 0006's trigger in migration 0009). Rebuilding runs
// the statements that end the latest migration that reshaped them
// (rebuildMigration, after its "What is already stored" line), then those
// of 0015 (the first exposures' holdout), so the migrations and the rebuild
// cannot drift apart.
func (d *DB) rebuildStatements() ([]string, error) {
	stmts := []string{`DELETE FROM first_exposure_touches`, `DELETE FROM first_exposures`, `DELETE FROM assignment_daily`, `DELETE FROM assignment_multiple`}
	for _, name := range []string{rebuildMigration, "0015_first_exposure_holdouts.sql"} {
		body, err := fs.ReadFile(migrations, "migrations/"+d.Dialect()+"/"+name)
		if err != nil {
			return nil, err
		}
		text := string(body)
		i := strings.Index(text, "-- What is already stored")
		if i < 0 {
			return nil, fmt.Errorf("%s: no backfill section", name)
		}
		for _, s := range strings.Split(text[i:], ";") {
			if strings.Contains(s, "INSERT") || strings.Contains(s, "UPDATE") {
				stmts = append(stmts, s)
			}
		}
	}
	return stmts, nil
}

// rebuildMigration is the migration whose backfill rebuilds the aggregates.
const rebuildMigration = "0012_holdout_aggregates.sql"

// RebuildAggregates recomputes the aggregates from the raw assignment table
// in one transaction (what `allot tables rebuild` runs). On SQLite it holds
// the write lock while it runs, so ingestion waits: run it offline or at a
// quiet time.
func (d *DB) RebuildAggregates(ctx context.Context) error {
	stmts, err := d.rebuildStatements()
	if err != nil {
		return fmt.Errorf("store: rebuild aggregates: %w", err)
	}
	err = d.tx(ctx, func(tx *sql.Tx) error {
		for _, s := range stmts {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: rebuild aggregates: %w", err)
	}
	return nil
}

// CountAggregates returns how many rows each aggregate table has.
func (d *DB) CountAggregates(ctx context.Context) (firstExposures, days int64, err error) {
	err = d.db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM first_exposures), (SELECT COUNT(*) FROM assignment_daily)`).Scan(&firstExposures, &days)
	if err != nil {
		return 0, 0, fmt.Errorf("store: count aggregates: %w", err)
	}
	return firstExposures, days, nil
}

// AggregateTables holds the aggregate tables whole (tests and checks
// compare them).
type AggregateTables struct {
	FirstExposures []table.FirstExposure
	Days           []AggregateDay
	// Multiple is assignment_multiple: environment/flag/allocation/first
	// variation[/holdout half] to subjects.
	Multiple map[string]int64
}

// AggregateDay is one row of assignment_daily.
type AggregateDay struct {
	Environment, FeatureFlag, Allocation, Variation string
	HoldoutVariation                                string
	Day                                             string // YYYY-MM-DD
	Assignments, FirstExposures                     int64
}

// Aggregates returns the aggregate tables whole, in key order (zero
// counts left out: they are what decrements leave behind).
func (d *DB) Aggregates(ctx context.Context) (AggregateTables, error) {
	var a AggregateTables
	wrap := func(err error) (AggregateTables, error) {
		return AggregateTables{}, fmt.Errorf("store: aggregates: %w", err)
	}
	err := d.FirstExposurePages(ctx, AssignmentFilter{}, func(page []table.FirstExposure) error {
		a.FirstExposures = append(a.FirstExposures, page...)
		return nil
	})
	if err != nil {
		return AggregateTables{}, err
	}
	rows, err := d.db.QueryContext(ctx, `SELECT environment, feature_flag, allocation, variation, holdout_variation, day, assignments, first_exposures
		FROM assignment_daily WHERE assignments <> 0 OR first_exposures <> 0 ORDER BY environment, feature_flag, allocation, day, variation, holdout_variation`)
	if err != nil {
		return wrap(err)
	}
	defer rows.Close()
	for rows.Next() {
		var r AggregateDay
		var day int64
		if err := rows.Scan(&r.Environment, &r.FeatureFlag, &r.Allocation, &r.Variation, &r.HoldoutVariation, &day, &r.Assignments, &r.FirstExposures); err != nil {
			return wrap(err)
		}
		r.Day = dayString(day)
		a.Days = append(a.Days, r)
	}
	if err := rows.Err(); err != nil {
		return wrap(err)
	}
	rows.Close()
	rows, err = d.db.QueryContext(ctx, `SELECT environment, feature_flag, allocation, first_variation, holdout_variation, subjects FROM assignment_multiple WHERE subjects <> 0`)
	if err != nil {
		return wrap(err)
	}
	defer rows.Close()
	a.Multiple = map[string]int64{}
	for rows.Next() {
		var e, f, al, v, h string
		var n int64
		if err := rows.Scan(&e, &f, &al, &v, &h, &n); err != nil {
			return wrap(err)
		}
		k := e + "/" + f + "/" + al + "/" + v
		if h != "" {
			k += "/" + h
		}
		a.Multiple[k] = n
	}
	if err := rows.Err(); err != nil {
		return wrap(err)
	}
	return a, nil
}

func dayString(day int64) string {
	return time.UnixMicro(day * microsPerDay).UTC().Format("2006-01-02")
}

// FirstExposurePages calls fn with the first-exposure rows of the
// allocations f selects (Environment, FeatureFlag, Allocation; the time
// range and Experiment are not used), in key order, a page at a time like
// AssignmentPages: each page is its own statement, done before fn runs, so
// a slow reader holds no snapshot. fn must not keep the page.
func (d *DB) FirstExposurePages(ctx context.Context, f AssignmentFilter, fn func([]table.FirstExposure) error) error {
	// last_seen and exposures are current once the touches are folded.
	if err := d.FoldTouches(ctx); err != nil {
		return err
	}
	var conds []string
	var args []any
	for _, c := range []struct{ col, v string }{{"environment", f.Environment}, {"feature_flag", f.FeatureFlag}, {"allocation", f.Allocation}} {
		if c.v != "" {
			conds = append(conds, c.col+" = ?")
			args = append(args, c.v)
		}
	}
	n := len(args)
	var last *table.FirstExposure
	page := make([]table.FirstExposure, 0, pageRows)
	for {
		cs, qargs := conds, args[:n]
		if last != nil {
			cs = append(cs[:len(cs):len(cs)], "(environment, feature_flag, allocation, subject) > (?, ?, ?, ?)")
			qargs = append(qargs, last.Environment, last.FeatureFlag, last.Allocation, last.Subject)
		}
		where := ""
		for i, c := range cs {
			if i == 0 {
				where = " WHERE " + c
			} else {
				where += " AND " + c
			}
		}
		qargs = append(qargs, pageRows)
		if err := d.readFirstExposures(ctx, `SELECT environment, feature_flag, allocation, subject, first_variation, first_event_id,
			first_seen, last_seen, exposures, multiple_variations, holdout, first_holdout_variation FROM first_exposures`+where+
			` ORDER BY environment, feature_flag, allocation, subject LIMIT ?`, qargs, &page); err != nil {
			return fmt.Errorf("store: first exposures: %w", err)
		}
		if len(page) == 0 {
			return nil
		}
		if err := fn(page); err != nil {
			return err
		}
		if len(page) < pageRows {
			return nil
		}
		l := page[len(page)-1]
		last = &l
	}
}

func (d *DB) readFirstExposures(ctx context.Context, query string, args []any, page *[]table.FirstExposure) error {
	*page = (*page)[:0]
	rows, err := d.db.QueryContext(ctx, d.q(query), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var f table.FirstExposure
		var first, last int64
		var multiple int
		if err := rows.Scan(&f.Environment, &f.FeatureFlag, &f.Allocation, &f.Subject, &f.FirstVariation, &f.FirstEventID,
			&first, &last, &f.Exposures, &multiple, &f.Holdout, &f.HoldoutVariation); err != nil {
			return err
		}
		f.FirstSeen, f.LastSeen = time.UnixMicro(first).UTC(), time.UnixMicro(last).UTC()
		f.MultipleVariations = multiple != 0
		*page = append(*page, f)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return rows.Close()
}

// summarizeAggregates answers SummarizeAssignments from assignment_daily
// and assignment_multiple: two index range reads of one allocation, whose
// size grows with its days and variations, never with its rows or subjects.
func (d *DB) summarizeAggregates(ctx context.Context, f AssignmentFilter) (AssignmentSummary, error) {
	sum := AssignmentSummary{Variations: map[string]int64{}, Daily: []DailyCount{}}
	wrap := func(err error) error { return fmt.Errorf("store: summarize assignments: %w", err) }
	key := []any{f.Environment, f.FeatureFlag, f.Allocation}
	rows, err := d.db.QueryContext(ctx, d.q(`SELECT day, variation, holdout_variation, assignments, first_exposures FROM assignment_daily
		WHERE environment = ? AND feature_flag = ? AND allocation = ? ORDER BY day, variation, holdout_variation`), key...)
	if err != nil {
		return sum, wrap(err)
	}
	halves := newHalves()
	for rows.Next() {
		var day int64
		var c DailyCount
		var hv string
		if err := rows.Scan(&day, &c.Variation, &hv, &c.Assignments, &c.Subjects); err != nil {
			rows.Close()
			return sum, wrap(err)
		}
		if c.Assignments == 0 && c.Subjects == 0 {
			continue
		}
		c.Day = dayString(day)
		sum.Assignments += c.Assignments
		sum.Subjects += c.Subjects
		sum.Variations[c.Variation] += c.Subjects
		halves.add(hv, c.Variation, c.Assignments, c.Subjects)
		// The daily list stays per day and variation: the halves of a
		// holdout are summed (they come in adjacent rows).
		if n := len(sum.Daily); n > 0 && sum.Daily[n-1].Day == c.Day && sum.Daily[n-1].Variation == c.Variation {
			sum.Daily[n-1].Assignments += c.Assignments
			sum.Daily[n-1].Subjects += c.Subjects
			continue
		}
		sum.Daily = append(sum.Daily, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return sum, wrap(err)
	}
	rows, err = d.db.QueryContext(ctx, d.q(`SELECT first_variation, holdout_variation, subjects FROM assignment_multiple
		WHERE environment = ? AND feature_flag = ? AND allocation = ?`), key...)
	if err != nil {
		return sum, wrap(err)
	}
	defer rows.Close()
	for rows.Next() {
		var v, hv string
		var n int64
		if err := rows.Scan(&v, &hv, &n); err != nil {
			return sum, wrap(err)
		}
		sum.MultipleVariations += n
		sum.Variations[v] -= n
		halves.multiple(hv, v, n)
	}
	if err := rows.Err(); err != nil {
		return sum, wrap(err)
	}
	for v, n := range sum.Variations {
		if n == 0 {
			delete(sum.Variations, v)
		}
	}
	sum.HoldoutHalves = halves.list()
	return sum, nil
}

// halves gathers a summary's counts per holdout half (rows outside any
// holdout, whose half is empty, are left out).
type halves map[string]*HoldoutHalf

func newHalves() halves { return halves{} }

func (h halves) get(hv string) *HoldoutHalf {
	x, ok := h[hv]
	if !ok {
		x = &HoldoutHalf{HoldoutVariation: hv, Variations: map[string]int64{}}
		h[hv] = x
	}
	return x
}

// add counts assignments and first exposures (subjects) in variation v.
func (h halves) add(hv, v string, assignments, subjects int64) {
	if hv == "" {
		return
	}
	x := h.get(hv)
	x.Assignments += assignments
	x.Subjects += subjects
	x.Variations[v] += subjects
}

// multiple moves n subjects first seen in v to the multiple-variation count.
func (h halves) multiple(hv, v string, n int64) {
	if hv == "" {
		return
	}
	x := h.get(hv)
	x.MultipleVariations += n
	x.Variations[v] -= n
}

// list returns the halves by name, status_quo before all_shipped.
func (h halves) list() []HoldoutHalf {
	if len(h) == 0 {
		return nil
	}
	out := make([]HoldoutHalf, 0, len(h))
	for _, x := range h {
		for v, n := range x.Variations {
			if n == 0 {
				delete(x.Variations, v)
			}
		}
		out = append(out, *x)
	}
	slices.SortFunc(out, func(a, b HoldoutHalf) int {
		// "status_quo" > "all_shipped": reverse order puts it first.
		return strings.Compare(b.HoldoutVariation, a.HoldoutVariation)
	})
	return out
}

// DeleteAggregatesBefore keeps the aggregates consistent with retention, by
// whole UTC days: it deletes the days before the one holding cutoff, and the
// subjects whose first exposure fell on them (a subject seen again later
// counts from then on as new, its first exposure being gone), then
// recomputes assignment_multiple from what remains. The day holding the
// cutoff keeps its counts until a later run's cutoff passes it.
//
// Retention calls it once per run, after the raw rows: it reads the whole
// first_exposures table (an index on first_seen would cost every insert
// more than this costs a run).
func (d *DB) DeleteAggregatesBefore(ctx context.Context, cutoff time.Time) error {
	c := cutoff.UnixMicro()
	err := d.tx(ctx, func(tx *sql.Tx) error {
		// Touches of subjects about to go would otherwise outlive them.
		if err := d.foldTouchesTx(ctx, tx); err != nil {
			return err
		}
		day := c / microsPerDay
		steps := []struct {
			query string
			args  []any
		}{
			{`DELETE FROM assignment_daily WHERE day < ?`, []any{day}},
			{`DELETE FROM first_exposures WHERE first_seen < ?`, []any{day * microsPerDay}},
			{`DELETE FROM assignment_multiple`, nil},
			{`INSERT INTO assignment_multiple (environment, feature_flag, allocation, first_variation, holdout_variation, subjects)
			SELECT environment, feature_flag, allocation, first_variation, first_holdout_variation, COUNT(*) FROM first_exposures
			WHERE multiple_variations = 1 GROUP BY environment, feature_flag, allocation, first_variation, first_holdout_variation`, nil},
		}
		for _, st := range steps {
			if _, err := tx.ExecContext(ctx, d.q(st.query), st.args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: delete old aggregates: %w", err)
	}
	return nil
}
