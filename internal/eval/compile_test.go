package eval_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/eval"
	"github.com/allot-dev/allot/internal/ufc"
)

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func TestLoadRejectsNonUFC(t *testing.T) {
	cases := []struct {
		name, doc, want string
	}{
		{"empty", ``, "line 1, column 1"},
		{"array", `[]`, "expected a JSON object, found array"},
		{"no flags", `{"createdAt": "2026-01-01T00:00:00Z"}`, `no "flags" member`},
		{"flags not object", `{"flags": []}`, `"flags" must be an object`},
		{"html", "<!doctype html>\n<html>", "found '<'"},
		{"truncated", "{\"flags\": {\"a\": {\"key\": \"a\",\n \"enabled\": tr", "line 2"},
		{"trailing", `{"flags": {}} {}`, "unexpected data after the document"},
		{"bad createdAt", `{"createdAt": "yesterday", "flags": {}}`, "createdAt"},
		{"precomputed", `{"format": "PRECOMPUTED", "flags": {}}`, "unsupported format"},
		{"bad escape", `{"flags": {"a\q": {}}}`, `bad escape`},
		{"trailing comma", `{"flags": {},}`, "expected object key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := eval.Load([]byte(c.doc))
			if err == nil {
				t.Fatalf("Load accepted %q: %v", c.doc, s)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not mention %q", err, c.want)
			}
		})
	}
	var se *ufc.SyntaxError
	_, err := eval.Load([]byte("{\n  \"flags\": {\n    \"a\": {\"allocations\": [}\n  }\n}"))
	if !errors.As(err, &se) || se.Line != 3 || se.Path == "" {
		t.Fatalf("want a SyntaxError on line 3 with a path, got %#v", err)
	}
}

// flag wraps one flag's JSON into a document with a healthy neighbour.
func doc(flagJSON string) []byte {
	return []byte(`{"createdAt": "2026-01-01T00:00:00Z", "format": "SERVER", "environment": {"name": "t"}, "flags": {
	  "healthy": {"key": "healthy", "enabled": true, "variationType": "STRING", "totalShards": 10000,
	    "variations": {"on": {"key": "on", "value": "on"}},
	    "allocations": [{"key": "all", "doLog": true, "splits": [{"variationKey": "on", "shards": []}]}]},
	  "f": ` + flagJSON + `}, "somethingNew": {"ignored": true}}`)
}

func stringFlag(allocations string) string {
	return `{"key": "f", "enabled": true, "variationType": "STRING", "totalShards": 10000, "futureField": [1, 2],
	  "variations": {"a": {"key": "a", "value": "A"}, "b": {"key": "b", "value": "B"}}, "allocations": ` + allocations + `}`
}

func rule(attr, op, value string) string {
	return `[{"key": "r", "doLog": true, "rules": [{"conditions": [{"attribute": "` + attr + `", "operator": "` + op + `", "value": ` + value + `}]}],
	  "splits": [{"variationKey": "a", "shards": []}]}]`
}

func TestMalformedFlagIsIsolated(t *testing.T) {
	cases := []struct{ name, flag, want string }{
		{"unknown operator", stringFlag(rule("email", "CONTAINS", `"x"`)), `unknown operator "CONTAINS"`},
		{"one of numbers", stringFlag(rule("n", "ONE_OF", `[1, 2]`)), "needs an array of strings"},
		{"is null string", stringFlag(rule("n", "IS_NULL", `"yes"`)), "IS_NULL needs a boolean"},
		{"gt word", stringFlag(rule("n", "GT", `"big"`)), "needs a number or a version"},
		{"matches number", stringFlag(rule("n", "MATCHES", `5`)), "needs a string value"},
		{"missing totalShards where a shard needs it", `{"key": "f", "enabled": true, "variationType": "STRING", "variations": {"a": {"key": "a", "value": "A"}},
		  "allocations": [{"key": "r", "splits": [{"variationKey": "a", "shards": [{"salt": "s", "ranges": [{"start": 0, "end": 5}]}]}]}]}`, "allocations[0].splits[0].shards[0]: no totalShards"},
		{"negative totalShards", `{"key": "f", "enabled": true, "variationType": "STRING", "totalShards": -1, "variations": {}, "allocations": []}`, "totalShards"},
		{"negative shard totalShards", stringFlag(`[{"key": "r", "splits": [{"variationKey": "a", "shards": [{"salt": "s", "totalShards": -5, "ranges": []}]}]}]`), "shards[0].totalShards"},
		{"totalShards string", `{"key": "f", "enabled": true, "variationType": "STRING", "totalShards": "many", "variations": {}, "allocations": []}`, "expected number"},
		{"unknown type", `{"key": "f", "enabled": true, "variationType": "DATE", "totalShards": 10000, "variations": {}, "allocations": []}`, "unknown variationType"},
		{"range outside", stringFlag(`[{"key": "r", "splits": [{"variationKey": "a", "shards": [{"salt": "s", "ranges": [{"start": 0, "end": 20000}]}]}]}]`), "not within"},
		{"bad startAt", stringFlag(`[{"key": "r", "startAt": "soon", "splits": []}]`), "startAt"},
		{"variation key mismatch", `{"key": "f", "enabled": true, "variationType": "STRING", "totalShards": 10000, "variations": {"a": {"key": "b", "value": "x"}}, "allocations": []}`, "has key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := eval.Load(doc(c.flag))
			if err != nil {
				t.Fatalf("one bad flag rejected the document: %v", err)
			}
			r := s.Evaluate("f", "alice", map[string]any{"email": "a@b.c", "n": 3}, "", now)
			if r.Code != eval.AssignmentError {
				t.Fatalf("code %s, want ASSIGNMENT_ERROR", r.Code)
			}
			if d := r.Description("f"); !strings.Contains(d, c.want) {
				t.Fatalf("reason %q does not mention %q", d, c.want)
			}
			if h := s.Evaluate("healthy", "alice", nil, ufc.TypeString, now); h.Code != eval.Match || h.Variation.String() != "on" {
				t.Fatalf("healthy flag broken too: %s", h.Code)
			}
		})
	}
}

func TestDanglingVariationOnlyWhenReached(t *testing.T) {
	s, err := eval.Load(doc(stringFlag(`[
	  {"key": "ghost", "rules": [{"conditions": [{"attribute": "beta", "operator": "ONE_OF", "value": ["true"]}]}], "splits": [{"variationKey": "nope", "shards": []}]},
	  {"key": "rest", "splits": [{"variationKey": "b", "shards": []}]}]`)))
	if err != nil {
		t.Fatal(err)
	}
	if r := s.Evaluate("f", "u1", nil, ufc.TypeString, now); r.Code != eval.Match || r.Variation.String() != "B" {
		t.Fatalf("unreached dangling key broke the flag: %s", r.Code)
	}
	r := s.Evaluate("f", "u1", map[string]any{"beta": true}, ufc.TypeString, now)
	if r.Code != eval.AssignmentError || r.VariationKey() != "nope" || r.AllocationKey() != "ghost" {
		t.Fatalf("reached dangling key: %s %q %q", r.Code, r.VariationKey(), r.AllocationKey())
	}
	if r.DoLog() {
		t.Fatal("an assignment error must not log")
	}
}

func TestTypeMismatchAndDisabled(t *testing.T) {
	s, err := eval.Load(doc(strings.Replace(stringFlag(`[]`), `"enabled": true`, `"enabled": false`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if r := s.Evaluate("healthy", "u", nil, ufc.TypeBoolean, now); r.Code != eval.TypeMismatch {
		t.Fatalf("got %s, want TYPE_MISMATCH", r.Code)
	}
	if r := s.Evaluate("f", "u", nil, ufc.TypeString, now); r.Code != eval.FlagUnrecognizedOrDisabled {
		t.Fatalf("disabled: got %s", r.Code)
	}
	// healthy has no shard: an empty subject key is fine (newer dialect).
	if r := s.Evaluate("healthy", "", nil, ufc.TypeString, now); r.Code != eval.Match {
		t.Fatalf("empty subject, no shard: got %s", r.Code)
	}
	var nilSnap *eval.Snapshot
	if r := nilSnap.Evaluate("healthy", "u", nil, "", now); r.Code != eval.FlagUnrecognizedOrDisabled {
		t.Fatalf("nil snapshot: got %s", r.Code)
	}
}

func TestOperators(t *testing.T) {
	type tc struct {
		op, value string
		attr      any // nil: attribute absent
		want      bool
	}
	cases := []tc{
		{"MATCHES", `"^ad"`, "admin", true},
		{"MATCHES", `"^ad"`, "bad", false},
		{"MATCHES", `"1$"`, 21, true}, // numbers match through their string form
		{"MATCHES", `"x"`, nil, false},
		{"NOT_MATCHES", `"x"`, nil, false}, // absent is not "does not match"
		{"NOT_MATCHES", `"x"`, "abc", true},
		{"MATCHES", `"[0-9]+@"`, "42@x", true},
		{"ONE_OF", `["US", "CA"]`, "CA", true},
		{"ONE_OF", `["US", "CA"]`, "ca", false}, // case-sensitive
		{"ONE_OF", `["true"]`, true, true},
		{"ONE_OF", `["1"]`, 1.0, true},
		{"ONE_OF", `["1.5"]`, 1.5, true},
		{"ONE_OF", `["1"]`, int64(1), true},
		{"NOT_ONE_OF", `["US"]`, nil, false},
		{"NOT_ONE_OF", `["US"]`, "FR", true},
		{"ONE_OF", `["a","b","c","d","e","f","g","h","i","j"]`, "j", true}, // the map path
		{"ONE_OF", `["a","b","c","d","e","f","g","h","i","j"]`, "k", false},
		{"IS_NULL", `true`, nil, true},
		{"IS_NULL", `true`, "x", false},
		{"IS_NULL", `false`, "x", true},
		{"IS_NULL", `false`, nil, false},
		{"GT", `10`, 11, true},
		{"GT", `10`, "11", true}, // numeric strings compare as numbers
		{"GT", `10`, 10, false},
		{"GTE", `10`, 10.0, true},
		{"LT", `10`, true, false}, // booleans are not numbers
		{"LTE", `"10"`, 9, true},
		{"GT", `10`, "ten", false},
		{"GTE", `"1.5.0"`, "1.15.0", true}, // semver, not lexicographic
		{"GT", `"3.1.0"`, "3.1.0", false},
		{"LT", `"2.0.0"`, "2.0.0-beta.2", true}, // a prerelease ranks below its release
		{"GT", `"1.0.0-alpha"`, "1.0.0-alpha.1", true},
		{"GT", `"1.0.0-beta.2"`, "1.0.0-beta.11", true},
		{"GT", `"1.0.0"`, "v2.0.0", false}, // strict: no v prefix
		{"GT", `"1.0.0"`, "2.0", false},
		{"GT", `"1.0.0"`, 2, false},
	}
	for _, c := range cases {
		s, err := eval.Load(doc(stringFlag(rule("x", c.op, c.value))))
		if err != nil {
			t.Fatal(err)
		}
		attrs := map[string]any{}
		if c.attr != nil {
			attrs["x"] = c.attr
		}
		r := s.Evaluate("f", "subject", attrs, ufc.TypeString, now)
		if r.Code == eval.AssignmentError {
			t.Fatalf("%s %s: %s", c.op, c.value, r.Description("f"))
		}
		if got := r.Code == eval.Match; got != c.want {
			t.Errorf("%#v %s %s: matched=%v, want %v", c.attr, c.op, c.value, got, c.want)
		}
	}
}

func TestIDAttribute(t *testing.T) {
	s, err := eval.Load(doc(stringFlag(rule("id", "ONE_OF", `["zach"]`))))
	if err != nil {
		t.Fatal(err)
	}
	if r := s.Evaluate("f", "zach", nil, ufc.TypeString, now); r.Code != eval.Match {
		t.Fatalf("id should default to the subject key: %s", r.Code)
	}
	if r := s.Evaluate("f", "zach", map[string]any{"id": "other"}, ufc.TypeString, now); r.Code == eval.Match {
		t.Fatal("the caller's id must win over the subject key")
	}
}

func TestStartAndEnd(t *testing.T) {
	s, err := eval.Load(doc(stringFlag(`[{"key": "window", "startAt": "2026-06-01T00:00:00Z", "endAt": "2026-06-30T00:00:00Z", "splits": [{"variationKey": "a", "shards": []}]}]`)))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		at   string
		want eval.AllocationCode
	}{
		{"2026-05-31T23:59:59Z", eval.BeforeStartTime},
		{"2026-06-01T00:00:00Z", eval.AllocationMatch},
		{"2026-06-30T00:00:00Z", eval.AllocationMatch}, // now == endAt is still active
		{"2026-06-30T00:00:01Z", eval.AfterEndTime},
	} {
		at, _ := time.Parse(time.RFC3339, c.at)
		_, trace := s.Explain("f", "u", nil, ufc.TypeString, at)
		if len(trace) != 1 || trace[0].Code != c.want {
			t.Errorf("at %s: %+v, want %s", c.at, trace, c.want)
		}
	}
}

func TestAbsentDoLogLogs(t *testing.T) {
	s, err := eval.Load(doc(stringFlag(`[{"key": "x", "splits": [{"variationKey": "a", "shards": []}]}]`)))
	if err != nil {
		t.Fatal(err)
	}
	if r := s.Evaluate("f", "u", nil, "", now); !r.DoLog() {
		t.Fatal("an allocation without doLog should log (Go, Rust and Python SDKs agree)")
	}
}

func TestShardOfVectors(t *testing.T) {
	// Spec section 2.
	for _, v := range []struct {
		prefix, subject string
		want            uint32
	}{
		{"traffic-new-user-onboarding-experiment-", "4", 5771},
		{"split-new-user-onboarding-experiment-", "4", 5591},
		{"split-new-user-onboarding-rollout-", "debra", 1517},
		{"s-", strings.Repeat("long subject key ", 20), eval.ShardOf("s-", strings.Repeat("long subject key ", 20), 10000)},
	} {
		if got := eval.ShardOf(v.prefix, v.subject, 10000); got != v.want {
			t.Errorf("ShardOf(%q, %q) = %d, want %d", v.prefix, v.subject, got, v.want)
		}
	}
}

func TestTimedAndFlagEvaluate(t *testing.T) {
	s, err := eval.Load(doc(stringFlag(`[{"key": "w", "endAt": "2030-01-01T00:00:00Z", "splits": [{"variationKey": "a", "shards": []}]}]`)))
	if err != nil {
		t.Fatal(err)
	}
	if !s.Flag("f").Timed || s.Flag("healthy").Timed {
		t.Fatal("Timed should be set exactly for flags with startAt or endAt")
	}
	a := s.Flag("f").Evaluate("u", nil, ufc.TypeString, now)
	b := s.Evaluate("f", "u", nil, ufc.TypeString, now)
	if a != b || a.Code != eval.Match {
		t.Fatalf("Flag.Evaluate %+v differs from Snapshot.Evaluate %+v", a, b)
	}
	var missing *eval.Flag
	if r := missing.Evaluate("u", nil, "", now); r.Code != eval.FlagUnrecognizedOrDisabled {
		t.Fatalf("nil flag: %s", r.Code)
	}
}
