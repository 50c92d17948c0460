package ingest

import (
	"context"
	"log/slog"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/store"
)

// retainBatch is how many rows one retention statement deletes: small
// enough that ingestion (on SQLite, the same single writer lock) never waits
// long behind it.
const retainBatch = 5000

// Retain deletes assignment events older than maxAge, now and then every
// interval, until ctx ends. It deletes in small batches with a pause
// between them, so that it never holds the database for long.
func Retain(ctx context.Context, db *store.DB, maxAge, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		total, err := RetainOnce(ctx, db, time.Now().Add(-maxAge))
		if err != nil && ctx.Err() == nil {
			log.Error("deleting old assignment events", "err", err)
		} else if total > 0 {
			log.Info("deleted old assignment events", "rows", total, "max_age", maxAge)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RetainOnce deletes every event older than cutoff, batch by batch, then
// the aggregates of what it deleted (store.DeleteAggregatesBefore), and
// returns how many events it deleted.
//
// On PostgreSQL, where the table is partitioned by UTC day, it works by
// whole days, as the aggregates do: it drops the partitions of the days
// before the cutoff's, then deletes the default partition's events of those
// days; the cutoff's own day stays until a later run passes it. The count
// then includes the planner's estimate of the dropped partitions' rows.
func RetainOnce(ctx context.Context, db *store.DB, cutoff time.Time) (int, error) {
	total := 0
	if db.Partitioned() {
		cutoff = cutoff.UTC().Truncate(24 * time.Hour)
		_, rows, err := db.DropAssignmentPartitionsBefore(ctx, cutoff)
		total += int(rows)
		if err != nil {
			return total, err
		}
	}
	for {
		n, err := db.DeleteAssignmentsBefore(ctx, cutoff, retainBatch)
		total += n
		if err != nil {
			return total, err
		}
		if n < retainBatch {
			return total, db.DeleteAggregatesBefore(ctx, cutoff)
		}
		select {
		case <-ctx.Done():
			return total, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
