package publish_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/publish"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
	"github.com/allot-dev/allot/internal/ufc"
)

// TestSubscribe: a subscriber hears the ETag of each configuration
// published for its environment only, coalesced to the latest when it
// does not read, and nothing after it cancels.
func TestSubscribe(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, "sqlite")
	c := publish.NewCache(db, nil)
	dom := core.New(db, core.Options{Listener: c})
	if _, err := dom.CreateEnvironment(ctx, "staging"); err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	prod, cancelProd := c.Subscribe("production")
	staging, cancelStaging := c.Subscribe("staging")
	defer cancelStaging()
	if n := c.Subscribers(); n != 2 {
		t.Fatalf("%d subscribers", n)
	}
	flag := func(key string) {
		t.Helper()
		_, err := dom.CreateFlag(ctx, core.Flag{Key: key, VariationType: ufc.TypeBoolean, Variations: []core.Variation{{Key: "on", Value: json.RawMessage(`true`)}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	// A flag is created in every environment: both hear of it.
	flag("a")
	flag("b") // production's subscriber has not read: it gets the latest only
	want := c.Environment("production").ETag
	select {
	case got := <-prod:
		if got != want {
			t.Errorf("production heard %s, want the latest %s", got, want)
		}
	default:
		t.Fatal("production heard nothing")
	}
	select {
	case got := <-prod:
		t.Errorf("a second, stale notification: %s", got)
	default:
	}
	select {
	case got := <-staging:
		if got != c.Environment("staging").ETag {
			t.Errorf("staging heard %s", got)
		}
	default:
		t.Fatal("staging heard nothing")
	}
	// A refresh that changes nothing tells no one.
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-prod:
		t.Errorf("notified without a change: %s", got)
	default:
	}
	cancelProd()
	cancelProd() // idempotent
	flag("c")
	select {
	case got := <-prod:
		t.Errorf("notified after cancel: %s", got)
	default:
	}
	if n := c.Subscribers(); n != 1 {
		t.Fatalf("%d subscribers after one cancel", n)
	}
}
