package eval_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/eval"
	"github.com/allot-dev/allot/internal/ufc"
)

// fixtureDir holds the project's copy of the shared UFC fixtures.
const fixtureDir = "../../testdata/ufc"

type fixtureCase struct {
	Flag          string            `json:"flag"`
	VariationType ufc.VariationType `json:"variationType"`
	DefaultValue  json.RawMessage   `json:"defaultValue"`
	Subjects      []struct {
		SubjectKey        string          `json:"subjectKey"`
		SubjectAttributes map[string]any  `json:"subjectAttributes"`
		Assignment        json.RawMessage `json:"assignment"`
		EvaluationDetails struct {
			FlagEvaluationCode string  `json:"flagEvaluationCode"`
			VariationKey       *string `json:"variationKey"`
			MatchedAllocation  *struct {
				Key string `json:"key"`
			} `json:"matchedAllocation"`
			UnmatchedAllocations   []outcome `json:"unmatchedAllocations"`
			UnevaluatedAllocations []outcome `json:"unevaluatedAllocations"`
		} `json:"evaluationDetails"`
	} `json:"subjects"`
}

type outcome struct {
	Key      string `json:"key"`
	Code     string `json:"allocationEvaluationCode"`
	Position int    `json:"orderPosition"`
}

func loadCases(t testing.TB) map[string]fixtureCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(fixtureDir, "tests", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in %s: %v", fixtureDir, err)
	}
	cases := map[string]fixtureCase{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var c fixtureCase
		if err := json.Unmarshal(data, &c); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		cases[filepath.Base(f)] = c
	}
	return cases
}

func loadSnapshot(t testing.TB, name string) *eval.Snapshot {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	s, err := eval.Load(data)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return s
}

// typedValue returns what a typed getter would return for r, given the
// fixture's default, as a value comparable with the fixture's assignment.
func typedValue(t *testing.T, r eval.Result, typ ufc.VariationType, def json.RawMessage) any {
	if r.Code != eval.Match {
		return decodeJSON(t, def)
	}
	v := r.Variation
	switch typ {
	case ufc.TypeString:
		return v.String()
	case ufc.TypeInteger:
		return float64(v.Int())
	case ufc.TypeNumeric:
		return v.Float()
	case ufc.TypeBoolean:
		return v.Bool()
	case ufc.TypeJSON:
		return decodeJSON(t, []byte(v.JSON()))
	}
	t.Fatalf("unknown type %s", typ)
	return nil
}

func decodeJSON(t *testing.T, b []byte) any {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// TestConformance runs every shared fixture against the plain and the
// obfuscated document and checks value, code, variation, matched allocation
// and the outcome of every other allocation.
func TestConformance(t *testing.T) {
	cases := loadCases(t)
	// The start-and-end-date fixture is valid until 2050-10-31; pin the clock
	// inside that window so the suite does not expire.
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for _, doc := range []string{"flags-v1.json", "flags-v1-obfuscated.json"} {
		snap := loadSnapshot(t, doc)
		checks := 0
		for file, c := range cases {
			for _, s := range c.Subjects {
				name := doc + "/" + file + "/" + s.SubjectKey
				r, trace := snap.Explain(c.Flag, s.SubjectKey, s.SubjectAttributes, c.VariationType, now)
				want := s.EvaluationDetails
				checks++
				if got := r.Code.String(); got != want.FlagEvaluationCode {
					t.Errorf("%s: code %s, want %s (%s)", name, got, want.FlagEvaluationCode, r.Description(c.Flag))
				}
				if got, exp := typedValue(t, r, c.VariationType, c.DefaultValue), decodeJSON(t, s.Assignment); !reflect.DeepEqual(got, exp) {
					t.Errorf("%s: value %#v, want %#v", name, got, exp)
				}
				wantVar := ""
				if want.VariationKey != nil {
					wantVar = *want.VariationKey
				}
				if got := r.VariationKey(); got != wantVar {
					t.Errorf("%s: variation %q, want %q", name, got, wantVar)
				}
				wantAlloc := ""
				if want.MatchedAllocation != nil {
					wantAlloc = want.MatchedAllocation.Key
				}
				if got := r.AllocationKey(); got != wantAlloc {
					t.Errorf("%s: allocation %q, want %q", name, got, wantAlloc)
				}
				var gotOthers []outcome
				for _, o := range trace {
					if o.Code != eval.AllocationMatch {
						gotOthers = append(gotOthers, outcome{o.Key, o.Code.String(), o.Position})
					}
				}
				wantOthers := append(append([]outcome{}, want.UnmatchedAllocations...), want.UnevaluatedAllocations...)
				if len(gotOthers) != 0 || len(wantOthers) != 0 {
					if !reflect.DeepEqual(gotOthers, wantOthers) {
						t.Errorf("%s: other allocations %+v, want %+v", name, gotOthers, wantOthers)
					}
				}
			}
		}
		if checks != 225 {
			t.Errorf("%s: ran %d subject checks, want 225", doc, checks)
		}
	}
}

// TestFixtureCopy keeps testdata/ufc identical to ../shared/testdata/ufc
// when the shared directory is present (it is in CI).
func TestFixtureCopy(t *testing.T) {
	shared := "../../../shared/testdata/ufc"
	if _, err := os.Stat(shared); err != nil {
		t.Skipf("shared fixtures not present: %v", err)
	}
	err := filepath.WalkDir(shared, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(shared, p)
		a, _ := os.ReadFile(p)
		b, err := os.ReadFile(filepath.Join(fixtureDir, rel))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("testdata/ufc/%s differs from the shared copy", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
