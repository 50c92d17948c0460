package ofrep

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

// gate is a RowWriter that holds every write until released.
type gate struct {
	mu      sync.Mutex
	rows    []table.Row
	release chan struct{}
}

func (g *gate) Write(ctx context.Context, rows []table.Row) (int, error) {
	<-g.release
	g.mu.Lock()
	defer g.mu.Unlock()
	g.rows = append(g.rows, rows...)
	return len(rows), nil
}

func exposure(i int, variation string) Exposure {
	return Exposure{Environment: "production", Flag: "f", Allocation: "a", Variation: variation, Subject: fmt.Sprint("s", i), At: time.Now()}
}

// TestRecorderDropsAreCounted: with the writer stuck, exposures beyond the
// queue are dropped and counted, never blocking Record; repeats are
// deduplicated; a changed variation is logged again; Close writes what was
// queued.
func TestRecorderDropsAreCounted(t *testing.T) {
	g := &gate{release: make(chan struct{})}
	r := NewRecorder(g, RecorderOptions{QueueSize: 10, Batch: 1, FlushInterval: time.Millisecond})
	// The first exposure is taken by the goroutine and stuck in Write; wait
	// for that so the queue count below is exact.
	r.Record(exposure(0, "v"))
	for deadline := time.Now().Add(5 * time.Second); len(r.in) != 0; {
		if time.Now().After(deadline) {
			t.Fatal("the writer goroutine never took the first exposure")
		}
		time.Sleep(time.Millisecond)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= 20; i++ {
			r.Record(exposure(i, "v"))
		}
		r.Record(exposure(1, "v")) // a repeat: deduplicated
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Record blocked on a stuck writer")
	}
	st := r.Stats()
	if st.Dropped != 10 || st.Deduped != 1 {
		t.Fatalf("stats %+v, want 10 dropped and 1 deduplicated", st)
	}
	// A dropped exposure was forgotten by the dedup cache: it is retried
	// once there is room.
	close(g.release)
	for deadline := time.Now().Add(5 * time.Second); r.Stats().Written < 11; {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v", r.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	r.Record(exposure(20, "v")) // was dropped: logged now
	r.Record(exposure(1, "v2")) // a new variation: logged
	r.Record(exposure(1, "v2")) // and deduplicated again
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.Record(exposure(99, "v")) // after Close: dropped and counted
	st = r.Stats()
	if st.Written != 13 || st.Dropped != 11 || st.Deduped != 2 || st.Failed != 0 {
		t.Fatalf("stats %+v, want 13 written, 11 dropped, 2 deduplicated", st)
	}
	if len(g.rows) != 13 {
		t.Fatalf("%d rows written", len(g.rows))
	}
	for _, row := range g.rows {
		if row.EventID == "" || row.Experiment != "f-a" || row.SDKName != SDKName || string(row.SubjectAttributes) != "{}" {
			t.Errorf("row %+v", row)
		}
	}
}

func TestLRUEvicts(t *testing.T) {
	l := newLRU(2)
	l.put("a", "1")
	l.put("b", "2")
	l.get("a")
	l.put("c", "3") // evicts b, the least recently used
	if l.get("b") != "" || l.get("a") != "1" || l.get("c") != "3" || len(l.items) != 2 {
		t.Fatalf("lru: a=%q b=%q c=%q n=%d", l.get("a"), l.get("b"), l.get("c"), len(l.items))
	}
}

// TestToRowHoldout: an OFREP exposure in a holdout keeps its holdout and
// half in the table, the synonym all_shipped_variants as all_shipped.
func TestToRowHoldout(t *testing.T) {
	r := toRow(Exposure{Environment: "production", Flag: "f", Allocation: "a-q3", Variation: "v", Subject: "s",
		Holdout: "q3", HoldoutVariation: "all_shipped_variants", At: time.Now()})
	if r.Holdout != "q3" || r.HoldoutVariation != table.HoldoutAllShipped {
		t.Fatalf("row %+v", r)
	}
	if r := toRow(Exposure{Flag: "f", Allocation: "a", Subject: "s", At: time.Now()}); r.Holdout != "" || r.HoldoutVariation != "" {
		t.Fatalf("row outside a holdout %+v", r)
	}
}
