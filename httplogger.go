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

// maxServerBatch is the most events the server takes in one request, and
// maxBatchBytes half the most bytes (16 MiB): a batch is sent when it
// reaches either, so that large attributes never make it too large.
const (
	maxServerBatch = 10_000
	maxBatchBytes  = 8 << 20
	// maxEventBytes bounds one encoded event. The server refuses any event
	// near it (subjectAttributes alone is bounded at 64 KiB), and a batch
	// holding a larger one could pass the server's 16 MiB, which refuses
	// the whole batch: its valid events would be dropped with it. A batch
	// is at most maxBatchBytes + maxEventBytes.
	maxEventBytes = 1 << 20
)

var errEventTooLarge = errors.New("the event is larger than the server takes (1 MiB encoded)")

// sized returns err, or errEventTooLarge if the event encoded from
// buf[n:] is larger than maxEventBytes.
func sized(buf []byte, n int, err error) error {
	if err == nil && len(buf)-n > maxEventBytes {
		return errEventTooLarge
	}
	return err
}

// Defaults of HTTPLoggerConfig.
const (
	DefaultEventBatchSize     = 5000
	DefaultEventFlushInterval = 5 * time.Second
	DefaultEventBufferSize    = 100_000
	DefaultEventMaxBackoff    = time.Minute
	DefaultSpoolBytes         = 256 << 20
)

// senders is how many batches an HTTPLogger encodes and sends at once.
// Requests in flight, rather than cores, bound the throughput: with one
// request at a time, a 10 ms round trip would cap a logger at 100 batches
// a second, and on a busy machine the replies of a process's own
// connections are read only every few milliseconds.
const senders = 16

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
	// Gzip compresses each batch (gzip, fastest level) before the first
	// attempt to send it: about a sixth of the bytes, for about a
	// microsecond of CPU per event on the sending goroutines, more than
	// assigning the event cost. Off by default, so that the logger keeps up
	// with the client on any number of cores; turn it on where bandwidth
	// is dear. Batches that wait for a retry are compressed either way.
	Gzip bool
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
// (POST /api/v1/assignments), in batches of JSON lines (gzip-compressed
// with HTTPLoggerConfig.Gzip, and when they wait for a retry). LogAssignment
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
	mu   sync.Mutex
	cur  *rawBatch
	enc  eventEncoder
	raw  chan *rawBatch
	recs chan recordJob // the client's records, for the senders
	// assisted holds batches encoded by the client's callers (assist);
	// assistRoom is the room left in it, taken before encoding so that the
	// send never waits.
	assisted   chan *rawBatch
	assistRoom atomic.Int64
	freeRaw    chan *rawBatch
	queued     atomic.Int64 // events encoded and not yet sent or pending
	flushes    chan flushRequest
	stop       chan struct{}
	done       chan struct{}
	closing    sync.Once
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

	// Senders: goroutines that compress full batches and send them while
	// the server takes them, so that compression and the server's work
	// use every core; a batch they cannot deliver goes to run (undelivered).
	undelivered chan *pendingBatch
	sendersQuit chan struct{}
	senders     sync.WaitGroup

	// The backoff, shared by run and the senders.
	bmu         sync.Mutex
	nextAttempt time.Time
	failures    int

	// Owned by the run goroutine.
	zip        compressor
	pending    []*pendingBatch
	spoolBytes int64
	seq        int
}

// compressor gzips batches with one reused writer and buffer.
type compressor struct {
	zw  *gzip.Writer
	buf bytes.Buffer
}

// compress returns b's events compressed, in a slice of their own (the
// transport may read a body after Do returns).
func (c *compressor) compress(b []byte) []byte {
	if c.zw == nil {
		c.zw, _ = gzip.NewWriterLevel(&c.buf, gzip.BestSpeed)
	}
	c.buf.Reset()
	c.zw.Reset(&c.buf)
	_, _ = c.zw.Write(b) // a bytes.Buffer does not fail
	_ = c.zw.Close()
	return bytes.Clone(c.buf.Bytes())
}

// rawBatch is a batch of events encoded as JSON lines.
type rawBatch struct {
	buf    []byte
	events int
	refs   atomic.Int32 // while sent uncompressed (sendRaw)
}

type flushRequest struct {
	ctx  context.Context
	done chan error
}

// pendingBatch is a batch that waits for a retry: its body in memory, or in
// a spool file.
type pendingBatch struct {
	body   []byte
	gzip   bool // body is gzip-compressed (always so in the spool)
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
		cfg:      cfg,
		url:      strings.TrimRight(cfg.BaseURL, "/") + "/v1/assignments",
		raw:      make(chan *rawBatch, cfg.BufferSize/cfg.BatchSize+2),
		recs:     make(chan recordJob, cfg.BufferSize/batchLen+1),
		assisted: make(chan *rawBatch, senders),
		freeRaw:  make(chan *rawBatch, cfg.BufferSize/cfg.BatchSize+2),
		flushes:  make(chan flushRequest),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	l.undelivered = make(chan *pendingBatch)
	l.assistRoom.Store(senders)
	l.sendersQuit = make(chan struct{})
	l.ctx, l.cancel = context.WithCancel(context.Background())
	if cfg.SpoolDir != "" {
		if err := l.loadSpool(); err != nil {
			return nil, err
		}
	}
	for range senders {
		l.senders.Go(l.send)
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
	full := l.add(true, func(dst []byte) ([]byte, error) { return l.enc.appendEvent(dst, &e) })
	l.mu.Unlock()
	l.handOff(full)
}

// logRecords takes a batch of the client's records, the fast path of the
// client's logging goroutine: the senders encode them straight to JSON (in
// parallel when the volume is high) and then release the batch. Unlike
// LogAssignment, it waits when the buffer is full: the caller is the
// client's logging goroutine, not the assignment path, so waiting moves
// the backlog into the client's buffer, where the assignment path yields
// its processor before anything is dropped (see Config.EventQueueSize).
// Batches waiting for a retry do not make it wait: they are bounded by
// dropping the oldest, as always.
func (l *HTTPLogger) logRecords(b *batch, release func(*batch)) {
	n := len(b.recs)
	if l.closed() {
		l.drop(n, "the logger is closed")
		release(b)
		return
	}
	l.queued.Add(int64(n))
	select {
	case l.recs <- recordJob{b, release}:
	case <-l.stop:
		l.queued.Add(-int64(n))
		l.drop(n, "the logger is closed")
		release(b)
	}
}

// assist encodes batches of the client's records on the caller's
// goroutine (the client's assignment path, when its buffer is nearly full)
// and queues them for the senders. It never waits: without room it
// returns false at once.
func (l *HTTPLogger) assist(bs []*batch, release func(*batch)) bool {
	if l.closed() {
		return false
	}
	if l.assistRoom.Add(-1) < 0 {
		l.assistRoom.Add(1)
		return false
	}
	total := 0
	for _, b := range bs {
		total += len(b.recs)
	}
	l.queued.Add(int64(total))
	var enc eventEncoder
	raw := l.newRaw()
	for _, b := range bs {
		for i := range b.recs {
			n := len(raw.buf)
			buf, err := enc.appendRecord(raw.buf, b, &b.recs[i])
			if err != nil {
				raw.buf = buf[:n]
				l.queued.Add(-1)
				l.drop(1, "an event could not be encoded")
				continue
			}
			raw.buf, raw.events = buf, raw.events+1
		}
		release(b)
	}
	l.assisted <- raw // room was taken above
	return true
}

// recordJob is a batch of the client's records to encode and send.
type recordJob struct {
	b       *batch
	release func(*batch)
}

// encodeJobs encodes record batches. Many events (half a batch or more, a
// high volume) are encoded into batches of this sender, so that the
// senders encode in parallel; a few join the batch being filled, to go
// with the next full batch or the flush interval, as LogAssignment's do.
func (l *HTTPLogger) encodeJobs(z *compressor, enc *eventEncoder, jobs []recordJob) {
	total := 0
	for _, j := range jobs {
		total += len(j.b.recs)
	}
	if total < l.cfg.BatchSize/2 {
		var full []*rawBatch
		l.mu.Lock()
		for _, j := range jobs {
			for i := range j.b.recs {
				r := &j.b.recs[i]
				if f := l.add(false, func(dst []byte) ([]byte, error) { return l.enc.appendRecord(dst, j.b, r) }); f != nil {
					full = append(full, f)
				}
			}
		}
		l.mu.Unlock()
		l.queued.Add(-int64(total)) // add counted them again
		for _, j := range jobs {
			j.release(j.b)
		}
		for _, f := range full {
			l.sendRaw(z, f)
		}
		return
	}
	cur := l.newRaw()
	for _, j := range jobs {
		for i := range j.b.recs {
			n := len(cur.buf)
			buf, err := enc.appendRecord(cur.buf, j.b, &j.b.recs[i])
			if err = sized(buf, n, err); err != nil {
				cur.buf = buf[:n]
				l.queued.Add(-1)
				l.drop(1, "an event could not be encoded")
				l.cfg.Logger.Error("allot: encoding an assignment event", "err", err)
				continue
			}
			cur.buf = buf
			if cur.events++; cur.events == l.cfg.BatchSize || len(cur.buf) >= maxBatchBytes {
				l.sendRaw(z, cur)
				cur = l.newRaw()
			}
		}
		j.release(j.b)
	}
	if cur.events > 0 {
		l.sendRaw(z, cur)
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

// add encodes one event into the current batch, or (if bounded) drops it
// when the buffer is full, and returns the batch if it is now full. l.mu
// is held.
func (l *HTTPLogger) add(bounded bool, encode func([]byte) ([]byte, error)) *rawBatch {
	if bounded && l.queued.Load()+l.memoryEvents.Load() >= int64(l.cfg.BufferSize) {
		l.drop(1, "the event buffer is full")
		return nil
	}
	if l.cur == nil {
		l.cur = l.newRaw()
	}
	n := len(l.cur.buf)
	buf, err := encode(l.cur.buf)
	if err = sized(buf, n, err); err != nil {
		l.cur.buf = buf[:n]
		l.drop(1, "an event could not be encoded")
		l.cfg.Logger.Error("allot: encoding an assignment event", "err", err)
		return nil
	}
	l.cur.buf = buf
	l.cur.events++
	l.queued.Add(1)
	if l.cur.events < l.cfg.BatchSize && len(l.cur.buf) < maxBatchBytes {
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
	bg := l.ctx
	for {
		select {
		case p := <-l.undelivered:
			l.pend(p)
		case <-tick.C:
			if b := l.takeCurrent(); b != nil {
				l.ship(bg, b)
			}
			l.retry(bg, false)
		case req := <-l.flushes:
			// A Close that gives up (l.ctx) ends a Flush in progress too.
			ctx, stop := context.WithCancel(req.ctx)
			unhook := context.AfterFunc(l.ctx, stop)
			err := l.drain(ctx)
			if err == nil {
				err = l.retry(ctx, true)
			}
			req.done <- err
			unhook()
			stop()
		case <-l.stop:
			ctx, stop := context.WithCancel(*l.closeCtx.Load())
			context.AfterFunc(l.ctx, stop)
			if l.drain(ctx) == nil {
				l.retry(ctx, true)
			}
			stop()
			// Stop the senders; what they still hold comes back through
			// undelivered, to the spool or the count of dropped events.
			close(l.sendersQuit)
			quit := make(chan struct{})
			go func() { l.senders.Wait(); close(quit) }()
			for {
				select {
				case p := <-l.undelivered:
					l.pend(p)
					continue
				case <-quit:
				}
				break
			}
			if n := l.queued.Load(); n > 0 {
				// Encoded after the senders stopped: nobody will send them.
				l.queued.Add(-n)
				l.drop(int(n), "the logger is closed")
			}
			return
		}
	}
}

// drain ships the batch being filled and waits until the senders have
// delivered or handed back every batch encoded so far (Flush, Close).
func (l *HTTPLogger) drain(ctx context.Context) error {
	if b := l.takeCurrent(); b != nil {
		l.ship(ctx, b)
	}
	wait := time.NewTicker(time.Millisecond)
	defer wait.Stop()
	for l.queued.Load() > 0 {
		select {
		case p := <-l.undelivered:
			l.pend(p)
		case <-wait.C:
			// A sender may have added a few events since.
			if b := l.takeCurrent(); b != nil {
				l.ship(ctx, b)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// send is a sender goroutine: it encodes the client's records, and
// compresses (with Gzip) and sends full batches, unless earlier batches
// wait for a retry: then it hands them to run, so that a down server gets
// one request per backoff, not one per batch.
func (l *HTTPLogger) send() {
	var z compressor
	var enc eventEncoder
	var jobs []recordJob
	for {
		select {
		case b := <-l.raw:
			l.sendRaw(&z, b)
		case b := <-l.assisted:
			l.assistRoom.Add(1)
			l.sendRaw(&z, b)
		case j := <-l.recs:
			// Take what else is waiting, up to about a batch.
			jobs = append(jobs[:0], j)
			n := len(j.b.recs)
		more:
			for n < l.cfg.BatchSize {
				select {
				case j := <-l.recs:
					jobs = append(jobs, j)
					n += len(j.b.recs)
				default:
					break more
				}
			}
			l.encodeJobs(&z, &enc, jobs)
			clear(jobs)
		case <-l.sendersQuit:
			for {
				select {
				case b := <-l.raw:
					n := b.events
					l.undelivered <- l.seal(&z, b)
					l.queued.Add(-int64(n))
				case b := <-l.assisted:
					n := b.events
					l.undelivered <- l.seal(&z, b)
					l.queued.Add(-int64(n))
				case j := <-l.recs:
					// Encoded here, sent by nobody: pending, or spooled.
					cur := &rawBatch{}
					for i := range j.b.recs {
						if buf, err := enc.appendRecord(cur.buf, j.b, &j.b.recs[i]); sized(buf, len(cur.buf), err) == nil {
							cur.buf, cur.events = buf, cur.events+1
						}
					}
					j.release(j.b)
					l.drop(len(j.b.recs)-cur.events, "an event could not be encoded")
					n := len(j.b.recs)
					if cur.events > 0 {
						l.undelivered <- l.seal(&z, cur)
					}
					l.queued.Add(-int64(n))
				default:
					return
				}
			}
		}
	}
}

// sendRaw sends a full batch, or hands it to run for a retry.
func (l *HTTPLogger) sendRaw(z *compressor, b *rawBatch) {
	n := b.events
	defer l.queued.Add(-int64(n))
	if l.cfg.Gzip || !l.healthy() {
		p := l.seal(z, b)
		if !l.healthy() || !l.attempt(l.ctx, p, nil) {
			l.undelivered <- p
		}
		return
	}
	// Uncompressed, the body is the batch's buffer, reused once both the
	// transport (which may read the body after Do returns) and this
	// function are done with it.
	p := &pendingBatch{body: b.buf, events: n, size: int64(len(b.buf))}
	b.refs.Store(2)
	body := &recyclingBody{Reader: bytes.NewReader(b.buf), done: func() { l.unref(b) }}
	if !l.attempt(l.ctx, p, body) {
		p.body, p.gzip = z.compress(p.body), true
		p.size = int64(len(p.body))
		l.undelivered <- p
	}
	l.unref(b)
}

// recyclingBody is a request body that calls done once closed.
type recyclingBody struct {
	*bytes.Reader
	once sync.Once
	done func()
}

func (r *recyclingBody) Close() error {
	r.once.Do(r.done)
	return nil
}

// unref drops a reference to a batch's buffer, reusing it after the last.
func (l *HTTPLogger) unref(b *rawBatch) {
	if b.refs.Add(-1) != 0 {
		return
	}
	b.buf, b.events = b.buf[:0], 0
	select {
	case l.freeRaw <- b:
	default:
	}
}

// newRaw returns an empty batch, reused if one is free.
func (l *HTTPLogger) newRaw() *rawBatch {
	var b *rawBatch
	select {
	case b = <-l.freeRaw:
	default:
		b = &rawBatch{}
	}
	if b.buf == nil {
		b.buf = make([]byte, 0, min(400*l.cfg.BatchSize, maxBatchBytes))
	}
	return b
}

// healthy reports whether a batch may be sent now: no batch waits for a
// retry and no backoff is running.
func (l *HTTPLogger) healthy() bool {
	if l.pendingEvents.Load() > 0 {
		return false
	}
	l.bmu.Lock()
	defer l.bmu.Unlock()
	return !time.Now().Before(l.nextAttempt)
}

// seal makes a full batch a request body: compressed (then the buffer is
// reused), or as it is (then the body keeps the buffer: the transport may
// read a body after Do returns).
func (l *HTTPLogger) seal(z *compressor, b *rawBatch) *pendingBatch {
	p := &pendingBatch{events: b.events}
	if l.cfg.Gzip {
		p.body, p.gzip = z.compress(b.buf), true
		b.buf = b.buf[:0]
	} else {
		p.body, b.buf = b.buf, nil
	}
	p.size = int64(len(p.body))
	b.events = 0
	select {
	case l.freeRaw <- b:
	default:
	}
	return p
}

// ship sends a batch from run itself (the flush interval's partial batch,
// Flush, Close), or keeps it for a retry.
func (l *HTTPLogger) ship(ctx context.Context, b *rawBatch) {
	p := l.seal(&l.zip, b)
	defer l.queued.Add(-int64(p.events))
	if len(l.pending) == 0 && l.healthy() {
		if l.attempt(ctx, p, nil) {
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
		l.bmu.Lock()
		wait := time.Until(l.nextAttempt)
		l.bmu.Unlock()
		if wait > 0 {
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
		if !l.attempt(ctx, p, nil) {
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
// reqBody, if not nil, reads p.body (and is closed by the transport).
func (l *HTTPLogger) attempt(ctx context.Context, p *pendingBatch, reqBody io.ReadCloser) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url, bytes.NewReader(p.body))
	if err != nil {
		if reqBody != nil {
			reqBody.Close()
		}
		l.drop(p.events, "bad request")
		return true
	}
	if reqBody != nil {
		// Not GetBody: a body that is reused must not be read again after
		// Close; a failed attempt is retried by this logger instead.
		req.Body, req.GetBody = reqBody, nil
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	if p.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
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
		l.bmu.Lock()
		l.failures = 0
		l.nextAttempt = time.Time{}
		l.bmu.Unlock()
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
	l.bmu.Lock()
	defer l.bmu.Unlock()
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
	if !p.gzip {
		// A batch that waits is compressed: it may wait long, in memory
		// or in the spool, and CPU is then cheaper than bytes.
		p.body, p.gzip = l.zip.compress(p.body), true
		p.size = int64(len(p.body))
	}
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
		l.pending = append(l.pending, &pendingBatch{path: path, gzip: true, events: n, size: st.Size()})
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
