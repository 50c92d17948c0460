package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/allot-dev/allot/cmd/allot/internal/store"
)

func init() {
	register("backup", "copy a SQLite database to a file, safely while the server runs", runBackup)
}

// runBackup copies a live SQLite database with VACUUM INTO: SQLite reads
// it in one read transaction, so the copy is a consistent snapshot even
// while allot serve writes (WAL mode lets the writer go on meanwhile).
// Copying the file with cp is not safe: it can catch the database between
// the main file and its -wal file. The copy goes to a temporary name in
// the destination's directory, is checked and fsynced, then renamed, so
// OUT is either absent or a whole, verified database.
func runBackup(ctx context.Context, e *env, args []string) error {
	fset := flag.NewFlagSet("backup", flag.ContinueOnError)
	fset.SetOutput(e.stderr)
	fset.Usage = func() {
		fmt.Fprintln(e.stderr, `usage: allot backup --db PATH --out FILE

Writes a consistent copy of the SQLite database PATH to FILE (which must not
exist), while allot serve may be running on it. To restore, stop the server
and put the copy in place of the database file (removing any PATH-wal and
PATH-shm left next to it), or start the server with --db FILE.
PostgreSQL: use pg_dump (docs/operations.md).

flags:`)
		fset.PrintDefaults()
	}
	db := fset.String("db", "", "SQLite file (default: from ALLOT_DB, else allot.db)")
	out := fset.String("out", "", "the backup file to write (required)")
	if err := parseFlags(fset, args); err != nil {
		return err
	}
	if fset.NArg() != 0 || *out == "" {
		fset.Usage()
		return &exitError{code: 2}
	}
	if *db == "" {
		*db = envOr(e, "ALLOT_DB", "allot.db")
	}
	if store.IsPostgres(*db) {
		return &exitError{code: 2, err: errors.New("--db is a PostgreSQL URL: back it up with pg_dump (see docs/operations.md)")}
	}
	if err := mustExist(*db); err != nil {
		return err
	}
	if _, err := os.Lstat(*out); err == nil {
		return &exitError{code: 2, err: fmt.Errorf("%s exists: give a new file name", *out)}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	n, err := backupSQLite(ctx, *db, *out)
	if err != nil {
		return fmt.Errorf("backup of %s: %w", *db, err)
	}
	fmt.Fprintf(e.stdout, "backed up %s to %s (%d bytes)\n", *db, *out, n)
	return nil
}

// backupSQLite writes the copy and returns its size.
func backupSQLite(ctx context.Context, src, dst string) (int64, error) {
	dir := filepath.Dir(dst)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(dst)+".partial-*")
	if err != nil {
		return 0, err
	}
	tmpName := tmp.Name()
	tmp.Close()
	// VACUUM INTO refuses a file that is not empty, and writes a new one
	// itself: the name was only reserved.
	if err := os.Remove(tmpName); err != nil {
		return 0, err
	}
	done := false
	defer func() {
		if !done {
			os.Remove(tmpName)
		}
	}()

	d, err := sql.Open("sqlite", store.SQLiteDSN(src))
	if err != nil {
		return 0, err
	}
	defer d.Close()
	if _, err := d.ExecContext(ctx, "VACUUM INTO ?", tmpName); err != nil {
		return 0, fmt.Errorf("VACUUM INTO: %w", err)
	}
	if err := checkSQLite(ctx, tmpName); err != nil {
		return 0, err
	}
	// VACUUM INTO does not fsync its output: do it before the rename.
	f, err := os.Open(tmpName)
	if err != nil {
		return 0, err
	}
	st, err := f.Stat()
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	// Link rather than rename: it fails if dst appeared meanwhile, where a
	// rename would silently replace it.
	if err := os.Link(tmpName, dst); err == nil {
		os.Remove(tmpName)
	} else if errors.Is(err, fs.ErrExist) {
		return 0, fmt.Errorf("%s appeared during the backup: %w", dst, err)
	} else {
		// A file system without hard links (some network and FUSE
		// mounts): check again, then rename.
		if _, serr := os.Lstat(dst); !errors.Is(serr, fs.ErrNotExist) {
			return 0, fmt.Errorf("%s appeared during the backup", dst)
		}
		if err := os.Rename(tmpName, dst); err != nil {
			return 0, err
		}
	}
	done = true
	if dh, err := os.Open(dir); err == nil {
		dh.Sync()
		dh.Close()
	}
	return st.Size(), nil
}

// checkSQLite opens the copy read-only and runs SQLite's integrity check.
func checkSQLite(ctx context.Context, path string) error {
	d, err := sql.Open("sqlite", "file:"+filepath.ToSlash(path)+"?mode=ro")
	if err != nil {
		return err
	}
	defer d.Close()
	var res string
	if err := d.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&res); err != nil {
		return fmt.Errorf("checking the copy: %w", err)
	}
	if res != "ok" {
		return fmt.Errorf("the copy fails SQLite's integrity check: %s", res)
	}
	return nil
}
