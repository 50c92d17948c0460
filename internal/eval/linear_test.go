package eval_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/allot-dev/allot/internal/eval"
	"github.com/allot-dev/allot/internal/ufc"
)

// wideFlag is a document with one flag of n variations and one allocation
// of n splits, each naming its own variation through a shard with its own
// salt: every per-flag lookup the compiler does is exercised n times.
func wideFlag(n int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `{"format": "SERVER", "flags": {"wide": {"key": "wide", "enabled": true, "variationType": "STRING", "totalShards": %d, "variations": {`, n)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"v%d": {"key": "v%d", "value": "value %d"}`, i, i, i)
	}
	b.WriteString(`}, "allocations": [{"key": "all", "splits": [`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"variationKey": "v%d", "shards": [{"salt": "salt-%d", "ranges": [{"start": %d, "end": %d}]}]}`, i, i, i, i+1)
	}
	b.WriteString(`]}]}}}`)
	return []byte(b.String())
}

// TestCompileLinear: compiling a flag costs a bounded number of lookup
// steps per variation, split and shard. The duplicate-variation check and
// the variation and salt lookups used to scan the flag's lists, which made
// 60,000 variations take 37 s (issue 10); that code takes about n²/2 steps
// here and fails.
func TestCompileLinear(t *testing.T) {
	for _, n := range []int{100, 20000} {
		doc, err := ufc.Parse(wideFlag(n))
		if err != nil {
			t.Fatal(err)
		}
		steps, err := eval.CompileSteps(doc)
		if err != nil {
			t.Fatal(err)
		}
		if limit := 8 * n; steps > limit {
			t.Fatalf("%d variations: %d lookup steps, want at most %d (linear)", n, steps, limit)
		}
	}
	// And the compiled flag works: a subject gets the first split whose
	// own salt puts it in that split's one shard.
	s, err := eval.Load(wideFlag(1000))
	if err != nil {
		t.Fatal(err)
	}
	for _, subject := range []string{"alice", "bob", "carol", "dave"} {
		want := ""
		for i := range 1000 {
			if eval.ShardOf(fmt.Sprintf("salt-%d-", i), subject, 1000) == uint32(i) {
				want = fmt.Sprintf("v%d", i)
				break
			}
		}
		r := s.Evaluate("wide", subject, nil, ufc.TypeString, now)
		if r.VariationKey() != want || (want != "" && r.Variation.String() != "value "+want[1:]) {
			t.Fatalf("%s: got %s %q, want %q", subject, r.Code, r.VariationKey(), want)
		}
	}
}

// BenchmarkCompileWideFlag: parse and compile one flag with 60,000
// variations and 60,000 splits (issue 10's 60,000-variation flag).
func BenchmarkCompileWideFlag(b *testing.B) {
	data := wideFlag(60000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := eval.Load(data); err != nil {
			b.Fatal(err)
		}
	}
}
