package srm_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/srm"
)

func TestChiSquareSurvival(t *testing.T) {
	// Reference values of the chi-square distribution (upper tail).
	for _, c := range []struct {
		x    float64
		df   int
		want float64
	}{
		{3.841458820694124, 1, 0.05},
		{6.634896601021214, 1, 0.01},
		{10.827566170662733, 1, 0.001},
		{5.991464547107979, 2, 0.05},
		{13.815510557964274, 2, 0.001},
		{7.814727903251178, 3, 0.05},
		{0.45493642311957283, 1, 0.5},
		{1, 1, 0.31731050786291404},       // erfc(sqrt(1/2))
		{100, 10, 5.4497019829205295e-17}, // even df: e^(-x/2) sum (x/2)^i / i!
		{30, 6, 3.930844818448461e-05},
		{0, 3, 1},
	} {
		got := srm.ChiSquareSurvival(c.x, c.df)
		if math.Abs(got-c.want) > 1e-9*c.want {
			t.Errorf("Q(%v, df=%d) = %.12g, want %.12g", c.x, c.df, got, c.want)
		}
	}
}

func TestBalancedAndSkewed(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	// 100,000 subjects drawn 50/30/20: no mismatch.
	counts := make([]int64, 3)
	for range 100_000 {
		x := r.Float64()
		switch {
		case x < 0.5:
			counts[0]++
		case x < 0.8:
			counts[1]++
		default:
			counts[2]++
		}
	}
	res, err := srm.Test(counts, []float64{50, 30, 20})
	if err != nil || res.Mismatch || res.DegreesOfFreedom != 2 || res.PValue < 0.001 {
		t.Fatalf("correct weights flagged: %+v %v (counts %v)", res, err, counts)
	}
	// The same counts against 50/25/25: a mismatch.
	res, err = srm.Test(counts, []float64{50, 25, 25})
	if err != nil || !res.Mismatch || res.PValue > 1e-6 {
		t.Fatalf("wrong weights not flagged: %+v %v", res, err)
	}
	// A 1 % skew over 100,000 subjects is caught.
	res, _ = srm.Test([]int64{50_800, 49_200}, []float64{1, 1})
	if !res.Mismatch {
		t.Fatalf("50.8/49.2 on 100k not flagged: %+v", res)
	}
	// Subjects in a 0 % variation are a mismatch on their own.
	res, _ = srm.Test([]int64{500, 500, 3}, []float64{50, 50, 0})
	if !res.Mismatch {
		t.Fatal("subjects in a zero-weight variation not flagged")
	}
	if _, err := srm.Test([]int64{0, 0}, []float64{1, 1}); err == nil {
		t.Fatal("no observations should be an error")
	}
	if _, err := srm.Test([]int64{5}, []float64{1}); err == nil {
		t.Fatal("one variation should be an error")
	}
}

func TestHalvesVerdict(t *testing.T) {
	if r, err := srm.TestHalves(5030, 4970); err != nil || r.Mismatch {
		t.Fatalf("an even split: %+v %v", r, err)
	}
	if r, err := srm.TestHalves(5400, 4600); err != nil || !r.Mismatch {
		t.Fatalf("54/46 over 10,000 subjects: %+v %v", r, err)
	}
	if _, err := srm.TestHalves(0, 0); err == nil {
		t.Fatal("no subjects: no verdict")
	}
}
