// Package ingest stores assignment events that SDKs send: one writer
// goroutine turns concurrent requests into few, large transactions, and
// callers learn their events are durable before they answer 2xx.
package ingest

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

// ErrBusy means the write queue is full: the caller should answer 503 with
// Retry-After rather than accept data it cannot store in time.
var ErrBusy = errors.New("ingest: write queue full")

// writeTimeout bounds one transaction of the writer.
const writeTimeout = time.Minute

// ErrClosed means the writer has stopped.
var ErrClosed = errors.New("ingest: writer closed")

// Options tune a Writer. Zero values pick defaults.
type Options struct {
	// QueueSize bounds the requests waiting for the writer (default 256).
	QueueSize int
	// MaxBatch is the most rows written in one transaction (default 10,000).
	MaxBatch int
}

// Writer writes batches of assignment rows through a single goroutine, so
// that SQLite sees one writer and PostgreSQL few, large transactions.
type Writer struct {
	db       *store.DB
	maxBatch int
	queue    chan *request
	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.RWMutex // held for reading while enqueueing, for writing to close
	closed   bool
}

type request struct {
	rows []table.Row
	done chan result
}

type result struct {
	inserted int
	err      error
}

// NewWriter starts a writer. Close stops it.
func NewWriter(db *store.DB, opts Options) *Writer {
	if opts.QueueSize <= 0 {
		opts.QueueSize = 256
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 10_000
	}
	w := &Writer{db: db, maxBatch: opts.MaxBatch, queue: make(chan *request, opts.QueueSize), stop: make(chan struct{})}
	w.wg.Add(1)
	go w.run()
	return w
}

// Write stores rows durably and returns how many were new (the others were
// already stored: a retry). It never blocks on a full queue: it returns
// ErrBusy. If ctx ends while the rows wait, Write returns ctx's error and
// the rows may or may not be stored; a retry is safe either way.
func (w *Writer) Write(ctx context.Context, rows []table.Row) (int, error) {
	if len(rows) == 0 {
		return 0, nil
	}
	req := &request{rows: rows, done: make(chan result, 1)}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return 0, ErrClosed
	}
	select {
	case w.queue <- req:
	default:
		w.mu.RUnlock()
		return 0, ErrBusy
	}
	w.mu.RUnlock()
	select {
	case r := <-req.done:
		return r.inserted, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// Close stops accepting requests, writes what is queued, and waits for the
// writer to finish or ctx to end.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.queue)
	}
	w.mu.Unlock()
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *Writer) run() {
	defer w.wg.Done()
	var batch []*request
	for first := range w.queue {
		batch = append(batch[:0], first)
		n := len(first.rows)
		// Take whatever else is already waiting, up to MaxBatch rows: under
		// load, many requests share one transaction.
	drain:
		for n < w.maxBatch {
			select {
			case r, ok := <-w.queue:
				if !ok {
					break drain
				}
				batch = append(batch, r)
				n += len(r.rows)
			default:
				break drain
			}
		}
		w.write(batch)
	}
}

// write stores a batch of requests in one transaction and answers each. The
// writer's own context is not the callers': a caller that gave up does not
// abort the others' transaction.
func (w *Writer) write(batch []*request) {
	groups := make([][]table.Row, len(batch))
	for i, r := range batch {
		groups[i] = r.rows
	}
	// Bounded, so that a stuck database cannot hold every caller forever.
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	counts, err := w.db.InsertAssignmentGroups(ctx, groups)
	for i, r := range batch {
		if err != nil {
			r.done <- result{err: err}
		} else {
			r.done <- result{inserted: counts[i]}
		}
	}
}
