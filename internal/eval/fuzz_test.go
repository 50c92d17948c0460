package eval_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/eval"
	"github.com/allot-dev/allot/internal/ufc"
	"github.com/allot-dev/allot/internal/ufctest"
)

var fixtureFlags = []string{"new-user-onboarding", "kill-switch", "semver-test", "comparator-operator-test",
	"numeric-one-of", "boolean-one-of-matches", "regex-flag", "null-operator-test", "json-config-flag",
	"integer-flag", "invalid-value-flag", "start-and-end-date-test", "no-such-flag"}

// randomAttrs draws attributes of every type the fixtures' rules look at.
func randomAttrs(r *rand.Rand) map[string]any {
	names := []string{"country", "email", "age", "version", "size", "id", "number", "one_of_flag", "should_disable_feature", "Force Empty", "matches"}
	values := []any{"US", "Canada", "Germany", "a@mycompany.com", "x@example.com", "1.15.0", "2.2.13", "3.1.0",
		1, 2, 10, 50, 123456789, -3.5, 1.5, true, false, nil, "", "null", "true", "1", "zach", "test",
		json.Number("7"), float32(2.5), uint8(1), int64(-1), []any{1}, map[string]any{"a": 1}}
	m := map[string]any{}
	for range r.IntN(5) {
		m[names[r.IntN(len(names))]] = values[r.IntN(len(values))]
	}
	return m
}

// TestObfuscatedAgrees: the CLIENT document must give the same answers as the
// SERVER one for any subject and attributes, not just the fixtures'.
func TestObfuscatedAgrees(t *testing.T) {
	plain := loadSnapshot(t, "flags-v1.json")
	obf := loadSnapshot(t, "flags-v1-obfuscated.json")
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		flag := fixtureFlags[i%len(fixtureFlags)]
		subject := "subject-" + strconv.Itoa(r.IntN(1_000_000))
		attrs := randomAttrs(r)
		a := plain.Evaluate(flag, subject, attrs, "", now)
		b := obf.Evaluate(flag, subject, attrs, "", now)
		if a.Code != b.Code || a.VariationKey() != b.VariationKey() || a.AllocationKey() != b.AllocationKey() {
			t.Fatalf("%s %s %v: plain %s/%s/%s, obfuscated %s/%s/%s", flag, subject, attrs,
				a.Code, a.VariationKey(), a.AllocationKey(), b.Code, b.VariationKey(), b.AllocationKey())
		}
		if a.Code == eval.Match && a.Variation.Text(a.Flag.Type) != b.Variation.Text(b.Flag.Type) {
			t.Fatalf("%s %s: values differ: %q vs %q", flag, subject, a.Variation.Text(a.Flag.Type), b.Variation.Text(b.Flag.Type))
		}
	}
}

// FuzzLoad: any input either fails to load with an error or loads into a
// snapshot that evaluates every flag without panicking.
func FuzzLoad(f *testing.F) {
	// The fixture documents go in one flag at a time: whole, they are so
	// large that the fuzzer's mutator stalls on them (8 executions a minute,
	// against thousands a second with small seeds).
	for _, name := range []string{"flags-v1.json", "flags-v1-obfuscated.json"} {
		for _, seed := range oneFlagDocs(f, ufctest.Document(f, name)) {
			f.Add(seed)
		}
	}
	f.Add([]byte(experimentDoc))
	f.Add([]byte(`{"flags":{"a":{"key":"a","enabled":true,"variationType":"INTEGER","totalShards":1,"variations":{"x":{"key":"x","value":1}},"allocations":[{"key":"k","rules":[{"conditions":[{"attribute":"id","operator":"GT","value":"1.0.0"}]}],"splits":[{"variationKey":"x","shards":[{"salt":"s","ranges":[{"start":0,"end":1}]}]}]}]}}}`))
	f.Add([]byte(`{"format":"CLIENT","flags":{"0cc175b9c0f1b6a831c399e269772661":{"enabled":true,"variationType":"JSON","totalShards":10,"variations":{"eA==":{"key":"eA==","value":"e30="}},"allocations":[{"key":"aw==","splits":[{"variationKey":"eA==","shards":[]}]}]}}}`))
	// The newer dialect (docs/ufc-dialects.md): its fixtures, their CLIENT
	// form, and small documents for each difference.
	dialect, err := os.ReadFile(filepath.Join(dialectDir, "flags-dialect.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(dialect)
	f.Add([]byte(`{"id":null,"flags":{"a":{"key":"a","enabled":true,"variationType":"JSON","variations":{"x":{"key":"x","value":{"k":[1,{"z":null}]}}},"allocations":[{"key":"k","splits":[{"variationKey":"x","shards":[{"salt":"s","totalShards":3,"ranges":[{"start":0,"end":2}]}]}]}]}}}`))
	f.Add([]byte(`{"flags":{"a":{"key":"a","enabled":true,"variationType":"STRING","variations":{"x":{"key":"x","value":"x"}},"allocations":[{"key":"k","startAt":"2026-01-01T00:00:00.123456Z","rules":[{"conditions":[{"attribute":"id","operator":"MATCHES","value":"(?u)\\b[[:alpha:]]"},{"attribute":"id","operator":"NOT_MATCHES","value":"(?<=a)"}]}],"splits":[{"variationKey":"x","shards":[]}]}]}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := eval.Load(data)
		if err != nil {
			if s != nil {
				t.Fatal("error with a snapshot")
			}
			return
		}
		attrs := []map[string]any{nil, {"id": "x", "age": 30, "email": "a@b.c", "country": "US", "v": "1.2.3"}}
		s.Flags(func(fl *eval.Flag) bool {
			for _, a := range attrs {
				for _, key := range []string{fl.Key, "a"} {
					r, _ := s.Explain(key, "subject", a, "", now)
					_ = r.Description(key)
					if r.Code == eval.Match {
						_ = r.Variation.Value(fl.Type)
					}
				}
			}
			return true
		})
	})
}

// oneFlagDocs splits a document into documents of one flag each, keeping
// its other members.
func oneFlagDocs(f *testing.F, data []byte) [][]byte {
	var doc map[string]json.RawMessage
	var flags map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		f.Fatal(err)
	}
	if err := json.Unmarshal(doc["flags"], &flags); err != nil {
		f.Fatal(err)
	}
	var out [][]byte
	for key, flag := range flags {
		doc["flags"], _ = json.Marshal(map[string]json.RawMessage{key: flag})
		b, err := json.Marshal(doc)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzEvaluate: arbitrary subject keys and attribute values against every
// fixture flag never panic, and evaluation is deterministic.
func FuzzEvaluate(f *testing.F) {
	plain, err := eval.Load(ufctest.Document(f, "flags-v1.json"))
	if err != nil {
		f.Fatal(err)
	}
	obf, err := eval.Load(ufctest.Document(f, "flags-v1-obfuscated.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add("alice", "email", "alice@mycompany.com", 0.0, int64(0), false, uint8(0))
	f.Add("", "id", "", math.NaN(), int64(-1), true, uint8(3))
	f.Add("4", "version", "1.2.3-beta.1+build", math.Inf(1), int64(math.MaxInt64), true, uint8(7))
	f.Add("", "text", "un café noir", 0.0, int64(0), false, uint8(0))
	f.Add("", "email", "null@mycompany.com", 0.0, int64(0), false, uint8(0))
	dialect, err := eval.Load(readFile(f, filepath.Join(dialectDir, "flags-dialect.json")))
	if err != nil {
		f.Fatal(err)
	}
	var dialectFlags []string
	dialect.Flags(func(fl *eval.Flag) bool { dialectFlags = append(dialectFlags, fl.Key); return true })
	f.Fuzz(func(t *testing.T, subject, attr, s string, x float64, n int64, b bool, pick uint8) {
		attrs := map[string]any{attr: s, "age": x, "number": n, "flag": b, "country": s, "email": s, "version": s}
		switch pick % 4 {
		case 1:
			attrs[attr] = x
		case 2:
			attrs[attr] = nil
		case 3:
			attrs = nil
		}
		attrs2 := map[string]any{"text": s, "kind": s, "plan": s}
		if pick%4 == 3 {
			attrs2 = nil
		}
		at := time.Unix(n%(1<<40), 0)
		for _, flag := range dialectFlags {
			r := dialect.Evaluate(flag, subject, attrs2, "", at)
			if again := dialect.Evaluate(flag, subject, attrs2, "", at); r.Code != again.Code || r.VariationKey() != again.VariationKey() {
				t.Fatalf("not deterministic: %s", flag)
			}
			if subject == "" && r.Code == eval.Match && r.Split != nil {
				for _, sh := range r.Split.Shards {
					if !sh.All {
						t.Fatalf("%s: an empty subject key was hashed", flag)
					}
				}
			}
			_ = r.Description(flag)
		}
		for _, snap := range []*eval.Snapshot{plain, obf} {
			for _, flag := range fixtureFlags {
				r1 := snap.Evaluate(flag, subject, attrs, "", at)
				r2 := snap.Evaluate(flag, subject, attrs, ufc.TypeString, at)
				again := snap.Evaluate(flag, subject, attrs, "", at)
				if r1.Code != again.Code || r1.VariationKey() != again.VariationKey() {
					t.Fatalf("not deterministic: %s", flag)
				}
				_ = r2.Description(flag)
			}
		}
	})
}
