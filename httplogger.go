package allot

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxServerBatch is the most events the server takes in one request.
const maxServerBatch = 10_000

// Defaults of HTTPLoggerConfig.
const (
	DefaultEventBatchSize     = 1000
	DefaultEventFlushInterval = 5 * time.Second
	DefaultEventBufferSize    = 100_000
	DefaultEventMaxBackoff    = time.Minute
	DefaultSpoolBytes         = 256 << 20
)

// HTTPLoggerConfig configures an HTTPLogger. The zero value of every field
// but SDKKey is a working default.
type HTTPLoggerConfig struct {
	// SDKKey authorizes writing events to its environment.
	SDKKey string
	// BaseURL is the server's API root, /api included (default
	// DefaultBaseURL); events go to BaseURL + "/v1/assignments".
	BaseURL string
	// HTTPClient sends the batches (default: a client with
	// DefaultRequestTimeout).
	HTTPClient *http.Client
	// BatchSize is the most events sent in one request
	// (default DefaultEventBatchSize).
	BatchSize int
	// FlushInterval is the longest an event waits before its batch is sent
	// (default DefaultEventFlushInterval).
	FlushInterval time.Duration
	// BufferSize bounds the events held in memory: queued, batched, and
	// (without SpoolDir) waiting for a retry. Beyond it new events are
	// dropped and counted (default DefaultEventBufferSize).
	BufferSize int
	// MaxBackoff caps the wait between retries (default
	// DefaultEventMaxBackoff); a Retry-After from the server is honoured.
	MaxBackoff time.Duration
	// SpoolDir, if set, is a directory where batches that could not be sent
	// are kept until they are, so they survive a restart or a long outage.
	SpoolDir string
	// MaxSpoolBytes bounds the spool (default DefaultSpoolBytes); when it is
	// full, the oldest batches are dropped and counted.
	MaxSpoolBytes int64
	// Logger receives the logger's warnings (default: discarded).
	Logger *slog.Logger
}

// HTTPLoggerStats counts what an HTTPLogger did with the events it got.
type HTTPLoggerStats struct {
	Sent     uint64 // stored by the server (duplicates of a retry included)
	Rejected uint64 // refused by the server as invalid
	Dropped  uint64 // lost: buffer or spool full, or a batch the server can never take
	Retries  uint64 // failed attempts that will be retried
	Pending  int    // events waiting for a retry, in memory or in the spool
}

// HTTPLogger is an AssignmentLogger that sends events to an Allot server
// (POST /api/v1/assignments), in gzip-compressed batches. LogAssignment
// never blocks. Failed batches are retried with exponential backoff and
// jitter; every event carries an id, so a retry never stores it twice. Use
// it as Config.AssignmentLogger: the client's Flush and Close flush and
// close it too.
type HTTPLogger struct {
	cfg HTTPLoggerConfig
	url string
	// Events are encoded as JSON lines by whoever logs them (the client's
	// logging goroutine), into cur under mu; a full batch goes to the run
	// goroutine through raw, which compresses and sends it.
	mu      sync.Mutex
	cur     *rawBatch
	enc     eventEncoder
	raw     chan *rawBatch
	freeRaw chan *rawBatch
	queued  atomic.Int64 // events encoded and not yet sent or pending
	flushes chan flushRequest
	stop    chan struct{}
	done    chan struct{}
	closing sync.Once
	// ctx is the context of every request; Close cancels it when its own
	// context ends first, so that no request outlives the logger.
	ctx    context.Context
	cancel context.CancelFunc
	// closeCtx bounds the last delivery attempts of Close.
	closeCtx atomic.Pointer[context.Context]

	sent, rejected, dropped, retries atomic.Uint64
	pendingEvents                    atomic.Int64
	memoryEvents                     atomic.Int64 // pending events held in memory (not spooled)
	warnedFull                       atomic.Bool

	// Owned by the run goroutine.
	zw          *gzip.Writer
	zbuf        bytes.Buffer
	pending     []*pendingBatch
	nextAttempt time.Time
	failures    int
	spoolBytes  int64
	seq         int
}

// rawBatch is a batch of events encoded as JSON lines.
type rawBatch struct {
	buf    []byte
	events int
}

type flushRequest struct {
	ctx  context.Context
	done chan error
}

// pendingBatch is a batch that waits for a retry: its body in memory, or in
// a spool file.
type pendingBatch struct {
	body   []byte
	path   string
	events int
	size   int64
}

var _ AssignmentLogger = (*HTTPLogger)(nil)

// NewHTTPLogger starts a logger. Close stops it.
func NewHTTPLogger(cfg HTTPLoggerConfig) (*HTTPLogger, error) {
	if cfg.SDKKey == "" {
		return nil, errNoKey
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: DefaultRequestTimeout}
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultEventBatchSize
	}
	// The server takes at most 10,000 events a request; a larger batch
	// would be refused every time.
	cfg.BatchSize = min(cfg.BatchSize, maxServerBatch)
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = DefaultEventFlushInterval
	}
	if cfg.BufferSize <= 0 {
		cfg.BufferSize = DefaultEventBufferSize
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultEventMaxBackoff
	}
	if cfg.MaxSpoolBytes <= 0 {
		cfg.MaxSpoolBytes = DefaultSpoolBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	l := &HTTPLogger{
		cfg:     cfg,
		url:     strings.TrimRight(cfg.BaseURL, "/") + "/v1/assignments",
		raw:     make(chan *rawBatch, cfg.BufferSize/cfg.BatchSize+2),
		freeRaw: make(chan *rawBatch, 4),
		flushes: make(chan flushRequest),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	l.zw, _ = gzip.NewWriterLevel(&l.zbuf, gzip.BestSpeed)
	l.ctx, l.cancel = context.WithCancel(context.Background())
	if cfg.SpoolDir != "" {
		if err := l.loadSpool(); err != nil {
			return nil, err
		}
	}
	go l.run()
	return l, nil
}

// LogAssignment queues e for sending. It never blocks: when the buffer is
// full the event is dropped and counted (HTTPLoggerStats.Dropped).
func (l *HTTPLogger) LogAssignment(e AssignmentEvent) {
	if e.EventID == "" {
		e.EventID = newEventID()
	}
	if l.closed() {
		l.drop(1, "the logger is closed")
		return
	}
	l.mu.Lock()
	full := l.add(func(dst []byte) ([]byte, error) { return l.enc.appendEvent(dst, &e) })
	l.mu.Unlock()
	l.handOff(full)
}

// logRecords encodes the client's events straight from its records, the
// fast path of the client's logging goroutine.
func (l *HTTPLogger) logRecords(b *batch) {
	if l.closed() {
		l.drop(len(b.recs), "the logger is closed")
		return
	}
	var full []*rawBatch
	l.mu.Lock()
	for i := range b.recs {
		r := &b.recs[i]
		if f := l.add(func(dst []byte) ([]byte, error) { return l.enc.appendRecord(dst, b, r) }); f != nil {
			full = append(full, f)
		}
	}
	l.mu.Unlock()
	for _, f := range full {
		l.handOff(f)
	}
}

func (l *HTTPLogger) closed() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

// add encodes one event into the current batch, or drops it when the
// buffer is full, and returns the batch if it is now full. l.mu is held.
func (l *HTTPLogger) add(encode func([]byte) ([]byte, error)) *rawBatch {
	if l.queued.Load()+l.memoryEvents.Load() >= int64(l.cfg.BufferSize) {
		l.drop(1, "the event buffer is full")
		return nil
	}
	if l.cur == nil {
		select {
		case l.cur = <-l.freeRaw:
		default:
			l.cur = &rawBatch{buf: make([]byte, 0, 512*l.cfg.BatchSize)}
		}
	}
	n := len(l.cur.buf)
	buf, err := encode(l.cur.buf)
	if err != nil {
		l.cur.buf = buf[:n]
		l.drop(1, "an event could not be encoded")
		l.cfg.Logger.Error("allot: encoding an assignment event", "err", err)
		return nil
	}
	l.cur.buf = buf
	l.cur.events++
	l.queued.Add(1)
	if l.cur.events < l.cfg.BatchSize {
		return nil
	}
	full := l.cur
	l.cur = nil
	return full
}

// handOff gives a full batch to the run goroutine. The channel has room
// for every batch the buffer can hold, so the send does not block; when it
// is more than half full the sender yields its processor, so that the run
// goroutine (runnable, but maybe waiting for one) catches up.
func (l *HTTPLogger) handOff(b *rawBatch) {
	if b == nil {
		return
	}
	select {
	case l.raw <- b:
	default:
		l.queued.Add(-int64(b.events))
		l.drop(b.events, "the event buffer is full")
		return
	}
	if len(l.raw) > cap(l.raw)/2 {
		runtime.Gosched()
	}
}

// takeCurrent takes the batch being filled (for the flush interval, Flush
// and Close).
func (l *HTTPLogger) takeCurrent() *rawBatch {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.cur
	l.cur = nil
	return b
}

func (l *HTTPLogger) drop(n int, why string) {
	l.dropped.Add(uint64(n))
	if l.warnedFull.CompareAndSwap(false, true) {
		l.cfg.Logger.Warn("allot: dropping assignment events", "reason", why)
	}
}

// Flush sends every event logged so far, retrying (without waiting for the
// backoff) until they are delivered or ctx ends.
func (l *HTTPLogger) Flush(ctx context.Context) error {
	req := flushRequest{ctx: ctx, done: make(chan error, 1)}
	select {
	case l.flushes <- req:
	case <-l.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close sends what is queued, trying until ctx ends, then stops. With a
// SpoolDir, what could not be sent stays in the spool for the next start.
func (l *HTTPLogger) Close(ctx context.Context) error {
	l.closing.Do(func() {
		l.closeCtx.Store(&ctx)
		close(l.stop)
	})
	select {
	case <-l.done:
	case <-ctx.Done():
		// Abort the request in flight; the goroutine then spools or drops
		// what is left and ends.
		l.cancel()
		<-l.done
		return ctx.Err()
	}
	l.cancel()
	if n := l.pendingEvents.Load(); n > 0 && l.cfg.SpoolDir == "" {
		return fmt.Errorf("allot: %d assignment events could not be sent", n)
	}
	return nil
}

// Stats reports what the logger did so far.
func (l *HTTPLogger) Stats() HTTPLoggerStats {
	return HTTPLoggerStats{Sent: l.sent.Load(), Rejected: l.rejected.Load(), Dropped: l.dropped.Load(),
		Retries: l.retries.Load(), Pending: int(l.pendingEvents.Load())}
}

func (l *HTTPLogger) run() {
	defer close(l.done)
	tick := time.NewTicker(l.cfg.FlushInterval)
	defer tick.Stop()
	// drain ships everything queued so far (Flush, Close).
	drain := func(ctx context.Context) {
		for {
			select {
			case b := <-l.raw:
				l.ship(ctx, b)
			default:
				if b := l.takeCurrent(); b != nil {
					l.ship(ctx, b)
				}
				return
			}
		}
	}
	bg := l.ctx
	for {
		select {
		case b := <-l.raw:
			l.ship(bg, b)
		case <-tick.C:
			if b := l.takeCurrent(); b != nil {
				l.ship(bg, b)
			}
			l.retry(bg, false)
		case req := <-l.flushes:
			// A Close that gives up (l.ctx) ends a Flush in progress too.
			ctx, stop := context.WithCancel(req.ctx)
			unhook := context.AfterFunc(l.ctx, stop)
			drain(ctx)
			req.done <- l.retry(ctx, true)
			unhook()
			stop()
		case <-l.stop:
			ctx, stop := context.WithCancel(*l.closeCtx.Load())
			context.AfterFunc(l.ctx, stop)
			drain(ctx)
			l.retry(ctx, true)
			stop()
			return
		}
	}
}

// ship compresses a batch and sends it now, unless earlier batches wait
// for a retry: then it joins them, so that a down server gets one request
// per backoff, not one per batch. The batch's buffer is then reused.
func (l *HTTPLogger) ship(ctx context.Context, b *rawBatch) {
	n := b.events
	l.zbuf.Reset()
	l.zw.Reset(&l.zbuf)
	_, _ = l.zw.Write(b.buf) // a bytes.Buffer does not fail
	_ = l.zw.Close()
	b.buf, b.events = b.buf[:0], 0
	select {
	case l.freeRaw <- b:
	default:
	}
	// A body of its own: the transport may read it after Do returns, and
	// zbuf is reused for the next batch.
	p := &pendingBatch{body: bytes.Clone(l.zbuf.Bytes()), events: n, size: int64(l.zbuf.Len())}
	defer l.queued.Add(-int64(n))
	if len(l.pending) == 0 && !time.Now().Before(l.nextAttempt) {
		if l.attempt(ctx, p) {
			return
		}
	}
	l.pend(p)
}

// retry sends waiting batches, oldest first. Unless force, it respects the
// backoff and stops at the first failure; with force (Flush, Close) it
// waits out the backoff and goes on until all are sent or ctx ends.
func (l *HTTPLogger) retry(ctx context.Context, force bool) error {
	for len(l.pending) > 0 {
		if wait := time.Until(l.nextAttempt); wait > 0 {
			if !force {
				return nil
			}
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
		}
		p := l.pending[0]
		if p.body == nil {
			body, err := os.ReadFile(p.path)
			if err != nil {
				l.cfg.Logger.Error("allot: reading a spooled batch; dropping it", "path", p.path, "err", err)
				l.unpend(p, true)
				continue
			}
			p.body = body
		}
		if !l.attempt(ctx, p) {
			if p.path != "" {
				p.body = nil // reread from the spool next time
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue
		}
		l.unpend(p, false)
	}
	return nil
}

// attempt sends one batch and reports whether it is done with: delivered,
// or refused for good (then dropped and counted). On a retryable failure it
// schedules the next attempt.
func (l *HTTPLogger) attempt(ctx context.Context, p *pendingBatch) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url, bytes.NewReader(p.body))
	if err != nil {
		l.drop(p.events, "bad request")
		return true
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Authorization", "Bearer "+l.cfg.SDKKey)
	resp, err := l.cfg.HTTPClient.Do(req)
	if err != nil {
		// The error text names the URL, never the key (sent in a header).
		l.failed(0, "")
		l.cfg.Logger.Warn("allot: sending assignment events failed; will retry", "err", err)
		return false
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		var r struct {
			Accepted int `json:"accepted"`
			Rejected []struct {
				Error string `json:"error"`
			} `json:"rejected"`
		}
		json.Unmarshal(body, &r)
		l.sent.Add(uint64(r.Accepted))
		if len(r.Rejected) > 0 {
			l.rejected.Add(uint64(len(r.Rejected)))
			l.cfg.Logger.Warn("allot: the server rejected assignment events", "count", len(r.Rejected), "first", r.Rejected[0].Error)
		}
		l.failures = 0
		l.nextAttempt = time.Time{}
		return true
	case resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusRequestEntityTooLarge ||
		resp.StatusCode == http.StatusUnprocessableEntity:
		// The batch itself is unacceptable: sending it again cannot help.
		l.drop(p.events, "the server refused a batch")
		l.cfg.Logger.Error("allot: the server refused a batch of assignment events; dropping it",
			"status", resp.StatusCode, "body", strings.TrimSpace(string(body[:min(len(body), 200)])))
		return true
	default:
		// 5xx, 408, 429, and also 401/403/404: a key not yet known to this
		// replica, a server still starting, a proxy in the way. Keep the
		// batch and try again later.
		l.failed(resp.StatusCode, resp.Header.Get("Retry-After"))
		if resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusRequestTimeout {
			l.cfg.Logger.Warn("allot: the server refused assignment events; will retry", "status", resp.StatusCode)
		}
		return false
	}
}

// failed schedules the next attempt: the poller's exponential backoff with
// jitter, or the server's Retry-After if that is longer.
func (l *HTTPLogger) failed(status int, retryAfter string) {
	l.retries.Add(1)
	l.failures++
	now := time.Now()
	d := backoff(l.failures, l.cfg.MaxBackoff)
	if ra := parseRetryAfter(retryAfter, now); ra > d {
		d = min(ra, 10*l.cfg.MaxBackoff)
	}
	l.nextAttempt = now.Add(d)
}

// pend keeps a batch for a retry: in the spool if there is one, else in
// memory, dropping the oldest batches beyond the buffer.
func (l *HTTPLogger) pend(p *pendingBatch) {
	if l.cfg.SpoolDir != "" {
		l.seq++
		name := fmt.Sprintf("%020d-%06d.jsonl.gz", time.Now().UnixNano(), l.seq)
		path := filepath.Join(l.cfg.SpoolDir, name)
		if err := writeFileAtomic(path, p.body); err != nil {
			l.cfg.Logger.Error("allot: spooling assignment events failed; keeping them in memory", "err", err)
		} else {
			p.path, p.body = path, nil
			l.spoolBytes += p.size
		}
	}
	l.pending = append(l.pending, p)
	l.pendingEvents.Add(int64(p.events))
	if p.path == "" {
		l.memoryEvents.Add(int64(p.events))
	}
	for len(l.pending) > 1 && l.overLimit() {
		l.unpend(l.pending[0], true)
	}
}

// overLimit reports whether the waiting batches exceed their bounds: the
// spool's size, and (in every mode: a spool that cannot be written keeps
// batches in memory) the events held in memory.
func (l *HTTPLogger) overLimit() bool {
	return l.spoolBytes > l.cfg.MaxSpoolBytes || l.memoryEvents.Load() > int64(l.cfg.BufferSize)
}

// unpend forgets a pending batch (the oldest), delivered or dropped.
func (l *HTTPLogger) unpend(p *pendingBatch, dropped bool) {
	i := slices.Index(l.pending, p)
	if i < 0 {
		return
	}
	l.pending = slices.Delete(l.pending, i, i+1)
	l.pendingEvents.Add(-int64(p.events))
	if p.path == "" {
		l.memoryEvents.Add(-int64(p.events))
	}
	if dropped {
		l.drop(p.events, "the retry buffer or spool is full")
	}
	if p.path != "" {
		os.Remove(p.path)
		l.spoolBytes -= p.size
	}
}

// loadSpool picks up the batches a previous process could not send.
func (l *HTTPLogger) loadSpool() error {
	if err := os.MkdirAll(l.cfg.SpoolDir, 0o700); err != nil {
		return fmt.Errorf("allot: spool: %w", err)
	}
	names, err := filepath.Glob(filepath.Join(l.cfg.SpoolDir, "*.jsonl.gz"))
	if err != nil {
		return fmt.Errorf("allot: spool: %w", err)
	}
	slices.Sort(names)
	for _, path := range names {
		st, err := os.Stat(path)
		if err != nil {
			continue
		}
		n, err := countSpooled(path)
		if err != nil {
			l.cfg.Logger.Warn("allot: ignoring an unreadable spool file", "path", path, "err", err)
			continue
		}
		l.pending = append(l.pending, &pendingBatch{path: path, events: n, size: st.Size()})
		l.pendingEvents.Add(int64(n))
		l.spoolBytes += st.Size()
	}
	return nil
}

func countSpooled(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return 0, err
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		return 0, err
	}
	return bytes.Count(data, []byte{'\n'}), nil
}

var errNoKey = errors.New("allot: HTTPLoggerConfig.SDKKey is required")
