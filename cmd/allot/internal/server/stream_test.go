package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/allot-dev/allot"
	"github.com/allot-dev/allot/cmd/allot/internal/apiclient"
	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/server"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
	"github.com/allot-dev/allot/internal/ufc"
)

// switchFlag is a STRING flag whose one rollout sends everyone to a or b;
// set flips it.
type switchFlag struct {
	api     *apiclient.Client
	key     string
	version int64
}

func newSwitchFlag(t testing.TB, api *apiclient.Client, key string) *switchFlag {
	t.Helper()
	ctx := context.Background()
	_, err := api.CreateFlag(ctx, core.Flag{Key: key, VariationType: ufc.TypeString,
		Variations: []core.Variation{{Key: "a", Value: json.RawMessage(`"a"`)}, {Key: "b", Value: json.RawMessage(`"b"`)}}})
	if err != nil {
		t.Fatal(err)
	}
	f := &switchFlag{api: api, key: key}
	f.set(t, "a")
	return f
}

func (f *switchFlag) set(t testing.TB, v string) {
	t.Helper()
	got, err := f.api.PutSettings(context.Background(), core.FlagSettings{Flag: f.key, Environment: "production", Enabled: true, Version: f.version,
		Allocations: []core.Allocation{{Key: "everyone", Type: core.Rollout, Percent: core.Whole, Variation: v}}})
	if err != nil {
		t.Fatal(err)
	}
	f.version = got.Version
}

func newStreamingClient(t testing.TB, baseURL, key string, cfg allot.Config) *allot.Client {
	t.Helper()
	cfg.SDKKey = key
	cfg.BaseURL = baseURL + "/api"
	c, err := allot.NewClient(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c.Close(ctx)
	})
	return c
}

// waitFor polls cond every millisecond until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); ; time.Sleep(time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// measurePropagation flips f n times and returns, for each change, the time
// from the start of the API call until c's getter returns the new value.
func measurePropagation(t *testing.T, f *switchFlag, c *allot.Client, n int, limit time.Duration) []time.Duration {
	t.Helper()
	var took []time.Duration
	for i := range n {
		want := []string{"b", "a"}[i%2]
		start := time.Now()
		f.set(t, want)
		if !waitFor(limit, func() bool { return c.GetStringAssignment(f.key, "subject", nil, "default") == want }) {
			t.Fatalf("change %d (to %q) not visible after %v; status %+v", i, want, limit, c.Status())
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	return took
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

// TestStreamPropagation: the Go SDK, streaming from a server on SQLite,
// sees each change made through the API within a second; with polling every
// hour, only the stream can bring it. p50/p99 over 200 changes go to the
// log (BENCHMARKS.md).
func TestStreamPropagation(t *testing.T) {
	s := start(t, server.Config{DB: storetest.DSN(t, "sqlite"), AdminToken: adminToken})
	api := apiclient.New(s.URL(), adminToken)
	f := newSwitchFlag(t, api, "kill-switch")
	key, err := api.CreateSDKKey(context.Background(), "production", "svc")
	if err != nil {
		t.Fatal(err)
	}
	c := newStreamingClient(t, s.URL(), key.Secret, allot.Config{PollInterval: time.Hour})
	if !waitFor(5*time.Second, func() bool { return c.Status().Mode == allot.ModeStreaming }) {
		t.Fatalf("not streaming: %+v", c.Status())
	}
	n := 200
	if testing.Short() {
		n = 20
	}
	took := measurePropagation(t, f, c, n, time.Second)
	t.Logf("sqlite, one server: %d changes, propagation p50 %v p99 %v max %v", n, quantile(took, 0.5), quantile(took, 0.99), took[len(took)-1])
}

// cutter is a loopback reverse proxy that can cut configuration streams:
// open ones are dropped and new ones refused (503) while cut.
type cutter struct {
	mu      sync.Mutex
	cut     bool
	cancels map[*http.Request]context.CancelFunc
	streams int // stream requests that reached the server
	proxy   *httputil.ReverseProxy
}

func newCutter(t *testing.T, target string) (*httptest.Server, *cutter) {
	u, _ := url.Parse(target)
	c := &cutter{cancels: map[*http.Request]context.CancelFunc{}, proxy: httputil.NewSingleHostReverseProxy(u)}
	c.proxy.FlushInterval = -1
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return srv, c
}

func (c *cutter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/stream") {
		c.proxy.ServeHTTP(w, r)
		return
	}
	c.mu.Lock()
	if c.cut {
		c.mu.Unlock()
		http.Error(w, "cut", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	r = r.WithContext(ctx)
	c.cancels[r] = cancel
	c.streams++
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.cancels, r)
		c.mu.Unlock()
		cancel()
	}()
	defer func() {
		if v := recover(); v != nil && v != http.ErrAbortHandler {
			panic(v)
		}
	}()
	c.proxy.ServeHTTP(w, r)
}

func (c *cutter) setCut(cut bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut = cut
	if cut {
		for _, cancel := range c.cancels {
			cancel()
		}
	}
}

// TestStreamCutFallsBackToPolling: when a proxy cuts the stream, the SDK
// says it polls, catches up with a change through polling, and streams
// again once the proxy lets it.
func TestStreamCutFallsBackToPolling(t *testing.T) {
	s := start(t, server.Config{DB: storetest.DSN(t, "sqlite"), AdminToken: adminToken})
	api := apiclient.New(s.URL(), adminToken)
	f := newSwitchFlag(t, api, "kill-switch")
	key, err := api.CreateSDKKey(context.Background(), "production", "svc")
	if err != nil {
		t.Fatal(err)
	}
	front, cut := newCutter(t, s.URL())
	c := newStreamingClient(t, front.URL, key.Secret, allot.Config{PollInterval: 300 * time.Millisecond, MaxBackoff: time.Second})
	if !waitFor(5*time.Second, func() bool { return c.Status().Mode == allot.ModeStreaming }) {
		t.Fatalf("not streaming: %+v", c.Status())
	}
	cut.setCut(true)
	if !waitFor(5*time.Second, func() bool { return c.Status().Mode == allot.ModePolling }) {
		t.Fatalf("still says streaming after the cut: %+v", c.Status())
	}
	f.set(t, "b")
	if !waitFor(5*time.Second, func() bool { return c.GetStringAssignment(f.key, "s", nil, "") == "b" }) {
		t.Fatalf("polling did not catch up: %+v", c.Status())
	}
	cut.setCut(false)
	if !waitFor(10*time.Second, func() bool { return c.Status().Mode == allot.ModeStreaming }) {
		t.Fatalf("did not stream again: %+v", c.Status())
	}
}

// openStream opens the stream with the given headers and returns the
// response and its events, read by one goroutine until the body ends.
func openStream(t *testing.T, rawURL string, hdr map[string]string) (*http.Response, <-chan sseEvent) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", rawURL, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	events := make(chan sseEvent, 16)
	go func() {
		defer close(events)
		r := bufio.NewReader(resp.Body)
		var ev sseEvent
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case line == "" && ev.data != "":
				events <- ev
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	return resp, events
}

type sseEvent struct{ id, data string }

// nextEvent waits up to d for the next event.
func nextEvent(t *testing.T, events <-chan sseEvent, d time.Duration) (sseEvent, error) {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			return sseEvent{}, fmt.Errorf("stream ended")
		}
		return ev, nil
	case <-time.After(d):
		return sseEvent{}, fmt.Errorf("no event within %v", d)
	}
}

// TestStreamEndpoint: authentication (query or header), headers, the
// first event with the inline document, Last-Event-ID, and a change.
func TestStreamEndpoint(t *testing.T) {
	s := start(t, server.Config{DB: storetest.DSN(t, "sqlite"), AdminToken: adminToken})
	api := apiclient.New(s.URL(), adminToken)
	f := newSwitchFlag(t, api, "kill-switch")
	key, err := api.CreateSDKKey(context.Background(), "production", "svc")
	if err != nil {
		t.Fatal(err)
	}
	streamURL := s.URL() + "/api/flag-config/v1/stream"

	for _, hdr := range []map[string]string{nil, {"Authorization": "Bearer wrong"}} {
		resp, _ := openStream(t, streamURL+"?apiKey=nope", hdr)
		if resp.StatusCode != 401 || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("bad key: %d %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
		}
	}

	resp, r := openStream(t, streamURL, map[string]string{"Authorization": "Bearer " + key.Secret})
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("stream: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"))
	}
	first, err := nextEvent(t, r, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Type   string          `json:"type"`
		ETag   string          `json:"etag"`
		Config json.RawMessage `json:"config"`
	}
	if err := json.Unmarshal([]byte(first.data), &m); err != nil || m.ETag != first.id || m.Type != "refetchEvaluation" || !strings.Contains(string(m.Config), `"kill-switch"`) {
		t.Fatalf("first event: %+v (%v)", first, err)
	}
	req, _ := http.NewRequest("GET", s.URL()+"/api/flag-config/v1/config?apiKey="+key.Secret, nil)
	req.Header.Set("Accept-Encoding", "identity")
	cfg, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Body.Close()
	if cfg.Header.Get("ETag") != first.id {
		t.Errorf("event id %s, config ETag %s", first.id, cfg.Header.Get("ETag"))
	}

	// A client that has the current configuration hears nothing until it
	// changes; one with an older ETag gets the current at once.
	_, current := openStream(t, streamURL+"?apiKey="+key.Secret, map[string]string{"Last-Event-ID": first.id})
	if ev, err := nextEvent(t, current, 300*time.Millisecond); err == nil {
		t.Fatalf("up-to-date client got %+v", ev)
	}
	// The gzip representation's ETag (what a client that polled with gzip
	// holds) names the same configuration.
	req, _ = http.NewRequest("GET", s.URL()+"/api/flag-config/v1/config?apiKey="+key.Secret, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	gz, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	gz.Body.Close()
	gzTag := gz.Header.Get("ETag")
	if gzTag == first.id || gzTag == "" {
		t.Fatalf("gzip ETag %q", gzTag)
	}
	_, currentGz := openStream(t, streamURL+"?apiKey="+key.Secret, map[string]string{"Last-Event-ID": gzTag})
	if ev, err := nextEvent(t, currentGz, 300*time.Millisecond); err == nil {
		t.Fatalf("up-to-date client (gzip ETag) got %+v", ev)
	}
	_, stale := openStream(t, streamURL+"?apiKey="+key.Secret, map[string]string{"Last-Event-ID": `"old"`})
	if ev, err := nextEvent(t, stale, 5*time.Second); err != nil || ev.id != first.id {
		t.Fatalf("stale client: %+v %v", ev, err)
	}

	f.set(t, "b")
	for name, rd := range map[string]<-chan sseEvent{"first": r, "current": current, "current (gzip)": currentGz, "stale": stale} {
		ev, err := nextEvent(t, rd, 5*time.Second)
		if err != nil || ev.id == first.id || !strings.Contains(ev.data, `"variationKey":"b"`) {
			t.Errorf("%s stream after the change: %+v %v", name, ev, err)
		}
	}
}

// TestCloseEndsStreams: shutting down does not wait for open streams (they
// never go idle) until the shutdown timeout.
func TestCloseEndsStreams(t *testing.T) {
	s, err := server.Start(context.Background(), server.Config{Addr: "127.0.0.1:0", DB: storetest.DSN(t, "sqlite"), AdminToken: adminToken})
	if err != nil {
		t.Fatal(err)
	}
	key, err := apiclient.New(s.URL(), adminToken).CreateSDKKey(context.Background(), "production", "svc")
	if err != nil {
		t.Fatal(err)
	}
	_, r := openStream(t, s.URL()+"/api/flag-config/v1/stream?apiKey="+key.Secret, nil)
	if _, err := nextEvent(t, r, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Close(ctx); err != nil {
		t.Fatalf("close with an open stream: %v after %v", err, time.Since(start))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("close took %v", d)
	}
}

// TestStreamAcrossReplicas: two replicas on one PostgreSQL database, the
// SDK streaming from b, changes made through a. Both poll the database
// only every hour, so each change reaches b by LISTEN/NOTIFY or not at all.
func TestStreamAcrossReplicas(t *testing.T) {
	if !slices.Contains(storetest.Dialects(), "postgres") {
		t.Skip("ALLOT_TEST_POSTGRES=off")
	}
	dsn := storetest.DSN(t, "postgres")
	a := start(t, server.Config{DB: dsn, AdminToken: adminToken, PollInterval: time.Hour})
	b := start(t, server.Config{DB: dsn, AdminToken: adminToken, PollInterval: time.Hour})
	api := apiclient.New(a.URL(), adminToken)
	f := newSwitchFlag(t, api, "kill-switch")
	key, err := api.CreateSDKKey(context.Background(), "production", "svc")
	if err != nil {
		t.Fatal(err)
	}
	// The new key reaches b by notification too, a moment after a answered.
	if !waitFor(5*time.Second, func() bool {
		resp, err := http.Get(b.URL() + "/api/flag-config/v1/config?apiKey=" + key.Secret)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}) {
		t.Fatal("replica b never accepted the key made on a")
	}
	c := newStreamingClient(t, b.URL(), key.Secret, allot.Config{PollInterval: time.Hour})
	if !waitFor(5*time.Second, func() bool { return c.Status().Mode == allot.ModeStreaming }) {
		t.Fatalf("not streaming: %+v", c.Status())
	}
	n := 200
	if testing.Short() {
		n = 20
	}
	took := measurePropagation(t, f, c, n, time.Second)
	t.Logf("postgres, change on a, SDK on b: %d changes, propagation p50 %v p99 %v max %v", n, quantile(took, 0.5), quantile(took, 0.99), took[len(took)-1])
}

// TestStreamEndsWhenTheKeyIsRevoked: a revoked key keeps no stream open;
// here the revocation republishes, and the stream ends then.
func TestStreamEndsWhenTheKeyIsRevoked(t *testing.T) {
	s := start(t, server.Config{DB: storetest.DSN(t, "sqlite"), AdminToken: adminToken})
	api := apiclient.New(s.URL(), adminToken)
	key, err := api.CreateSDKKey(context.Background(), "production", "svc")
	if err != nil {
		t.Fatal(err)
	}
	_, events := openStream(t, s.URL()+"/api/flag-config/v1/stream?apiKey="+key.Secret, nil)
	if _, err := nextEvent(t, events, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := streamGauge(t, s); got != "1" {
		t.Errorf("allot_config_streams %q with one stream open", got)
	}
	if err := api.RevokeSDKKey(context.Background(), key.ID); err != nil {
		t.Fatal(err)
	}
	if ev, err := nextEvent(t, events, 5*time.Second); err == nil || err.Error() != "stream ended" {
		t.Fatalf("after revocation: %+v %v, want the stream to end", ev, err)
	}
	if !waitFor(5*time.Second, func() bool { return streamGauge(t, s) == "0" }) {
		t.Errorf("allot_config_streams %q after the stream ended", streamGauge(t, s))
	}
}

// streamGauge reads allot_config_streams from /metrics.
func streamGauge(t *testing.T, s *server.Server) string {
	t.Helper()
	req, _ := http.NewRequest("GET", s.URL()+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "allot_config_streams "); ok {
			return v
		}
	}
	return ""
}
