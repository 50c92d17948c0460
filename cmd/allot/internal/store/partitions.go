package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

// On PostgreSQL the assignment table is partitioned by UTC day (migration
// 0014). The writer makes sure, before it copies a batch, that each of the
// batch's days has its partition (ensurePartitions), and creates today's
// and the next two days' ahead, so that midnight finds its table ready.
// Days outside partitionWindow get no partition of their own and their
// events go to the DEFAULT partition: an event may be up to a day ahead and
// as old as 2000 (the ingest handler's bounds), and a partition per such day
// would let a client create thousands of tables.

// partitionWindow: the writer creates partitions for days from this long
// before today to partitionsAhead days after it.
const (
	partitionWindow = 31 * 24 * time.Hour
	partitionsAhead = 2
)

// ensurePartitions creates the missing day partitions the batch needs, on
// conn, outside the batch's transaction (DDL locks the parent table briefly;
// it is done once per day). A partition that cannot be created (another
// replica raced us, or the default partition already holds events of that
// day) is not an error: the events then go to the partition that exists or
// to the default one. Every row has a place either way.
func (d *DB) ensurePartitions(ctx context.Context, conn *pgx.Conn, groups [][]table.Row) error {
	now := d.now()
	today := dayNumber(now.UnixMicro())
	low := dayNumber(now.Add(-partitionWindow).UnixMicro())
	var want []int64
	d.partMu.Lock()
	if d.partitions == nil {
		d.partitions = make(map[int64]bool)
	}
	consider := func(day int64) {
		if day < low || day > today+partitionsAhead || d.partitions[day] {
			return
		}
		d.partitions[day] = true // tried: once per process is enough
		want = append(want, day)
	}
	for day := today; day <= today+partitionsAhead; day++ {
		consider(day)
	}
	for _, rows := range groups {
		for i := range rows {
			consider(dayNumber(rows[i].Timestamp.UnixMicro()))
		}
	}
	d.partMu.Unlock()
	for _, day := range want {
		err := createPartition(ctx, conn, day)
		var pgErr *pgconn.PgError
		switch {
		case err == nil:
		case errors.As(err, &pgErr) && (pgErr.Code == "42P07" || pgErr.Code == "23505" || pgErr.Code == "23514" || pgErr.Code == "42P17" || pgErr.Code == "55P03"):
			// 42P07/23505: created meanwhile by another writer. 23514: the
			// default partition holds events of that day. 42P17: the range
			// overlaps a partition made by hand. 55P03: a long query holds
			// the table. The rows find a place anyway.
			d.log.Debug("assignment partition not created", "day", partitionName(day), "err", err)
		default:
			d.partMu.Lock()
			delete(d.partitions, day)
			d.partMu.Unlock()
			return fmt.Errorf("create partition %s: %w", partitionName(day), err)
		}
	}
	return nil
}

// createPartition makes a day's partition. The DDL needs a lock on the
// whole table that waits for every open transaction on it (a long analytic
// query, say) and makes every later one wait behind it, the writer's
// included: it gives up after two seconds instead, and that day's events
// go to the default partition.
func createPartition(ctx context.Context, conn *pgx.Conn, day int64) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '2s'`); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s PARTITION OF assignments FOR VALUES FROM (%d) TO (%d)`,
		pgx.Identifier{partitionName(day)}.Sanitize(), day*microsPerDay, (day+1)*microsPerDay)); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// dayNumber is the UTC day of a time in microseconds, rounded down.
func dayNumber(us int64) int64 {
	day := us / microsPerDay
	if us < 0 && us%microsPerDay != 0 {
		day--
	}
	return day
}

// partitionName is the partition of a day: assignments_YYYYMMDD.
func partitionName(day int64) string {
	return "assignments_" + time.Unix(day*86400, 0).UTC().Format("20060102")
}

// Partitioned reports whether the assignment table is partitioned by day
// (PostgreSQL), so that retention drops partitions.
func (d *DB) Partitioned() bool { return d.postgres }

// partitionBound parses pg_get_expr of a range partition's bound.
var partitionBound = regexp.MustCompile(`^FOR VALUES FROM \('?(-?\d+)'?\) TO \('?(-?\d+)'?\)$`)

// DropAssignmentPartitionsBefore drops the day partitions of the
// assignment table that end at or before t (PostgreSQL; t is meant to be a
// UTC midnight) and returns how many it dropped and about how many rows
// they held (the planner's estimate: counting would read them all). Rows
// of those days in the default partition are left to DeleteAssignmentsBefore.
func (d *DB) DropAssignmentPartitionsBefore(ctx context.Context, t time.Time) (partitions int, rows int64, err error) {
	if !d.postgres {
		return 0, 0, nil
	}
	type part struct {
		name   string
		tuples float64
	}
	var drop []part
	q, err := d.db.QueryContext(ctx, `SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), c.reltuples
		FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'assignments'::regclass`)
	if err != nil {
		return 0, 0, fmt.Errorf("store: list assignment partitions: %w", err)
	}
	for q.Next() {
		var name, bound string
		var tuples float64
		if err := q.Scan(&name, &bound, &tuples); err != nil {
			q.Close()
			return 0, 0, fmt.Errorf("store: list assignment partitions: %w", err)
		}
		m := partitionBound.FindStringSubmatch(bound)
		if m == nil {
			continue // the default partition
		}
		if end, err := strconv.ParseInt(m[2], 10, 64); err == nil && end <= t.UnixMicro() {
			drop = append(drop, part{name, tuples})
		}
	}
	q.Close()
	if err := q.Err(); err != nil {
		return 0, 0, fmt.Errorf("store: list assignment partitions: %w", err)
	}
	for _, p := range drop {
		if _, err := d.db.ExecContext(ctx, `DROP TABLE `+pgx.Identifier{p.name}.Sanitize()); err != nil {
			return partitions, rows, fmt.Errorf("store: drop assignment partition %s: %w", p.name, err)
		}
		partitions++
		rows += max(int64(p.tuples), 0)
	}
	// Forget what was dropped, so that a late event of such a day makes its
	// partition again rather than land in the default one.
	d.partMu.Lock()
	for day := range d.partitions {
		if (day+1)*microsPerDay <= t.UnixMicro() {
			delete(d.partitions, day)
		}
	}
	d.partMu.Unlock()
	return partitions, rows, nil
}
