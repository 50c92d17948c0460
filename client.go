package allot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/allot-dev/allot/internal/eval"
)

// Errors returned by Init and NewClient. The client they return works in
// every case: it serves what configuration it has, or defaults.
var (
	// ErrInitTimeout: no configuration came from the server within
	// Config.InitTimeout.
	ErrInitTimeout = errors.New("allot: no configuration from the server within the init timeout")
	// ErrUnauthorized: the server refused the SDK key (401 or 403). The
	// client keeps polling with backoff in case the key becomes valid.
	ErrUnauthorized = errors.New("allot: the server refused the SDK key")
	// ErrClosed: the client has been closed.
	ErrClosed = errors.New("allot: client closed")
)

// Configuration sources reported by Status.
const (
	SourceNone    = ""        // no configuration yet: every getter returns its default
	SourceServer  = "server"  // fetched from the server
	SourceCache   = "cache"   // read from Config.CacheFile at start
	SourceInitial = "initial" // Config.InitialConfiguration
	SourceManual  = "manual"  // installed with SetConfiguration
)

// Client assigns subjects to variations. It is safe for concurrent use;
// its getters do no I/O and never panic, and take no lock except, for
// a first exposure, a shard's lock held for one append. A nil *Client
// returns defaults.
type Client struct {
	cfg    Config
	snap   atomic.Pointer[snapshot]
	now    func() time.Time
	events *eventProcessor // nil without an AssignmentLogger

	ctx       context.Context // ends when the client closes; data sources run under it
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	fetched     chan struct{} // closed after the first good fetch
	fetchedOnce sync.Once
	denied      chan struct{} // closed after the first 401/403
	deniedOnce  sync.Once

	mu    sync.Mutex // guards fetch
	fetch fetchStatus

	installMu  sync.Mutex // serializes installs (source.go)
	srcMu      sync.Mutex // guards srcStopped
	srcStopped bool       // set by Close: no data source may start
}

// snapshot is a compiled configuration and where it came from.
type snapshot struct {
	*eval.Snapshot
	source   string
	loadedAt time.Time
	gen      uint64 // distinct for every snapshot of the process
}

func newSnapshot(s *eval.Snapshot, source string, now time.Time) *snapshot {
	return &snapshot{Snapshot: s, source: source, loadedAt: now, gen: generation.Add(1)}
}

type fetchStatus struct {
	lastSuccess time.Time
	lastAttempt time.Time
	lastError   error
	failures    int
	etag        string
	mode        string // Status.Mode
}

var (
	instance   atomic.Pointer[Client]
	generation atomic.Uint64
)

// Init creates the process's client, makes it the one Instance returns,
// and waits for its first configuration until ctx ends or
// Config.InitTimeout passes. It always returns a usable client; the error
// says why it is not ready yet (ErrInitTimeout, ErrUnauthorized, or the
// context's error), in which case the client serves InitialConfiguration,
// the cached configuration, or defaults, and keeps trying in the
// background. A client that Init replaces is closed.
func Init(ctx context.Context, cfg Config) (*Client, error) {
	c, err := NewClient(ctx, cfg)
	if old := instance.Swap(c); old != nil && old != c {
		// Bounded: a logger that cannot deliver (say, an HTTPLogger whose
		// server is down) must not hold up Init. A logger the new client
		// uses too stays open.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), replacedCloseTimeout)
		_ = old.close(cctx, !sameLogger(old.cfg.AssignmentLogger, cfg.AssignmentLogger))
		cancel()
	}
	return c, err
}

// replacedCloseTimeout bounds closing the client that Init replaces.
const replacedCloseTimeout = 5 * time.Second

// sameLogger reports whether a and b are the same logger. Loggers of
// uncomparable types (an AssignmentLoggerFunc) are never the same, and have
// nothing to close anyway.
func sameLogger(a, b AssignmentLogger) (same bool) {
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a != nil && a == b
}

// Instance returns the client made by Init, or nil before Init. A nil
// client's getters return defaults, so Instance().GetStringAssignment(...)
// is always safe.
func Instance() *Client { return instance.Load() }

// NewClient creates an independent client (for tests or multi-tenant
// hosts) and waits for its first configuration as Init does.
func NewClient(ctx context.Context, cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	c := &Client{
		cfg:     cfg,
		now:     cfg.now,
		fetched: make(chan struct{}),
		denied:  make(chan struct{}),
	}
	c.ctx, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
	c.loadStartConfiguration()
	if cfg.AssignmentLogger != nil {
		c.events = newEventProcessor(cfg)
		c.wg.Go(c.events.run)
	}
	if cfg.Offline {
		c.fetch.mode = ModeOffline
		return c, nil
	}
	c.fetch.mode = ModePolling
	p := newPoller(cfg)
	_ = c.startSource(p) // cannot fail: nobody can have closed c yet
	if !cfg.DisableStreaming {
		_ = c.startSource(newStreamer(cfg, p))
	}
	return c, c.waitReady(ctx)
}

// waitReady waits for the first good fetch, a refusal of the key, the end
// of ctx or the init timeout.
func (c *Client) waitReady(ctx context.Context) error {
	if c.cfg.InitTimeout < 0 {
		return c.notReady(ErrInitTimeout)
	}
	timer := time.NewTimer(c.cfg.InitTimeout)
	defer timer.Stop()
	select {
	case <-c.fetched:
		return nil
	case <-c.denied:
		return c.notReady(ErrUnauthorized)
	case <-ctx.Done():
		return c.notReady(ctx.Err())
	case <-timer.C:
		return c.notReady(ErrInitTimeout)
	}
}

func (c *Client) notReady(reason error) error {
	c.mu.Lock()
	last := c.fetch.lastError
	c.mu.Unlock()
	msg := "serving defaults"
	if s := c.snap.Load(); s != nil {
		msg = "serving the " + s.source + " configuration"
		if !s.CreatedAt.IsZero() {
			msg += " created at " + s.CreatedAt.UTC().Format(time.RFC3339)
		}
	}
	if last != nil && !errors.Is(reason, ErrUnauthorized) {
		return fmt.Errorf("%w (last error: %v); %s", reason, last, msg)
	}
	return fmt.Errorf("%w; %s", reason, msg)
}

// loadStartConfiguration installs the newer of the cache file and
// Config.InitialConfiguration.
func (c *Client) loadStartConfiguration() {
	var (
		best    *snapshot
		bestDoc []byte
	)
	if len(c.cfg.InitialConfiguration) > 0 {
		s, err := eval.Load(c.cfg.InitialConfiguration)
		if err != nil {
			c.cfg.Logger.Warn("allot: ignoring Config.InitialConfiguration", "error", err)
		} else {
			best, bestDoc = newSnapshot(s, SourceInitial, c.now()), c.cfg.InitialConfiguration
		}
	}
	if c.cfg.CacheFile != "" {
		data, err := os.ReadFile(c.cfg.CacheFile)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			c.cfg.Logger.Warn("allot: cannot read the configuration cache", "file", c.cfg.CacheFile, "error", err)
		default:
			s, err := eval.Load(data)
			if err != nil {
				c.cfg.Logger.Warn("allot: ignoring an unreadable configuration cache", "file", c.cfg.CacheFile, "error", err)
			} else if best == nil || s.CreatedAt.After(best.CreatedAt) {
				best, bestDoc = newSnapshot(s, SourceCache, c.now()), data
			}
		}
	}
	if best != nil {
		c.swap(best, bestDoc, origin{source: best.source})
		c.cfg.Logger.Info("allot: serving a stored configuration", "source", best.source, "createdAt", best.CreatedAt, "flags", best.Len())
	}
}

// SetConfiguration installs a UFC document as the current configuration,
// as a fetch would (it does not write the cache file). A document that is
// not a valid configuration is rejected and the current one stays. The
// next successful fetch replaces it; use it with Config.Offline to drive
// the client by hand.
func (c *Client) SetConfiguration(doc []byte) error {
	if c == nil {
		return ErrClosed
	}
	// No ETag: the next fetch must bring a full document (not a 304) and
	// replace this one, as documented.
	return c.install(doc, origin{source: SourceManual})
}

// Close stops polling, delivers the queued assignment events, and waits
// for every goroutine of the client to end, or for ctx to end. It is safe
// to call more than once; later calls return the first result.
func (c *Client) Close(ctx context.Context) error {
	return c.close(ctx, true)
}

// close is Close; closeLogger says whether a logger with a lifecycle of its
// own (HTTPLogger) is closed too (Init keeps one that the new client uses).
func (c *Client) close(ctx context.Context, closeLogger bool) error {
	if c == nil {
		return nil
	}
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		c.stopSources()
		var err error
		if c.events != nil {
			err = c.events.close(ctx)
			// The logger is closed once it has received every event, or
			// once ctx ended: closing it then still stops its goroutine.
			if cl, ok := c.cfg.AssignmentLogger.(interface{ Close(context.Context) error }); ok && closeLogger {
				err = errors.Join(err, cl.Close(ctx))
			}
		}
		done := make(chan struct{})
		go func() { c.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
		}
		c.closeErr = err
		instance.CompareAndSwap(c, nil)
	})
	return c.closeErr
}

// Flush delivers every assignment event queued so far to the
// AssignmentLogger and returns when it has, or when ctx ends. If the logger
// has a Flush(context.Context) error method (HTTPLogger does), it is called
// too, so that Flush returns once the events have left the process.
func (c *Client) Flush(ctx context.Context) error {
	if c == nil || c.events == nil {
		return nil
	}
	if c.closed.Load() {
		return ErrClosed
	}
	if err := c.events.flush(ctx); err != nil {
		return err
	}
	if f, ok := c.cfg.AssignmentLogger.(interface{ Flush(context.Context) error }); ok {
		return f.Flush(ctx)
	}
	return nil
}

// Status describes the client's configuration and event delivery.
type Status struct {
	// Ready reports whether a configuration is being served. Before that,
	// every getter returns its default.
	Ready bool
	// Source says where the configuration came from: SourceServer,
	// SourceCache, SourceInitial, SourceManual, or SourceNone.
	Source string
	// Mode says how configurations arrive: ModeStreaming (a stream is
	// open), ModePolling (none is: streaming is off, refused by the server,
	// or reconnecting) or ModeOffline.
	Mode string
	// Environment, CreatedAt and Flags describe the configuration; Age is
	// the time since CreatedAt.
	Environment string
	CreatedAt   time.Time
	Age         time.Duration
	Flags       int

	// LastSuccess is the time of the last successful fetch (a new
	// configuration or 304 Not Modified), LastAttempt that of the last
	// try; LastError is the error of the last failed one, and
	// ConsecutiveFailures counts the failures since the last success.
	LastSuccess         time.Time
	LastAttempt         time.Time
	LastError           error
	ConsecutiveFailures int

	// Assignment events: handed to the logger, dropped because the buffer
	// was full (see Config.OnEventsDropped), and logger calls that
	// panicked.
	EventsLogged  uint64
	EventsDropped uint64
	// EventsDeduped is always 0: repeats are now skipped on the assignment
	// path, where counting them would cost a shared write per call.
	//
	// Deprecated: not counted any more.
	EventsDeduped uint64
	LoggerPanics  uint64
}

// Status reports the client's state. It takes a lock and is meant for
// health checks, not for the assignment path.
func (c *Client) Status() Status {
	if c == nil {
		return Status{}
	}
	var st Status
	if s := c.snap.Load(); s != nil {
		st.Ready = true
		st.Source = s.source
		st.Environment = s.Environment
		st.CreatedAt = s.CreatedAt
		st.Flags = s.Len()
		if !s.CreatedAt.IsZero() {
			st.Age = c.now().Sub(s.CreatedAt)
		}
	}
	c.mu.Lock()
	st.LastSuccess = c.fetch.lastSuccess
	st.LastAttempt = c.fetch.lastAttempt
	st.LastError = c.fetch.lastError
	st.ConsecutiveFailures = c.fetch.failures
	st.Mode = c.fetch.mode
	c.mu.Unlock()
	if e := c.events; e != nil {
		st.EventsLogged = e.logged.Load()
		st.EventsDropped = e.dropped.Load()
		st.EventsDeduped = e.deduped.Load()
		st.LoggerPanics = e.panics.Load()
	}
	return st
}
