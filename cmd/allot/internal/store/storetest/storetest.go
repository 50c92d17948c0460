// Package storetest opens fresh, isolated databases for tests: a SQLite file
// in t.TempDir(), and a PostgreSQL schema of its own in the test server.
//
// PostgreSQL is found through ALLOT_TEST_POSTGRES (default
// postgres://127.0.0.1:5432/test?sslmode=disable). Only the exact value
// "off" skips the PostgreSQL cases; an unreachable server fails the test.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/allot-dev/allot/cmd/allot/internal/store"
)

// DefaultPostgres is the CI database.
const DefaultPostgres = "postgres://127.0.0.1:5432/test?sslmode=disable"

// Dialects lists the databases to run against: "sqlite", and "postgres"
// unless ALLOT_TEST_POSTGRES is "off".
func Dialects() []string {
	if os.Getenv("ALLOT_TEST_POSTGRES") == "off" {
		return []string{"sqlite"}
	}
	return []string{"sqlite", "postgres"}
}

// DSN returns a fresh database for dialect: a SQLite file path, or a
// PostgreSQL URL whose search_path is a new schema dropped at cleanup.
func DSN(t testing.TB, dialect string) string {
	t.Helper()
	if dialect == "sqlite" {
		return filepath.Join(t.TempDir(), "allot.db")
	}
	base := os.Getenv("ALLOT_TEST_POSTGRES")
	if base == "" {
		base = DefaultPostgres
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		admin.Close()
		t.Fatalf("postgres at %s is required (set ALLOT_TEST_POSTGRES=off to skip): %v", base, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Logf("drop schema %s: %v", schema, err)
		}
		admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("ALLOT_TEST_POSTGRES: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Open opens a fresh store for dialect, closed at cleanup.
func Open(t testing.TB, dialect string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), DSN(t, dialect), nil)
	if err != nil {
		t.Fatalf("open %s: %v", dialect, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
