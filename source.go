package allot

import (
	"context"
	"errors"
	"log/slog"

	"github.com/allot-dev/allot/internal/eval"
	"github.com/allot-dev/allot/internal/sdkseam"
)

// The data-source seam. Configurations reach a client from data sources:
// the poller (poller.go) is one; a stream of server-sent events, which
// pushes either a new document or a "fetch now" signal, will be the next;
// allottest's push source (pushSource, below) is a third. Every source, and
// SetConfiguration, Config.InitialConfiguration and the cache file, hands
// documents to one install path (Client.install), so that validation by
// the engine, the atomic swap, the ETag, the empty-document warning and the
// cache file behave the same whatever the origin.

// dataSource delivers configurations to a sink. run returns when ctx ends
// (or at once for a source with nothing to do); the client runs each source
// on a goroutine of its own, which Close cancels and waits for.
type dataSource interface {
	run(ctx context.Context, s sink)
}

// sink is the client's side of the seam.
type sink interface {
	// install loads doc, validates it through the engine and, if it is a
	// configuration, serves it; a refused document changes nothing.
	install(doc []byte, from origin) error
	// etag returns the ETag of the served configuration, or "" when a
	// conditional request must not be made (nothing served, or a document
	// installed by hand).
	etag() string
	// attempted records the outcome of one try to get a configuration: nil
	// for success, new document or not.
	attempted(err error)
	// refused records that the server refused the SDK key.
	refused()
	// mode records how configurations arrive: ModeStreaming or ModePolling.
	mode(m string)
}

// origin describes a document handed to install.
type origin struct {
	source string // SourceServer, SourceManual...
	etag   string // the server's ETag for it, if any
	cache  bool   // write it to Config.CacheFile
}

var _ sink = (*Client)(nil)

// startSource runs ds for the life of the client. It refuses once the
// client is closing, so that no goroutine starts after Close waited.
func (c *Client) startSource(ds dataSource) error {
	c.srcMu.Lock()
	defer c.srcMu.Unlock()
	if c.srcStopped || c.ctx == nil {
		return ErrClosed
	}
	c.wg.Go(func() { ds.run(c.ctx, c) })
	return nil
}

// stopSources cancels every data source; Close then waits for them.
func (c *Client) stopSources() {
	c.srcMu.Lock()
	c.srcStopped = true
	c.srcMu.Unlock()
	if c.cancel != nil { // nil in a Client not made by NewClient
		c.cancel()
	}
}

// install is the one install path: load and validate (eval.Load is the
// only judge of a valid configuration), swap atomically, remember the
// ETag, write the cache file.
func (c *Client) install(doc []byte, from origin) error {
	s, err := eval.Load(doc)
	if err != nil {
		return err
	}
	c.swap(newSnapshot(s, from.source, c.now()), doc, from)
	return nil
}

// swap serves next. Installs are serialized so that the served snapshot,
// its ETag and the cache file always describe the same document.
func (c *Client) swap(next *snapshot, doc []byte, from origin) {
	c.installMu.Lock()
	defer c.installMu.Unlock()
	prev := c.snap.Swap(next)
	c.mu.Lock()
	c.fetch.etag = from.etag
	c.mu.Unlock()
	// The server's word is final, but losing every flag at once is almost
	// always an accident upstream: say so, with what identifies the document.
	if prev != nil && prev.Len() > 0 && next.Len() == 0 {
		c.cfg.Logger.Warn("allot: the new configuration has no flags; every getter now returns its default",
			"source", from.source, "etag", from.etag, "previousFlags", prev.Len(), "environment", next.Environment, "createdAt", next.CreatedAt)
	}
	if c.cfg.Logger.Enabled(context.Background(), slog.LevelDebug) { // spares the arguments' allocations
		c.cfg.Logger.Debug("allot: new configuration", "source", from.source, "createdAt", next.CreatedAt, "environment", next.Environment, "flags", next.Len())
	}
	if from.cache && c.cfg.CacheFile != "" {
		if err := writeFileAtomic(c.cfg.CacheFile, doc); err != nil {
			c.cfg.Logger.Warn("allot: cannot write the configuration cache", "file", c.cfg.CacheFile, "error", err)
		}
	}
}

func (c *Client) etag() string {
	if c.snap.Load() == nil {
		return ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fetch.etag
}

func (c *Client) attempted(err error) {
	c.mu.Lock()
	c.fetch.lastAttempt = c.now()
	if err != nil {
		c.fetch.failures++
		c.fetch.lastError = err
		c.mu.Unlock()
		return
	}
	c.fetch.failures = 0
	c.fetch.lastError = nil
	c.fetch.lastSuccess = c.fetch.lastAttempt
	c.mu.Unlock()
	c.fetchedOnce.Do(func() { close(c.fetched) })
}

func (c *Client) mode(m string) {
	c.mu.Lock()
	c.fetch.mode = m
	c.mu.Unlock()
}

func (c *Client) refused() {
	c.deniedOnce.Do(func() { close(c.denied) })
}

// pushSource installs the documents a test double pushes through an
// sdkseam.Feed (allottest), as a stream source will install the documents
// its server pushes.
type pushSource struct {
	feed      *sdkseam.Feed
	connected chan struct{} // closed once the feed delivers to the sink
}

func (p pushSource) run(ctx context.Context, s sink) {
	p.feed.Connect(func(doc []byte) error {
		if ctx.Err() != nil {
			return ErrClosed
		}
		return s.install(doc, origin{source: SourceManual})
	})
	close(p.connected)
	<-ctx.Done()
	p.feed.Connect(nil)
}

func init() {
	// allottest reaches the seam through internal/sdkseam, which keeps it
	// out of the SDK's public API.
	sdkseam.Attach = func(client any, feed *sdkseam.Feed) error {
		c, ok := client.(*Client)
		if !ok || c == nil {
			return errors.New("allot: not a client")
		}
		src := pushSource{feed: feed, connected: make(chan struct{})}
		if err := c.startSource(src); err != nil {
			return err
		}
		// Attached means a Push that follows reaches the client.
		<-src.connected
		return nil
	}
}
