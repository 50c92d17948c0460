package store

import (
	"bytes"
	"context"
	"slices"
	"strconv"

	"github.com/jackc/pgx/v5"
)

// pgLookupExposures reads the stored first exposures of a batch's subjects,
// given as four arrays; s.i is the subject's position in them. OFFSET 0
// keeps the LATERAL subquery from being flattened into a join, which the
// planner (taking a young, update-bloated table for a tiny one) ran as a
// scan of the allocation's whole index range: this way it is one
// primary-key probe per subject.
const pgLookupExposures = `SELECT s.i, f.first_variation, f.first_event_id, f.first_seen, f.multiple_variations
	FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS s(environment, feature_flag, allocation, subject, i)
	CROSS JOIN LATERAL (SELECT first_variation, first_event_id, first_seen, multiple_variations FROM first_exposures f
		WHERE f.environment = s.environment AND f.feature_flag = s.feature_flag AND f.allocation = s.allocation AND f.subject = s.subject
		OFFSET 0) f`

// updateAggregatesPG folds the inserted rows into the aggregates on
// PostgreSQL, in the inserting transaction: the advisory lock and the
// lookup in one round trip (the lock, because the writes are computed from
// what the lookup read: two writers interleaving could both count a
// subject's first exposure), planAggregates, then the new subjects' rows
// and the touches by COPY (a fraction of the server's work of an INSERT
// ... SELECT, measured in BENCHMARKS.md) and the rest in one pipeline.
func (d *DB) updateAggregatesPG(ctx context.Context, tx pgx.Tx, rows []insertedRow) error {
	if len(rows) == 0 || d.noAggregates {
		return nil
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
	var lookup pgx.Batch
	lookup.Queue(`SELECT pg_advisory_xact_lock(7041964)`)
	lookup.Queue(pgLookupExposures, env, flag, alloc, subject)
	br := tx.SendBatch(ctx, &lookup)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return err
	}
	res, err := br.Query()
	if err != nil {
		br.Close()
		return err
	}
	stored := make(map[subjectKey]*exposure)
	for res.Next() {
		var i, m int64
		e := &exposure{}
		if err := res.Scan(&i, &e.firstVariation, &e.firstEventID, &e.firstSeen, &m); err != nil {
			res.Close()
			br.Close()
			return err
		}
		e.multiple = m != 0
		stored[keys[i-1]] = e
	}
	res.Close()
	if err := res.Err(); err != nil {
		br.Close()
		return err
	}
	if err := br.Close(); err != nil {
		return err
	}
	p := planAggregates(batch, days, stored)
	if len(p.fresh) > 0 {
		buf := make([]byte, 0, len(p.fresh)*128)
		for _, r := range p.fresh {
			buf = appendCopyKey(buf, r.k)
			buf = appendCopyField(buf, r.e.firstVariation)
			buf = appendCopyField(buf, r.e.firstEventID)
			buf = appendCopyInts(buf, r.e.firstSeen, r.e.lastSeen, r.e.exposures, multipleInt(r.e.multiple))
		}
		if _, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(buf), "COPY first_exposures ("+exposureColumns+") FROM STDIN"); err != nil {
			return err
		}
	}
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
