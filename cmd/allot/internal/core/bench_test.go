package core

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/allot-dev/allot/internal/ufc"
)

// benchFlag is a flag with n variations and an experiment, plus a targeted
// allocation whose ONE_OF list has ids entries.
func benchFlag(n, ids int) (*Flag, *FlagSettings) {
	f := &Flag{Key: "f", VariationType: ufc.TypeString}
	for i := range n {
		f.Variations = append(f.Variations, Variation{Key: fmt.Sprint("v", i), Value: json.RawMessage(fmt.Sprintf(`"v%d"`, i))})
	}
	list := make([]string, ids)
	for i := range list {
		list[i] = fmt.Sprintf("%08d-0000-4000-8000-000000000000", i)
	}
	raw, _ := json.Marshal(list)
	s := &FlagSettings{Flag: "f", Environment: "production", Enabled: true, Allocations: []Allocation{
		{Key: "t", Type: Targeted, Variation: "v0", Rules: []Rule{{Conditions: []Condition{{Attribute: "id", Operator: ufc.OpOneOf, Value: raw}}}}},
		{Key: "exp", Type: Experiment, Status: Running, Traffic: Whole, TrafficSalt: "a", SplitSalt: "b",
			Weights: []Weight{{Variation: "v0", Weight: 5000}, {Variation: fmt.Sprint("v", n-1), Weight: 5000}}},
	}}
	return f, s
}

// BenchmarkCheck measures the core's validation of one write (the domain
// checks and the engine's compile of the flag as published) against its
// floor, the conversion to UFC alone. The sizes are the limits
// (docs/limits.md): the cost must stay linear.
func BenchmarkCheck(b *testing.B) {
	for _, size := range []struct{ vars, ids int }{{2, 10}, {MaxVariations, MaxListValues}} {
		f, s := benchFlag(size.vars, size.ids)
		name := fmt.Sprintf("vars=%d/ids=%d", size.vars, size.ids)
		b.Run("floor-UFCFlag/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := UFCFlag(f, s); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("check/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				next := *s
				if err := checkSettings(&next, f); err != nil {
					b.Fatal(err)
				}
				if err := check(f, &next); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDiffSettings measures the diff the copy page shows (issue 17)
// against its floor, encoding both settings as JSON (which the diff must at
// least do). The target differs by one id in a list of ids entries and by
// an experiment's traffic: the cost must stay linear in the list.
func BenchmarkDiffSettings(b *testing.B) {
	for _, ids := range []int{10, MaxListValues} {
		_, before := benchFlag(2, ids)
		_, after := benchFlag(2, ids+1)
		after.Allocations[1].Traffic = 5000
		name := fmt.Sprintf("ids=%d", ids)
		b.Run("floor-marshal/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := json.Marshal(before); err != nil {
					b.Fatal(err)
				}
				if _, err := json.Marshal(after); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("DiffSettings/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if d := DiffSettings(*before, *after); len(d) != 2 {
					b.Fatalf("%d differences, want 2: %+v", len(d), d)
				}
			}
		})
	}
}
