package allot

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/allot-dev/allot/internal/sdkseam"
	"github.com/allot-dev/allot/internal/ufctest"
)

// TestRetryAfterCapped: one 503 with Retry-After: 3600 must not stop
// updates for an hour; the wait is capped at MaxBackoff. A Retry-After
// below MaxBackoff is obeyed.
func TestRetryAfterCapped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{}
		s.set(serve(constantDoc("banner", "blue", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))))
		c, err := newScripted(t, s, Config{PollInterval: 30 * time.Second, MaxBackoff: 2 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		// refuseOnce answers the next request 503 with the given
		// Retry-After, then the document, and records when it refused.
		refuseOnce := func(retryAfter string, doc []byte) time.Time {
			var (
				mu sync.Mutex
				at time.Time
			)
			s.set(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				refuse := at.IsZero()
				if refuse {
					at = time.Now()
				}
				mu.Unlock()
				if refuse {
					w.Header().Set("Retry-After", retryAfter)
					w.WriteHeader(http.StatusServiceUnavailable)
					return
				}
				_, _ = w.Write(doc)
			})
			time.Sleep(31 * time.Second) // the next poll is refused
			mu.Lock()
			defer mu.Unlock()
			return at
		}
		// after counts the requests made after t.
		after := func(t0 time.Time) int {
			n := 0
			for _, at := range s.requests() {
				if at.After(t0) {
					n++
				}
			}
			return n
		}

		at := refuseOnce("3600", constantDoc("banner", "green", time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)))
		time.Sleep(at.Add(2*time.Minute + time.Second).Sub(time.Now()))
		if got := after(at); got != 1 {
			t.Errorf("%d requests in the 2 minutes after Retry-After: 3600 with MaxBackoff 2m, want 1", got)
		}
		if v := c.GetStringAssignment("banner", "alice", nil, "d"); v != "green" {
			t.Errorf("serving %q two minutes after the 503, want the new configuration", v)
		}

		// Below the cap, the server's wait is obeyed rather than the
		// (shorter) first backoff.
		at = refuseOnce("100", constantDoc("banner", "red", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)))
		time.Sleep(at.Add(99 * time.Second).Sub(time.Now()))
		if got := after(at); got != 0 {
			t.Errorf("%d requests during a Retry-After of 100s", got)
		}
		time.Sleep(2 * time.Second)
		if got := after(at); got != 1 {
			t.Errorf("%d requests just after a Retry-After of 100s, want 1", got)
		}
	})
}

// logRecords is a slog.Handler that keeps the records.
type logRecords struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecords) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecords) WithGroup(string) slog.Handler            { return h }
func (h *logRecords) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.records = append(h.records, r.Clone())
	h.mu.Unlock()
	return nil
}

// warnings returns the warnings logged so far, each as its message
// followed by its attributes.
func (h *logRecords) warnings() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.records {
		if r.Level < slog.LevelWarn {
			continue
		}
		var b strings.Builder
		b.WriteString(r.Message)
		r.Attrs(func(a slog.Attr) bool {
			b.WriteString(" " + a.String())
			return true
		})
		out = append(out, b.String())
	}
	return out
}

// TestEmptyDocument: a valid document without flags is the server's word
// and is served, but going from some flags to none logs a warning naming
// the document's ETag. None to none says nothing.
func TestEmptyDocument(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := &logRecords{}
		s := &script{}
		s.set(serve(constantDoc("banner", "blue", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))))
		c, err := newScripted(t, s, Config{PollInterval: 30 * time.Second, Logger: slog.New(logs)})
		if err != nil {
			t.Fatal(err)
		}
		if len(logs.warnings()) != 0 {
			t.Fatalf("warnings before the empty document: %q", logs.warnings())
		}
		s.set(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("ETag", `"empty-42"`)
			_, _ = w.Write([]byte(`{"flags": {}}`))
		})
		time.Sleep(31 * time.Second)
		if st := c.Status(); !st.Ready || st.Flags != 0 || st.Source != SourceServer {
			t.Errorf("the empty document was not served: %+v", st)
		}
		if v := c.GetStringAssignment("banner", "alice", nil, "d"); v != "d" {
			t.Errorf("serving %q from an empty configuration", v)
		}
		w := logs.warnings()
		if len(w) != 1 || !strings.Contains(w[0], "no flags") || !strings.Contains(w[0], `etag="empty-42"`) || !strings.Contains(w[0], "previousFlags=1") {
			t.Errorf("warnings %q, want one naming the ETag and the previous count", w)
		}
		// The same empty document again (the script answers it in full):
		// nothing more to say.
		time.Sleep(30 * time.Second)
		if got := len(logs.warnings()); got != 1 {
			t.Errorf("%d warnings after a second empty document", got)
		}
		// SetConfiguration shares the install path, and so the warning.
		if err := c.SetConfiguration(constantDoc("banner", "red", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))); err != nil {
			t.Fatal(err)
		}
		if err := c.SetConfiguration([]byte(`{"flags": {}}`)); err != nil {
			t.Fatal(err)
		}
		if got := len(logs.warnings()); got != 2 {
			t.Errorf("%d warnings after SetConfiguration of an empty document, want 2", got)
		}
	})
}

// sinkRecorder is a sink that keeps what a data source gives it.
type sinkRecorder struct {
	mu       sync.Mutex
	docs     []string
	origins  []origin
	attempts []error
	tag      string
}

func (r *sinkRecorder) install(doc []byte, from origin) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.docs = append(r.docs, string(doc))
	r.origins = append(r.origins, from)
	r.tag = from.etag
	return nil
}

func (r *sinkRecorder) etag() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tag
}

func (r *sinkRecorder) attempted(err error) {
	r.mu.Lock()
	r.attempts = append(r.attempts, err)
	r.mu.Unlock()
}

func (r *sinkRecorder) refused()      {}
func (r *sinkRecorder) mode(m string) {}

func (r *sinkRecorder) count() (docs, attempts int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.docs), len(r.attempts)
}

// TestPollerFetchNow: the poller is a data source in its own right; a
// "fetch now" (what a stream source will send when the server announces a
// new configuration) cuts its wait short, and requests made while one is
// pending are merged.
func TestPollerFetchNow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{}
		s.set(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("ETag", `"v1"`)
			_, _ = w.Write([]byte(`{"flags": {}}`))
		})
		cfg := Config{PollInterval: time.Hour, HTTPClient: &http.Client{Transport: handlerTransport{s}}}.withDefaults()
		p := newPoller(cfg)
		rec := &sinkRecorder{}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); p.run(ctx, rec) }()
		synctest.Wait()
		if docs, attempts := rec.count(); docs != 1 || attempts != 1 {
			t.Fatalf("after start: %d documents, %d attempts", docs, attempts)
		}
		if o := rec.origins[0]; o.source != SourceServer || o.etag != `"v1"` || !o.cache {
			t.Errorf("origin %+v", o)
		}
		p.fetchNow()
		synctest.Wait()
		if _, attempts := rec.count(); attempts != 2 {
			t.Errorf("%d attempts after fetchNow, want 2", attempts)
		}
		// Requests made while one is pending are merged: at most one
		// fetch waits behind the one under way.
		for range 5 {
			p.fetchNow()
		}
		synctest.Wait()
		if _, attempts := rec.count(); attempts < 3 || attempts > 4 {
			t.Errorf("%d attempts after 5 more fetchNow, want 3 or 4", attempts)
		}
		s.mu.Lock()
		inm := s.inmMatch[len(s.inmMatch)-1]
		s.mu.Unlock()
		if got := inm; got != `"v1"` {
			t.Errorf("If-None-Match %q, want the remembered ETag", got)
		}
		cancel()
		<-done
	})
}

// TestSourceAfterClose: no data source starts on a closed client (its
// goroutine would outlive Close).
func TestSourceAfterClose(t *testing.T) {
	c, err := NewClient(context.Background(), Config{Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.startSource(newPoller(c.cfg)); !errors.Is(err, ErrClosed) {
		t.Errorf("startSource after Close: %v, want ErrClosed", err)
	}
}

// TestZeroClientClose: a Client not made by NewClient closes without
// panicking, and takes no data source.
func TestZeroClientClose(t *testing.T) {
	var c Client
	if err := c.Close(context.Background()); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := c.startSource(newPoller(Config{}.withDefaults())); !errors.Is(err, ErrClosed) {
		t.Errorf("startSource: %v", err)
	}
}

// BenchmarkSetConfiguration: the install path (compile the shared fixture
// document with the engine, swap it in) as SetConfiguration, the cache
// file, allottest and every fetch that brings a new document take it.
func BenchmarkSetConfiguration(b *testing.B) {
	doc := ufctest.Document(b, "flags-v1.json")
	c, err := NewClient(context.Background(), Config{Offline: true})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(context.Background())
	b.ReportAllocs()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if err := c.SetConfiguration(doc); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPushFeed: allottest's way in. A feed delivers nothing until it is
// attached; attached, a pushed document goes through the install path (a
// bad one is refused and changes nothing); once the client is closed the
// feed is detached and no source can attach.
func TestPushFeed(t *testing.T) {
	feed := new(sdkseam.Feed)
	if err := feed.Push([]byte(experimentDoc)); !errors.Is(err, sdkseam.ErrDetached) {
		t.Errorf("Push before Attach: %v", err)
	}
	c, err := NewClient(context.Background(), Config{Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := sdkseam.Attach(c, feed); err != nil {
		t.Fatal(err)
	}
	if err := feed.Push([]byte(experimentDoc)); err != nil {
		t.Fatal(err)
	}
	if st := c.Status(); !st.Ready || st.Flags != 1 || st.Source != SourceManual {
		t.Errorf("after a push: %+v", st)
	}
	if err := feed.Push([]byte(`{"flags": {`)); err == nil {
		t.Error("a truncated document was accepted")
	}
	if st := c.Status(); st.Flags != 1 {
		t.Errorf("a refused push changed the configuration: %+v", st)
	}
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := feed.Push([]byte(experimentDoc)); !errors.Is(err, sdkseam.ErrDetached) {
		t.Errorf("Push after Close: %v", err)
	}
	if err := sdkseam.Attach(c, new(sdkseam.Feed)); !errors.Is(err, ErrClosed) {
		t.Errorf("Attach after Close: %v", err)
	}
	if err := sdkseam.Attach("not a client", feed); err == nil {
		t.Error("Attach accepted something that is not a client")
	}
}
