package publish_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/publish"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
	"github.com/allot-dev/allot/internal/ufc"
)

// Writes republished through Changed race the poll's Refresh: whatever the
// interleaving, no published document ever misses a flag, a write is
// served as soon as Changed returns (never undone by a poll that read
// before it), and once the
// writes stop, one poll leaves the replica with exactly what a replica
// building from scratch publishes.
func TestChangedAndRefreshRace(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, "sqlite")
	const flags = 12
	versions := make([]int64, flags)
	for i := range flags {
		k := "f" + strconv.Itoa(i)
		if _, err := storetest.OpsOn(db).CreateFlag(ctx, colorDef(k)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := storetest.OpsOn(db).UpdateFlagSettings(ctx, everyoneTo(k, "red", 0)); err != nil {
			t.Fatal(err)
		}
		versions[i] = 1
	}
	c := publish.NewCache(db, nil)
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}

	var writers, poller sync.WaitGroup
	var mu sync.Mutex // guards versions
	for w := range 3 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for range 40 {
				i := r.IntN(flags/3)*3 + w // each writer owns a third of the flags
				k := "f" + strconv.Itoa(i)
				v := []string{"control", "red", "blue"}[r.IntN(3)]
				mu.Lock()
				_, _, err := storetest.OpsOn(db).UpdateFlagSettings(ctx, everyoneTo(k, v, versions[i]))
				if err == nil {
					versions[i]++
				}
				mu.Unlock()
				if err != nil {
					t.Error(err)
					return
				}
				c.Changed(core.DefaultEnvironment, []string{k})
				// Read your writes: a poll that read before this write must
				// not have replaced it with what it read.
				res := c.Environment(core.DefaultEnvironment).Snapshot.Evaluate(k, "s", nil, ufc.TypeString, time.Now())
				if res.VariationKey() != v {
					t.Errorf("%s: wrote %s, published %s", k, v, res.VariationKey())
					return
				}
			}
		}()
	}
	stop := make(chan struct{})
	poller.Add(1)
	go func() {
		defer poller.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := c.Refresh(ctx); err != nil {
				t.Error(err)
				return
			}
			if p := c.Environment(core.DefaultEnvironment); p.Flags != flags {
				t.Errorf("a document with %d flags of %d", p.Flags, flags)
				return
			}
		}
	}()
	writers.Wait()
	close(stop)
	poller.Wait()

	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	fresh := publish.NewCache(db, nil)
	if err := fresh.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	got, want := c.Environment(core.DefaultEnvironment), fresh.Environment(core.DefaultEnvironment)
	if !bytes.Equal(got.Body, want.Body) || got.ETag != want.ETag {
		t.Fatalf("after the race the replica publishes other bytes than a fresh one:\n%s\n%s", got.Body, want.Body)
	}
}
