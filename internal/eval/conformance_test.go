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
	"github.com/allot-dev/allot/internal/ufctest"
)

func loadSnapshot(t testing.TB, name string) *eval.Snapshot {
	t.Helper()
	s, err := eval.Load(ufctest.Document(t, name))
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
	cases := ufctest.Cases(t)
	// The start-and-end-date fixture is valid until 2050-10-31; pin the clock
	// inside that window so the suite does not expire.
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for _, doc := range []string{"flags-v1.json", "flags-v1-obfuscated.json"} {
		snap := loadSnapshot(t, doc)
		for _, c := range cases {
			checkCase(t, snap, doc, c, now)
		}
	}
}

// checkCase checks every subject of a fixture file on snap: value, code,
// variation, matched allocation and the outcome of every other allocation.
func checkCase(t *testing.T, snap *eval.Snapshot, doc string, c ufctest.Case, now time.Time) {
	t.Helper()
	for _, s := range c.Subjects {
		name := doc + "/" + c.File + "/" + s.SubjectKey
		r, trace := snap.Explain(c.Flag, s.SubjectKey, s.SubjectAttributes, c.VariationType, now)
		want := s.EvaluationDetails
		if got := r.Code.String(); got != want.FlagEvaluationCode {
			t.Errorf("%s: code %s, want %s (%s)", name, got, want.FlagEvaluationCode, r.Description(c.Flag))
		}
		if got, exp := typedValue(t, r, c.VariationType, c.DefaultValue), decodeJSON(t, s.Assignment); !reflect.DeepEqual(got, exp) {
			t.Errorf("%s: value %#v, want %#v", name, got, exp)
		}
		if got := r.VariationKey(); got != want.Variation() {
			t.Errorf("%s: variation %q, want %q", name, got, want.Variation())
		}
		if got := r.AllocationKey(); got != want.Allocation() {
			t.Errorf("%s: allocation %q, want %q", name, got, want.Allocation())
		}
		var gotOthers []ufctest.AllocationOutcome
		for _, o := range trace {
			if o.Code != eval.AllocationMatch {
				gotOthers = append(gotOthers, ufctest.AllocationOutcome{Key: o.Key, Code: o.Code.String(), Position: o.Position})
			}
		}
		wantOthers := append(append([]ufctest.AllocationOutcome{}, want.UnmatchedAllocations...), want.UnevaluatedAllocations...)
		if len(gotOthers) != 0 || len(wantOthers) != 0 {
			if !reflect.DeepEqual(gotOthers, wantOthers) {
				t.Errorf("%s: other allocations %+v, want %+v", name, gotOthers, wantOthers)
			}
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
		b, err := os.ReadFile(filepath.Join(ufctest.Dir(t), rel))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("testdata/ufc/%s differs from the shared copy", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
