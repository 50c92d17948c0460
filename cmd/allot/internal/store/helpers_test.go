package store_test

import (
	"context"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
)

// The store's own tests (sessions, the assignment table, key use) run
// against SQLite and PostgreSQL; the operations' conformance suite is in
// internal/core. Operations the tests need go through the core.
func forEachDB(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, d := range storetest.Dialects() {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			fn(t, storetest.Open(t, d))
		})
	}
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := core.ErrorCode(err); got != code {
		t.Fatalf("error %v: code %q, want %q", err, got, code)
	}
}

func ctxAs(actor string) context.Context {
	return core.WithActor(context.Background(), actor)
}

func coreOf(db *store.DB) *core.Core { return core.New(db, core.Options{}) }
