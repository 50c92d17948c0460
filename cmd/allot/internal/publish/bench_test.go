package publish

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
)

// BenchmarkBuild is the cost of republishing an environment of 1,000 flags
// after a change: compile, marshal, load through the engine, gzip.
func BenchmarkBuild(b *testing.B) {
	rule := []core.Rule{{Conditions: []core.Condition{
		{Attribute: "country", Operator: "ONE_OF", Value: json.RawMessage(`["US","CA","FR"]`)},
		{Attribute: "version", Operator: "GTE", Value: json.RawMessage(`"2.1.0"`)},
	}}}
	var flags []core.FlagConfig
	for i := range 1000 {
		fc := colorFlag()
		fc.Flag.Key = fmt.Sprintf("flag-%04d", i)
		switch i % 3 {
		case 0:
			a := exp(core.Running, 2000, 5000, 5000)
			a.Rules = rule
			fc.Settings.Allocations = []core.Allocation{a}
		case 1:
			fc.Settings.Allocations = []core.Allocation{{Key: "ramp", Type: core.Rollout, Percent: 2500, Variation: "red", SplitSalt: "rollout-1"}}
		default:
			fc.Settings.Allocations = []core.Allocation{{Key: "beta", Type: core.Targeted, Variation: "red", Rules: rule}}
		}
		flags = append(flags, fc)
	}
	cfg := env(flags...)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build(cfg); err != nil {
			b.Fatal(err)
		}
	}
}
