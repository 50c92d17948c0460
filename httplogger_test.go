package allot

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/ufctest"
)

// eventSink is a fake ingestion endpoint: it keeps events by id (as the
// server's table does) and can be told to fail.
type eventSink struct {
	mu       sync.Mutex
	byID     map[string]AssignmentEvent
	requests int
	gzipped  int          // requests with a gzip body
	fail     atomic.Int32 // fail the next n requests with status failWith
	failWith int
	key      string
}

func newSink(t *testing.T) (*eventSink, *httptest.Server) {
	s := &eventSink{byID: map[string]AssignmentEvent{}, failWith: 503, key: "sdk-key"}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

func (s *eventSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	s.mu.Unlock()
	if r.URL.Path != "/api/v1/assignments" || r.Header.Get("Authorization") != "Bearer "+s.key {
		http.Error(w, "bad request", 400)
		return
	}
	if s.fail.Add(-1) >= 0 {
		http.Error(w, "failing on purpose", s.failWith)
		return
	}
	var body io.Reader = r.Body
	switch r.Header.Get("Content-Encoding") {
	case "gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		s.mu.Lock()
		s.gzipped++
		s.mu.Unlock()
		body = zr
	case "":
	default:
		http.Error(w, "bad encoding", 400)
		return
	}
	sc := bufio.NewScanner(body)
	sc.Buffer(nil, 1<<20)
	n := 0
	s.mu.Lock()
	defer s.mu.Unlock()
	for sc.Scan() {
		var e AssignmentEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.EventID == "" {
			http.Error(w, "bad event", 400)
			return
		}
		s.byID[e.EventID] = e
		n++
	}
	fmt.Fprintf(w, `{"accepted":%d,"duplicates":0,"rejected":[]}`, n)
}

func (s *eventSink) count() (events, requests int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byID), s.requests
}

func testEvent(i int) AssignmentEvent {
	return AssignmentEvent{FeatureFlag: "f", Allocation: "a", Experiment: "f-a", Variation: "v", Subject: fmt.Sprintf("s%d", i), Timestamp: time.Now().UTC()}
}

func newTestLogger(t *testing.T, url string, cfg HTTPLoggerConfig) *HTTPLogger {
	t.Helper()
	cfg.SDKKey, cfg.BaseURL = "sdk-key", url+"/api"
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 20 * time.Millisecond
	}
	l, err := NewHTTPLogger(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(context.Background()) })
	return l
}

func TestHTTPLoggerBatches(t *testing.T) {
	sink, srv := newSink(t)
	l := newTestLogger(t, srv.URL, HTTPLoggerConfig{BatchSize: 10, FlushInterval: time.Hour})
	for i := range 25 {
		l.LogAssignment(testEvent(i))
	}
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	events, requests := sink.count()
	if events != 25 || requests != 3 {
		t.Fatalf("%d events in %d requests, want 25 in 3 (batches of 10)", events, requests)
	}
	if st := l.Stats(); st.Sent != 25 || st.Dropped != 0 || st.Pending != 0 {
		t.Fatalf("stats %+v", st)
	}
	// The interval sends a partial batch on its own.
	l2 := newTestLogger(t, srv.URL, HTTPLoggerConfig{BatchSize: 1000, FlushInterval: 10 * time.Millisecond})
	l2.LogAssignment(testEvent(100))
	deadline := time.Now().Add(5 * time.Second)
	for l2.Stats().Sent != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the flush interval did not send the batch")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestHTTPLoggerRetries(t *testing.T) {
	sink, srv := newSink(t)
	sink.fail.Store(3)
	l := newTestLogger(t, srv.URL, HTTPLoggerConfig{BatchSize: 10, FlushInterval: time.Hour})
	for i := range 50 {
		l.LogAssignment(testEvent(i))
	}
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	events, _ := sink.count()
	st := l.Stats()
	if events != 50 || st.Retries != 3 || st.Sent != 50 || st.Pending != 0 {
		t.Fatalf("%d events stored, stats %+v", events, st)
	}
	// A batch the server can never take (400) is dropped and counted.
	sink.failWith = 400
	sink.fail.Store(1)
	l.LogAssignment(testEvent(99))
	l.Flush(context.Background())
	if st := l.Stats(); st.Dropped != 1 {
		t.Fatalf("stats after a 400: %+v", st)
	}
}

func TestHTTPLoggerNeverBlocks(t *testing.T) {
	// A server that never answers: the logger's buffer fills, and
	// LogAssignment drops events instead of waiting. If it waited, the
	// calls below would never finish.
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	l := newTestLogger(t, srv.URL, HTTPLoggerConfig{BatchSize: 5, BufferSize: 20, FlushInterval: time.Hour, HTTPClient: &http.Client{}})
	done := make(chan struct{})
	go func() {
		for i := range 1000 {
			l.LogAssignment(testEvent(i))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("LogAssignment blocked")
	}
	if st := l.Stats(); st.Dropped < 1000-20-5 {
		t.Fatalf("with a buffer of 20, most of 1000 events must be dropped: %+v", st)
	}
	// Close gives up when its context ends, and leaves no goroutine behind
	// (leakcheck checks the package).
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := l.Close(ctx); err == nil {
		t.Fatal("Close reported success with events undelivered")
	}
}

// TestHTTPLoggerSpool: events that could not be sent before Close wait in
// the spool and are delivered by the next logger using it.
func TestHTTPLoggerSpool(t *testing.T) {
	dir := t.TempDir()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer down.Close()
	l, err := NewHTTPLogger(HTTPLoggerConfig{SDKKey: "sdk-key", BaseURL: down.URL + "/api", BatchSize: 10, FlushInterval: time.Hour,
		MaxBackoff: time.Hour, SpoolDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 35 {
		l.LogAssignment(testEvent(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	l.Close(ctx) // the server is down: everything goes to the spool
	cancel()
	files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl.gz"))
	if len(files) != 4 {
		t.Fatalf("%d spool files, want 4 batches", len(files))
	}

	sink, srv := newSink(t)
	l2 := newTestLogger(t, srv.URL, HTTPLoggerConfig{SpoolDir: dir, FlushInterval: time.Hour})
	if st := l2.Stats(); st.Pending != 35 {
		t.Fatalf("the new logger found %d spooled events, want 35", st.Pending)
	}
	if err := l2.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if events, _ := sink.count(); events != 35 {
		t.Fatalf("%d events delivered from the spool, want 35", events)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) != 0 {
		t.Fatalf("spool not emptied: %v", files)
	}
}

// TestClientFlushesHTTPLogger: a client using the HTTP logger delivers its
// events to the server on Flush, with one id per event.
func TestClientFlushesHTTPLogger(t *testing.T) {
	sink, srv := newSink(t)
	hl := newTestLogger(t, srv.URL, HTTPLoggerConfig{FlushInterval: time.Hour})
	ctx := context.Background()
	c, err := NewClient(ctx, Config{Offline: true, InitialConfiguration: ufctest.Document(t, "flags-v1.json"), AssignmentLogger: hl})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		c.GetStringAssignment("new-user-onboarding", fmt.Sprintf("user-%d", i), Attributes{"country": "Germany"}, "none")
	}
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	events, _ := sink.count()
	if events == 0 || uint64(events) != c.Status().EventsLogged {
		t.Fatalf("server has %d events, the client logged %d", events, c.Status().EventsLogged)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := NewHTTPLogger(HTTPLoggerConfig{}); err == nil {
		t.Fatal("a logger without an SDK key should be refused")
	}
}

func TestNewEventID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := newEventID()
		if len(id) != 36 || id[14] != '8' || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
}

// TestHTTPLoggerRetriesUnauthorized: a 401 (a key this replica does not
// know yet, a server still starting) is retried, not dropped.
func TestHTTPLoggerRetriesUnauthorized(t *testing.T) {
	sink, srv := newSink(t)
	sink.failWith = http.StatusUnauthorized
	sink.fail.Store(2)
	l := newTestLogger(t, srv.URL, HTTPLoggerConfig{FlushInterval: time.Hour})
	for i := range 10 {
		l.LogAssignment(testEvent(i))
	}
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if events, _ := sink.count(); events != 10 || l.Stats().Dropped != 0 {
		t.Fatalf("%d events delivered, stats %+v", events, l.Stats())
	}
}

// TestHTTPLoggerCloseEndsFlush: Close gives up when its context ends, even
// while a Flush with no deadline is waiting for a server that is down.
func TestHTTPLoggerCloseEndsFlush(t *testing.T) {
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer down.Close()
	l, err := NewHTTPLogger(HTTPLoggerConfig{SDKKey: "k", BaseURL: down.URL + "/api", FlushInterval: time.Hour, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	l.LogAssignment(testEvent(1))
	flushed := make(chan error, 1)
	go func() { flushed <- l.Flush(context.Background()) }()
	time.Sleep(20 * time.Millisecond) // let the flush start
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	closed := make(chan error, 1)
	go func() { closed <- l.Close(ctx) }()
	select {
	case err := <-closed:
		if err == nil {
			t.Fatal("Close reported success with an event undelivered")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return after its context ended")
	}
	select {
	case <-flushed:
	case <-time.After(30 * time.Second):
		t.Fatal("the Flush in progress did not end with Close")
	}
}

// TestHTTPLoggerSpoolUnwritable: when the spool cannot be written, failed
// batches wait in memory, bounded by BufferSize like without a spool.
func TestHTTPLoggerSpoolUnwritable(t *testing.T) {
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer down.Close()
	dir := filepath.Join(t.TempDir(), "spool")
	l, err := NewHTTPLogger(HTTPLoggerConfig{SDKKey: "k", BaseURL: down.URL + "/api", SpoolDir: dir, BatchSize: 10,
		BufferSize: 50, FlushInterval: time.Hour, MaxBackoff: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(dir) // every spool write now fails
	for i := range 500 {
		l.LogAssignment(testEvent(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	l.Flush(ctx)
	st := l.Stats()
	if st.Pending > 60 || st.Dropped < 400 {
		t.Fatalf("memory not bounded by BufferSize 50 with an unwritable spool: %+v", st)
	}
	l.Close(ctx)
}

// TestInitKeepsSharedLogger: Init replacing a client does not close a
// logger that the new client uses too.
func TestInitKeepsSharedLogger(t *testing.T) {
	sink, srv := newSink(t)
	hl := newTestLogger(t, srv.URL, HTTPLoggerConfig{FlushInterval: time.Hour})
	ctx := context.Background()
	cfg := Config{Offline: true, InitialConfiguration: ufctest.Document(t, "flags-v1.json"), AssignmentLogger: hl}
	first, _ := Init(ctx, cfg)
	first.GetBoolAssignment("kill-switch", "a", Attributes{"country": "US"}, false)
	second, _ := Init(ctx, cfg) // replaces (and closes) the first
	second.GetBoolAssignment("kill-switch", "b", Attributes{"country": "US"}, false)
	if err := second.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if events, _ := sink.count(); events != 2 {
		t.Fatalf("%d events delivered, want 2: the shared logger was closed with the first client", events)
	}
	if err := second.Close(ctx); err != nil {
		t.Fatal(err)
	}
}
