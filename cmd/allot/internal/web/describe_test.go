package web

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
)

func TestDescribeAllocation(t *testing.T) {
	start := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	cond := func(attr, op, value string) core.Condition {
		return core.Condition{Attribute: attr, Operator: op, Value: json.RawMessage(value)}
	}
	cases := []struct {
		a    core.Allocation
		want string
	}{
		{core.Allocation{Type: core.Experiment, Status: core.Running, Traffic: 1250,
			Weights: []core.Weight{{Variation: "a", Weight: 5000}, {Variation: "b", Weight: 5000}}},
			"Experiment (running): of all subjects, 12.5 % enter, split a 50 % / b 50 %."},
		{core.Allocation{Type: core.Experiment, Status: core.Draft, Traffic: 10000,
			Weights: []core.Weight{{Variation: "a", Weight: 10000}}, StartAt: &start},
			"Experiment (draft): of all subjects, 100 % enter, split a 100 %. While it is not running, no one is assigned. Starts 2026-03-01 09:00 UTC."},
		{core.Allocation{Type: core.Rollout, Percent: 2500, Variation: "on",
			Rules: []core.Rule{{Conditions: []core.Condition{cond("plan", "ONE_OF", `["pro","team"]`), cond("email", "MATCHES", `"@example\\.com$"`)}}}},
			`Rollout: 25 % of subjects whose plan is one of "pro", "team" and email matches /@example\.com$/ get on.`},
		{core.Allocation{Type: core.Targeted, Variation: "beta", Rules: []core.Rule{
			{Conditions: []core.Condition{cond("age", "GTE", `18`), cond("age", "LT", `65`)}},
			{Conditions: []core.Condition{cond("version", "GT", `"1.2.3"`), cond("country", "NOT_ONE_OF", `["FR"]`)}},
			{Conditions: []core.Condition{cond("id", "IS_NULL", `true`), cond("x", "IS_NULL", `false`), cond("y", "NOT_MATCHES", `"^a"`), cond("z", "LTE", `3`)}},
		}},
			`Targeted: subjects whose age is at least 18 and age is less than 65, or whose version is greater than 1.2.3 and country is none of "FR", or whose id is not set and x is set and y does not match /^a/ and z is at most 3 get beta.`},
	}
	for _, c := range cases {
		if got := describeAllocation(&c.a); got != c.want {
			t.Errorf("got  %s\nwant %s", got, c.want)
		}
	}
}

func TestTrafficChange(t *testing.T) {
	for _, c := range []struct {
		from, to core.Percent
		want     string
	}{
		{1000, 5000, "Everyone assigned so far keeps their variation; about 40 % more subjects enter."},
		{5000, 1250, "About 37.5 % of subjects leave the experiment; raising it back brings exactly them back."},
		{100, 100, "Nothing changes."},
	} {
		if got := trafficChange(c.from, c.to); got != c.want {
			t.Errorf("%d→%d: %q", c.from, c.to, got)
		}
	}
}

func TestParseAttributes(t *testing.T) {
	got, err := parseAttributes("country = US\nage: 31\n\nbeta = true\nzip = \"01234\"\n")
	want := map[string]any{"country": "US", "age": 31.0, "beta": true, "zip": "01234"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("%v %v", got, err)
	}
	got, err = parseAttributes(`{"n": 1, "s": "x"}`)
	if err != nil || !reflect.DeepEqual(got, map[string]any{"n": 1.0, "s": "x"}) {
		t.Fatalf("%v %v", got, err)
	}
	if _, err := parseAttributes("no separator"); err == nil {
		t.Fatal("accepted a line without a value")
	}
}

func TestChanges(t *testing.T) {
	b := json.RawMessage(`{"enabled":false,"version":1,"allocations":[{"key":"a","traffic":10,"rules":[]}]}`)
	a := json.RawMessage(`{"enabled":true,"version":2,"allocations":[{"key":"a","traffic":50,"rules":[]}]}`)
	got := changes(b, a)
	want := []string{"allocations[0].traffic: 10 → 50", "enabled: false → true"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q", got)
	}
}

func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{"/keys": "/keys", "/flags/x?env=a%20b": "/flags/x?env=a%20b", "//evil.example": "/flags",
		"https://x": "/flags", "/\\evil": "/flags", "": "/flags", "/\t/evil.example": "/flags", "/\r\n/evil": "/flags", "/%09/x": "/%09/x"} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q", in, got)
		}
	}
}
