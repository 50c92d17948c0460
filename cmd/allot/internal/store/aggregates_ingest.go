package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
)

// The insert path keeps the aggregates (first_exposures, assignment_daily,
// assignment_multiple) itself, in the inserting transaction, from the rows
// that transaction actually inserted (a retried event id adds nothing). It
// groups the batch in Go (groupBatch), reads the stored first exposures of
// the batch's subjects once, decides in Go what changes (planAggregates,
// the one place the merge rules live, for both dialects), and writes it in
// a handful of statements per batch.
//
// What a batch writes depends on the subject:
//   - new subject: one plain insert of its first_exposures row (COPY on
//     PostgreSQL);
//   - known subject whose first exposure and "several variations" flag do
//     not change (the common case: a returning user): only its last seen
//     time and exposure count move, and those go, as a delta, into
//     first_exposure_touches, an append-only table without an index, instead
//     of rewriting the first_exposures row (a B-tree update, and on
//     PostgreSQL a new row version and index entry, per subject per batch).
//     foldTouches adds the deltas into first_exposures later, many batches
//     at once and once per subject, and before anything reads those columns;
//   - known subject whose first exposure moves (an earlier event arrived
//     late) or which now shows a second variation: its first_exposures row
//     is updated (first_* and the flag), and its delta is a touch as well.
//
// Since migration 0012 the aggregates are keyed by holdout half as well
// (the row's holdout_variation: status_quo, all_shipped, or '' outside
// holdouts): a subject's first exposure keeps the half of its first event
// (first_holdout_variation, which moves with the first exposure), and the
// daily and multiple-variation rows count under it. Touches carry no half:
// last seen and exposures are per subject, whatever the half.

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
	firstHoldout                   string // the holdout half of the first event
	firstHoldoutKey                string // and its holdout (first_exposures.holdout, migration 0015)
	firstSeen, lastSeen, exposures int64
	multiple                       bool
}

// before reports whether e's first event comes before o's: the earliest
// timestamp, ties broken by event id, so the order of arrival does not
// matter.
func (e *exposure) before(o *exposure) bool {
	return e.firstSeen < o.firstSeen || (e.firstSeen == o.firstSeen && e.firstEventID < o.firstEventID)
}

type dayKey struct {
	env, flag, alloc, variation, holdout string
	day                                  int64
}

type dayDelta struct{ assignments, firstExposures int64 }

type multipleKey struct{ env, flag, alloc, variation, holdout string }

// exposureRow is a first_exposures row to write.
type exposureRow struct {
	k subjectKey
	e *exposure
}

// aggregatePlan is what one batch writes to the aggregate tables.
type aggregatePlan struct {
	fresh    []exposureRow // new subjects: insert
	changed  []exposureRow // first exposure moved or flag set: update first_* and the flag
	touches  []exposureRow // known subjects: lastSeen and exposures deltas
	days     map[dayKey]*dayDelta
	multiple map[multipleKey]int64
}

// groupBatch groups inserted rows per subject (its first event, last seen,
// count, and whether it saw more than one variation) and counts the
// assignments per allocation, variation and day.
func groupBatch(rows []insertedRow) (map[subjectKey]*exposure, map[dayKey]*dayDelta) {
	batch := make(map[subjectKey]*exposure, len(rows))
	days := make(map[dayKey]*dayDelta)
	for i := range rows {
		r := &rows[i]
		k := subjectKey{r.env, r.flag, r.alloc, r.subject}
		if b, ok := batch[k]; !ok {
			batch[k] = &exposure{firstVariation: r.variation, firstEventID: r.eventID, firstHoldout: r.holdoutVariation, firstHoldoutKey: r.holdout, firstSeen: r.ts, lastSeen: r.ts, exposures: 1}
		} else {
			if b.firstVariation != r.variation {
				b.multiple = true
			}
			if r.ts < b.firstSeen || (r.ts == b.firstSeen && r.eventID < b.firstEventID) {
				b.firstVariation, b.firstEventID, b.firstSeen, b.firstHoldout = r.variation, r.eventID, r.ts, r.holdoutVariation
				b.firstHoldoutKey = r.holdout
			}
			b.lastSeen = max(b.lastSeen, r.ts)
			b.exposures++
		}
		dayOf(days, dayKey{r.env, r.flag, r.alloc, r.variation, r.holdoutVariation, r.ts / microsPerDay}).assignments++
	}
	return batch, days
}

// planAggregates merges the grouped batch with the stored first exposures
// (only their first_* columns and flag are read). The daily first exposures
// follow the first exposure (an earlier event moves it out of its old day
// and variation); a subject in several variations counts under its first
// variation in assignment_multiple, so it moves too.
func planAggregates(batch map[subjectKey]*exposure, days map[dayKey]*dayDelta, stored map[subjectKey]*exposure) *aggregatePlan {
	p := &aggregatePlan{days: days, multiple: make(map[multipleKey]int64)}
	for k, b := range batch {
		old, ok := stored[k]
		if !ok {
			dayOf(days, dayKey{k.env, k.flag, k.alloc, b.firstVariation, b.firstHoldout, b.firstSeen / microsPerDay}).firstExposures++
			if b.multiple {
				p.multiple[multipleKey{k.env, k.flag, k.alloc, b.firstVariation, b.firstHoldout}]++
			}
			p.fresh = append(p.fresh, exposureRow{k, b})
			continue
		}
		p.touches = append(p.touches, exposureRow{k, b})
		merged := *old
		merged.multiple = old.multiple || b.multiple || b.firstVariation != old.firstVariation
		moved := b.before(old)
		if moved {
			dayOf(days, dayKey{k.env, k.flag, k.alloc, old.firstVariation, old.firstHoldout, old.firstSeen / microsPerDay}).firstExposures--
			dayOf(days, dayKey{k.env, k.flag, k.alloc, b.firstVariation, b.firstHoldout, b.firstSeen / microsPerDay}).firstExposures++
			merged.firstVariation, merged.firstEventID, merged.firstSeen, merged.firstHoldout = b.firstVariation, b.firstEventID, b.firstSeen, b.firstHoldout
			merged.firstHoldoutKey = b.firstHoldoutKey
		}
		if old.multiple {
			p.multiple[multipleKey{k.env, k.flag, k.alloc, old.firstVariation, old.firstHoldout}]--
		}
		if merged.multiple {
			p.multiple[multipleKey{k.env, k.flag, k.alloc, merged.firstVariation, merged.firstHoldout}]++
		}
		if moved || merged.multiple != old.multiple {
			p.changed = append(p.changed, exposureRow{k, &merged})
		}
	}
	// New rows go into the primary key's B-tree in key order: neighbours
	// land on the same pages one after the other.
	slices.SortFunc(p.fresh, func(a, b exposureRow) int { return compareKeys(a.k, b.k) })
	return p
}

func compareKeys(a, b subjectKey) int {
	if c := strings.Compare(a.env, b.env); c != 0 {
		return c
	}
	if c := strings.Compare(a.flag, b.flag); c != 0 {
		return c
	}
	if c := strings.Compare(a.alloc, b.alloc); c != 0 {
		return c
	}
	return strings.Compare(a.subject, b.subject)
}

func dayOf(days map[dayKey]*dayDelta, k dayKey) *dayDelta {
	d, ok := days[k]
	if !ok {
		d = &dayDelta{}
		days[k] = d
	}
	return d
}

// aggregateTx is the little the aggregate writes need of a transaction:
// database/sql on SQLite, a pgx batch (statements sent together) on
// PostgreSQL.
type aggregateTx interface {
	// exec runs q; reuse says its shape repeats from batch to batch.
	exec(ctx context.Context, q string, reuse bool, args []any) error
}

type sqlAggregateTx struct {
	d  *DB
	tx *sql.Tx
}

func (t sqlAggregateTx) exec(ctx context.Context, q string, reuse bool, args []any) error {
	_, err := t.d.execCached(ctx, t.tx, q, reuse, args)
	return err
}

// aggregateChunk bounds the rows of one multi-row statement (12 columns:
// 6,000 bound parameters, under both dialects' limits) and the subjects of
// one lookup.
const aggregateChunk = 500

// updateAggregates folds the inserted rows into the aggregate tables on
// SQLite. It must run in the transaction that inserted them, which holds
// the write lock: it reads first_exposures and then writes values computed
// from what it read.
func (d *DB) updateAggregates(ctx context.Context, tx *sql.Tx, rows []insertedRow) error {
	if len(rows) == 0 || d.noAggregates {
		return nil
	}
	batch, days := groupBatch(rows)
	stored, err := d.storedExposures(ctx, tx, batch)
	if err != nil {
		return err
	}
	p := planAggregates(batch, days, stored)
	atx := sqlAggregateTx{d, tx}
	if err := d.insertExposureRows(ctx, atx, p.fresh); err != nil {
		return err
	}
	if err := d.insertTouches(ctx, atx, p.touches); err != nil {
		return err
	}
	if err := d.writeChanges(ctx, atx, p); err != nil {
		return err
	}
	d.touched.Add(int64(len(p.touches)))
	return nil
}

// writeChanges writes the plan's changed rows and its day and multiple
// deltas.
func (d *DB) writeChanges(ctx context.Context, tx aggregateTx, p *aggregatePlan) error {
	if err := d.updateChanged(ctx, tx, p.changed); err != nil {
		return err
	}
	if err := d.upsertDays(ctx, tx, p.days); err != nil {
		return err
	}
	return d.upsertMultiple(ctx, tx, p.multiple)
}

// storedExposures reads the first_exposures rows of the batch's subjects
// (first_* and the flag), one statement per allocation and chunk of
// subjects.
func (d *DB) storedExposures(ctx context.Context, tx *sql.Tx, batch map[subjectKey]*exposure) (map[subjectKey]*exposure, error) {
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
			args = append(args[:0], a.env, a.flag, a.alloc)
			for _, s := range chunk {
				args = append(args, s)
			}
			q := `SELECT subject, first_variation, first_event_id, first_seen, multiple_variations, first_holdout_variation, holdout
				FROM first_exposures WHERE environment = ? AND feature_flag = ? AND allocation = ? AND subject IN (` +
				strings.Repeat("?, ", len(chunk)-1) + `?)`
			rows, err := d.queryCached(ctx, tx, q, reusable(len(chunk), aggregateChunk), args)
			if err != nil {
				return nil, err
			}
			for rows.Next() {
				var s string
				var m int64
				e := &exposure{}
				if err := rows.Scan(&s, &e.firstVariation, &e.firstEventID, &e.firstSeen, &m, &e.firstHoldout, &e.firstHoldoutKey); err != nil {
					rows.Close()
					return nil, err
				}
				e.multiple = m != 0
				stored[subjectKey{a.env, a.flag, a.alloc, s}] = e
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, err
			}
		}
	}
	return stored, nil
}

// chunked runs one multi-row statement per aggregateChunk rows: head, then
// rows of cols placeholders, then tail; add appends one row's arguments.
func chunked[T any](ctx context.Context, tx aggregateTx, d *DB, head string, cols int, tail string, rows []T, add func([]any, T) []any) error {
	args := make([]any, 0, min(len(rows), aggregateChunk)*cols)
	for start := 0; start < len(rows); start += aggregateChunk {
		chunk := rows[start:min(start+aggregateChunk, len(rows))]
		args = args[:0]
		for _, r := range chunk {
			args = add(args, r)
		}
		if err := tx.exec(ctx, d.q(head+valuesList(len(chunk), cols)+tail), reusable(len(chunk), aggregateChunk), args); err != nil {
			return err
		}
	}
	return nil
}

func multipleInt(m bool) int64 {
	if m {
		return 1
	}
	return 0
}

// insertExposureRows inserts new subjects' first_exposures rows (SQLite;
// PostgreSQL COPYs them). A plain insert: under the write lock nothing else
// can have added them since the lookup.
func (d *DB) insertExposureRows(ctx context.Context, tx aggregateTx, rows []exposureRow) error {
	return chunked(ctx, tx, d, `INSERT INTO first_exposures (`+exposureColumns+`) VALUES `, 12, ``, rows,
		func(args []any, r exposureRow) []any {
			return append(args, r.k.env, r.k.flag, r.k.alloc, r.k.subject, r.e.firstVariation, r.e.firstEventID,
				r.e.firstHoldout, r.e.firstSeen, r.e.lastSeen, r.e.exposures, multipleInt(r.e.multiple), r.e.firstHoldoutKey)
		})
}

// insertTouches appends known subjects' last seen and exposure deltas
// (SQLite; PostgreSQL COPYs them).
func (d *DB) insertTouches(ctx context.Context, tx aggregateTx, rows []exposureRow) error {
	return chunked(ctx, tx, d, `INSERT INTO first_exposure_touches (`+touchColumns+`) VALUES `, 6, ``, rows,
		func(args []any, r exposureRow) []any {
			return append(args, r.k.env, r.k.flag, r.k.alloc, r.k.subject, r.e.lastSeen, r.e.exposures)
		})
}

const (
	exposureColumns = "environment, feature_flag, allocation, subject, first_variation, first_event_id, first_holdout_variation, first_seen, last_seen, exposures, multiple_variations, holdout"
	touchColumns    = "environment, feature_flag, allocation, subject, last_seen, exposures"
)

// updateChanged rewrites first_* and the flag of known subjects whose first
// exposure moved or which now show several variations (their last seen and
// exposures went into touches). The rows exist, so the insert always
// conflicts: it is an update by primary key, many rows per statement.
func (d *DB) updateChanged(ctx context.Context, tx aggregateTx, rows []exposureRow) error {
	return chunked(ctx, tx, d, `INSERT INTO first_exposures (`+exposureColumns+`) VALUES `, 12,
		` ON CONFLICT (environment, feature_flag, allocation, subject) DO UPDATE SET
		first_variation = excluded.first_variation, first_event_id = excluded.first_event_id,
		first_holdout_variation = excluded.first_holdout_variation, holdout = excluded.holdout,
		first_seen = excluded.first_seen, multiple_variations = excluded.multiple_variations`, rows,
		func(args []any, r exposureRow) []any {
			return append(args, r.k.env, r.k.flag, r.k.alloc, r.k.subject, r.e.firstVariation, r.e.firstEventID,
				r.e.firstHoldout, r.e.firstSeen, r.e.firstSeen, int64(0), multipleInt(r.e.multiple), r.e.firstHoldoutKey)
		})
}

// upsertDays adds the deltas to assignment_daily.
func (d *DB) upsertDays(ctx context.Context, tx aggregateTx, days map[dayKey]*dayDelta) error {
	type row struct {
		k dayKey
		v *dayDelta
	}
	rows := make([]row, 0, len(days))
	for k, v := range days {
		if v.assignments != 0 || v.firstExposures != 0 {
			rows = append(rows, row{k, v})
		}
	}
	return chunked(ctx, tx, d, `INSERT INTO assignment_daily AS d (environment, feature_flag, allocation, variation, holdout_variation, day, assignments, first_exposures) VALUES `, 8,
		` ON CONFLICT (environment, feature_flag, allocation, day, variation, holdout_variation) DO UPDATE SET
		assignments = d.assignments + excluded.assignments, first_exposures = d.first_exposures + excluded.first_exposures`, rows,
		func(args []any, r row) []any {
			return append(args, r.k.env, r.k.flag, r.k.alloc, r.k.variation, r.k.holdout, r.k.day, r.v.assignments, r.v.firstExposures)
		})
}

// upsertMultiple adds the deltas to assignment_multiple.
func (d *DB) upsertMultiple(ctx context.Context, tx aggregateTx, multiple map[multipleKey]int64) error {
	type row struct {
		k multipleKey
		v int64
	}
	rows := make([]row, 0, len(multiple))
	for k, v := range multiple {
		if v != 0 {
			rows = append(rows, row{k, v})
		}
	}
	return chunked(ctx, tx, d, `INSERT INTO assignment_multiple AS m (environment, feature_flag, allocation, first_variation, holdout_variation, subjects) VALUES `, 6,
		` ON CONFLICT (environment, feature_flag, allocation, first_variation, holdout_variation) DO UPDATE SET subjects = m.subjects + excluded.subjects`, rows,
		func(args []any, r row) []any {
			return append(args, r.k.env, r.k.flag, r.k.alloc, r.k.variation, r.k.holdout, r.v)
		})
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

// foldEvery is how many touches the writer lets accumulate before it folds
// them (each fold reads them all once and updates each subject once; a
// test lowers it).
var foldEvery int64 = 200_000

// maybeFold folds the touches when enough have accumulated since the last
// fold. The writer calls it after a commit; an error is only logged, the
// touches stay for the next fold.
func (d *DB) maybeFold(ctx context.Context) {
	if d.touched.Load() < foldEvery {
		return
	}
	if err := d.FoldTouches(ctx); err != nil {
		d.log.Warn("folding first-exposure touches", "err", err)
	}
}

// FoldTouches adds the pending first_exposure_touches (last seen and
// exposure deltas of known subjects) into first_exposures, once per
// subject, and deletes them, in one transaction. Whatever reads last_seen
// or exposures folds first (FirstExposurePages, Aggregates); retention and
// rebuilds too. On PostgreSQL it takes the writers' advisory lock, so that
// its updates never interleave (and deadlock) with a writer's.
func (d *DB) FoldTouches(ctx context.Context) error {
	d.touched.Store(0)
	err := d.tx(ctx, func(tx *sql.Tx) error { return d.foldTouchesTx(ctx, tx) })
	if err != nil {
		return fmt.Errorf("store: fold first-exposure touches: %w", err)
	}
	return nil
}

func (d *DB) foldTouchesTx(ctx context.Context, tx *sql.Tx) error {
	if d.postgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7041964)`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `WITH t AS (DELETE FROM first_exposure_touches RETURNING `+touchColumns+`),
			s AS (SELECT environment, feature_flag, allocation, subject, MAX(last_seen) AS ls, SUM(exposures) AS n
				FROM t GROUP BY environment, feature_flag, allocation, subject)
			UPDATE first_exposures f SET last_seen = GREATEST(f.last_seen, s.ls), exposures = f.exposures + s.n
			FROM s WHERE f.environment = s.environment AND f.feature_flag = s.feature_flag AND f.allocation = s.allocation AND f.subject = s.subject`)
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE first_exposures AS f SET last_seen = MAX(f.last_seen, s.ls), exposures = f.exposures + s.n
		FROM (SELECT environment, feature_flag, allocation, subject, MAX(last_seen) AS ls, SUM(exposures) AS n
			FROM first_exposure_touches GROUP BY environment, feature_flag, allocation, subject) AS s
		WHERE f.environment = s.environment AND f.feature_flag = s.feature_flag AND f.allocation = s.allocation AND f.subject = s.subject`); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM first_exposure_touches`)
	return err
}
