package allot

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/eval"
)

// The fast path of assignment logging: first exposures (a subject not
// logged before) through the default client and HTTPLogger to a server on
// loopback that counts what it receives.

// rolloutDoc is a 50/50 rollout of every subject; with targeted, behind a
// rule on country (half the subjects match).
func rolloutDoc(targeted bool) string {
	rules := ""
	if targeted {
		rules = `"rules": [{"conditions": [{"attribute": "country", "operator": "ONE_OF", "value": ["US", "CA", "MX"]}]}],`
	}
	return `{"createdAt": "2026-01-01T00:00:00Z", "format": "SERVER", "environment": {"name": "bench"},
  "flags": {"exp": {"key": "exp", "enabled": true, "variationType": "STRING", "totalShards": 10000,
    "variations": {"control": {"key": "control", "value": "control"}, "treatment": {"key": "treatment", "value": "treatment"}},
    "allocations": [{"key": "a", "doLog": true, ` + rules + ` "splits": [
      {"variationKey": "control", "shards": [{"salt": "s", "ranges": [{"start": 0, "end": 5000}]}]},
      {"variationKey": "treatment", "shards": [{"salt": "s", "ranges": [{"start": 5000, "end": 10000}]}]}]}]}}}`
}

var countries = [4]string{"US", "FR", "CA", "DE"}

// manySubjects returns n distinct 24-character subject keys carved from
// one buffer (n strings would be n allocations and as many GC objects).
func manySubjects(n int) []string {
	buf := make([]byte, 0, n*24)
	out := make([]string, n)
	for i := range out {
		start := len(buf)
		buf = append(buf, "user-"...)
		buf = strconv.AppendUint(buf, 1_000_000_000_000_000_000+uint64(i), 10)
		out[i] = unsafeString(buf[start:len(buf):len(buf)])
	}
	return out
}

// countingServer stands for the assignments endpoint: it counts the events
// of each gzip-compressed batch and accepts them all.
type countingServer struct {
	events atomic.Int64
	srv    *httptest.Server
}

func newCountingServer(tb testing.TB) *countingServer {
	s := &countingServer{}
	var pool sync.Pool
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, _ := pool.Get().(*gzip.Reader)
			var err error
			if zr == nil {
				zr, err = gzip.NewReader(r.Body)
			} else {
				err = zr.Reset(r.Body)
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			defer pool.Put(zr)
			body = zr
		}
		var n int64
		buf := make([]byte, 64<<10)
		for {
			k, err := body.Read(buf)
			n += int64(bytes.Count(buf[:k], []byte{'\n'}))
			if err == io.EOF {
				break
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		s.events.Add(n)
		fmt.Fprintf(w, `{"accepted":%d}`, n)
	}))
	tb.Cleanup(s.srv.Close)
	return s
}

// fastpathClient is a client with default settings logging through an
// HTTPLogger with default settings to srv.
func fastpathClient(tb testing.TB, srv *countingServer, targeted bool) *Client {
	l, err := NewHTTPLogger(HTTPLoggerConfig{SDKKey: "k", BaseURL: srv.srv.URL + "/api"})
	if err != nil {
		tb.Fatal(err)
	}
	c, err := NewClient(context.Background(), Config{Offline: true, InitialConfiguration: []byte(rolloutDoc(targeted)), AssignmentLogger: l})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func attrsFor(n int, targeted bool) []Attributes {
	out := make([]Attributes, 4)
	for i := range out {
		if targeted {
			out[i] = Attributes{"country": countries[i]}
		}
	}
	return out
}

// exposures assigns subs[from:to] once each.
func exposures(c *Client, subs []string, attrs []Attributes, from, to int) {
	for i := from; i < to; i++ {
		sinkString = c.GetStringAssignment("exp", subs[i], attrs[i&3], "default")
	}
}

// inExperiment is how many of the first n subjects the flag assigns.
func inExperiment(n int, targeted bool) int {
	if !targeted {
		return n
	}
	return (n + 1) / 2 // US and CA of US, FR, CA, DE
}

// closeAndCount closes c and checks that every exposure reached the
// server and none was dropped.
func closeAndCount(tb testing.TB, c *Client, srv *countingServer, want int) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	logger := c.cfg.AssignmentLogger.(*HTTPLogger)
	st0 := c.Status()
	if err := c.Close(ctx); err != nil {
		tb.Fatal(err)
	}
	st, ls := c.Status(), logger.Stats()
	tb.Logf("%d exposures: logged %d, dropped by the client %d (%d before Close), by the HTTP logger %d; server received %d",
		want, st.EventsLogged, st.EventsDropped, st0.EventsDropped, ls.Dropped, srv.events.Load())
	if st.EventsDropped != 0 || ls.Dropped != 0 || st.EventsLogged != uint64(want) || srv.events.Load() != int64(want) {
		tb.Errorf("events lost: logged %d, dropped %d + %d, delivered %d, want %d delivered",
			st.EventsLogged, st.EventsDropped, ls.Dropped, srv.events.Load(), want)
	}
}

// TestFirstExposureAllocs: a first exposure costs at most one allocation,
// everything included (the logging goroutine, the HTTP logger, the test
// server); a repeat costs none (TestGetterNoAlloc).
func TestFirstExposureAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("measures 200,000 exposures")
	}
	for _, targeted := range []bool{false, true} {
		srv := newCountingServer(t)
		c := fastpathClient(t, srv, targeted)
		const n = 200_000
		subs, attrs := manySubjects(n), attrsFor(n, targeted)
		exposures(c, subs, attrs, 0, 1000) // warm up: batches, buffers, connections
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		exposures(c, subs, attrs, 1000, n)
		if err := c.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		per := float64(after.Mallocs-before.Mallocs) / float64(n-1000)
		t.Logf("targeted=%v: %.3f allocations, %.0f bytes per first exposure", targeted, per, float64(after.TotalAlloc-before.TotalAlloc)/float64(n-1000))
		if per > 1 {
			t.Errorf("targeted=%v: %.2f allocations per first exposure, want at most 1", targeted, per)
		}
		closeAndCount(t, c, srv, inExperiment(n, targeted))
	}
}

// BenchmarkFirstExposure: every call a subject never seen, so every call
// in the experiment is logged, through the default client and HTTPLogger
// to a server on loopback. The client must drop nothing; the server's
// count is checked after Close. ns/op includes delivery: the benchmark
// ends when the last event has reached the server.
func BenchmarkFirstExposure(b *testing.B) {
	for _, targeted := range []bool{false, true} {
		for _, parallel := range []bool{false, true} {
			name := map[bool]string{false: "rollout", true: "targeted"}[targeted] + map[bool]string{false: "", true: "-parallel"}[parallel]
			b.Run(name, func(b *testing.B) { benchExposures(b, targeted, parallel, 0) })
		}
	}
}

// BenchmarkTenMillionSubjects is the proof of the drop policy: 10 M
// distinct subjects, as fast as every core can assign them, with default
// settings; any drop fails it. Run it with -benchtime 1x:
//
//	ALLOT_BENCH_SUBJECTS=10000000 go test -run '^$' -bench TenMillion -benchtime 1x -benchmem
func BenchmarkTenMillionSubjects(b *testing.B) {
	n := 10_000_000
	if s := os.Getenv("ALLOT_BENCH_SUBJECTS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	for _, targeted := range []bool{false, true} {
		b.Run(map[bool]string{false: "rollout", true: "targeted"}[targeted]+"-parallel", func(b *testing.B) {
			benchExposures(b, targeted, true, n)
		})
	}
}

// benchExposures assigns b.N new subjects (or exactly fixed, once per
// b.Loop round, when fixed > 0) and checks that each exposure arrived.
func benchExposures(b *testing.B, targeted, parallel bool, fixed int) {
	total := b.N
	if fixed > 0 {
		total = fixed
	}
	subs, attrs := manySubjects(total), attrsFor(total, targeted)
	srv := newCountingServer(b)
	c := fastpathClient(b, srv, targeted)
	b.ReportAllocs()
	b.ResetTimer()
	if parallel {
		var next atomic.Int64
		const chunk = 1024
		var wg sync.WaitGroup
		for range runtime.GOMAXPROCS(0) {
			wg.Go(func() {
				for {
					from := int(next.Add(chunk)) - chunk
					if from >= total {
						return
					}
					exposures(c, subs, attrs, from, min(from+chunk, total))
				}
			})
		}
		wg.Wait()
	} else {
		exposures(c, subs, attrs, 0, total)
	}
	if err := c.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if fixed > 0 {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(total), "ns/exposure")
	}
	b.ReportMetric(float64(c.Status().EventsDropped), "dropped")
	closeAndCount(b, c, srv, inExperiment(total, targeted))
}

// TestAssistUnderBacklog: when the logger falls behind (a slow server and
// a small buffer), callers never wait for the server (callers may assist,
// TestAssist), and every event is accounted for: delivered, or dropped and
// counted.
func TestAssistUnderBacklog(t *testing.T) {
	var received atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		time.Sleep(20 * time.Millisecond) // a slow server
		n := bytes.Count(b, []byte{'\n'})
		received.Add(int64(n))
		fmt.Fprintf(w, `{"accepted":%d}`, n)
	}))
	defer srv.Close()
	l, err := NewHTTPLogger(HTTPLoggerConfig{SDKKey: "k", BaseURL: srv.URL + "/api", BufferSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(context.Background(), Config{Offline: true, InitialConfiguration: []byte(rolloutDoc(false)),
		AssignmentLogger: l, EventQueueSize: 4 * batchLen})
	if err != nil {
		t.Fatal(err)
	}
	const n = 100_000
	subs, attrs := manySubjects(n), attrsFor(n, false)
	start := time.Now()
	exposures(c, subs, attrs, 0, n)
	took := time.Since(start)
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, ls := c.Status(), l.Stats()
	t.Logf("%d exposures in %v: %d assists; logged %d, dropped %d; logger %+v; server received %d",
		n, took, c.events.assists.Load(), st.EventsLogged, st.EventsDropped, ls, received.Load())
	if st.EventsLogged+st.EventsDropped != n || int64(st.EventsLogged) != received.Load()+int64(ls.Dropped) {
		t.Errorf("events unaccounted for: logged %d + dropped %d of %d; received %d, logger dropped %d",
			st.EventsLogged, st.EventsDropped, n, received.Load(), ls.Dropped)
	}
}

// TestAssist: a caller's assist takes full batches from the buffer,
// encodes them for the HTTP logger, frees the batches and counts the
// events as logged; they reach the server.
func TestAssist(t *testing.T) {
	srv := newCountingServer(t)
	l, err := NewHTTPLogger(HTTPLoggerConfig{SDKKey: "k", BaseURL: srv.srv.URL + "/api"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(context.Background())
	// A processor without its logging goroutine: only the assist takes
	// the batches.
	p := newEventProcessor(Config{AssignmentLogger: l}.withDefaults())
	snap, err := eval.Load([]byte(rolloutDoc(true)))
	if err != nil {
		t.Fatal(err)
	}
	f := snap.Flag("exp")
	subs := manySubjects(8 * batchLen) // half are outside the rule
	attrs := attrsFor(len(subs), true)
	next := 0
	for range 3 {
		b := p.newBatch()
		for len(b.recs) < batchLen {
			i := next
			next++
			res := f.Evaluate(subs[i], attrs[i&3], "", time.Time{})
			if res.Allocation == nil {
				continue
			}
			lo := len(b.attrs)
			for k, v := range attrs[i&3] {
				b.attrs = append(b.attrs, attrKV{k, v})
			}
			b.recs = append(b.recs, record{flag: "exp", subject: subs[i], alloc: res.Allocation, split: res.Split,
				at: time.Now(), attrLo: int32(lo), attrHi: int32(len(b.attrs))})
		}
		p.full <- b
	}
	if got := p.inUse(); got != 3 {
		t.Fatalf("%d batches in use, want 3", got)
	}
	p.assist()
	if p.assists.Load() != 1 || len(p.full) != 0 || p.inUse() != 0 {
		t.Fatalf("assists %d, %d batches waiting, %d in use", p.assists.Load(), len(p.full), p.inUse())
	}
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p.logged.Load() != 3*batchLen || srv.events.Load() != 3*batchLen {
		t.Errorf("logged %d, server received %d, want %d", p.logged.Load(), srv.events.Load(), 3*batchLen)
	}
}
