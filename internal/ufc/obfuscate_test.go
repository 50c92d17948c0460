package ufc_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/eval"
	"github.com/allot-dev/allot/internal/ufc"
	"github.com/allot-dev/allot/internal/ufctest"
)

// TestObfuscateMatchesEppoFixture: the CLIENT form of flags-v1.json is
// Eppo's own flags-v1-obfuscated.json, flag for flag (an allocation without
// rules is written without "rules", where Eppo writes [], the same thing).
func TestObfuscateMatchesEppoFixture(t *testing.T) {
	doc, err := ufc.Parse(ufctest.Document(t, "flags-v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	got := normalize(t, mustMarshal(t, ufc.Obfuscate(doc)))
	want := normalize(t, ufctest.Document(t, "flags-v1-obfuscated.json"))
	if got["format"] != "CLIENT" {
		t.Fatalf("format %v", got["format"])
	}
	gf, wf := got["flags"].(map[string]any), want["flags"].(map[string]any)
	if len(gf) != len(wf) || len(wf) < 20 {
		t.Fatalf("%d flags, want %d", len(gf), len(wf))
	}
	for k, w := range wf {
		if !reflect.DeepEqual(gf[k], w) {
			t.Errorf("flag %s differs:\n got %s\nwant %s", k, mustMarshal(t, gf[k]), mustMarshal(t, w))
		}
	}
}

// normalize decodes a document and drops empty "rules" lists.
func normalize(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, f := range m["flags"].(map[string]any) {
		for _, a := range f.(map[string]any)["allocations"].([]any) {
			a := a.(map[string]any)
			if r, ok := a["rules"].([]any); ok && len(r) == 0 {
				delete(a, "rules")
			}
		}
	}
	return m
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestObfuscateRoundTrip is the property test of the encoder: for the
// shared fixtures, the dialect fixtures and random documents, evaluating
// the CLIENT form gives what the SERVER form gives (code, allocation,
// variation, value, doLog), over the fixtures' subjects and random subjects
// with random attributes drawn near the documents' own operands.
func TestObfuscateRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 1))
	docs := map[string][]byte{
		"flags-v1.json": ufctest.Document(t, "flags-v1.json"),
	}
	if b, err := os.ReadFile(filepath.Join(ufctest.Dir(t), "..", "..", "internal", "eval", "testdata", "dialects", "flags-dialect.json")); err == nil {
		docs["flags-dialect.json"] = b
	}
	for i := range 20 {
		docs[fmt.Sprintf("random-%d", i)] = mustMarshal(t, randomDocument(rng))
	}
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	checks := 0
	for name, data := range docs {
		doc, err := ufc.Parse(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		plain, err := eval.Load(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		client := mustMarshal(t, ufc.Obfuscate(doc))
		obf, err := eval.Load(client)
		if err != nil {
			t.Fatalf("%s CLIENT: %v", name, err)
		}
		if !obf.Obfuscated() {
			t.Fatalf("%s: CLIENT form did not load as obfuscated", name)
		}
		subjects := subjectsFor(rng, doc, 600)
		if name == "flags-v1.json" {
			for _, c := range ufctest.Cases(t) {
				for _, s := range c.Subjects {
					subjects = append(subjects, subject{s.SubjectKey, s.SubjectAttributes})
				}
			}
		}
		for key, f := range doc.Flags {
			for _, s := range subjects {
				p := plain.Evaluate(key, s.key, s.attrs, f.VariationType, now)
				o := obf.Evaluate(key, s.key, s.attrs, f.VariationType, now)
				if a, b := outcome(&p, f.VariationType), outcome(&o, f.VariationType); a != b {
					t.Fatalf("%s flag %s subject %q %v:\nSERVER %s\nCLIENT %s", name, key, s.key, s.attrs, a, b)
				}
				checks++
			}
		}
		// Nothing readable is left: no flag key, variation key or attribute
		// name of the SERVER form appears in the CLIENT one.
		for key, f := range doc.Flags {
			if len(key) > 3 && strings.Contains(string(client), `"`+key+`"`) {
				t.Errorf("%s: flag key %q left in the CLIENT form", name, key)
			}
			for _, a := range f.Allocations {
				for _, r := range a.Rules {
					for _, c := range r.Conditions {
						if len(c.Attribute) > 3 && strings.Contains(string(client), `"`+c.Attribute+`"`) {
							t.Errorf("%s: attribute %q left in the CLIENT form", name, c.Attribute)
						}
					}
				}
			}
		}
	}
	if checks < 100_000 {
		t.Fatalf("only %d checks", checks)
	}
	t.Logf("%d evaluations agree", checks)
}

type subject struct {
	key   string
	attrs map[string]any
}

func outcome(r *eval.Result, typ ufc.VariationType) string {
	val := ""
	if r.Variation != nil && r.Variation.Err == nil {
		val = r.Variation.Text(typ)
		if typ == ufc.TypeJSON {
			// A JSON object written in place is compacted on the way.
			var b bytes.Buffer
			if json.Compact(&b, []byte(val)) == nil {
				val = b.String()
			}
		}
	}
	return fmt.Sprintf("code=%v alloc=%q var=%q value=%q pos=%d doLog=%v", r.Code, r.AllocationKey(), r.VariationKey(), val, r.Position, r.DoLog())
}

// subjectsFor draws n subjects whose attributes are the document's
// attribute names with values near its operands, so that rules pass and
// fail in about equal measure.
func subjectsFor(rng *rand.Rand, doc *ufc.Document, n int) []subject {
	operands := map[string][]any{}
	for _, f := range doc.Flags {
		for _, a := range f.Allocations {
			for _, r := range a.Rules {
				for _, c := range r.Conditions {
					vals := operands[c.Attribute]
					if list, ok := ufc.DecodeStrings(c.Value); ok {
						for _, s := range list {
							vals = append(vals, s)
						}
					} else if s, ok := ufc.DecodeString(c.Value); ok {
						vals = append(vals, s, s+"x", "x"+s)
						if x, ok := ufc.ParseNumberString(s); ok {
							vals = append(vals, x-1, x, x+1)
						}
					} else if x, ok := ufc.ParseNumberString(string(c.Value)); ok {
						vals = append(vals, x-1, x, x+0.5, int64(x))
					}
					operands[c.Attribute] = append(vals, true, false, "", "1.5.0", 7)
				}
			}
		}
	}
	out := make([]subject, n)
	for i := range out {
		attrs := map[string]any{}
		for name, vals := range operands {
			if rng.IntN(4) > 0 {
				attrs[name] = vals[rng.IntN(len(vals))]
			}
		}
		if rng.IntN(10) == 0 {
			attrs["id"] = fmt.Sprint(rng.IntN(100))
		}
		out[i] = subject{key: fmt.Sprintf("subject-%d", rng.Uint32()), attrs: attrs}
	}
	return out
}

var (
	randomAttrs = []string{"country", "age", "version", "email", "tier", "beta"}
	randomOps   = []string{ufc.OpOneOf, ufc.OpNotOneOf, ufc.OpMatches, ufc.OpNotMatches, ufc.OpIsNull, ufc.OpGT, ufc.OpGTE, ufc.OpLT, ufc.OpLTE}
)

// randomDocument builds a SERVER document of every variation type with
// random rules, shards, schedules and extra logging.
func randomDocument(rng *rand.Rand) *ufc.Document {
	doc := &ufc.Document{CreatedAt: "2026-01-01T00:00:00Z", Format: ufc.FormatServer,
		Environment: ufc.Environment{Name: "random"}, Flags: map[string]*ufc.Flag{},
		BanditReferences: map[string]json.RawMessage{}}
	types := []ufc.VariationType{ufc.TypeString, ufc.TypeInteger, ufc.TypeNumeric, ufc.TypeBoolean, ufc.TypeJSON}
	for i := range 8 {
		typ := types[rng.IntN(len(types))]
		f := &ufc.Flag{Key: fmt.Sprintf("flag-%d-%s", i, strings.ToLower(string(typ))), Enabled: rng.IntN(8) > 0,
			VariationType: typ, TotalShards: 10000}
		nv := 1 + rng.IntN(3)
		if typ == ufc.TypeBoolean {
			nv = 2
		}
		for v := range nv {
			var val string
			switch typ {
			case ufc.TypeString:
				val = fmt.Sprintf("%q", fmt.Sprintf("value %d é", v))
			case ufc.TypeInteger:
				val = fmt.Sprint(v * 7)
			case ufc.TypeNumeric:
				val = fmt.Sprint(float64(v) + 0.25)
			case ufc.TypeBoolean:
				val = fmt.Sprint(v == 1)
			case ufc.TypeJSON:
				b, _ := json.Marshal(fmt.Sprintf(`{"v":%d,"s":"ü"}`, v))
				val = string(b)
			}
			f.Variations = append(f.Variations, ufc.Variation{Key: fmt.Sprintf("var-%d", v), Value: json.RawMessage(val)})
		}
		for a := range 1 + rng.IntN(3) {
			al := ufc.Allocation{Key: fmt.Sprintf("alloc-%d", a), DoLog: rng.IntN(2) == 0}
			if rng.IntN(5) == 0 {
				al.StartAt = "2026-01-01T00:00:00Z"
			}
			if rng.IntN(5) == 0 {
				al.EndAt = "2026-03-01T00:00:00Z" // before now: never matches
			}
			for range rng.IntN(3) {
				var r ufc.Rule
				for range 1 + rng.IntN(2) {
					r.Conditions = append(r.Conditions, randomCondition(rng))
				}
				al.Rules = append(al.Rules, r)
			}
			start := 0
			for v := range nv {
				end := start + rng.IntN(10000-start+1)
				if v == nv-1 {
					end = 10000
				}
				sp := ufc.Split{VariationKey: f.Variations[v].Key, Shards: []ufc.Shard{
					{Salt: fmt.Sprintf("traffic-%d-%d", i, a), Ranges: []ufc.Range{{Start: 0, End: 2000 + rng.IntN(8001)}}},
					{Salt: fmt.Sprintf("split-%d-%d", i, a), Ranges: []ufc.Range{{Start: start, End: end}}},
				}}
				if rng.IntN(3) == 0 {
					sp.ExtraLogging = map[string]string{"holdout": "h1", "note": "é"}
				}
				al.Splits = append(al.Splits, sp)
				start = end
			}
			f.Allocations = append(f.Allocations, al)
		}
		doc.Flags[f.Key] = f
	}
	return doc
}

func randomCondition(rng *rand.Rand) ufc.Condition {
	c := ufc.Condition{Attribute: randomAttrs[rng.IntN(len(randomAttrs))], Operator: randomOps[rng.IntN(len(randomOps))]}
	var v any
	switch c.Operator {
	case ufc.OpOneOf, ufc.OpNotOneOf:
		v = []string{"NL", "US", "7", "true", "1.5.0"}[:1+rng.IntN(5)]
	case ufc.OpMatches, ufc.OpNotMatches:
		v = []string{"^N", "@example\\.com$", "^1\\.", "e"}[rng.IntN(4)]
	case ufc.OpIsNull:
		v = rng.IntN(2) == 0
	default:
		if rng.IntN(2) == 0 {
			v = rng.IntN(20)
		} else {
			v = "1.5.0"
		}
	}
	c.Value, _ = json.Marshal(v)
	return c
}
