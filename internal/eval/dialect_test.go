package eval_test

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/eval"
	"github.com/allot-dev/allot/internal/ufc"
	"github.com/allot-dev/allot/internal/ufctest"
)

// The newer dialect's regression fixtures (testdata/dialects): a SERVER
// document with one flag per difference from Eppo's 2024 fixtures
// (docs/ufc-dialects.md), and test cases in the shared fixtures' format. The
// expected shards are computed by gen.py with Python's MD5, not by the engine.
const dialectDir = "testdata/dialects"

func dialectCases(t *testing.T) []ufctest.Case {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dialectDir, "tests", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dialect fixtures: %v", err)
	}
	sort.Strings(files)
	var cases []ufctest.Case
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var c ufctest.Case
		if err := json.Unmarshal(data, &c); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		c.File = filepath.Base(f)
		cases = append(cases, c)
	}
	return cases
}

// TestDialectFixtures runs the dialect fixtures on the SERVER document and on
// its CLIENT (obfuscated) form.
func TestDialectFixtures(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(dialectDir, "flags-dialect.json"))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := eval.Load(data)
	if err != nil {
		t.Fatalf("SERVER: %v", err)
	}
	obf, err := eval.Load(obfuscate(t, data))
	if err != nil {
		t.Fatalf("CLIENT: %v", err)
	}
	if !obf.Obfuscated() {
		t.Fatal("the obfuscated document did not load as CLIENT")
	}
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	checks := 0
	for _, c := range dialectCases(t) {
		checkCase(t, plain, "SERVER", c, now)
		checkCase(t, obf, "CLIENT", c, now)
		checks += len(c.Subjects)
	}
	// Every flag of the document loads without a flag error: none of the
	// dialect's differences is a malformed flag.
	for _, s := range []*eval.Snapshot{plain, obf} {
		s.Flags(func(f *eval.Flag) bool {
			if f.Err != nil {
				t.Errorf("%s: %v", f.Key, f.Err)
			}
			return true
		})
	}
	if checks < 29 {
		t.Fatalf("only %d dialect checks ran", checks)
	}
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// obfuscate writes the CLIENT form of a SERVER document (spec section 7).
// A JSON flag's object or array value stays as it is: the newer dialect
// writes it so in either format.
func obfuscate(t *testing.T, data []byte) []byte {
	t.Helper()
	doc, err := ufc.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	out := &ufc.Document{CreatedAt: doc.CreatedAt, Format: ufc.FormatClient, Environment: doc.Environment,
		Flags: map[string]*ufc.Flag{}, BanditReferences: map[string]json.RawMessage{}}
	str := func(s string) json.RawMessage { b, _ := json.Marshal(s); return b }
	for key, f := range doc.Flags {
		o := *f
		o.Key = md5hex(key)
		o.Variations = nil
		for _, v := range f.Variations {
			val := v.Value
			if s, ok := ufc.DecodeString(val); ok {
				val = str(b64(s))
			} else if val[0] != '{' && val[0] != '[' {
				val = str(b64(string(val)))
			}
			o.Variations = append(o.Variations, ufc.Variation{Key: b64(v.Key), Value: val})
		}
		o.Allocations = nil
		for _, a := range f.Allocations {
			oa := ufc.Allocation{Key: b64(a.Key), DoLog: a.DoLog}
			if a.StartAt != "" {
				oa.StartAt = b64(a.StartAt)
			}
			if a.EndAt != "" {
				oa.EndAt = b64(a.EndAt)
			}
			for _, r := range a.Rules {
				var or ufc.Rule
				for _, c := range r.Conditions {
					oc := ufc.Condition{Attribute: md5hex(c.Attribute), Operator: md5hex(c.Operator)}
					switch c.Operator {
					case ufc.OpOneOf, ufc.OpNotOneOf:
						list, _ := ufc.DecodeStrings(c.Value)
						for i := range list {
							list[i] = md5hex(list[i])
						}
						oc.Value, _ = json.Marshal(list)
					case ufc.OpIsNull:
						oc.Value = str(md5hex(string(c.Value)))
					default:
						s, ok := ufc.DecodeString(c.Value)
						if !ok {
							s = string(c.Value)
						}
						oc.Value = str(b64(s))
					}
					or.Conditions = append(or.Conditions, oc)
				}
				oa.Rules = append(oa.Rules, or)
			}
			for _, sp := range a.Splits {
				osp := ufc.Split{VariationKey: b64(sp.VariationKey), Shards: []ufc.Shard{}}
				for _, sh := range sp.Shards {
					osp.Shards = append(osp.Shards, ufc.Shard{Salt: b64(sh.Salt), TotalShards: sh.TotalShards, Ranges: sh.Ranges})
				}
				oa.Splits = append(oa.Splits, osp)
			}
			o.Allocations = append(o.Allocations, oa)
		}
		out.Flags[o.Key] = &o
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "caf\u00e9") {
		t.Fatal("obfuscation left plain text behind")
	}
	return b
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDialectReasons: the reasons of the dialect's new outcomes name what
// happened.
func TestDialectReasons(t *testing.T) {
	s, err := eval.Load(readFile(t, dialectDir+"/flags-dialect.json"))
	if err != nil {
		t.Fatal(err)
	}
	r := s.Evaluate("empty-key-sharded", "", nil, ufc.TypeString, now)
	if r.Code != eval.AssignmentError || !strings.Contains(r.Description("empty-key-sharded"), "subject key is empty") {
		t.Fatalf("empty key: %s %q", r.Code, r.Description("empty-key-sharded"))
	}
	r = s.Evaluate("regex-dialect", "u", map[string]any{"text": "xy"}, ufc.TypeString, now)
	if d := r.Description("regex-dialect"); r.Code != eval.Match || r.Broken == nil ||
		!strings.Contains(d, `condition on "text" never passes`) || !strings.Contains(d, "invalid regular expression") {
		t.Fatalf("broken condition: %s %q", r.Code, d)
	}
	if r := s.Evaluate("targeting-only", "u", nil, ufc.TypeBoolean, now); r.Broken != nil {
		t.Fatal("Broken set without a broken condition")
	}
}

// TestSharedSaltDifferentTotals: two shards with one salt and different
// totalShards each take the hash modulo their own total (the per-salt memo
// keeps the hash, not the shard).
func TestSharedSaltDifferentTotals(t *testing.T) {
	doc := `{"flags": {"f": {"key": "f", "enabled": true, "variationType": "STRING",
	  "variations": {"a": {"key": "a", "value": "a"}, "b": {"key": "b", "value": "b"}},
	  "allocations": [{"key": "x", "splits": [
	    {"variationKey": "a", "shards": [{"salt": "s", "totalShards": 7, "ranges": [{"start": 0, "end": 3}]}, {"salt": "s", "totalShards": 10, "ranges": [{"start": 0, "end": 5}]}]},
	    {"variationKey": "b", "shards": []}]}]}}}`
	s, err := eval.Load([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	seenA := false
	for i := range 200 {
		subject := fmt.Sprintf("user-%d", i)
		want := "b"
		if eval.ShardOf("s-", subject, 7) < 3 && eval.ShardOf("s-", subject, 10) < 5 {
			want, seenA = "a", true
		}
		if r := s.Evaluate("f", subject, nil, "", now); r.VariationKey() != want {
			t.Fatalf("%s: %q, want %q", subject, r.VariationKey(), want)
		}
	}
	if !seenA {
		t.Fatal("no subject reached the sharded split")
	}
}
