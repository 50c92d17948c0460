package ofrep

import (
	"container/list"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/ingest"
	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

// Exposure is one assignment an OFREP evaluation handed out: what an SDK
// would have logged had it evaluated locally.
type Exposure struct {
	Environment string
	Flag        string
	Allocation  string
	Variation   string
	// Holdout and HoldoutVariation are the matched split's extraLogging
	// holdoutKey and holdoutVariation ("" outside holdouts).
	Holdout          string
	HoldoutVariation string
	Subject          string
	Attributes       map[string]any // the context without targetingKey
	At               time.Time
}

// toRow is the one place an Exposure becomes an assignment-table row. The
// row type is about to move (the assignment table gets its own package);
// only this function and RowWriter need to follow it.
func toRow(e Exposure) table.Row {
	attrs, err := json.Marshal(e.Attributes)
	if err != nil || e.Attributes == nil {
		attrs = []byte("{}")
	}
	return table.Row{
		EventID:           newEventID(),
		Environment:       e.Environment,
		Experiment:        e.Flag + "-" + e.Allocation,
		FeatureFlag:       e.Flag,
		Allocation:        e.Allocation,
		Variation:         e.Variation,
		Subject:           e.Subject,
		SubjectAttributes: attrs,
		Timestamp:         e.At.UTC(),
		SDKName:           SDKName,
		SDKVersion:        SDKVersion,
		ReceivedAt:        e.At.UTC(),
		Holdout:           e.Holdout,
		HoldoutVariation:  table.HoldoutVariation(e.HoldoutVariation),
	}
}

// SDKName and SDKVersion mark the rows OFREP evaluations log, so that the
// assignment table tells remote evaluations from SDK ones.
const (
	SDKName    = "allot-ofrep"
	SDKVersion = "1"
)

// newEventID is a random 128-bit id, as SDKs make (UUID-sized).
func newEventID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// RowWriter stores assignment rows durably: *ingest.Writer is the one the
// server uses; tests may wrap it.
type RowWriter interface {
	Write(ctx context.Context, rows []table.Row) (int, error)
}

// RecorderOptions tune a Recorder; zero values pick defaults.
type RecorderOptions struct {
	// QueueSize bounds the exposures waiting to be written (default 8192).
	// When full, new exposures are dropped and counted.
	QueueSize int
	// DedupSize is how many (environment, flag, subject) assignments are
	// remembered to skip logging one that has not changed (default 100,000).
	DedupSize int
	// Batch is the most rows per write (default 1,000), FlushInterval the
	// longest an exposure waits for its batch to fill (default 250 ms).
	Batch         int
	FlushInterval time.Duration
	Log           *slog.Logger
}

// Recorder logs exposures to the assignment table off the request path:
// Record never blocks and never does I/O; one goroutine, owned by the
// Recorder and stopped by Close, batches and writes.
type Recorder struct {
	w     RowWriter
	opts  RecorderOptions
	log   *slog.Logger
	in    chan Exposure
	stop  chan struct{}
	done  chan struct{}
	mu    sync.Mutex // guards dedup, closed
	dedup *lru
	// closed is set by Close; later Records are dropped (and counted).
	closed bool

	written, dropped, deduped, failed atomic.Uint64
	warned                            atomic.Bool
}

// NewRecorder starts a recorder writing through w. Close stops it.
func NewRecorder(w RowWriter, opts RecorderOptions) *Recorder {
	if opts.QueueSize <= 0 {
		opts.QueueSize = 8192
	}
	if opts.DedupSize <= 0 {
		opts.DedupSize = 100_000
	}
	if opts.Batch <= 0 {
		opts.Batch = 1000
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 250 * time.Millisecond
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	r := &Recorder{
		w: w, opts: opts, log: opts.Log,
		in:    make(chan Exposure, opts.QueueSize),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
		dedup: newLRU(opts.DedupSize),
	}
	go r.run()
	return r
}

// RecorderStats counts what happened to exposures.
type RecorderStats struct {
	Written uint64 // rows the writer accepted (new or already stored)
	Deduped uint64 // repeats of an unchanged assignment, not logged again
	Dropped uint64 // lost because the queue was full or the recorder closed
	Failed  uint64 // lost because the write failed
}

// Stats reports the counters.
func (r *Recorder) Stats() RecorderStats {
	return RecorderStats{Written: r.written.Load(), Deduped: r.deduped.Load(), Dropped: r.dropped.Load(), Failed: r.failed.Load()}
}

// Record queues e unless the same subject was already logged with the same
// allocation and variation of the flag. It never blocks: a full queue drops
// e, counts it, and warns once.
func (r *Recorder) Record(e Exposure) {
	key := e.Environment + "\x00" + e.Flag + "\x00" + e.Subject
	val := e.Allocation + "\x00" + e.Variation
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.dropped.Add(1)
		return
	}
	if r.dedup.get(key) == val {
		r.mu.Unlock()
		r.deduped.Add(1)
		return
	}
	r.dedup.put(key, val)
	select {
	case r.in <- e:
		r.mu.Unlock()
	default:
		// Forget it, so the next evaluation of this subject tries again.
		r.dedup.remove(key)
		r.mu.Unlock()
		r.dropped.Add(1)
		if !r.warned.Swap(true) {
			r.log.Warn("ofrep: assignment queue full, dropping assignment events (counted in allot_ofrep_assignments_dropped_total)", "queue", r.opts.QueueSize)
		}
	}
}

// Close stops taking exposures, writes those queued, and waits for the
// writer goroutine to finish or ctx to end.
func (r *Recorder) Close(ctx context.Context) error {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.stop)
	}
	r.mu.Unlock()
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Recorder) run() {
	defer close(r.done)
	batch := make([]table.Row, 0, r.opts.Batch)
	timer := time.NewTimer(r.opts.FlushInterval)
	defer timer.Stop()
	flush := func() {
		if len(batch) == 0 {
			return
		}
		r.write(batch)
		batch = batch[:0]
	}
	for {
		select {
		case e := <-r.in:
			batch = append(batch, toRow(e))
			if len(batch) >= r.opts.Batch {
				flush()
			}
		case <-timer.C:
			flush()
			timer.Reset(r.opts.FlushInterval)
		case <-r.stop:
			// Record no longer sends (closed is set under mu), so what is in
			// the channel is all there will be.
			for {
				select {
				case e := <-r.in:
					batch = append(batch, toRow(e))
					if len(batch) >= r.opts.Batch {
						flush()
					}
				default:
					flush()
					return
				}
			}
		}
	}
}

// write stores one batch, retrying briefly while the ingestion queue is
// busy; rows it cannot store are counted as failed and logged.
func (r *Recorder) write(rows []table.Row) {
	var err error
	for attempt := range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err = r.w.Write(ctx, rows)
		cancel()
		if err == nil {
			r.written.Add(uint64(len(rows)))
			return
		}
		if !errors.Is(err, ingest.ErrBusy) {
			break
		}
		time.Sleep(time.Duration(50<<attempt) * time.Millisecond)
	}
	r.failed.Add(uint64(len(rows)))
	r.log.Error("ofrep: assignment events lost", "rows", len(rows), "err", err)
}

// lru is a bounded map from string to string evicting the least recently
// used entry; not safe for concurrent use.
type lru struct {
	max   int
	ll    *list.List
	items map[string]*list.Element
}

type lruEntry struct{ key, val string }

func newLRU(max int) *lru {
	return &lru{max: max, ll: list.New(), items: make(map[string]*list.Element, max)}
}

func (l *lru) get(key string) string {
	if e, ok := l.items[key]; ok {
		l.ll.MoveToFront(e)
		return e.Value.(*lruEntry).val
	}
	return ""
}

func (l *lru) put(key, val string) {
	if e, ok := l.items[key]; ok {
		e.Value.(*lruEntry).val = val
		l.ll.MoveToFront(e)
		return
	}
	l.items[key] = l.ll.PushFront(&lruEntry{key, val})
	if l.ll.Len() > l.max {
		old := l.ll.Back()
		l.ll.Remove(old)
		delete(l.items, old.Value.(*lruEntry).key)
	}
}

func (l *lru) remove(key string) {
	if e, ok := l.items[key]; ok {
		l.ll.Remove(e)
		delete(l.items, key)
	}
}
