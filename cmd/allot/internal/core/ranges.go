package core

import "slices"

// Range is a half-open interval [Start, End) of shards out of Whole, the
// unit in which layers hand out their subjects.
type Range struct {
	Start int `json:"start"`
	End   int `json:"end"`
}

func (r Range) size() int { return r.End - r.Start }

// rangeSet is a sorted list of disjoint, non-adjacent, non-empty ranges.
type rangeSet []Range

// normalize sorts rs and merges what overlaps or touches.
func normalize(rs []Range) rangeSet {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b Range) int { return a.Start - b.Start })
	out := rangeSet{}
	for _, r := range s {
		if r.size() <= 0 {
			continue
		}
		if n := len(out); n > 0 && r.Start <= out[n-1].End {
			out[n-1].End = max(out[n-1].End, r.End)
			continue
		}
		out = append(out, r)
	}
	return out
}

func (s rangeSet) total() int {
	n := 0
	for _, r := range s {
		n += r.size()
	}
	return n
}

// minus returns s without the shards of t (both normalized); linear.
func (s rangeSet) minus(t rangeSet) rangeSet {
	out := rangeSet{}
	j := 0
	for _, r := range s {
		cur := r
		for j < len(t) && t[j].End <= cur.Start {
			j++
		}
		k := j
		for k < len(t) && t[k].Start < cur.End {
			if t[k].Start > cur.Start {
				out = append(out, Range{cur.Start, t[k].Start})
			}
			cur.Start = max(cur.Start, t[k].End)
			if cur.Start >= cur.End {
				break
			}
			k++
		}
		if cur.Start < cur.End {
			out = append(out, cur)
		}
	}
	return out
}

// intersect returns the shards in both s and t.
func (s rangeSet) intersect(t rangeSet) rangeSet {
	return s.minus(s.minus(t))
}

// take returns the first n shards of s, lowest first (fewer if s is
// smaller).
func (s rangeSet) take(n int) []Range {
	var out []Range
	for _, r := range s {
		if n <= 0 {
			break
		}
		if r.size() > n {
			r.End = r.Start + n
		}
		out = append(out, r)
		n -= r.size()
	}
	return out
}
