package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	gb "github.com/growthbook/growthbook-golang"
	"github.com/launchdarkly/go-sdk-common/v3/ldcontext"
	"github.com/launchdarkly/go-sdk-common/v3/ldvalue"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldbuilders"
	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldmodel"
	ld "github.com/launchdarkly/go-server-sdk/v7"
	"github.com/launchdarkly/go-server-sdk/v7/ldcomponents"
	"github.com/launchdarkly/go-server-sdk/v7/testhelpers/ldtestdata"

	"github.com/allot-dev/allot"
)

// The scenarios. Each SDK gets the same flag, expressed in its own
// configuration language, and the same subjects with the same attributes.
//
//   - rollout: a STRING flag, 50 % "control" and 50 % "treatment" by a hash
//     of the subject key, every subject included.
//   - targeted: the same split behind a rule, country in {US, CA, MX}; the
//     subjects' countries cycle through US, FR, CA, DE, so half of them
//     match and the others get the default.
//
// Each runs without assignment logging ("eval") and with each SDK's
// logging or analytics turned on ("logging"): Allot with an
// AssignmentLogger and its default dedup cache; LaunchDarkly with its
// default event processor sending to a local sink; GrowthBook with an
// experiment callback.
const (
	flagKey      = "checkout-experiment"
	numSubjects  = 1024
	subjectMask  = numSubjects - 1
	defaultValue = "default"
)

// subjects returns n distinct 24-character subject keys, the same as the
// root module's benchmarks.
func subjects(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("user-%019d", i*7919)
	}
	return out
}

var countries = [4]string{"US", "FR", "CA", "DE"}

// Evaluator is one SDK set up for one scenario: Assign returns the value
// for subject i.
type Evaluator struct {
	Assign func(i int) string
	Close  func()
}

// Scenario names a flag shape.
type Scenario struct {
	Name     string
	Targeted bool
}

var Scenarios = []Scenario{{"rollout", false}, {"targeted", true}}

// SDK builds an Evaluator.
type SDK struct {
	Name  string
	Setup func(tb testing.TB, sc Scenario, logging bool) Evaluator
}

var SDKs = []SDK{
	{"allot", setupAllot},
	{"launchdarkly", setupLaunchDarkly},
	{"growthbook", setupGrowthBook},
}

// --- Allot ---

func allotDoc(targeted bool) string {
	rules := ""
	if targeted {
		rules = `"rules": [{"conditions": [{"attribute": "country", "operator": "ONE_OF", "value": ["US", "CA", "MX"]}]}],`
	}
	return `{"createdAt": "2026-01-01T00:00:00Z", "format": "SERVER", "environment": {"name": "bench"},
  "flags": {"` + flagKey + `": {"key": "` + flagKey + `", "enabled": true, "variationType": "STRING", "totalShards": 10000,
    "variations": {"control": {"key": "control", "value": "control"}, "treatment": {"key": "treatment", "value": "treatment"}},
    "allocations": [{"key": "experiment", "doLog": true, ` + rules + ` "splits": [
      {"variationKey": "control", "shards": [{"salt": "c4e8a2f6b0d9e1a7", "ranges": [{"start": 0, "end": 5000}]}]},
      {"variationKey": "treatment", "shards": [{"salt": "c4e8a2f6b0d9e1a7", "ranges": [{"start": 5000, "end": 10000}]}]}]}]}}}`
}

type countingLogger struct{ n atomic.Int64 }

func (l *countingLogger) LogAssignment(allot.AssignmentEvent) { l.n.Add(1) }

func setupAllot(tb testing.TB, sc Scenario, logging bool) Evaluator {
	cfg := allot.Config{Offline: true, InitialConfiguration: []byte(allotDoc(sc.Targeted))}
	if logging {
		cfg.AssignmentLogger = &countingLogger{}
	}
	c, err := allot.NewClient(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	subs := subjects(numSubjects)
	attrs := make([]allot.Attributes, numSubjects)
	for i := range attrs {
		if sc.Targeted {
			attrs[i] = allot.Attributes{"country": countries[i&3]}
		}
	}
	return Evaluator{
		Assign: func(i int) string {
			return c.GetStringAssignment(flagKey, subs[i&subjectMask], attrs[i&subjectMask], defaultValue)
		},
		Close: func() { _ = c.Close(context.Background()) },
	}
}

// --- LaunchDarkly ---

func setupLaunchDarkly(tb testing.TB, sc Scenario, logging bool) Evaluator {
	rollout := ldbuilders.Rollout(ldbuilders.Bucket(0, 50000), ldbuilders.Bucket(1, 50000))
	fb := ldbuilders.NewFlagBuilder(flagKey).Version(1).On(true).
		Variations(ldvalue.String("control"), ldvalue.String("treatment"), ldvalue.String(defaultValue)).
		OffVariation(2).Salt("c4e8a2f6b0d9e1a7")
	if sc.Targeted {
		fb.AddRule(ldbuilders.NewRuleBuilder().ID("na").
			Clauses(ldbuilders.Clause("country", ldmodel.OperatorIn, ldvalue.String("US"), ldvalue.String("CA"), ldvalue.String("MX"))).
			VariationOrRollout(rollout))
		fb.FallthroughVariation(2)
	} else {
		fb.Fallthrough(rollout)
	}
	td := ldtestdata.DataSource()
	td.UsePreconfiguredFlag(fb.Build())

	config := ld.Config{
		DataSource:       td,
		Events:           ldcomponents.NoEvents(),
		Logging:          ldcomponents.NoLogging(),
		DiagnosticOptOut: true,
	}
	var sink *httptest.Server
	if logging {
		// The default event processor, posting to a local sink.
		sink = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusAccepted)
		}))
		config.Events = ldcomponents.SendEvents()
		config.ServiceEndpoints = ldcomponents.RelayProxyEndpoints(sink.URL)
	}
	client, err := ld.MakeCustomClient("bench-sdk-key", config, 5*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	subs := subjects(numSubjects)
	contexts := make([]ldcontext.Context, numSubjects)
	for i := range contexts {
		b := ldcontext.NewBuilder(subs[i])
		if sc.Targeted {
			b.SetString("country", countries[i&3])
		}
		contexts[i] = b.Build()
	}
	return Evaluator{
		Assign: func(i int) string {
			v, _ := client.StringVariation(flagKey, contexts[i&subjectMask], defaultValue)
			return v
		},
		Close: func() {
			_ = client.Close()
			if sink != nil {
				sink.Close()
			}
		},
	}
}

// --- GrowthBook ---

func growthBookFeatures(targeted bool) string {
	cond := ""
	if targeted {
		cond = `"condition": {"country": {"$in": ["US", "CA", "MX"]}},`
	}
	return `{"` + flagKey + `": {"defaultValue": "` + defaultValue + `", "rules": [{` + cond + `
    "key": "` + flagKey + `", "hashAttribute": "id", "seed": "c4e8a2f6b0d9e1a7", "hashVersion": 2,
    "variations": ["control", "treatment"], "weights": [0.5, 0.5], "coverage": 1}]}}`
}

func setupGrowthBook(tb testing.TB, sc Scenario, logging bool) Evaluator {
	opts := []gb.ClientOption{gb.WithJsonFeatures(growthBookFeatures(sc.Targeted))}
	if logging {
		var n atomic.Int64
		opts = append(opts, gb.WithExperimentCallback(func(context.Context, *gb.Experiment, *gb.ExperimentResult, *gb.TrackingUserContext, any) {
			n.Add(1)
		}))
	}
	client, err := gb.NewClient(context.Background(), opts...)
	if err != nil {
		tb.Fatal(err)
	}
	// GrowthBook takes attributes per client: one child client per subject,
	// made ahead, as the other SDKs' inputs are.
	subs := subjects(numSubjects)
	children := make([]*gb.Client, numSubjects)
	for i := range children {
		attrs := gb.Attributes{"id": subs[i]}
		if sc.Targeted {
			attrs["country"] = countries[i&3]
		}
		if children[i], err = client.WithAttributes(attrs); err != nil {
			tb.Fatal(err)
		}
	}
	ctx := context.Background()
	return Evaluator{
		Assign: func(i int) string {
			s, _ := children[i&subjectMask].EvalFeature(ctx, flagKey).Value.(string)
			if s == "" {
				return defaultValue
			}
			return s
		},
		Close: func() { _ = client.Close() },
	}
}

// Run benchmarks one SDK on one scenario, serially or on every core. The
// first pass over the subjects happens before the timer starts, so that
// SDKs with caches (Allot's dedup, LaunchDarkly's context LRU) are measured
// in their steady state.
func Run(b *testing.B, sdk SDK, sc Scenario, logging, parallel bool) {
	e := sdk.Setup(b, sc, logging)
	defer e.Close()
	for i := range numSubjects {
		e.Assign(i)
	}
	b.ReportAllocs()
	if parallel {
		var seed atomic.Int64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := int(seed.Add(331))
			for pb.Next() {
				e.Assign(i)
				i++
			}
		})
		return
	}
	var sink string
	i := 0
	b.ResetTimer()
	for b.Loop() {
		sink = e.Assign(i)
		i++
	}
	_ = sink
}
