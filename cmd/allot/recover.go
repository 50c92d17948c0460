package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
)

func init() {
	register("admin", "offline administration of a server's database (admin recover: a new admin token)", runAdmin)
}

// runAdmin runs the offline admin commands. They open the database
// directly, so they work when no admin token is left (the last one was
// revoked or lost), which the management API cannot help with.
func runAdmin(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] != "recover" {
		fmt.Fprintln(e.stderr, "usage: allot admin recover --db PATH_OR_URL [--name recovered]")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return &exitError{code: 0}
		}
		return &exitError{code: 2}
	}
	fset := flag.NewFlagSet("admin recover", flag.ContinueOnError)
	fset.SetOutput(e.stderr)
	fset.Usage = func() {
		fmt.Fprintln(e.stderr, `usage: allot admin recover --db PATH_OR_URL [--name recovered]

Mints a new admin token straight in the database (the SQLite file or the
postgres:// URL that allot serve uses; it may be running) and prints it
once. Use it when every admin token is revoked or lost. The new token is
recorded in the audit log as created by system:recover.

flags:`)
		fset.PrintDefaults()
	}
	db := fset.String("db", "", "SQLite file, or a postgres:// URL (default: from ALLOT_DB, else allot.db)")
	name := fset.String("name", "recovered", "name of the new token")
	if err := parseFlags(fset, args[1:]); err != nil {
		return err
	}
	if fset.NArg() != 0 {
		fset.Usage()
		return &exitError{code: 2}
	}
	if *db == "" {
		*db = envOr(e, "ALLOT_DB", "allot.db")
	}
	if !store.IsPostgres(*db) {
		if err := mustExist(*db); err != nil {
			return err
		}
	}
	d, err := store.Open(ctx, *db, nil)
	if err != nil {
		return fmt.Errorf("open the database: %w", err)
	}
	defer d.Close()
	// The same operation as the API's, through the domain core (audited).
	tok, err := core.New(d, core.Options{}).CreateAdminToken(core.WithActor(ctx, "system:recover"), *name)
	if err != nil {
		return fmt.Errorf("create an admin token: %w", err)
	}
	fmt.Fprintf(e.stderr, "New admin token %q (shown once; keep it safe):\n", *name)
	fmt.Fprintln(e.stdout, tok.Secret)
	return nil
}

// mustExist refuses a SQLite path with no database: opening it would create
// an empty one and hand out a token for a server that does not use it.
func mustExist(path string) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return &exitError{code: 1, err: fmt.Errorf("%s: no such database (give the --db that allot serve uses)", path)}
	} else if err != nil {
		return err
	}
	return nil
}
