package main

import (
	"testing"
)

// BenchmarkSDKs runs every scenario on every SDK:
//
//	go test -bench . -benchmem
//
// or, for the table with ratios, go run . (see main.go).
func BenchmarkSDKs(b *testing.B) {
	for _, sc := range Scenarios {
		for _, mode := range []struct {
			name     string
			logging  bool
			parallel bool
		}{{"eval", false, false}, {"logging", true, false}, {"logging-parallel", true, true}} {
			for _, sdk := range SDKs {
				b.Run(sc.Name+"/"+mode.name+"/"+sdk.Name, func(b *testing.B) {
					Run(b, sdk, sc, mode.logging, mode.parallel)
				})
			}
		}
	}
}

// TestEquivalent checks that the SDKs' flags are equivalent: the same
// share of subjects in each variation (each SDK hashes differently, so not
// the same subjects), and the same subjects excluded by the rule.
func TestEquivalent(t *testing.T) {
	for _, sc := range Scenarios {
		for _, sdk := range SDKs {
			e := sdk.Setup(t, sc, true)
			counts := map[string]int{}
			for i := range numSubjects {
				v := e.Assign(i)
				counts[v]++
				if sc.Targeted && (i&3 == 1 || i&3 == 3) && v != defaultValue {
					t.Errorf("%s/%s: subject %d outside the rule got %q", sc.Name, sdk.Name, i, v)
				}
			}
			e.Close()
			in := numSubjects
			if sc.Targeted {
				in /= 2
			}
			if counts["control"]+counts["treatment"] != in {
				t.Errorf("%s/%s: %v, want %d subjects assigned", sc.Name, sdk.Name, counts, in)
			}
			if c := counts["control"]; c < in*43/100 || c > in*57/100 {
				t.Errorf("%s/%s: %v is not an even split", sc.Name, sdk.Name, counts)
			}
		}
	}
}

// TestLosslessDelivers runs the lossless mode on a few subjects: every SDK
// delivers every event of the experiment, and Allot drops none.
func TestLosslessDelivers(t *testing.T) {
	n := 20_000
	if testing.Short() {
		n = 2_000
	}
	for _, sc := range Scenarios {
		for _, sdk := range LosslessSDKs {
			for _, parallel := range []bool{false, true} {
				r := RunLossless(sdk, sc, n, parallel)
				if r.Delivered != r.Expected || r.Dropped != 0 {
					t.Errorf("%s/%s parallel=%v: delivered %d, dropped %d, want %d delivered", sc.Name, sdk.Name, parallel, r.Delivered, r.Dropped, r.Expected)
				}
			}
		}
	}
}
