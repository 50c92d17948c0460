package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

// The aggregates of the assignment table (migration 0006): first_exposures,
// one row per subject and allocation, and assignment_daily, per allocation,
// variation and UTC day. A trigger keeps them as rows are inserted, in the
// inserting transaction; the statements below rebuild them from the raw
// table in one pass each (the migration runs the same ones on what was
// stored before it).
var rebuildStatements = []string{
	`DELETE FROM first_exposures`,
	`DELETE FROM assignment_daily`,
	`INSERT INTO first_exposures (environment, feature_flag, allocation, subject, first_variation, first_event_id, first_seen, last_seen, exposures, multiple_variations)
SELECT r.environment, r.feature_flag, r.allocation, r.subject, r.variation, r.event_id, r.timestamp, p.last_seen, p.exposures, p.multiple
FROM (SELECT environment, feature_flag, allocation, subject, variation, event_id, timestamp,
		ROW_NUMBER() OVER (PARTITION BY environment, feature_flag, allocation, subject ORDER BY timestamp, event_id) AS rn
	FROM assignments) r
JOIN (SELECT environment, feature_flag, allocation, subject, MAX(timestamp) AS last_seen, COUNT(*) AS exposures,
		CASE WHEN COUNT(DISTINCT variation) > 1 THEN 1 ELSE 0 END AS multiple
	FROM assignments GROUP BY environment, feature_flag, allocation, subject) p
  ON p.environment = r.environment AND p.feature_flag = r.feature_flag AND p.allocation = r.allocation AND p.subject = r.subject
WHERE r.rn = 1`,
	`INSERT INTO assignment_daily (environment, feature_flag, allocation, variation, day, assignments, first_exposures)
SELECT environment, feature_flag, allocation, variation, day, SUM(a), SUM(f) FROM (
	SELECT environment, feature_flag, allocation, variation, timestamp / 86400000000 AS day, 1 AS a, 0 AS f FROM assignments
	UNION ALL
	SELECT environment, feature_flag, allocation, first_variation, first_seen / 86400000000, 0, 1 FROM first_exposures
) u GROUP BY environment, feature_flag, allocation, variation, day`,
}

// RebuildAggregates recomputes the aggregates from the raw assignment table
// in one transaction (what `allot tables rebuild` runs). On SQLite it holds
// the write lock while it runs, so ingestion waits: run it offline or at a
// quiet time.
func (d *DB) RebuildAggregates(ctx context.Context) error {
	err := d.tx(ctx, func(tx *sql.Tx) error {
		for _, s := range rebuildStatements {
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

// AggregateDay is one row of assignment_daily.
type AggregateDay struct {
	Environment, FeatureFlag, Allocation, Variation string
	Day                                             string // YYYY-MM-DD
	Assignments, FirstExposures                     int64
}

// Aggregates returns both aggregate tables whole, in key order; tests and
// the rebuild check compare them.
func (d *DB) Aggregates(ctx context.Context) ([]table.FirstExposure, []AggregateDay, error) {
	var fes []table.FirstExposure
	err := d.FirstExposurePages(ctx, AssignmentFilter{}, func(page []table.FirstExposure) error { fes = append(fes, page...); return nil })
	if err != nil {
		return nil, nil, err
	}
	rows, err := d.db.QueryContext(ctx, `SELECT environment, feature_flag, allocation, variation, day, assignments, first_exposures
		FROM assignment_daily ORDER BY environment, feature_flag, allocation, day, variation`)
	if err != nil {
		return nil, nil, fmt.Errorf("store: aggregates: %w", err)
	}
	defer rows.Close()
	var days []AggregateDay
	for rows.Next() {
		var a AggregateDay
		var day int64
		if err := rows.Scan(&a.Environment, &a.FeatureFlag, &a.Allocation, &a.Variation, &day, &a.Assignments, &a.FirstExposures); err != nil {
			return nil, nil, fmt.Errorf("store: aggregates: %w", err)
		}
		a.Day = dayString(day)
		days = append(days, a)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("store: aggregates: %w", err)
	}
	return fes, days, nil
}

func dayString(day int64) string { return time.UnixMicro(day * microsPerDay).UTC().Format("2006-01-02") }

// FirstExposurePages calls fn with the first-exposure rows of the
// allocations f selects (Environment, FeatureFlag, Allocation; the time
// range and Experiment are not used), in key order, a page at a time like
// AssignmentPages: each page is its own statement, done before fn runs, so
// a slow reader holds no snapshot. fn must not keep the page.
func (d *DB) FirstExposurePages(ctx context.Context, f AssignmentFilter, fn func([]table.FirstExposure) error) error {
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
			first_seen, last_seen, exposures, multiple_variations FROM first_exposures`+where+
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
			&first, &last, &f.Exposures, &multiple); err != nil {
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

// summarizeAggregates answers SummarizeAssignments from the aggregates: a
// few index range reads of one allocation, however many rows it has.
func (d *DB) summarizeAggregates(ctx context.Context, f AssignmentFilter) (AssignmentSummary, error) {
	sum := AssignmentSummary{Variations: map[string]int64{}, Daily: []DailyCount{}}
	wrap := func(err error) error { return fmt.Errorf("store: summarize assignments: %w", err) }
	key := []any{f.Environment, f.FeatureFlag, f.Allocation}
	rows, err := d.db.QueryContext(ctx, d.q(`SELECT first_variation, multiple_variations, COUNT(*) FROM first_exposures
		WHERE environment = ? AND feature_flag = ? AND allocation = ? GROUP BY first_variation, multiple_variations`), key...)
	if err != nil {
		return sum, wrap(err)
	}
	for rows.Next() {
		var v string
		var multiple int
		var n int64
		if err := rows.Scan(&v, &multiple, &n); err != nil {
			rows.Close()
			return sum, wrap(err)
		}
		sum.Subjects += n
		if multiple != 0 {
			sum.MultipleVariations += n
		} else {
			sum.Variations[v] += n
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return sum, wrap(err)
	}
	rows, err = d.db.QueryContext(ctx, d.q(`SELECT day, variation, assignments, first_exposures FROM assignment_daily
		WHERE environment = ? AND feature_flag = ? AND allocation = ? ORDER BY day, variation`), key...)
	if err != nil {
		return sum, wrap(err)
	}
	defer rows.Close()
	for rows.Next() {
		var day int64
		var c DailyCount
		if err := rows.Scan(&day, &c.Variation, &c.Assignments, &c.Subjects); err != nil {
			return sum, wrap(err)
		}
		if c.Assignments == 0 && c.Subjects == 0 {
			continue
		}
		c.Day = dayString(day)
		sum.Assignments += c.Assignments
		sum.Daily = append(sum.Daily, c)
	}
	if err := rows.Err(); err != nil {
		return sum, wrap(err)
	}
	return sum, nil
}

// deleteAggregatesBefore keeps the aggregates consistent with retention:
// the days wholly before cutoff go, and so do the subjects last seen before
// it (none of their events remain). Subjects with events on both sides keep
// their first exposure and counts: the summary of a running experiment does
// not change because its oldest raw rows were deleted.
//
// Retention calls it once per run, after the raw rows: the statement on
// first_exposures reads the whole table (an index on last_seen would cost
// every insert more than this costs a run). The day holding the cutoff
// keeps its counts until the day is wholly before a later cutoff.
func (d *DB) DeleteAggregatesBefore(ctx context.Context, cutoff time.Time) error {
	c := cutoff.UnixMicro()
	err := d.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, d.q(`DELETE FROM assignment_daily WHERE day < ?`), c/microsPerDay); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, d.q(`DELETE FROM first_exposures WHERE last_seen < ?`), c)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: delete old aggregates: %w", err)
	}
	return nil
}
