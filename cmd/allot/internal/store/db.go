package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	_ "modernc.org/sqlite"             // registers "sqlite"
)

//go:embed migrations
var migrations embed.FS

// DB is the store: one implementation over database/sql, with the few
// differences between SQLite and PostgreSQL in dialect.
type DB struct {
	db       *sql.DB
	postgres bool
	log      *slog.Logger
	now      func() time.Time
	// configHook, if set, runs inside EnvironmentConfig (tests).
	configHook func()
	// noAggregates: the insert path leaves the aggregates alone (see
	// DisableAggregates).
	noAggregates bool
	// touched counts first_exposure_touches rows written since the last
	// fold (see foldTouches).
	touched atomic.Int64
	// lastAllNew: the last PostgreSQL batch's subjects were all new (see
	// updateAggregatesPG).
	lastAllNew atomic.Bool
	// stmts holds the SQLite writer's prepared statements (see prepared).
	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt
	// partitions: the assignment day partitions this process has made
	// sure of (PostgreSQL, see ensurePartitions).
	partMu     sync.Mutex
	partitions map[int64]bool
}

// IsPostgres reports whether dsn names a PostgreSQL database.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// SQLiteDSN turns a file path into a modernc.org/sqlite DSN with WAL, a busy
// timeout, foreign keys and immediate write transactions.
func SQLiteDSN(path string) string {
	if strings.HasPrefix(path, "file:") {
		return path
	}
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	return "file:" + path + "?" + q.Encode()
}

// Open opens the database dsn names (a postgres:// URL or a SQLite file
// path) and brings its schema up to date.
func Open(ctx context.Context, dsn string, log *slog.Logger) (*DB, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &DB{postgres: IsPostgres(dsn), log: log, now: time.Now}
	var err error
	if d.postgres {
		d.db, err = sql.Open("pgx", dsn)
		if err == nil {
			d.db.SetMaxOpenConns(16)
			d.db.SetMaxIdleConns(4)
			d.db.SetConnMaxIdleTime(5 * time.Minute)
		}
	} else {
		d.db, err = sql.Open("sqlite", SQLiteDSN(dsn))
		if err == nil {
			d.db.SetMaxOpenConns(4)
		}
	}
	if err != nil {
		return nil, err
	}
	if err := d.db.PingContext(ctx); err != nil {
		d.db.Close()
		return nil, fmt.Errorf("store: connect: %w", err)
	}
	if err := d.migrate(ctx); err != nil {
		d.db.Close()
		return nil, fmt.Errorf("store: migrate: %w", err)
	}
	return d, nil
}

// Close closes the database.
func (d *DB) Close() error {
	d.stmtMu.Lock()
	for _, s := range d.stmts {
		s.Close()
	}
	d.stmts = nil
	d.stmtMu.Unlock()
	return d.db.Close()
}

// Ping checks that the database answers.
func (d *DB) Ping(ctx context.Context) error { return d.db.PingContext(ctx) }

// Dialect returns "postgres" or "sqlite".
func (d *DB) Dialect() string {
	if d.postgres {
		return "postgres"
	}
	return "sqlite"
}

// SetClock replaces the clock (tests).
func (d *DB) SetClock(now func() time.Time) { d.now = now }

// q rewrites ? placeholders as $n for PostgreSQL. Queries in this package
// never put a ? inside a string literal.
func (d *DB) q(query string) string {
	if !d.postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

func (d *DB) migrate(ctx context.Context) error {
	dir := "migrations/sqlite"
	if d.postgres {
		dir = "migrations/postgres"
	}
	entries, err := fs.ReadDir(migrations, dir)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sql") {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return d.tx(ctx, func(tx *sql.Tx) error {
		if d.postgres {
			// Replicas starting together migrate one at a time.
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7041963)`); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
			return err
		}
		for _, name := range names {
			var n int
			if err := tx.QueryRowContext(ctx, d.q(`SELECT COUNT(*) FROM schema_migrations WHERE name = ?`), name).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				continue
			}
			body, err := fs.ReadFile(migrations, dir+"/"+name)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if _, err := tx.ExecContext(ctx, d.q(`INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)`), name, d.now().UnixMicro()); err != nil {
				return err
			}
			d.log.Info("applied migration", "name", name, "dialect", d.Dialect())
		}
		// The production environment exists from the start.
		now := d.now().UnixMicro()
		_, err := tx.ExecContext(ctx, d.q(`INSERT INTO environments (name, revision, created_at, updated_at) VALUES (?, 1, ?, ?) ON CONFLICT (name) DO NOTHING`), core.DefaultEnvironment, now, now)
		return err
	})
}

// tx runs fn in a transaction, committing if it returns nil.
func (d *DB) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
			d.log.Warn("rollback failed", "err", rerr)
		}
		return err
	}
	return tx.Commit()
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

func fromNullMicros(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromMicros(n.Int64)
	return &t
}
