package allot

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/allot-dev/allot/internal/ufctest"
)

// script is an in-memory server whose answer the test changes.
type script struct {
	mu       sync.Mutex
	respond  func(w http.ResponseWriter, r *http.Request)
	times    []time.Time
	inmMatch []string // If-None-Match of each request
}

func (s *script) set(f func(w http.ResponseWriter, r *http.Request)) {
	s.mu.Lock()
	s.respond = f
	s.mu.Unlock()
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.times = append(s.times, time.Now())
	s.inmMatch = append(s.inmMatch, r.Header.Get("If-None-Match"))
	f := s.respond
	s.mu.Unlock()
	f(w, r)
}

func (s *script) requests() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.times...)
}

func serve(body []byte) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = w.Write(body)
	}
}

func status(code int, body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
	}
}

func newScripted(t *testing.T, s *script, cfg Config) (*Client, error) {
	t.Helper()
	cfg.HTTPClient = &http.Client{Transport: handlerTransport{s}, Timeout: 2 * time.Second}
	cfg.DisableStreaming = true // these are the poller's tests; stream_test.go has the streamer's
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 30 * time.Second
	}
	if cfg.InitTimeout == 0 {
		cfg.InitTimeout = 3 * time.Second
	}
	c, err := NewClient(context.Background(), cfg)
	closeClient(t, c)
	return c, err
}

// TestInitServerDown: with no server, NewClient returns after InitTimeout
// with ErrInitTimeout and a client that serves defaults, then the
// configuration once the server comes up.
func TestInitServerDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{}
		s.set(status(http.StatusServiceUnavailable, "starting"))
		start := time.Now()
		c, err := newScripted(t, s, Config{InitTimeout: 3 * time.Second})
		if !errors.Is(err, ErrInitTimeout) {
			t.Fatalf("err = %v, want ErrInitTimeout", err)
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Errorf("NewClient returned after %v, want 3s", d)
		}
		if v := c.GetStringAssignment("checkout-experiment", "alice", nil, "default"); v != "default" {
			t.Errorf("before any configuration: %q", v)
		}
		st := c.Status()
		if st.Ready || st.ConsecutiveFailures < 2 || st.LastError == nil {
			t.Errorf("status %+v", st)
		}
		s.set(serve([]byte(experimentDoc)))
		time.Sleep(time.Minute)
		if _, ok := c.GetAssignment("checkout-experiment", "user-0000000000000000000", nil); !c.Status().Ready || !ok && c.Status().Flags != 1 {
			t.Errorf("not serving after the server came up: %+v", c.Status())
		}
		if st := c.Status(); st.ConsecutiveFailures != 0 || st.LastError != nil || st.Source != SourceServer {
			t.Errorf("status after recovery %+v", st)
		}
	})
}

// TestInitNoServer: the connection is refused; the transport's error
// surfaces in the init error, without the SDK key.
func TestInitNoServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := Config{SDKKey: "secret-sdk-key", InitTimeout: time.Second, HTTPClient: &http.Client{Transport: downTransport{}}}
		c, err := NewClient(context.Background(), cfg)
		closeClient(t, c)
		if !errors.Is(err, ErrInitTimeout) || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("err = %v", err)
		}
		if strings.Contains(err.Error(), "secret-sdk-key") {
			t.Errorf("the error shows the SDK key: %v", err)
		}
	})
}

// TestInitContext: the caller's context ends before the timeout.
func TestInitContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		cfg := Config{InitTimeout: time.Hour, HTTPClient: &http.Client{Transport: downTransport{}}}
		start := time.Now()
		c, err := NewClient(ctx, cfg)
		closeClient(t, c)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 500*time.Millisecond {
			t.Fatalf("err = %v after %v", err, time.Since(start))
		}
	})
}

// TestInitUnauthorized: a refused key ends the wait at once.
func TestInitUnauthorized(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{}
		s.set(status(http.StatusUnauthorized, `{"error":"bad key"}`))
		start := time.Now()
		_, err := newScripted(t, s, Config{InitTimeout: time.Minute})
		if !errors.Is(err, ErrUnauthorized) || time.Since(start) != 0 {
			t.Fatalf("err = %v after %v", err, time.Since(start))
		}
	})
}

// TestUnsolicited304: a 304 to a request without If-None-Match is not a
// configuration.
func TestUnsolicited304(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{}
		s.set(status(http.StatusNotModified, ""))
		c, err := newScripted(t, s, Config{InitTimeout: 5 * time.Second})
		if !errors.Is(err, ErrInitTimeout) || c.Status().Ready {
			t.Fatalf("err = %v, status %+v", err, c.Status())
		}
	})
}

// TestSlowServer: a server that does not answer within the request
// timeout; init returns on time, and the request is abandoned.
func TestSlowServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{}
		s.set(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(time.Hour):
			}
		})
		start := time.Now()
		c, err := newScripted(t, s, Config{InitTimeout: 5 * time.Second})
		if !errors.Is(err, ErrInitTimeout) || time.Since(start) != 5*time.Second {
			t.Fatalf("err = %v after %v", err, time.Since(start))
		}
		if st := c.Status(); st.LastError == nil || st.ConsecutiveFailures == 0 {
			t.Errorf("status %+v", st)
		}
	})
}

// TestBadResponsesKeepLastGood: nothing but a valid configuration replaces
// the one being served.
func TestBadResponsesKeepLastGood(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{}
		good := constantDoc("banner", "blue", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		s.set(serve(good))
		c, err := newScripted(t, s, Config{PollInterval: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		bad := map[string]func(http.ResponseWriter, *http.Request){
			"500":                          status(500, "internal error"),
			"401":                          status(401, `{"error":"unauthorized"}`),
			"404 JSON object":              status(404, `{"message":"not found"}`),
			"429 retry":                    status(429, "slow down"),
			"HTML":                         status(200, "<html><body>maintenance</body></html>"),
			"truncated JSON":               status(200, string(good[:len(good)/2])),
			"object without flags":         status(200, `{"createdAt":"2026-02-01T00:00:00Z","format":"SERVER","environment":{"name":"x"}}`),
			"empty body":                   status(200, ""),
			"JSON array":                   status(200, `[]`),
			"304 (If-None-Match was sent)": status(304, ""),
		}
		for name, h := range bad {
			s.set(h)
			time.Sleep(10 * time.Minute)
			if v := c.GetStringAssignment("banner", "alice", nil, "default"); v != "blue" {
				t.Errorf("%s: serving %q, want the last good configuration", name, v)
			}
			st := c.Status()
			if name == "304 (If-None-Match was sent)" {
				continue // 304 means "unchanged": a success
			}
			if st.LastError == nil || st.ConsecutiveFailures == 0 {
				t.Errorf("%s: status %+v", name, st)
			}
			s.set(serve(good))
			time.Sleep(10 * time.Minute)
			if st := c.Status(); st.ConsecutiveFailures != 0 {
				t.Errorf("%s: no recovery: %+v", name, st)
			}
		}
		// A valid configuration without the flag does replace it: the
		// server decides what exists.
		s.set(status(200, string(constantDoc("other", "x", time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)))))
		time.Sleep(time.Minute)
		if v := c.GetStringAssignment("banner", "alice", nil, "default"); v != "default" {
			t.Errorf("after the flag was removed: %q", v)
		}
	})
}

// TestETag: the poller sends If-None-Match and a 304 keeps the
// configuration and counts as a success.
func TestETag(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{}
		s.set(serve([]byte(experimentDoc)))
		c, err := newScripted(t, s, Config{PollInterval: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		first := c.Status().LastSuccess
		time.Sleep(25 * time.Second)
		s.mu.Lock()
		inm := append([]string(nil), s.inmMatch...)
		s.mu.Unlock()
		if len(inm) < 3 || inm[0] != "" || inm[1] != `"v1"` || inm[2] != `"v1"` {
			t.Errorf("If-None-Match headers %q", inm)
		}
		if st := c.Status(); !st.LastSuccess.After(first) || st.Flags != 1 {
			t.Errorf("status %+v", st)
		}
	})
}

// TestPollInterval: polls are PollInterval apart, less up to 10 % jitter.
func TestPollInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{}
		s.set(serve([]byte(experimentDoc)))
		if _, err := newScripted(t, s, Config{PollInterval: 30 * time.Second}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Minute)
		times := s.requests()
		if len(times) < 20 || len(times) > 23 {
			t.Errorf("%d requests in 10 minutes", len(times))
		}
		for i := 1; i < len(times); i++ {
			if d := times[i].Sub(times[i-1]); d < 27*time.Second || d > 30*time.Second {
				t.Errorf("poll %d came %v after the previous one", i, d)
			}
		}
	})
}

// TestBackoff: after failures the waits grow exponentially, with jitter,
// up to MaxBackoff; Retry-After is honoured up to MaxBackoff (see
// TestRetryAfterCapped); a success restores the interval.
func TestBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{}
		s.set(status(500, "down"))
		_, err := newScripted(t, s, Config{PollInterval: 30 * time.Second, MaxBackoff: 60 * time.Second, InitTimeout: -1})
		if !errors.Is(err, ErrInitTimeout) {
			t.Fatalf("err = %v", err)
		}
		time.Sleep(5 * time.Minute)
		times := s.requests()
		limit := time.Second
		for i := 1; i < len(times); i++ {
			d := times[i].Sub(times[i-1])
			if d < limit/2 || d > limit {
				t.Errorf("wait %d: %v, want in [%v, %v]", i, d, limit/2, limit)
			}
			limit = min(2*limit, 60*time.Second)
		}
		if len(times) < 8 {
			t.Errorf("only %d requests in 5 minutes", len(times))
		}

		s.set(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "900")
			w.WriteHeader(http.StatusServiceUnavailable)
		})
		time.Sleep(2 * time.Minute) // the pending retry sees the 503
		n := len(s.requests())
		time.Sleep(10 * time.Minute)
		// Retry-After: 900 is cut to MaxBackoff (60s): about one request a
		// minute, not none for 15 minutes.
		if got := len(s.requests()) - n; got < 9 || got > 11 {
			t.Errorf("%d requests in 10 minutes of Retry-After: 900 with MaxBackoff 60s, want about 10", got)
		}
		s.set(serve([]byte(experimentDoc)))
		time.Sleep(5 * time.Minute)
		n = len(s.requests())
		time.Sleep(5 * time.Minute)
		if got := len(s.requests()) - n; got < 10 || got > 12 {
			t.Errorf("%d polls in 5 minutes after recovery, want about 10", got)
		}
	})
}

// TestCacheFile: a good configuration is written to the cache file, and a
// client started while the server is down serves it.
func TestCacheFile(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "allot-config.json")
	synctest.Test(t, func(t *testing.T) {
		s := &script{}
		s.set(serve(constantDoc("banner", "blue", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))))
		if _, err := newScripted(t, s, Config{CacheFile: cache}); err != nil {
			t.Fatal(err)
		}
	})
	if _, err := os.Stat(cache); err != nil {
		t.Fatalf("no cache file: %v", err)
	}
	if tmp, _ := filepath.Glob(cache + ".tmp*"); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
	synctest.Test(t, func(t *testing.T) {
		s := &script{}
		s.set(status(502, "bad gateway"))
		older := constantDoc("banner", "red", time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
		c, err := newScripted(t, s, Config{CacheFile: cache, InitialConfiguration: older, InitTimeout: time.Second})
		if !errors.Is(err, ErrInitTimeout) || !strings.Contains(err.Error(), "serving the cache configuration") {
			t.Errorf("err = %v", err)
		}
		if v := c.GetStringAssignment("banner", "alice", nil, "default"); v != "blue" {
			t.Errorf("serving %q, want the cached configuration", v)
		}
		if st := c.Status(); st.Source != SourceCache || !st.Ready {
			t.Errorf("status %+v", st)
		}
	})
	// A corrupt cache file is ignored.
	if err := os.WriteFile(cache, []byte(`{"flags": {`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(context.Background(), Config{Offline: true, CacheFile: cache})
	if err != nil || c.Status().Ready {
		t.Errorf("corrupt cache: err %v, status %+v", err, c.Status())
	}
}

// TestInitialConfiguration: served at once, offline.
func TestInitialConfiguration(t *testing.T) {
	c, err := NewClient(context.Background(), Config{Offline: true, InitialConfiguration: []byte(experimentDoc)})
	if err != nil {
		t.Fatal(err)
	}
	closeClient(t, c)
	if st := c.Status(); !st.Ready || st.Source != SourceInitial || st.Flags != 1 || st.Environment != "test" {
		t.Errorf("status %+v", st)
	}
	if _, ok := c.GetAssignment("checkout-experiment", "user-0000000000000007919", nil); !ok {
		t.Errorf("no assignment from the initial configuration")
	}
	if err := c.SetConfiguration([]byte(`{"oops":1}`)); err == nil || c.Status().Source != SourceInitial {
		t.Errorf("SetConfiguration accepted a bad document: %v", err)
	}
}

// TestInitSingleton: Init replaces and closes the previous client.
func TestInitSingleton(t *testing.T) {
	if Instance() != nil {
		t.Fatal("Instance before Init")
	}
	if v := Instance().GetStringAssignment("f", "s", nil, "d"); v != "d" {
		t.Errorf("nil client: %q", v)
	}
	cfg := Config{Offline: true, InitialConfiguration: []byte(experimentDoc)}
	a, err := Init(context.Background(), cfg)
	if err != nil || Instance() != a {
		t.Fatalf("Init: %v", err)
	}
	b, _ := Init(context.Background(), cfg)
	if Instance() != b || !a.closed.Load() {
		t.Errorf("Init did not replace and close the previous client")
	}
	if err := b.Close(context.Background()); err != nil || Instance() != nil {
		t.Errorf("Close: %v; Instance %p", err, Instance())
	}
}

// TestFaultsOverHTTP runs the faults against a real HTTP server: a slow
// server at start (init returns at its timeout and serves the initial
// configuration), then garbage, then a good configuration.
func TestFaultsOverHTTP(t *testing.T) {
	var mode atomic.Int32 // 0 slow, 1 garbage, 2 good
	good := constantDoc("banner", "green", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch mode.Load() {
		case 0:
			<-r.Context().Done() // never answers; the client gives up
		case 1:
			_, _ = w.Write([]byte("<html>502 Bad Gateway</html>"))
		default:
			_, _ = w.Write(good)
		}
	}))
	defer srv.Close()
	initial := constantDoc("banner", "blue", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	c, err := NewClient(context.Background(), Config{
		BaseURL: srv.URL + "/api", InitialConfiguration: initial, InitTimeout: 200 * time.Millisecond,
		PollInterval: 50 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		HTTPClient: &http.Client{Timeout: 100 * time.Millisecond},
	})
	closeClient(t, c)
	if !errors.Is(err, ErrInitTimeout) {
		t.Fatalf("err = %v, want ErrInitTimeout", err)
	}
	if v := c.GetStringAssignment("banner", "alice", nil, "d"); v != "blue" {
		t.Errorf("serving %q, want the initial configuration", v)
	}
	mode.Store(1)
	waitFor(t, func() bool {
		st := c.Status()
		return st.LastError != nil && strings.Contains(st.LastError.Error(), "not a valid configuration")
	})
	if v := c.GetStringAssignment("banner", "alice", nil, "d"); v != "blue" {
		t.Errorf("serving %q after garbage", v)
	}
	mode.Store(2)
	waitFor(t, func() bool { return c.Status().Source == SourceServer })
	if v := c.GetStringAssignment("banner", "alice", nil, "d"); v != "green" {
		t.Errorf("serving %q, want the server's configuration", v)
	}
}

// waitFor polls cond for up to 10 s (a bound for a stuck test, not a
// timing assertion).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not reached in 10 s")
}

// TestSetConfigurationThenPoll: a configuration set by hand is replaced by
// the next fetch, even when the server's document has not changed (the
// fetch must not be answered 304 for the document the client no longer
// serves).
func TestSetConfigurationThenPoll(t *testing.T) {
	doc := ufctest.Document(t, "flags-v1.json")
	var full atomic.Int32 // full documents served (not 304s)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		full.Add(1)
		w.Header().Set("ETag", `"v1"`)
		w.Write(doc)
	}))
	defer srv.Close()
	ctx := context.Background()
	c, err := NewClient(ctx, Config{SDKKey: "k", BaseURL: srv.URL + "/api", PollInterval: 20 * time.Millisecond, DisableStreaming: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if full.Load() != 1 {
		t.Fatalf("%d full documents before SetConfiguration, want 1", full.Load())
	}
	if err := c.SetConfiguration([]byte(`{"flags": {}}`)); err != nil {
		t.Fatal(err)
	}
	// The polls that follow must ask for the whole document again (a 304
	// would leave the manual one in place) and serve it.
	for deadline := time.Now().Add(10 * time.Second); full.Load() < 2 || c.Status().Source != SourceServer; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the manual configuration was not replaced: %d full documents served, %+v", full.Load(), c.Status())
		}
	}
}
