package store

import (
	"context"
	"database/sql"
	"time"
)

// The SQLite assignment writer runs the same few multi-row statements batch
// after batch (500 rows of 14 columns, a lookup of 500 subjects, ...).
// modernc.org/sqlite compiles each statement it is given, and compiling a
// 7,000-parameter INSERT cost about an eighth of the writer's CPU, so those
// are prepared once and reused (database/sql prepares them again on each
// connection that needs them, once). PostgreSQL needs none of this: pgx
// keeps its own cache of prepared statements per connection.

// maxPrepared bounds the cache: statements of other sizes (a batch's last,
// partial chunk) are run unprepared rather than cached.
const maxPrepared = 64

// reusable reports whether a statement of n rows is worth preparing: full
// chunks (the common, repeated shape) and tiny ones (a few days, a few
// variations: the same handful of shapes every batch).
func reusable(n, chunk int) bool { return n == chunk || n <= 4 }

// prepared returns the cached statement for q, preparing it if there is
// room; nil means run it unprepared.
func (d *DB) prepared(ctx context.Context, q string) *sql.Stmt {
	d.stmtMu.Lock()
	defer d.stmtMu.Unlock()
	if s, ok := d.stmts[q]; ok {
		return s
	}
	if d.stmts == nil {
		d.stmts = make(map[string]*sql.Stmt)
	}
	if len(d.stmts) >= maxPrepared {
		return nil
	}
	// Preparing takes a connection from the pool besides the caller's
	// (which holds one for its transaction); if none is free at once, run
	// unprepared this time rather than wait, maybe for ever, for one.
	pctx, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
	defer cancel()
	s, err := d.db.PrepareContext(pctx, q)
	if err != nil {
		return nil // the unprepared run reports any real error
	}
	d.stmts[q] = s
	return s
}

// execCached runs q in tx, prepared when reuse says its shape repeats.
func (d *DB) execCached(ctx context.Context, tx *sql.Tx, q string, reuse bool, args []any) (sql.Result, error) {
	if reuse && !d.postgres {
		if s := d.prepared(ctx, q); s != nil {
			return tx.StmtContext(ctx, s).ExecContext(ctx, args...)
		}
	}
	return tx.ExecContext(ctx, q, args...)
}

// queryCached is execCached for a query.
func (d *DB) queryCached(ctx context.Context, tx *sql.Tx, q string, reuse bool, args []any) (*sql.Rows, error) {
	if reuse && !d.postgres {
		if s := d.prepared(ctx, q); s != nil {
			return tx.StmtContext(ctx, s).QueryContext(ctx, args...)
		}
	}
	return tx.QueryContext(ctx, q, args...)
}
