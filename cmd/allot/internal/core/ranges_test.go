package core

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// The range-set operations against a bitmap of the 10,000 shards, on
// random sets.
func TestRangeSetOps(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 1))
	random := func() []Range {
		var out []Range
		for range r.IntN(6) {
			a, b := r.IntN(Whole+1), r.IntN(Whole+1)
			out = append(out, Range{min(a, b), max(a, b)})
		}
		return out
	}
	bits := func(rs []Range) []bool {
		out := make([]bool, Whole)
		for _, x := range rs {
			for i := x.Start; i < x.End; i++ {
				out[i] = true
			}
		}
		return out
	}
	for range 500 {
		a, b := normalize(random()), normalize(random())
		for i := 1; i < len(a); i++ {
			if a[i].Start <= a[i-1].End {
				t.Fatalf("not normalized: %v", a)
			}
		}
		ba, bb := bits(a), bits(b)
		minus, inter := bits(a.minus(b)), bits(a.intersect(b))
		for i := range Whole {
			if minus[i] != (ba[i] && !bb[i]) || inter[i] != (ba[i] && bb[i]) {
				t.Fatalf("shard %d: %v minus/intersect %v", i, a, b)
			}
		}
		n := r.IntN(Whole)
		took := a.take(n)
		if got := rangeSet(took).total(); got != min(n, a.total()) {
			t.Fatalf("take(%d) of %v: %v", n, a, took)
		}
		if !slices.Equal(normalize(took).minus(a), rangeSet{}) {
			t.Fatalf("take(%d) of %v went outside: %v", n, a, took)
		}
	}
}

// Random resizes of a layer's members keep its promises: members never
// overlap, each holds exactly its share, growing keeps every range a member
// had, shrinking keeps a subset, and the layout stays within the limits.
func TestLayerResizeInvariants(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 2))
	for round := range 200 {
		l := &Layer{Name: "l"}
		for i := range 4 {
			l.Members = append(l.Members, LayerMember{Flag: "f", Allocation: string(rune('a' + i)), Ranges: []Range{}})
		}
		for step := range 40 {
			i := r.IntN(len(l.Members))
			before := normalize(l.Members[i].Ranges)
			others := make([]rangeSet, len(l.Members))
			for k, m := range l.Members {
				others[k] = normalize(m.Ranges)
			}
			want := 100 * (1 + r.IntN(40))
			err := l.resize(i, want)
			if err != nil {
				if ErrorCode(err) != ECONFLICT && ErrorCode(err) != EINVALID {
					t.Fatalf("round %d step %d: %v", round, step, err)
				}
				continue
			}
			got := normalize(l.Members[i].Ranges)
			if got.total() != want {
				t.Fatalf("round %d step %d: member holds %d, want %d", round, step, got.total(), want)
			}
			if want >= before.total() && before.minus(got).total() != 0 {
				t.Fatalf("round %d step %d: growing lost ranges %v -> %v", round, step, before, got)
			}
			if want < before.total() && got.minus(before).total() != 0 {
				t.Fatalf("round %d step %d: shrinking took new ranges %v -> %v", round, step, before, got)
			}
			sum := 0
			for k, m := range l.Members {
				sum += rangeSet(m.Ranges).total()
				if k != i && !slices.Equal(normalize(m.Ranges), others[k]) {
					t.Fatalf("round %d step %d: resizing %d moved member %d", round, step, i, k)
				}
			}
			if sum != l.owned().total() {
				t.Fatalf("round %d step %d: members overlap", round, step)
			}
		}
	}
}
