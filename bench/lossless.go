package main

import (
	"bytes"
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
	"time"
	"unsafe"

	gb "github.com/growthbook/growthbook-golang"
	"github.com/launchdarkly/go-sdk-common/v3/ldcontext"
	"github.com/launchdarkly/go-sdk-common/v3/ldlog"
	"github.com/launchdarkly/go-sdk-common/v3/ldvalue"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldbuilders"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldmodel"
	ld "github.com/launchdarkly/go-server-sdk/v7"
	"github.com/launchdarkly/go-server-sdk/v7/ldcomponents"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems"
	"github.com/launchdarkly/go-server-sdk/v7/testhelpers/ldtestdata"

	"github.com/allot-dev/allot"
)

// The lossless mode: n distinct subjects, each assigned once, so that
// every assignment in the experiment is a first exposure that must be
// logged, and every SDK must deliver every one of those events:
//
//   - Allot: the default client and HTTPLogger, posting to a sink on
//     loopback that counts the JSON lines it receives.
//   - LaunchDarkly: the default event processor with full feature events
//     for the experiment's evaluations (TrackEvents on the rollout or the
//     rule), its buffer raised so that it drops nothing, posting to a sink
//     that counts the feature events.
//   - GrowthBook: the experiment callback counts (it runs inline, so it
//     cannot drop).
//
// The time of a run ends when the last event has been delivered (each
// SDK's Close waits for that), and is divided by the number of
// assignments.

// LosslessRun is one SDK on one scenario, ready to assign subjects 0..n-1.
type LosslessRun struct {
	Assign func(i int)
	// Finish delivers what is buffered and returns what arrived and what
	// the SDK says it dropped.
	Finish func() (delivered, dropped int64)
	// Expected is how many events must arrive: one per subject in the
	// experiment.
	Expected int64
}

// LosslessSDK builds a LosslessRun for n subjects.
type LosslessSDK struct {
	Name  string
	Setup func(sc Scenario, n int) LosslessRun
}

var LosslessSDKs = []LosslessSDK{
	{"allot", losslessAllot},
	{"launchdarkly", losslessLaunchDarkly},
	{"growthbook", losslessGrowthBook},
}

// manySubjects returns n distinct 24-character keys (as subjects does)
// carved from one buffer, so that a million of them are not a million
// objects for the garbage collector of every SDK's run.
func manySubjects(n int) []string {
	buf := make([]byte, 0, n*24)
	out := make([]string, n)
	for i := range out {
		start := len(buf)
		buf = append(buf, "user-"...)
		s := strconv.Itoa(i * 7919)
		for range 19 - len(s) {
			buf = append(buf, '0')
		}
		buf = append(buf, s...)
		b := buf[start:len(buf):len(buf)]
		out[i] = unsafe.String(unsafe.SliceData(b), len(b))
	}
	return out
}

// expected is how many of n subjects are in the experiment: all for the
// rollout, those from US or CA (i%4 is 0 or 2) for the targeted flag.
func expected(sc Scenario, n int) int64 {
	if !sc.Targeted {
		return int64(n)
	}
	return int64((n + 1) / 2)
}

// countingSink is an event endpoint on loopback that counts what it
// receives: lines, or occurrences of a marker.
type countingSink struct {
	srv    *httptest.Server
	events atomic.Int64
	mu     sync.Mutex
	ids    map[string]bool
}

// first reports whether a payload id is new.
func (s *countingSink) first(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil {
		s.ids = map[string]bool{}
	}
	if s.ids[id] {
		return false
	}
	s.ids[id] = true
	return true
}

func newCountingSink(marker []byte, status int, reply func(n int64) string) *countingSink {
	s := &countingSink{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusOK)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		n := int64(bytes.Count(body, marker))
		// A payload sent again (LaunchDarkly names each) is counted once.
		if id := r.Header.Get("X-LaunchDarkly-Payload-Id"); id == "" || s.first(id) {
			s.events.Add(n)
		}
		w.WriteHeader(status)
		if reply != nil {
			io.WriteString(w, reply(n))
		}
	}))
	return s
}

func losslessAllot(sc Scenario, n int) LosslessRun {
	sink := newCountingSink([]byte{'\n'}, http.StatusOK, func(n int64) string { return `{"accepted":` + strconv.FormatInt(n, 10) + `}` })
	hl, err := allot.NewHTTPLogger(allot.HTTPLoggerConfig{SDKKey: "bench", BaseURL: sink.srv.URL + "/api"})
	if err != nil {
		panic(err)
	}
	c, err := allot.NewClient(context.Background(), allot.Config{Offline: true, InitialConfiguration: []byte(allotDoc(sc.Targeted)),
		AssignmentLogger: hl})
	if err != nil {
		panic(err)
	}
	subs := manySubjects(n)
	var attrs [4]allot.Attributes
	for i := range attrs {
		if sc.Targeted {
			attrs[i] = allot.Attributes{"country": countries[i]}
		}
	}
	return LosslessRun{
		Assign: func(i int) { c.GetStringAssignment(flagKey, subs[i], attrs[i&3], defaultValue) },
		Finish: func() (int64, int64) {
			_ = c.Close(context.Background()) // closes hl too, after delivery
			sink.srv.Close()
			st := c.Status()
			if d := sink.events.Load(); d != int64(st.EventsLogged) {
				fmt.Printf("allot: the sink received %d events, the client logged %d\n", d, st.EventsLogged)
			}
			return sink.events.Load(), int64(st.EventsDropped + hl.Stats().Dropped)
		},
		Expected: expected(sc, n),
	}
}

func losslessLaunchDarkly(sc Scenario, n int) LosslessRun {
	rollout := ldbuilders.Rollout(ldbuilders.Bucket(0, 50000), ldbuilders.Bucket(1, 50000))
	fb := ldbuilders.NewFlagBuilder(flagKey).Version(1).On(true).
		Variations(ldvalue.String("control"), ldvalue.String("treatment"), ldvalue.String(defaultValue)).
		OffVariation(2).Salt("c4e8a2f6b0d9e1a7")
	if sc.Targeted {
		// Full events for the subjects in the experiment only (the rule).
		fb.AddRule(ldbuilders.NewRuleBuilder().ID("na").TrackEvents(true).
			Clauses(ldbuilders.Clause("country", ldmodel.OperatorIn, ldvalue.String("US"), ldvalue.String("CA"), ldvalue.String("MX"))).
			VariationOrRollout(rollout))
		fb.FallthroughVariation(2)
	} else {
		fb.Fallthrough(rollout).TrackEventsFallthrough(true)
	}
	td := ldtestdata.DataSource()
	td.UsePreconfiguredFlag(fb.Build())
	sink := newCountingSink([]byte(`"kind":"feature"`), http.StatusAccepted, nil)
	config := ld.Config{
		DataSource: td,
		// The default processor, with room for every event of the run so
		// that it drops none (its default capacity is 10,000).
		// (Each first-seen context adds an index event to the feature event.)
		Events:           ldcomponents.SendEvents().Capacity(4*n + 10_000),
		ServiceEndpoints: ldcomponents.RelayProxyEndpoints(sink.srv.URL),
		// A long timeout: a flush carries every event since the last one,
		// tens of megabytes in a run like this, and a payload that times
		// out is retried once and then dropped.
		HTTP: ldcomponents.HTTPConfiguration().HTTPClientFactory(func() *http.Client {
			return &http.Client{Timeout: 10 * time.Minute}
		}),
		Logging:          ldLogging(),
		DiagnosticOptOut: true,
	}
	client, err := ld.MakeCustomClient("bench-sdk-key", config, 5*time.Second)
	if err != nil {
		panic(err)
	}
	subs := manySubjects(n)
	contexts := make([]ldcontext.Context, n)
	for i := range contexts {
		b := ldcontext.NewBuilder(subs[i])
		if sc.Targeted {
			b.SetString("country", countries[i&3])
		}
		contexts[i] = b.Build()
	}
	want := expected(sc, n)
	return LosslessRun{
		Assign: func(i int) { client.StringVariation(flagKey, contexts[i], defaultValue) },
		Finish: func() (int64, int64) {
			_ = client.Close() // flushes and waits for the delivery
			sink.srv.Close()
			d := sink.events.Load()
			return d, max(0, want-d) // it counts no drops of its own that we can read
		},
		Expected: want,
	}
}

func losslessGrowthBook(sc Scenario, n int) LosslessRun {
	var tracked atomic.Int64
	client, err := gb.NewClient(context.Background(), gb.WithJsonFeatures(growthBookFeatures(sc.Targeted)),
		gb.WithExperimentCallback(func(context.Context, *gb.Experiment, *gb.ExperimentResult, *gb.TrackingUserContext, any) {
			tracked.Add(1)
		}))
	if err != nil {
		panic(err)
	}
	// One child client per subject, made ahead, as the other SDKs' inputs
	// are.
	subs := manySubjects(n)
	children := make([]*gb.Client, n)
	for i := range children {
		attrs := gb.Attributes{"id": subs[i]}
		if sc.Targeted {
			attrs["country"] = countries[i&3]
		}
		if children[i], err = client.WithAttributes(attrs); err != nil {
			panic(err)
		}
	}
	ctx := context.Background()
	want := expected(sc, n)
	return LosslessRun{
		Assign: func(i int) { children[i].EvalFeature(ctx, flagKey) },
		Finish: func() (int64, int64) {
			_ = client.Close()
			return tracked.Load(), 0
		},
		Expected: want,
	}
}

// LosslessResult is one timed run.
type LosslessResult struct {
	NsPerAssign, AllocsPerAssign, BytesPerAssign float64
	Delivered, Dropped, Expected                 int64
}

// RunLossless sets up sdk, assigns subjects 0..n-1 once each (on one
// goroutine, or on GOMAXPROCS goroutines taking chunks), and waits for the
// delivery.
func RunLossless(sdk LosslessSDK, sc Scenario, n int, parallel bool) LosslessResult {
	r := sdk.Setup(sc, n)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	if parallel {
		var next atomic.Int64
		const chunk = 1024
		var wg sync.WaitGroup
		for range runtime.GOMAXPROCS(0) {
			wg.Go(func() {
				for {
					from := int(next.Add(chunk)) - chunk
					if from >= n {
						return
					}
					for i := from; i < min(from+chunk, n); i++ {
						r.Assign(i)
					}
				}
			})
		}
		wg.Wait()
	} else {
		for i := range n {
			r.Assign(i)
		}
	}
	delivered, dropped := r.Finish()
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	return LosslessResult{
		NsPerAssign:     float64(elapsed.Nanoseconds()) / float64(n),
		AllocsPerAssign: float64(after.Mallocs-before.Mallocs) / float64(n),
		BytesPerAssign:  float64(after.TotalAlloc-before.TotalAlloc) / float64(n),
		Delivered:       delivered, Dropped: dropped, Expected: r.Expected,
	}
}

// ldLogging shows LaunchDarkly's warnings (about dropped events) when
// BENCH_LD_LOG is set.
func ldLogging() subsystems.ComponentConfigurer[subsystems.LoggingConfiguration] {
	if os.Getenv("BENCH_LD_LOG") != "" {
		return ldcomponents.Logging().MinLevel(ldlog.Warn)
	}
	return ldcomponents.NoLogging()
}
