package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
	_ "github.com/jackc/pgx/v5/stdlib"
)

// TestListen: on PostgreSQL a committed change is heard by a listener; a
// listening connection that dies is replaced, and the new one says so
// ("") since changes made meanwhile were not heard. On SQLite Listen
// returns at once.
func TestListen(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sqlite := storetest.Open(t, "sqlite")
	done := make(chan struct{})
	go func() { sqlite.Listen(ctx, func(string) {}); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Listen on SQLite did not return")
	}
	if !slices.Contains(storetest.Dialects(), "postgres") {
		t.Skip("ALLOT_TEST_POSTGRES=off")
	}

	// A unique application name marks this test's connections, so that
	// killing the listener touches no one else's.
	app := fmt.Sprintf("allot_listen_test_%d", time.Now().UnixNano())
	dsn := storetest.DSN(t, "postgres") + "&application_name=" + app
	db, err := store.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mu sync.Mutex
	var heard []string
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		db.Listen(ctx, func(env string) {
			mu.Lock()
			heard = append(heard, env)
			mu.Unlock()
		})
	}()
	defer func() { cancel(); <-stopped }()
	wait := func(what string, cond func([]string) bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			mu.Lock()
			h := append([]string(nil), heard...)
			mu.Unlock()
			if cond(h) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: heard %q", what, h)
			}
		}
	}
	wait("listening", func(h []string) bool { return len(h) == 1 && h[0] == "" })
	if _, err := core.New(db, core.Options{}).CreateSDKKey(ctx, "production", "web"); err != nil {
		t.Fatal(err)
	}
	wait("the change", func(h []string) bool { return slices.Contains(h, "production") })

	admin, err := sql.Open("pgx", storetest.DSN(t, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	res, err := admin.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'`, app)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("%d listening connections terminated, want 1", n)
	}
	mu.Lock()
	before := len(heard)
	mu.Unlock()
	wait("listening again", func(h []string) bool { return len(h) > before && slices.Contains(h[before:], "") })
}
