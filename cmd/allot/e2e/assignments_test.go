// Package e2e runs Allot's parts together: the server, the Go SDK and its
// HTTP assignment logger, through a network that fails on purpose.
package e2e_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/allot-dev/allot"
	"github.com/allot-dev/allot/cmd/allot/internal/apiclient"
	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/server"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
)

const adminToken = "allot_admin_e2e-test-token-0123456789"

// faultyProxy forwards to the current server, but answers some assignment
// posts with a 500 without forwarding them, and drops the connection of
// others after the server has stored them (so the SDK retries a batch that
// is already stored).
type faultyProxy struct {
	target                 atomic.Pointer[url.URL]
	mu                     sync.Mutex
	rng                    *rand.Rand
	failed, dropped, total atomic.Int64
}

func (p *faultyProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := p.target.Load()
	if target == nil {
		http.Error(w, "no server", http.StatusBadGateway) // between two servers
		return
	}
	fault := 0
	if r.Method == http.MethodPost {
		p.total.Add(1)
		p.mu.Lock()
		x := p.rng.IntN(10)
		p.mu.Unlock()
		fault = map[int]int{0: 1, 1: 2}[x] // 10 % each
	}
	if fault == 1 {
		p.failed.Add(1)
		http.Error(w, "injected failure", http.StatusInternalServerError)
		return
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ErrorLog = log.New(io.Discard, "", 0) // refused connections are the point
	if fault == 2 {
		// Let the server store the batch, then cut the connection before
		// the answer reaches the SDK.
		rec := httptest.NewRecorder()
		proxy.ServeHTTP(rec, r)
		p.dropped.Add(1)
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		http.Error(w, "dropped", http.StatusBadGateway)
		return
	}
	proxy.ServeHTTP(w, r)
}

func startServer(t *testing.T, dsn string) *server.Server {
	t.Helper()
	s, err := server.Start(context.Background(), server.Config{Addr: "127.0.0.1:0", DB: dsn, AdminToken: adminToken})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func stopServer(t *testing.T, s *server.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Errorf("close: %v", err)
	}
}

// e2eDialect is the database of the end-to-end run: the last of
// storetest.Dialects(), PostgreSQL unless ALLOT_TEST_POSTGRES=off.
func e2eDialect() string {
	d := storetest.Dialects()
	return d[len(d)-1]
}

type logged struct{ flag, subject, allocation, variation string }

// TestAssignmentTableEndToEnd: 100,000 assignments over four experiments go
// from the SDK through a failing network and a server restart into the
// assignment table: exactly one row per logged event, none lost, none
// doubled. The sample ratio check passes for the experiment logged as
// assigned, and fires for one whose logging drops a fifth of a variation.
func TestAssignmentTableEndToEnd(t *testing.T) {
	// PostgreSQL when the tests have one, else SQLite: decide before asking
	// for a database, since ALLOT_TEST_POSTGRES=off is no address.
	dsn := storetest.DSN(t, e2eDialect())
	srv := startServer(t, dsn)
	proxy := &faultyProxy{rng: rand.New(rand.NewPCG(11, 12))}
	u, _ := url.Parse(srv.URL())
	proxy.target.Store(u)
	front := httptest.NewServer(proxy)
	defer front.Close()

	ctx := context.Background()
	admin := apiclient.New(srv.URL(), adminToken)
	flags := []string{"checkout", "pricing", "onboarding", "skewed"}
	for _, f := range flags {
		_, err := admin.CreateFlag(ctx, core.Flag{Key: f, VariationType: "STRING", Variations: []core.Variation{
			{Key: "control", Value: json.RawMessage(`"c"`)}, {Key: "treatment", Value: json.RawMessage(`"t"`)}}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = admin.PutSettings(ctx, core.FlagSettings{Flag: f, Environment: "production", Enabled: true, Allocations: []core.Allocation{{
			Key: "exp", Type: core.Experiment, Status: core.Running, Traffic: core.Whole,
			Weights: []core.Weight{{Variation: "control", Weight: 5000}, {Variation: "treatment", Weight: 5000}}}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	key, err := admin.CreateSDKKey(ctx, "production", "e2e")
	if err != nil {
		t.Fatal(err)
	}

	hl, err := allot.NewHTTPLogger(allot.HTTPLoggerConfig{SDKKey: key.Secret, BaseURL: front.URL + "/api",
		BatchSize: 500, FlushInterval: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, BufferSize: 200_000})
	if err != nil {
		t.Fatal(err)
	}
	// What the SDK logs, as the application's own record. The "skewed"
	// experiment loses a fifth of its treatment events on the way, as a
	// buggy logging pipeline would.
	var mu sync.Mutex
	var want []logged
	dropSkewed := 0
	recorder := allot.AssignmentLoggerFunc(func(e allot.AssignmentEvent) {
		if e.FeatureFlag == "skewed" && e.Variation == "treatment" {
			if dropSkewed++; dropSkewed%5 == 0 {
				return
			}
		}
		mu.Lock()
		want = append(want, logged{e.FeatureFlag, e.Subject, e.Allocation, e.Variation})
		mu.Unlock()
		hl.LogAssignment(e)
	})
	client, err := allot.NewClient(ctx, allot.Config{SDKKey: key.Secret, BaseURL: front.URL + "/api", AssignmentLogger: recorder,
		EventQueueSize: 200_000, PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}

	const perFlag = 25_000 // 100,000 assignments in all
	assign := func(from, to int) {
		for i := from; i < to; i++ {
			for _, f := range flags {
				client.GetStringAssignment(f, fmt.Sprintf("user-%06d", i), allot.Attributes{"plan": "pro"}, "none")
			}
		}
	}
	assign(0, perFlag/2)
	// Restart the server mid-stream: the SDK meets 502s, then a new process
	// on the same database.
	proxy.target.Store(nil)
	stopServer(t, srv)
	srv = startServer(t, dsn)
	defer stopServer(t, srv)
	u, _ = url.Parse(srv.URL())
	proxy.target.Store(u)
	assign(perFlag/2, perFlag)

	fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	// The client hands every event to the recorder; the HTTP logger behind
	// it then delivers them (the recorder has no Flush of its own, so it is
	// flushed here).
	if err := client.Close(fctx); err != nil {
		t.Fatal(err)
	}
	if err := hl.Flush(fctx); err != nil {
		t.Fatalf("flush: %v (logger %+v)", err, hl.Stats())
	}
	if err := hl.Close(fctx); err != nil {
		t.Fatal(err)
	}
	st := hl.Stats()
	if st.Dropped != 0 || st.Rejected != 0 || st.Pending != 0 || st.Retries == 0 {
		t.Fatalf("logger stats %+v", st)
	}
	if proxy.failed.Load() == 0 || proxy.dropped.Load() == 0 {
		t.Fatalf("no faults injected: %d failed, %d dropped of %d", proxy.failed.Load(), proxy.dropped.Load(), proxy.total.Load())
	}

	// The table: one row per event the SDK logged.
	admin = apiclient.New(srv.URL(), adminToken)
	var buf bytes.Buffer
	if err := admin.ExportAssignments(ctx, apiclient.ExportQuery{Environment: "production"}, &buf); err != nil {
		t.Fatal(err)
	}
	r := csv.NewReader(&buf)
	if _, err := r.Read(); err != nil { // header
		t.Fatal(err)
	}
	ids := map[string]bool{}
	got := map[logged]int{}
	rows := 0
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rows++
		ids[rec[0]] = true
		got[logged{rec[3], rec[6], rec[4], rec[5]}]++
	}
	wantSet := map[logged]bool{}
	for _, w := range want {
		wantSet[w] = true
	}
	if len(want) < 95_000 || len(wantSet) != len(want) {
		t.Fatalf("the SDK logged %d events (%d distinct)", len(want), len(wantSet))
	}
	if rows != len(want) || len(ids) != rows {
		t.Fatalf("table has %d rows and %d distinct event ids; the SDK logged %d events", rows, len(ids), len(want))
	}
	for w := range wantSet {
		if got[w] != 1 {
			t.Fatalf("event %+v is in the table %d times", w, got[w])
		}
	}
	t.Logf("%d events, %d rows; proxy: %d posts, %d failed, %d dropped after storing; logger: %d retries",
		len(want), rows, proxy.total.Load(), proxy.failed.Load(), proxy.dropped.Load(), st.Retries)

	for flag, mismatch := range map[string]bool{"checkout": false, "skewed": true} {
		sum, err := admin.AssignmentSummary(ctx, "production", flag, "exp")
		if err != nil {
			t.Fatal(err)
		}
		if sum.SRM == nil || sum.SRM.Mismatch != mismatch {
			t.Errorf("%s: SRM %+v, want mismatch=%v (variations %v)", flag, sum.SRM, mismatch, sum.Variations)
		}
	}
}
