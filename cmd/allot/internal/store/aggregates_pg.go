package store

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// On PostgreSQL the aggregates of a batch are one statement: the batch,
// grouped in Go per subject and per day, goes in as a few array parameters
// (no chunking, no per-row placeholders), and data-modifying CTEs look up
// the stored first exposures, merge, upsert first_exposures, and fold the
// resulting deltas into assignment_daily and assignment_multiple, all in the
// database. It is sent in one pipeline with the advisory lock, so a batch
// costs one round trip for its aggregates whatever its size (the Go
// version's lookups and upserts, 500 rows a statement, took 40 round trips
// for 10,000 events, each a scheduling delay on a busy machine).
//
// The merge rules are updateAggregates' (the SQLite path), in SQL:
//   - takes_first: the subject is new, or the batch's first event comes
//     before the stored one ((first_seen, first_event_id) order); then the
//     first variation and day move, and the old day loses a first exposure;
//   - nm: the merged row is in several variations (the stored row was, the
//     batch was, or the batch's first variation differs from the stored one);
//     the old row's bucket in assignment_multiple loses one if it was, the
//     merged first variation's bucket gains one if it is.
const pgAggregateStatement = `WITH b AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int8[], $8::int8[], $9::int8[], $10::bool[])
		AS b(environment, feature_flag, allocation, subject, fv, fid, fs, ls, n, bm)
), o AS MATERIALIZED (
	SELECT b.*, f.first_variation AS ofv, f.first_event_id AS ofid, f.first_seen AS ofs, f.last_seen AS ols,
		f.exposures AS oexp, f.multiple_variations = 1 AS om
	FROM b LEFT JOIN LATERAL (
		-- OFFSET 0 keeps this from being flattened into a join, which the planner
		-- (taking a young, update-bloated table for a tiny one) ran as a scan of
		-- the allocation's whole index range: one primary-key probe per subject.
		SELECT * FROM first_exposures f WHERE f.environment = b.environment AND f.feature_flag = b.feature_flag
			AND f.allocation = b.allocation AND f.subject = b.subject OFFSET 0) f ON true
), m AS MATERIALIZED (
	SELECT o.*, (ofs IS NULL OR (fs, fid) < (ofs, ofid)) AS takes_first,
		CASE WHEN ofs IS NULL THEN bm ELSE om OR bm OR fv <> ofv END AS nm
	FROM o
), up AS (
	INSERT INTO first_exposures (environment, feature_flag, allocation, subject, first_variation, first_event_id, first_seen, last_seen, exposures, multiple_variations)
	SELECT environment, feature_flag, allocation, subject,
		CASE WHEN takes_first THEN fv ELSE ofv END, CASE WHEN takes_first THEN fid ELSE ofid END, CASE WHEN takes_first THEN fs ELSE ofs END,
		GREATEST(ls, COALESCE(ols, ls)), n + COALESCE(oexp, 0), CASE WHEN nm THEN 1 ELSE 0 END
	FROM m
	ON CONFLICT (environment, feature_flag, allocation, subject) DO UPDATE SET
		first_variation = excluded.first_variation, first_event_id = excluded.first_event_id,
		first_seen = excluded.first_seen, last_seen = excluded.last_seen, exposures = excluded.exposures,
		multiple_variations = excluded.multiple_variations
), deltas AS (
	SELECT environment, feature_flag, allocation, variation, day, a, 0::int8 AS f
		FROM unnest($11::text[], $12::text[], $13::text[], $14::text[], $15::int8[], $16::int8[]) AS d(environment, feature_flag, allocation, variation, day, a)
	UNION ALL
	SELECT environment, feature_flag, allocation, fv, fs / 86400000000, 0, 1 FROM m WHERE takes_first
	UNION ALL
	SELECT environment, feature_flag, allocation, ofv, ofs / 86400000000, 0, -1 FROM m WHERE takes_first AND ofs IS NOT NULL
), days AS (
	INSERT INTO assignment_daily AS d (environment, feature_flag, allocation, variation, day, assignments, first_exposures)
	SELECT environment, feature_flag, allocation, variation, day, SUM(a), SUM(f) FROM deltas
	GROUP BY environment, feature_flag, allocation, variation, day HAVING SUM(a) <> 0 OR SUM(f) <> 0
	ON CONFLICT (environment, feature_flag, allocation, day, variation) DO UPDATE SET
		assignments = d.assignments + excluded.assignments, first_exposures = d.first_exposures + excluded.first_exposures
)
INSERT INTO assignment_multiple AS x (environment, feature_flag, allocation, first_variation, subjects)
SELECT environment, feature_flag, allocation, v, SUM(k) FROM (
	SELECT environment, feature_flag, allocation, ofv AS v, -1 AS k FROM m WHERE om
	UNION ALL
	SELECT environment, feature_flag, allocation, CASE WHEN takes_first THEN fv ELSE ofv END, 1 FROM m WHERE nm
) u GROUP BY environment, feature_flag, allocation, v HAVING SUM(k) <> 0
ON CONFLICT (environment, feature_flag, allocation, first_variation) DO UPDATE SET subjects = x.subjects + excluded.subjects`

// updateAggregatesPG folds the inserted rows into the aggregates on
// PostgreSQL: the advisory lock (the statement reads first_exposures, then
// writes values computed from what it read; two writers interleaving could
// both count a subject's first exposure) and pgAggregateStatement, pipelined.
func (d *DB) updateAggregatesPG(ctx context.Context, tx pgx.Tx, rows []insertedRow) error {
	if len(rows) == 0 || d.noAggregates {
		return nil
	}
	batch, days := groupBatch(rows)
	n := len(batch)
	var (
		env, flag, alloc, subject = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		fv, fid                   = make([]string, 0, n), make([]string, 0, n)
		fs, ls, cnt               = make([]int64, 0, n), make([]int64, 0, n), make([]int64, 0, n)
		bm                        = make([]bool, 0, n)
	)
	for k, e := range batch {
		env, flag, alloc, subject = append(env, k.env), append(flag, k.flag), append(alloc, k.alloc), append(subject, k.subject)
		fv, fid = append(fv, e.firstVariation), append(fid, e.firstEventID)
		fs, ls, cnt = append(fs, e.firstSeen), append(ls, e.lastSeen), append(cnt, e.exposures)
		bm = append(bm, e.multiple)
	}
	m := len(days)
	var (
		denv, dflag, dalloc, dvar = make([]string, 0, m), make([]string, 0, m), make([]string, 0, m), make([]string, 0, m)
		dday, dn                  = make([]int64, 0, m), make([]int64, 0, m)
	)
	for k, v := range days {
		denv, dflag, dalloc, dvar = append(denv, k.env), append(dflag, k.flag), append(dalloc, k.alloc), append(dvar, k.variation)
		dday, dn = append(dday, k.day), append(dn, v.assignments)
	}
	var pb pgx.Batch
	pb.Queue(`SELECT pg_advisory_xact_lock(7041964)`)
	pb.Queue(pgAggregateStatement, env, flag, alloc, subject, fv, fid, fs, ls, cnt, bm, denv, dflag, dalloc, dvar, dday, dn)
	return tx.SendBatch(ctx, &pb).Close()
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
		e := &exposure{firstVariation: r.variation, firstEventID: r.eventID, firstSeen: r.ts, lastSeen: r.ts, exposures: 1}
		if b, ok := batch[k]; !ok {
			batch[k] = e
		} else {
			if b.firstVariation != r.variation {
				b.multiple = true
			}
			if e.before(b) {
				b.firstVariation, b.firstEventID, b.firstSeen = e.firstVariation, e.firstEventID, e.firstSeen
			}
			b.lastSeen = max(b.lastSeen, r.ts)
			b.exposures++
		}
		dayOf(days, dayKey{r.env, r.flag, r.alloc, r.variation, r.ts / microsPerDay}).assignments++
	}
	return batch, days
}
