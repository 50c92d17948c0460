package eval_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/allot-dev/allot/internal/eval"
	"github.com/allot-dev/allot/internal/ufc"
	"github.com/allot-dev/allot/internal/ufctest"
)

func TestCheckPublishableAcceptsFixtures(t *testing.T) {
	for _, name := range []string{"flags-v1.json", "flags-v1-obfuscated.json"} {
		doc, err := ufc.Parse(ufctest.Document(t, name))
		if err != nil {
			t.Fatal(err)
		}
		err = eval.CheckPublishable(doc)
		// Eppo's fixtures hold two flags a server must not publish:
		// invalid-value-flag (its "pi" variation is not an INTEGER) and
		// start-and-end-date-test (an allocation names a variation "future"
		// that the flag does not have).
		var pe *eval.PublishError
		if !errors.As(err, &pe) || len(pe.Flags()) != 2 {
			t.Fatalf("%s: want two refused flags, got %v", name, err)
		}
		if name == "flags-v1.json" && (pe.Flags()[0] != "invalid-value-flag" || pe.Flags()[1] != "start-and-end-date-test") {
			t.Fatalf("refused %v", pe.Flags())
		}
	}
}

func TestCheckPublishable(t *testing.T) {
	cases := []struct{ name, flag, path, reason string }{
		{"integer beyond 2^53", `{"key": "f", "enabled": true, "variationType": "INTEGER", "totalShards": 10000,
		  "variations": {"small": {"key": "small", "value": 9007199254740992}, "big": {"key": "big", "value": 9007199254740993}}, "allocations": []}`,
			"flags.f.variations.big.value", "beyond ±2^53"},
		{"negative integer beyond 2^53", `{"key": "f", "enabled": true, "variationType": "INTEGER", "totalShards": 10000,
		  "variations": {"neg": {"key": "neg", "value": -9007199254740993}}, "allocations": []}`,
			"flags.f.variations.neg.value", "beyond ±2^53"},
		{"bad value for type", `{"key": "f", "enabled": true, "variationType": "INTEGER", "totalShards": 10000,
		  "variations": {"pi": {"key": "pi", "value": 3.14}}, "allocations": []}`,
			"flags.f.variations.pi.value", "incompatible value"},
		{"bad regex", stringFlag(rule("email", "MATCHES", `"(unclosed"`)),
			"flags.f.allocations[0].rules[0].conditions[0].value", "invalid regular expression"},
		{"unknown operator", stringFlag(rule("email", "CONTAINS", `"x"`)),
			"flags.f.allocations[0].rules[0].conditions[0].operator", `unknown operator "CONTAINS"`},
		{"missing variation", stringFlag(`[{"key": "r", "splits": [{"variationKey": "ghost", "shards": []}]}]`),
			"flags.f.allocations[0].splits[0].variationKey", `"ghost"`},
		{"shard without totalShards", `{"key": "f", "enabled": true, "variationType": "STRING", "variations": {"a": {"key": "a", "value": "A"}},
		  "allocations": [{"key": "r", "splits": [{"variationKey": "a", "shards": [{"salt": "s", "ranges": [{"start": 0, "end": 5}]}]}]}]}`,
			"flags.f.allocations[0].splits[0].shards[0]", "no totalShards"},
		{"range outside", stringFlag(`[{"key": "r", "splits": [{"variationKey": "a", "shards": [{"salt": "s", "ranges": [{"start": 0, "end": 20000}]}]}]}]`),
			"flags.f.allocations[0].splits[0].shards[0].ranges[0]", "not within"},
		{"unknown type", `{"key": "f", "enabled": true, "variationType": "DATE", "totalShards": 10000, "variations": {}, "allocations": []}`,
			"flags.f.variationType", "unknown variationType"},
		{"wrong shape", `{"key": "f", "enabled": "yes", "variationType": "STRING", "variations": {}, "allocations": []}`,
			"flags.f.enabled", "expected boolean"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc, err := ufc.Parse(doc(c.flag))
			if err != nil {
				t.Fatal(err)
			}
			err = eval.CheckPublishable(doc)
			var pe *eval.PublishError
			if !errors.As(err, &pe) {
				t.Fatalf("accepted: %v", err)
			}
			if len(pe.Problems) != 1 {
				t.Fatalf("want one problem, got %v", pe)
			}
			p := pe.Problems[0]
			if p.Flag != "f" || p.Path != c.path || !strings.Contains(p.Reason, c.reason) {
				t.Fatalf("got %+v, want path %s and a reason with %q", p, c.path, c.reason)
			}
			// The lenient load path still loads the document and keeps the
			// healthy flag.
			s, err := eval.Compile(doc)
			if err != nil {
				t.Fatal(err)
			}
			if r := s.Evaluate("healthy", "u", nil, ufc.TypeString, now); r.Code != eval.Match {
				t.Fatalf("healthy: %s", r.Code)
			}
		})
	}
}

func TestCheckPublishableDialect(t *testing.T) {
	// The dialect fixtures hold one deliberately invalid pattern, in the
	// regex-dialect flag (twice); everything else is publishable.
	doc, err := ufc.Parse(readFile(t, dialectDir+"/flags-dialect.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pe *eval.PublishError
	if err := eval.CheckPublishable(doc); !errors.As(err, &pe) || len(pe.Problems) != 2 || pe.Flags()[0] != "regex-dialect" {
		t.Fatalf("got %v", err)
	}
	delete(doc.Flags, "regex-dialect")
	if err := eval.CheckPublishable(doc); err != nil {
		t.Fatal(err)
	}
	if err := eval.CheckFlag("f", doc.Flags["shard-total"]); err != nil {
		t.Fatal(err)
	}
}
