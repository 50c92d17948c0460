package allot

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// sseServer plays the server's side of the protocol: the config endpoint
// serves doc with its ETag; the stream endpoint answers streamStatus, or
// opens a stream that sends what is put in events, and ends it when the
// test says.
type sseServer struct {
	mu           sync.Mutex
	doc          []byte
	etag         string
	streamStatus int
	lastEventIDs []string

	configs atomic.Int32
	streams atomic.Int32
	events  chan string   // raw events to write on the open stream
	end     chan struct{} // ends the open stream
	srv     *httptest.Server
}

func newSSEServer(t *testing.T, doc []byte, etag string) *sseServer {
	s := &sseServer{doc: doc, etag: etag, events: make(chan string, 16), end: make(chan struct{}, 1)}
	s.srv = httptest.NewServer(s)
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sseServer) set(doc []byte, etag string) {
	s.mu.Lock()
	s.doc, s.etag = doc, etag
	s.mu.Unlock()
}

func (s *sseServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	doc, etag, status := s.doc, s.etag, s.streamStatus
	s.mu.Unlock()
	switch r.URL.Path {
	case "/api" + configPath:
		s.configs.Add(1)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		w.Write(doc)
	case "/api" + streamPath:
		s.streams.Add(1)
		s.mu.Lock()
		s.lastEventIDs = append(s.lastEventIDs, r.Header.Get("Last-Event-ID"))
		s.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer key" || strings.Contains(r.URL.RawQuery, "key") {
			http.Error(w, "the key belongs in the Authorization header", http.StatusBadRequest)
			return
		}
		if status != 0 {
			http.Error(w, "no", status)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		for {
			select {
			case <-r.Context().Done():
				return
			case <-s.end:
				return
			case ev := <-s.events:
				fmt.Fprint(w, ev)
				w.(http.Flusher).Flush()
			}
		}
	default:
		http.NotFound(w, r)
	}
}

// event encodes a stream event as the server does.
func event(etag string, doc []byte) string {
	m := map[string]any{"type": "refetchEvaluation", "etag": etag}
	if doc != nil {
		m["config"] = json.RawMessage(doc)
	}
	data, _ := json.Marshal(m)
	return "id: " + etag + "\ndata: " + string(data) + "\n\n"
}

func newStreamClient(t *testing.T, s *sseServer, cfg Config) *Client {
	t.Helper()
	cfg.SDKKey = "key"
	cfg.BaseURL = s.srv.URL + "/api"
	if cfg.PollInterval == 0 {
		cfg.PollInterval = time.Hour
	}
	c, err := NewClient(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	closeClient(t, c)
	return c
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
	}
}

// TestStreamInstallsInlineDocuments: a document carried by an event is
// served without a fetch; an event without one makes the client fetch.
func TestStreamInstallsInlineDocuments(t *testing.T) {
	s := newSSEServer(t, constantDoc("f", "v1", fixedNow), `"v1"`)
	c := newStreamClient(t, s, Config{})
	eventually(t, "streaming", func() bool { return c.Status().Mode == ModeStreaming })
	if got := c.GetStringAssignment("f", "s", nil, "d"); got != "v1" {
		t.Fatalf("first configuration: %q", got)
	}
	fetches := s.configs.Load()

	s.events <- event(`"v2"`, constantDoc("f", "v2", fixedNow))
	eventually(t, "inline v2", func() bool { return c.GetStringAssignment("f", "s", nil, "d") == "v2" })
	if n := s.configs.Load(); n != fetches {
		t.Errorf("an inline document caused %d fetches", n-fetches)
	}
	if st := c.Status(); st.Source != SourceServer || c.etag() != `"v2"` {
		t.Errorf("after an inline document: source %q, etag %q", st.Source, c.etag())
	}

	// Too large to inline: the event only names the ETag.
	s.set(constantDoc("f", "v3", fixedNow), `"v3"`)
	s.events <- event(`"v3"`, nil)
	eventually(t, "fetched v3", func() bool { return c.GetStringAssignment("f", "s", nil, "d") == "v3" })

	// An invalid inline document is refused, and the client fetches.
	s.set(constantDoc("f", "v4", fixedNow), `"v4"`)
	s.events <- event(`"v4"`, []byte(`{"flags": 7}`))
	eventually(t, "fetched v4 after a bad inline document", func() bool { return c.GetStringAssignment("f", "s", nil, "d") == "v4" })
}

// TestStreamReconnectsWithLastEventID: when the stream ends the client
// polls until it reopens one, sending the ETag it serves.
func TestStreamReconnectsWithLastEventID(t *testing.T) {
	s := newSSEServer(t, constantDoc("f", "v1", fixedNow), `"v1"`)
	c := newStreamClient(t, s, Config{MaxBackoff: time.Second})
	eventually(t, "streaming", func() bool { return c.Status().Mode == ModeStreaming })
	s.events <- event(`"v2"`, constantDoc("f", "v2", fixedNow))
	eventually(t, "inline v2", func() bool { return c.GetStringAssignment("f", "s", nil, "d") == "v2" })
	s.end <- struct{}{}
	eventually(t, "reconnected", func() bool { return s.streams.Load() == 2 && c.Status().Mode == ModeStreaming })
	s.mu.Lock()
	ids := append([]string(nil), s.lastEventIDs...)
	s.mu.Unlock()
	if len(ids) != 2 || ids[1] != `"v2"` {
		t.Errorf("Last-Event-ID of each stream: %q, want the second to be \"v2\"", ids)
	}
}

// TestStreamRefusedFallsBackToPolling: a server without the stream
// endpoint (404) is asked once; the client polls and says so.
func TestStreamRefusedFallsBackToPolling(t *testing.T) {
	s := newSSEServer(t, constantDoc("f", "v1", fixedNow), `"v1"`)
	s.streamStatus = http.StatusNotFound
	c := newStreamClient(t, s, Config{PollInterval: 20 * time.Millisecond, MaxBackoff: 40 * time.Millisecond})
	s.set(constantDoc("f", "v2", fixedNow), `"v2"`)
	eventually(t, "polled v2", func() bool { return c.GetStringAssignment("f", "s", nil, "d") == "v2" })
	time.Sleep(200 * time.Millisecond) // several backoffs, were it retrying
	if n := s.streams.Load(); n != 1 {
		t.Errorf("%d stream requests to a server without streams, want 1", n)
	}
	if m := c.Status().Mode; m != ModePolling {
		t.Errorf("mode %q", m)
	}
}

// TestStreamRetriesAfterErrors: a stream refused with 401 or 503 is asked
// again later (with backoff), not given up.
func TestStreamRetriesAfterErrors(t *testing.T) {
	for _, code := range []int{http.StatusUnauthorized, http.StatusServiceUnavailable} {
		s := newSSEServer(t, constantDoc("f", "v1", fixedNow), `"v1"`)
		s.mu.Lock()
		s.streamStatus = code
		s.mu.Unlock()
		c := newStreamClient(t, s, Config{PollInterval: time.Second, MaxBackoff: time.Second})
		eventually(t, "a second try", func() bool { return s.streams.Load() >= 2 })
		s.mu.Lock()
		s.streamStatus = 0
		s.mu.Unlock()
		eventually(t, fmt.Sprint("streaming after ", code), func() bool { return c.Status().Mode == ModeStreaming })
	}
}

// TestDisableStreaming: no stream is requested.
func TestDisableStreaming(t *testing.T) {
	s := newSSEServer(t, constantDoc("f", "v1", fixedNow), `"v1"`)
	c := newStreamClient(t, s, Config{DisableStreaming: true})
	time.Sleep(100 * time.Millisecond)
	if n := s.streams.Load(); n != 0 || c.Status().Mode != ModePolling {
		t.Errorf("%d stream requests, mode %q", n, c.Status().Mode)
	}
	off := newStreamClient(t, s, Config{Offline: true})
	if m := off.Status().Mode; m != ModeOffline {
		t.Errorf("offline mode %q", m)
	}
}

// TestStreamIdleTimeout: a stream on which nothing arrives, not even a
// heartbeat, is taken for dead and reopened.
func TestStreamIdleTimeout(t *testing.T) {
	s := newSSEServer(t, constantDoc("f", "v1", fixedNow), `"v1"`)
	c := newStreamClient(t, s, Config{MaxBackoff: time.Second, streamIdle: 200 * time.Millisecond})
	eventually(t, "streaming", func() bool { return c.Status().Mode == ModeStreaming })
	eventually(t, "a second stream", func() bool { return s.streams.Load() >= 2 })
	// A heartbeat keeps it: with one every 50 ms, no third stream.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				select {
				case s.events <- ":\n\n":
				default:
				}
			}
		}
	}()
	eventually(t, "streaming again", func() bool { return c.Status().Mode == ModeStreaming })
	n := s.streams.Load()
	time.Sleep(time.Second)
	if got := s.streams.Load(); got != n {
		t.Errorf("%d more streams with heartbeats flowing", got-n)
	}
}
