package eval_test

import (
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/eval"
	"github.com/allot-dev/allot/internal/ufc"
	"github.com/allot-dev/allot/internal/ufctest"
)

// TestPrecomputeFixtures checks the precomputed assignments of every
// fixture subject against the fixtures' expected answers: a flag is present
// exactly when its code is MATCH, with the expected allocation, variation
// and value.
func TestPrecomputeFixtures(t *testing.T) {
	snap, err := eval.Load(ufctest.Document(t, "flags-v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	checked, present := 0, 0
	for _, c := range ufctest.Cases(t) {
		for _, s := range c.Subjects {
			got, ok := snap.Precompute(s.SubjectKey, s.SubjectAttributes, now)[c.Flag]
			want := s.EvaluationDetails
			checked++
			if want.FlagEvaluationCode != "MATCH" {
				if ok {
					t.Errorf("%s/%s: precomputed %+v, want absent (%s)", c.Flag, s.SubjectKey, got, want.FlagEvaluationCode)
				}
				continue
			}
			if !ok {
				t.Errorf("%s/%s: absent, want %s", c.Flag, s.SubjectKey, want.Variation())
				continue
			}
			present++
			res := snap.Evaluate(c.Flag, s.SubjectKey, s.SubjectAttributes, "", now)
			if got.VariationKey != want.Variation() || got.AllocationKey != want.Allocation() ||
				got.VariationType != c.VariationType || got.VariationValue != res.Variation.Text(c.VariationType) || got.DoLog != res.DoLog() {
				t.Errorf("%s/%s: got %+v, want variation %s allocation %s", c.Flag, s.SubjectKey, got, want.Variation(), want.Allocation())
			}
		}
	}
	if checked != ufctest.Checks || present == 0 {
		t.Fatalf("checked %d subjects (%d present), want %d", checked, present, ufctest.Checks)
	}
}

func TestPrecomputeObfuscatedIsEmpty(t *testing.T) {
	snap, err := eval.Load(ufctest.Document(t, "flags-v1-obfuscated.json"))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(snap.Precompute("alice", nil, time.Now())); n != 0 {
		t.Fatalf("%d flags precomputed from a CLIENT snapshot", n)
	}
	var _ map[string]ufc.PrecomputedFlag = snap.Precompute("", nil, time.Now())
}
