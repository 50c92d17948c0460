package allot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// fixedNow is inside the window of every fixture (the start-and-end-date
// fixture is valid until 2050).
var fixedNow = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

// experimentDoc is the engine's benchmark experiment (internal/eval
// BenchmarkExperiment): 80 % traffic, 50/50, server-style 16-hex salts.
const experimentDoc = `{
  "createdAt": "2026-01-01T00:00:00Z", "format": "SERVER", "environment": {"name": "test"},
  "flags": {"checkout-experiment": {
    "key": "checkout-experiment", "enabled": true, "variationType": "STRING", "totalShards": 10000,
    "variations": {"control": {"key": "control", "value": "control"}, "treatment": {"key": "treatment", "value": "treatment"}},
    "allocations": [{"key": "experiment", "doLog": true, "splits": [
      {"variationKey": "control", "extraLogging": {"holdout": "none"}, "shards": [
        {"salt": "7f3a9c1e5b2d4f60", "ranges": [{"start": 0, "end": 8000}]},
        {"salt": "c4e8a2f6b0d9e1a7", "ranges": [{"start": 0, "end": 5000}]}]},
      {"variationKey": "treatment", "extraLogging": {"holdout": "none"}, "shards": [
        {"salt": "7f3a9c1e5b2d4f60", "ranges": [{"start": 0, "end": 8000}]},
        {"salt": "c4e8a2f6b0d9e1a7", "ranges": [{"start": 5000, "end": 10000}]}]}]}]}}}`

// constantDoc returns a document with one STRING flag that serves value to
// everybody, created at the given time.
func constantDoc(flag, value string, createdAt time.Time) []byte {
	return fmt.Appendf(nil, `{"createdAt": %q, "format": "SERVER", "environment": {"name": "test"},
  "flags": {%q: {"key": %q, "enabled": true, "variationType": "STRING", "totalShards": 10000,
    "variations": {%q: {"key": %q, "value": %q}},
    "allocations": [{"key": "everyone", "doLog": true, "splits": [{"variationKey": %q, "shards": []}]}]}}}`,
		createdAt.UTC().Format(time.RFC3339), flag, flag, value, value, value, value)
}

// subjects returns n distinct 24-character subject keys.
func subjects(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("user-%019d", i*7919)
	}
	return out
}

// recorder is an AssignmentLogger that keeps the events.
type recorder struct {
	mu     sync.Mutex
	events []AssignmentEvent
}

func (r *recorder) LogAssignment(e AssignmentEvent) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) all() []AssignmentEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]AssignmentEvent(nil), r.events...)
}

// handlerTransport serves requests in memory with a handler, so that tests
// in a synctest bubble need no sockets. It honours the request's context.
type handlerTransport struct {
	h http.Handler
}

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	return rec.Result(), nil
}

// downTransport fails every request as a server that is not listening.
type downTransport struct{}

func (downTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("connect: connection refused")
}

// closeClient closes c at the end of the test and checks that it stops.
func closeClient(t testing.TB, c *Client) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}
