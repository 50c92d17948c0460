package store

import (
	"context"
	"database/sql"
	"strings"

	"github.com/jackc/pgx/v5"
)

// The insert path keeps the aggregates (first_exposures, assignment_daily,
// assignment_multiple) itself, in the inserting transaction, from the rows
// that transaction actually inserted (a retried event id adds nothing). It
// groups the batch in Go, reads the batch's subjects' first exposures once,
// and writes one multi-row upsert per table: a handful of statements per
// batch instead of a trigger's per row or per statement work, which cost
// most of the ingestion rate (BENCHMARKS.md, issue 14).

// insertedRow is what the aggregates need of a row the insert stored.
type insertedRow struct {
	env, flag, alloc, variation, subject, eventID string
	ts                                            int64 // microseconds
	holdout, holdoutVariation                     string
}

type subjectKey struct{ env, flag, alloc, subject string }

// exposure is one first_exposures row (or a batch's share of it).
type exposure struct {
	firstVariation, firstEventID   string
	firstSeen, lastSeen, exposures int64
	multiple                       bool
	// The first event's holdout columns (migration 0015): they move with
	// firstVariation.
	holdout, holdoutVariation string
}

// before reports whether e's first event comes before o's: the earliest
// timestamp, ties broken by event id, so the order of arrival does not
// matter.
func (e *exposure) before(o *exposure) bool {
	return e.firstSeen < o.firstSeen || (e.firstSeen == o.firstSeen && e.firstEventID < o.firstEventID)
}

type dayKey struct {
	env, flag, alloc, variation string
	day                         int64
}

type dayDelta struct{ assignments, firstExposures int64 }

type multipleKey struct{ env, flag, alloc, variation string }

// aggregateTx is the little the aggregate update needs of a transaction,
// so one implementation serves database/sql (SQLite) and pgx (PostgreSQL).
type aggregateTx interface {
	query(ctx context.Context, q string, args []any, row func(scan func(...any) error) error) error
	exec(ctx context.Context, q string, args []any) error
}

type sqlAggregateTx struct{ tx *sql.Tx }

func (t sqlAggregateTx) query(ctx context.Context, q string, args []any, row func(func(...any) error) error) error {
	rows, err := t.tx.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := row(rows.Scan); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (t sqlAggregateTx) exec(ctx context.Context, q string, args []any) error {
	_, err := t.tx.ExecContext(ctx, q, args...)
	return err
}

type pgxAggregateTx struct{ tx pgx.Tx }

func (t pgxAggregateTx) query(ctx context.Context, q string, args []any, row func(func(...any) error) error) error {
	rows, err := t.tx.Query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := row(rows.Scan); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (t pgxAggregateTx) exec(ctx context.Context, q string, args []any) error {
	_, err := t.tx.Exec(ctx, q, args...)
	return err
}

// aggregateChunk bounds the rows of one upsert (12 columns: 6,000 bound
// parameters, under both dialects' limits) and the subjects of one lookup.
const aggregateChunk = 500

// updateAggregates folds the inserted rows into the aggregate tables. It
// must run in the transaction that inserted them, which holds the write
// lock on SQLite; on PostgreSQL it takes a transaction advisory lock first,
// because it reads first_exposures and then writes values computed from
// what it read: two writers interleaving could both count a subject's
// first exposure.
func (d *DB) updateAggregates(ctx context.Context, tx aggregateTx, rows []insertedRow) error {
	if len(rows) == 0 || d.noAggregates {
		return nil
	}
	if d.postgres {
		if err := tx.exec(ctx, `SELECT pg_advisory_xact_lock(7041964)`, nil); err != nil {
			return err
		}
	}
	// The batch grouped: per subject, its first event, last seen, count
	// and whether it saw more than one variation; per day, assignments.
	batch := make(map[subjectKey]*exposure, len(rows))
	days := make(map[dayKey]*dayDelta)
	for i := range rows {
		r := &rows[i]
		k := subjectKey{r.env, r.flag, r.alloc, r.subject}
		e := &exposure{firstVariation: r.variation, firstEventID: r.eventID, firstSeen: r.ts, lastSeen: r.ts, exposures: 1,
			holdout: r.holdout, holdoutVariation: r.holdoutVariation}
		if b, ok := batch[k]; !ok {
			batch[k] = e
		} else {
			if b.firstVariation != r.variation {
				b.multiple = true
			}
			if e.before(b) {
				b.firstVariation, b.firstEventID, b.firstSeen = e.firstVariation, e.firstEventID, e.firstSeen
				b.holdout, b.holdoutVariation = e.holdout, e.holdoutVariation
			}
			b.lastSeen = max(b.lastSeen, r.ts)
			b.exposures++
		}
		dayOf(days, dayKey{r.env, r.flag, r.alloc, r.variation, r.ts / microsPerDay}).assignments++
	}
	stored, err := d.storedExposures(ctx, tx, batch)
	if err != nil {
		return err
	}
	// Merge with what is stored. The daily first exposures follow the first
	// exposure (an earlier event moves it out of its old day and variation);
	// a subject in several variations counts under its first variation in
	// assignment_multiple, so it moves too.
	multiple := make(map[multipleKey]int64)
	for k, b := range batch {
		old, ok := stored[k]
		if !ok {
			dayOf(days, dayKey{k.env, k.flag, k.alloc, b.firstVariation, b.firstSeen / microsPerDay}).firstExposures++
			if b.multiple {
				multiple[multipleKey{k.env, k.flag, k.alloc, b.firstVariation}]++
			}
			continue
		}
		merged := *old
		merged.multiple = old.multiple || b.multiple || b.firstVariation != old.firstVariation
		if b.before(old) {
			dayOf(days, dayKey{k.env, k.flag, k.alloc, old.firstVariation, old.firstSeen / microsPerDay}).firstExposures--
			dayOf(days, dayKey{k.env, k.flag, k.alloc, b.firstVariation, b.firstSeen / microsPerDay}).firstExposures++
			merged.firstVariation, merged.firstEventID, merged.firstSeen = b.firstVariation, b.firstEventID, b.firstSeen
			merged.holdout, merged.holdoutVariation = b.holdout, b.holdoutVariation
		}
		merged.lastSeen = max(old.lastSeen, b.lastSeen)
		merged.exposures = old.exposures + b.exposures
		if old.multiple {
			multiple[multipleKey{k.env, k.flag, k.alloc, old.firstVariation}]--
		}
		if merged.multiple {
			multiple[multipleKey{k.env, k.flag, k.alloc, merged.firstVariation}]++
		}
		*b = merged
	}
	if err := d.upsertExposures(ctx, tx, batch); err != nil {
		return err
	}
	if err := d.upsertDays(ctx, tx, days); err != nil {
		return err
	}
	return d.upsertMultiple(ctx, tx, multiple)
}

func dayOf(days map[dayKey]*dayDelta, k dayKey) *dayDelta {
	d, ok := days[k]
	if !ok {
		d = &dayDelta{}
		days[k] = d
	}
	return d
}

// storedExposures reads the first_exposures rows of the batch's subjects,
// one statement per allocation and chunk of subjects.
func (d *DB) storedExposures(ctx context.Context, tx aggregateTx, batch map[subjectKey]*exposure) (map[subjectKey]*exposure, error) {
	type allocKey struct{ env, flag, alloc string }
	subjects := make(map[allocKey][]string)
	for k := range batch {
		a := allocKey{k.env, k.flag, k.alloc}
		subjects[a] = append(subjects[a], k.subject)
	}
	stored := make(map[subjectKey]*exposure, len(batch))
	args := make([]any, 0, 3+aggregateChunk)
	for a, list := range subjects {
		for start := 0; start < len(list); start += aggregateChunk {
			chunk := list[start:min(start+aggregateChunk, len(list))]
			var q string
			if d.postgres {
				// One array parameter, and one primary-key probe per
				// subject whatever the statistics say: OFFSET 0 keeps the
				// LATERAL subquery from being flattened into a join, which
				// the planner (taking a young table for a tiny one) ran as
				// a scan of the allocation's whole, update-bloated, index
				// range: 20-300 ms per lookup, as did an IN list of 500
				// placeholders.
				args = append(args[:0], chunk, a.env, a.flag, a.alloc)
				q = `SELECT s.subject, f.first_variation, f.first_event_id, f.first_seen, f.last_seen, f.exposures, f.multiple_variations,
					f.holdout, f.holdout_variation
					FROM unnest(?::text[]) AS s(subject) CROSS JOIN LATERAL (
						SELECT * FROM first_exposures f WHERE f.environment = ? AND f.feature_flag = ? AND f.allocation = ? AND f.subject = s.subject
						OFFSET 0) f`
			} else {
				args = append(args[:0], a.env, a.flag, a.alloc)
				for _, s := range chunk {
					args = append(args, s)
				}
				q = `SELECT subject, first_variation, first_event_id, first_seen, last_seen, exposures, multiple_variations, holdout, holdout_variation
					FROM first_exposures WHERE environment = ? AND feature_flag = ? AND allocation = ? AND subject IN (` +
					strings.Repeat("?, ", len(chunk)-1) + `?)`
			}
			err := tx.query(ctx, d.q(q), args, func(scan func(...any) error) error {
				var s string
				var m int64
				e := &exposure{}
				if err := scan(&s, &e.firstVariation, &e.firstEventID, &e.firstSeen, &e.lastSeen, &e.exposures, &m, &e.holdout, &e.holdoutVariation); err != nil {
					return err
				}
				e.multiple = m != 0
				stored[subjectKey{a.env, a.flag, a.alloc, s}] = e
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
	}
	return stored, nil
}

// upsertExposures writes the merged rows whole: they were computed from
// the stored ones under the write lock, so excluded replaces.
func (d *DB) upsertExposures(ctx context.Context, tx aggregateTx, batch map[subjectKey]*exposure) error {
	const head = `INSERT INTO first_exposures (environment, feature_flag, allocation, subject, first_variation, first_event_id, first_seen, last_seen, exposures, multiple_variations, holdout, holdout_variation) VALUES `
	const tail = ` ON CONFLICT (environment, feature_flag, allocation, subject) DO UPDATE SET
		first_variation = excluded.first_variation, first_event_id = excluded.first_event_id,
		first_seen = excluded.first_seen, last_seen = excluded.last_seen, exposures = excluded.exposures,
		multiple_variations = excluded.multiple_variations, holdout = excluded.holdout, holdout_variation = excluded.holdout_variation`
	args := make([]any, 0, aggregateChunk*12)
	n := 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		err := tx.exec(ctx, d.q(head+valuesList(n, 12)+tail), args)
		args, n = args[:0], 0
		return err
	}
	for k, e := range batch {
		var m int64
		if e.multiple {
			m = 1
		}
		args = append(args, k.env, k.flag, k.alloc, k.subject, e.firstVariation, e.firstEventID, e.firstSeen, e.lastSeen, e.exposures, m,
			e.holdout, e.holdoutVariation)
		if n++; n == aggregateChunk {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// upsertDays adds the deltas to assignment_daily.
func (d *DB) upsertDays(ctx context.Context, tx aggregateTx, days map[dayKey]*dayDelta) error {
	const head = `INSERT INTO assignment_daily AS d (environment, feature_flag, allocation, variation, day, assignments, first_exposures) VALUES `
	const tail = ` ON CONFLICT (environment, feature_flag, allocation, day, variation) DO UPDATE SET
		assignments = d.assignments + excluded.assignments, first_exposures = d.first_exposures + excluded.first_exposures`
	args := make([]any, 0, aggregateChunk*7)
	n := 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		err := tx.exec(ctx, d.q(head+valuesList(n, 7)+tail), args)
		args, n = args[:0], 0
		return err
	}
	for k, v := range days {
		if v.assignments == 0 && v.firstExposures == 0 {
			continue
		}
		args = append(args, k.env, k.flag, k.alloc, k.variation, k.day, v.assignments, v.firstExposures)
		if n++; n == aggregateChunk {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// upsertMultiple adds the deltas to assignment_multiple.
func (d *DB) upsertMultiple(ctx context.Context, tx aggregateTx, multiple map[multipleKey]int64) error {
	const head = `INSERT INTO assignment_multiple AS m (environment, feature_flag, allocation, first_variation, subjects) VALUES `
	const tail = ` ON CONFLICT (environment, feature_flag, allocation, first_variation) DO UPDATE SET subjects = m.subjects + excluded.subjects`
	args := make([]any, 0, aggregateChunk*5)
	n := 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		err := tx.exec(ctx, d.q(head+valuesList(n, 5)+tail), args)
		args, n = args[:0], 0
		return err
	}
	for k, v := range multiple {
		if v == 0 {
			continue
		}
		args = append(args, k.env, k.flag, k.alloc, k.variation, v)
		if n++; n == aggregateChunk {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// valuesList is "(?, ..., ?), ..." for rows of cols placeholders.
func valuesList(rows, cols int) string {
	row := "(" + strings.Repeat("?, ", cols-1) + "?)"
	var b strings.Builder
	b.Grow(rows * (len(row) + 2))
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	return b.String()
}

// DisableAggregates stops the insert path from keeping the aggregates, so
// a benchmark can measure what they cost. The aggregates then no longer
// match the assignment table until RebuildAggregates.
func (d *DB) DisableAggregates() { d.noAggregates = true }
