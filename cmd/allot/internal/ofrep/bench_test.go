package ofrep

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/publish"
	"github.com/allot-dev/allot/cmd/allot/internal/table"
	"github.com/allot-dev/allot/internal/ufc"
)

type nopWriter struct{}

func (nopWriter) Write(_ context.Context, rows []table.Row) (int, error) {
	return len(rows), nil
}

// benchPublished is an environment of n experiment flags (50/50 over all
// traffic, one rule on country on the first allocation).
func benchPublished(b *testing.B, n int) *publish.Published {
	var flags []core.FlagConfig
	for i := range n {
		flags = append(flags, core.FlagConfig{
			Flag: core.Flag{Key: fmt.Sprintf("flag-%02d", i), VariationType: ufc.TypeString, Variations: []core.Variation{
				{Key: "control", Value: json.RawMessage(`"control"`)}, {Key: "treatment", Value: json.RawMessage(`"treatment"`)}}},
			Settings: core.FlagSettings{Enabled: true, Allocations: []core.Allocation{
				{Key: "staff", Type: core.Targeted, Variation: "treatment", Rules: []core.Rule{{Conditions: []core.Condition{{Attribute: "country", Operator: "ONE_OF", Value: json.RawMessage(`["AQ"]`)}}}}},
				{Key: "exp", Type: core.Experiment, Status: core.Running, Traffic: core.Whole, TrafficSalt: "t-1", SplitSalt: "s-1",
					Weights: []core.Weight{{Variation: "control", Weight: 5000}, {Variation: "treatment", Weight: 5000}}},
			}},
		})
	}
	p, err := publish.Build(core.EnvironmentConfig{Environment: core.Environment{Name: "production", Revision: 1}, Flags: flags})
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkOFREP: one flag evaluated through POST /ofrep/v1/evaluate/flags/{key}
// (parse, evaluate, log through the dedup cache, encode), next to its floor,
// the engine alone; and the bulk endpoint over 10 flags.
func BenchmarkOFREP(b *testing.B) {
	p := benchPublished(b, 10)
	rec := NewRecorder(nopWriter{}, RecorderOptions{})
	defer rec.Close(context.Background())
	m := http.NewServeMux()
	(&Handler{ForKey: func(string) *publish.Published { return p }, Recorder: rec}).Register(m)
	bodies := make([]string, 1000)
	for i := range bodies {
		bodies[i] = fmt.Sprintf(`{"context":{"targetingKey":"user-%d","country":"NL","plan":"pro"}}`, i)
	}
	now := time.Now()
	b.Run("engine", func(b *testing.B) {
		b.ReportAllocs()
		attrs := map[string]any{"country": "NL", "plan": "pro"}
		for i := 0; b.Loop(); i++ {
			r := p.Snapshot.Evaluate("flag-03", fmt.Sprint("user-", i%1000), attrs, "", now)
			if !r.Matched() {
				b.Fatal(r.Code)
			}
		}
	})
	post := func(b *testing.B, path string) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			req := httptest.NewRequest("POST", path, strings.NewReader(bodies[i%len(bodies)]))
			req.Header.Set("Authorization", "Bearer k")
			w := httptest.NewRecorder()
			m.ServeHTTP(w, req)
			if w.Code != 200 {
				b.Fatal(w.Code, w.Body.String())
			}
		}
	}
	b.Run("single", func(b *testing.B) { post(b, "/ofrep/v1/evaluate/flags/flag-03") })
	b.Run("bulk-10-flags", func(b *testing.B) { post(b, "/ofrep/v1/evaluate/flags") })
}
