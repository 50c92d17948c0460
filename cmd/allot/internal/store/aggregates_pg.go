package store

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// pgLookupExposures reads the stored first exposures of a batch's subjects,
// given as four arrays; s.i is the subject's position in them. OFFSET 0
// keeps the LATERAL subquery from being flattened into a join, which the
// planner (taking a young, update-bloated table for a tiny one) ran as a
// scan of the allocation's whole index range: this way it is one
// primary-key probe per subject.
const pgLookupExposures = `SELECT s.i, f.first_variation, f.first_event_id, f.first_seen, f.multiple_variations, f.first_holdout_variation, f.holdout
	FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS s(environment, feature_flag, allocation, subject, i)
	CROSS JOIN LATERAL (SELECT first_variation, first_event_id, first_seen, multiple_variations, first_holdout_variation, holdout FROM first_exposures f
		WHERE f.environment = s.environment AND f.feature_flag = s.feature_flag AND f.allocation = s.allocation AND f.subject = s.subject
		OFFSET 0) f`

// updateAggregatesPG folds the inserted rows into the aggregates on
// PostgreSQL, in the inserting transaction: the advisory lock (the writes
// are computed from what the lookup reads: two writers interleaving could
// both count a subject's first exposure), the lookup, planAggregates, then
// the new subjects' rows and the touches by COPY (a fraction of the
// server's work of an INSERT ... SELECT, measured in BENCHMARKS.md) and the
// rest in one pipeline.
//
// When the previous batch's subjects were all new (a launch, a burst of new
// users), it first bets this one's are too: it copies every subject's row
// into first_exposures straight away, inside a savepoint, skipping the
// lookup (a primary-key probe per subject, about half the time of the raw
// COPY). A subject already there fails the COPY with a unique violation;
// then it rolls back to the savepoint and takes the lookup path.
func (d *DB) updateAggregatesPG(ctx context.Context, tx pgx.Tx, rows []insertedRow) error {
	if len(rows) == 0 || d.noAggregates {
		return nil
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(7041964)`); err != nil {
		return err
	}
	if d.lastAllNew.Load() {
		batch, days := groupBatch(rows)
		p := planAggregates(batch, days, nil)
		sp, err := tx.Begin(ctx)
		if err != nil {
			return err
		}
		err = copyFresh(ctx, tx, p.fresh)
		var pgErr *pgconn.PgError
		switch {
		case err == nil:
			if err := sp.Commit(ctx); err != nil {
				return err
			}
			return d.finishAggregatesPG(ctx, tx, p)
		case !errors.As(err, &pgErr) || pgErr.Code != "23505": // unique_violation
			return err
		}
		if err := sp.Rollback(ctx); err != nil {
			return err
		}
		d.lastAllNew.Store(false)
	}
	batch, days := groupBatch(rows)
	keys := make([]subjectKey, 0, len(batch))
	env, flag, alloc, subject := make([]string, 0, len(batch)), make([]string, 0, len(batch)), make([]string, 0, len(batch)), make([]string, 0, len(batch))
	for k := range batch {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys) // the probes walk the index in order
	for _, k := range keys {
		env, flag, alloc, subject = append(env, k.env), append(flag, k.flag), append(alloc, k.alloc), append(subject, k.subject)
	}
	res, err := tx.Query(ctx, pgLookupExposures, env, flag, alloc, subject)
	if err != nil {
		return err
	}
	stored := make(map[subjectKey]*exposure)
	for res.Next() {
		var i, m int64
		e := &exposure{}
		if err := res.Scan(&i, &e.firstVariation, &e.firstEventID, &e.firstSeen, &m, &e.firstHoldout, &e.firstHoldoutKey); err != nil {
			res.Close()
			return err
		}
		e.multiple = m != 0
		stored[keys[i-1]] = e
	}
	res.Close()
	if err := res.Err(); err != nil {
		return err
	}
	d.lastAllNew.Store(len(stored) == 0)
	p := planAggregates(batch, days, stored)
	if err := copyFresh(ctx, tx, p.fresh); err != nil {
		return err
	}
	return d.finishAggregatesPG(ctx, tx, p)
}

// copyFresh COPYs new subjects' first_exposures rows.
func copyFresh(ctx context.Context, tx pgx.Tx, fresh []exposureRow) error {
	if len(fresh) == 0 {
		return nil
	}
	buf := make([]byte, 0, len(fresh)*128)
	for _, r := range fresh {
		buf = appendCopyKey(buf, r.k)
		buf = appendCopyField(buf, r.e.firstVariation)
		buf = appendCopyField(buf, r.e.firstEventID)
		buf = appendCopyField(buf, r.e.firstHoldout)
		buf = appendCopyInts(buf, r.e.firstSeen, r.e.lastSeen, r.e.exposures, multipleInt(r.e.multiple))
		buf[len(buf)-1] = '\t' // one more column: the holdout (exposureColumns' order)
		buf = appendCopyField(buf, r.e.firstHoldoutKey)
		buf[len(buf)-1] = '\n'
	}
	_, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(buf), "COPY first_exposures ("+exposureColumns+") FROM STDIN")
	return err
}

// finishAggregatesPG COPYs the touches and sends the changed rows and the
// day and "multiple" deltas in one pipeline.
func (d *DB) finishAggregatesPG(ctx context.Context, tx pgx.Tx, p *aggregatePlan) error {
	if len(p.touches) > 0 {
		buf := make([]byte, 0, len(p.touches)*80)
		for _, r := range p.touches {
			buf = appendCopyKey(buf, r.k)
			buf = appendCopyInts(buf, r.e.lastSeen, r.e.exposures)
		}
		if _, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(buf), "COPY first_exposure_touches ("+touchColumns+") FROM STDIN"); err != nil {
			return err
		}
		d.touched.Add(int64(len(p.touches)))
	}
	var writes pgx.Batch
	if err := d.writeChanges(ctx, pgBatchTx{&writes}, p); err != nil {
		return err
	}
	if writes.Len() == 0 {
		return nil
	}
	return tx.SendBatch(ctx, &writes).Close()
}

// pgBatchTx queues the aggregate writes into one pgx pipeline.
type pgBatchTx struct{ b *pgx.Batch }

func (t pgBatchTx) exec(_ context.Context, q string, _ bool, args []any) error {
	t.b.Queue(q, args...)
	return nil
}

func appendCopyKey(dst []byte, k subjectKey) []byte {
	dst = appendCopyField(dst, k.env)
	dst = appendCopyField(dst, k.flag)
	dst = appendCopyField(dst, k.alloc)
	return appendCopyField(dst, k.subject)
}

// appendCopyInts appends the last fields of a COPY text line, ending it.
func appendCopyInts(dst []byte, v ...int64) []byte {
	for _, n := range v {
		dst = strconv.AppendInt(dst, n, 10)
		dst = append(dst, '\t')
	}
	dst[len(dst)-1] = '\n'
	return dst
}
