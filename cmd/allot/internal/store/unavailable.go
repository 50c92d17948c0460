package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
)

// SQLite result codes (the low byte of an extended code) that mean "not
// now" rather than "never": the database is locked, busy, out of disk, or
// its file cannot be read or written.
const (
	sqliteBusy     = 5
	sqliteLocked   = 6
	sqliteReadonly = 8
	sqliteIOErr    = 10
	sqliteFull     = 13
	sqliteCantOpen = 14
)

// IsUnavailable reports whether err means the database cannot serve the
// call for now (unreachable, busy, out of disk, shutting down, past its
// deadline), so that the caller should answer 503 with Retry-After rather
// than 500: retrying later may work, and nothing is wrong with the request.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	// An EOF from the driver is a connection that went away mid-answer.
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return true
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqliteBusy, sqliteLocked, sqliteReadonly, sqliteIOErr, sqliteFull, sqliteCantOpen:
			return true
		}
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// Class 08: connection exception; 53: insufficient resources (disk
		// full, out of memory, too many connections); 57P0x: the server is
		// shutting down or starting.
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "53") ||
			pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	if errors.As(err, &ce) || errors.As(err, &ne) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) {
		return true
	}
	// database/sql's own error for a closed pool has no exported value.
	return strings.Contains(err.Error(), "sql: database is closed") ||
		strings.Contains(err.Error(), "conn closed")
}

// IsBusy reports whether err only means contention: SQLite busy or locked,
// or a deadline that passed while waiting. The database is fine; a moment
// later the same call succeeds.
func IsBusy(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code() & 0xff
		return c == sqliteBusy || c == sqliteLocked
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "55P03" // lock_not_available
}
