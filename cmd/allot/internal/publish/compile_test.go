package publish

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/internal/ufc"
)

// subjects is the population of the property tests.
const subjects = 100_000

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func colorFlag(allocs ...core.Allocation) core.FlagConfig {
	return core.FlagConfig{
		Flag: core.Flag{Key: "color", VariationType: ufc.TypeString, Variations: []core.Variation{
			{Key: "control", Value: json.RawMessage(`"grey"`)},
			{Key: "red", Value: json.RawMessage(`"red"`)},
			{Key: "blue", Value: json.RawMessage(`"blue"`)},
		}},
		Settings: core.FlagSettings{Enabled: true, Allocations: allocs},
	}
}

func env(flags ...core.FlagConfig) core.EnvironmentConfig {
	return core.EnvironmentConfig{Environment: core.Environment{Name: "production", Revision: 7, UpdatedAt: epoch}, Flags: flags}
}

func exp(status string, traffic core.Percent, weights ...core.Percent) core.Allocation {
	a := core.Allocation{Key: "exp", Type: core.Experiment, Status: status, Traffic: traffic,
		TrafficSalt: "traffic-3f2a9c", SplitSalt: "split-77b1e0"}
	for i, w := range weights {
		a.Weights = append(a.Weights, core.Weight{Variation: []string{"control", "red", "blue"}[i], Weight: w})
	}
	return a
}

// outcome is "allocation/variation", or "" for the default.
func assignAll(t *testing.T, cfg core.EnvironmentConfig, attrs func(i int) map[string]any) []string {
	t.Helper()
	p, err := Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, subjects)
	for i := range out {
		var a map[string]any
		if attrs != nil {
			a = attrs(i)
		}
		r := p.Snapshot.Evaluate("color", "user-"+strconv.Itoa(i), a, ufc.TypeString, epoch)
		if r.Matched() {
			out[i] = r.AllocationKey() + "/" + r.VariationKey()
		}
	}
	return out
}

func count(out []string, prefix string) int {
	n := 0
	for _, o := range out {
		if o != "" && strings.HasPrefix(o, prefix) {
			n++
		}
	}
	return n
}

func near(t *testing.T, what string, got, wantBP int) {
	t.Helper()
	want := subjects * wantBP / core.Whole
	if d := got - want; d > subjects/100 || d < -subjects/100 {
		t.Errorf("%s: %d subjects, want about %d", what, got, want)
	}
}

func TestRaisingTrafficNeverReassignsOrDrops(t *testing.T) {
	var prev []string
	for _, traffic := range []core.Percent{500, 2000, 3333, 5000, 10000} {
		out := assignAll(t, env(colorFlag(exp(core.Running, traffic, 3400, 3300, 3300))), nil)
		near(t, "traffic "+strconv.Itoa(int(traffic)), count(out, "exp/"), int(traffic))
		for i, was := range prev {
			if was != "" && out[i] != was {
				t.Fatalf("traffic %d: user-%d moved from %s to %q", traffic, i, was, out[i])
			}
		}
		prev = out
	}
}

func TestLoweringAndRaisingTrafficRestoresTheSameSubjects(t *testing.T) {
	high := assignAll(t, env(colorFlag(exp(core.Running, 6000, 5000, 2500, 2500))), nil)
	low := assignAll(t, env(colorFlag(exp(core.Running, 2500, 5000, 2500, 2500))), nil)
	again := assignAll(t, env(colorFlag(exp(core.Running, 6000, 5000, 2500, 2500))), nil)
	for i := range high {
		if again[i] != high[i] {
			t.Fatalf("user-%d: %q at 60%%, %q after 25%% and back", i, high[i], again[i])
		}
		if low[i] != "" && low[i] != high[i] {
			t.Fatalf("user-%d: %q at 25%% but %q at 60%%", i, low[i], high[i])
		}
	}
	near(t, "25%", count(low, "exp/"), 2500)
}

func TestStoppedOrDraftExperimentAssignsNoOne(t *testing.T) {
	fallback := core.Allocation{Key: "everyone", Type: core.Rollout, Percent: core.Whole, Variation: "control", SplitSalt: "rollout-1"}
	for _, status := range []string{core.Stopped, core.Draft} {
		out := assignAll(t, env(colorFlag(exp(status, core.Whole, 5000, 5000), fallback)), nil)
		if n := count(out, "exp/"); n != 0 {
			t.Fatalf("%s experiment assigned %d subjects", status, n)
		}
		if n := count(out, "everyone/control"); n != subjects {
			t.Fatalf("%s: %d subjects reached the next allocation, want all", status, n)
		}
	}
}

func TestWeightsPartitionTheTraffic(t *testing.T) {
	out := assignAll(t, env(colorFlag(exp(core.Running, core.Whole, 2000, 3000, 5000))), nil)
	near(t, "control", count(out, "exp/control"), 2000)
	near(t, "red", count(out, "exp/red"), 3000)
	near(t, "blue", count(out, "exp/blue"), 5000)
	if n := count(out, ""); n != subjects {
		t.Fatalf("full traffic assigned %d of %d", n, subjects)
	}
}

// Changing weights is allowed but re-randomizes: documented in docs/api.md.
func TestChangingWeightsReRandomizes(t *testing.T) {
	before := assignAll(t, env(colorFlag(exp(core.Running, core.Whole, 5000, 5000))), nil)
	after := assignAll(t, env(colorFlag(exp(core.Running, core.Whole, 3000, 7000))), nil)
	moved := 0
	for i := range before {
		if before[i] != after[i] {
			moved++
		}
	}
	near(t, "moved", moved, 2000)
}

func TestRolloutGrowsWithoutReassigning(t *testing.T) {
	roll := func(p core.Percent) core.FlagConfig {
		return colorFlag(core.Allocation{Key: "roll", Type: core.Rollout, Percent: p, Variation: "blue", SplitSalt: "rollout-9"})
	}
	small := assignAll(t, env(roll(1000)), nil)
	big := assignAll(t, env(roll(4000)), nil)
	for i := range small {
		if small[i] != "" && big[i] != small[i] {
			t.Fatalf("user-%d left the rollout when it grew", i)
		}
	}
	near(t, "10%", count(small, "roll/"), 1000)
	near(t, "40%", count(big, "roll/"), 4000)
}

func TestRulesTargetAndExperimentStaysStable(t *testing.T) {
	attrs := func(i int) map[string]any {
		return map[string]any{"country": []string{"US", "FR", "DE"}[i%3], "age": i % 90}
	}
	ruled := func(traffic core.Percent) core.FlagConfig {
		e := exp(core.Running, traffic, 5000, 5000)
		e.Rules = []core.Rule{{Conditions: []core.Condition{{Attribute: "country", Operator: "ONE_OF", Value: json.RawMessage(`["US"]`)}}}}
		beta := core.Allocation{Key: "beta", Type: core.Targeted, Variation: "blue",
			Rules: []core.Rule{{Conditions: []core.Condition{{Attribute: "age", Operator: "GTE", Value: json.RawMessage(`80`)}}}}}
		return colorFlag(beta, e)
	}
	low := assignAll(t, env(ruled(3000)), attrs)
	high := assignAll(t, env(ruled(9000)), attrs)
	for i := range low {
		a := attrs(i)
		switch {
		case a["age"].(int) >= 80:
			if low[i] != "beta/blue" || high[i] != "beta/blue" {
				t.Fatalf("user-%d (age %d): %q, %q", i, a["age"], low[i], high[i])
			}
		case a["country"] != "US":
			if low[i] != "" || high[i] != "" {
				t.Fatalf("user-%d outside the US assigned %q", i, high[i])
			}
		case low[i] != "" && low[i] != high[i]:
			t.Fatalf("user-%d moved from %s to %s", i, low[i], high[i])
		}
	}
}

func TestDocumentFollowsTheServerRules(t *testing.T) {
	start := epoch.Add(-time.Hour)
	cfg := env(
		colorFlag(exp(core.Running, 2500, 5000, 5000, 0), core.Allocation{Key: "vip", Type: core.Targeted, Variation: "red", StartAt: &start,
			Rules: []core.Rule{{Conditions: []core.Condition{{Attribute: "email", Operator: "IS_NULL", Value: json.RawMessage(`false`)}}}}}),
		core.FlagConfig{
			Flag:     core.Flag{Key: "limits", VariationType: ufc.TypeInteger, Variations: []core.Variation{{Key: "low", Value: json.RawMessage(`10`)}}},
			Settings: core.FlagSettings{Enabled: false, Allocations: []core.Allocation{{Key: "all", Type: core.Rollout, Percent: core.Whole, Variation: "low", SplitSalt: "rollout-x"}}},
		},
		core.FlagConfig{
			Flag:     core.Flag{Key: "theme", VariationType: ufc.TypeJSON, Variations: []core.Variation{{Key: "dark", Value: json.RawMessage(`{"bg":"#000"}`)}}},
			Settings: core.FlagSettings{Enabled: true, Allocations: []core.Allocation{}},
		},
	)
	p, err := Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	body := string(p.Body)
	for _, want := range []string{
		`"createdAt":"2026-01-02T03:04:05Z"`, `"format":"SERVER"`, `"environment":{"name":"production"}`,
		`"banditReferences":{}`, `"totalShards":10000`, `"doLog":true`, `"doLog":false`, `"shards":[]`,
		`"value":10}`, `"value":"{\"bg\":\"#000\"}"`, `"enabled":false`, `"value":false`,
		`{"salt":"traffic-3f2a9c","ranges":[{"start":0,"end":2500}]}`,
		`{"salt":"split-77b1e0","ranges":[{"start":5000,"end":10000}]}`,
		`"startAt":"2026-01-02T02:04:05Z"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("document lacks %s:\n%s", want, body)
		}
	}
	if strings.Contains(body, `"bandits"`) {
		t.Errorf("document has a bandits key")
	}
	if strings.Contains(body, `"variationKey":"blue"`) {
		t.Errorf("a zero-weight variation got a split")
	}
	// Deterministic: the same input gives the same bytes and ETag.
	p2, _ := Build(cfg)
	if p2.ETag != p.ETag || string(p2.Body) != body {
		t.Errorf("two builds differ")
	}
}
