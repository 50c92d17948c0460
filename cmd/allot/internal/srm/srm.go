// Package srm checks an experiment for sample ratio mismatch: whether the
// subjects observed in each variation fit the configured weights, by
// Pearson's chi-square goodness-of-fit test.
package srm

import (
	"errors"
	"math"
)

// Threshold is the p-value below which a mismatch is flagged. It is low on
// purpose: the check runs again and again as data arrives, and a real
// mismatch (a bug in assignment or logging) drives p far below it quickly.
const Threshold = 0.001

// Result is the outcome of the test.
type Result struct {
	ChiSquare        float64 `json:"chiSquare"`
	DegreesOfFreedom int     `json:"degreesOfFreedom"`
	PValue           float64 `json:"pValue"`
	// Mismatch is set when PValue < Threshold.
	Mismatch bool `json:"mismatch"`
}

// Test compares observed counts with expected weights (any positive scale;
// they are normalised). It needs at least two variations with a positive
// weight and at least one observation.
func Test(observed []int64, weights []float64) (Result, error) {
	if len(observed) != len(weights) {
		return Result{}, errors.New("srm: one weight per observed count")
	}
	var total int64
	var wsum float64
	k := 0
	for i, w := range weights {
		if w < 0 || math.IsNaN(w) {
			return Result{}, errors.New("srm: weights must not be negative")
		}
		if w > 0 {
			k++
			wsum += w
		} else if observed[i] > 0 {
			// Subjects in a variation that should get none: that alone is
			// a mismatch, whatever the others say.
			return Result{ChiSquare: math.Inf(1), DegreesOfFreedom: max(k, 1), PValue: 0, Mismatch: true}, nil
		}
		total += observed[i]
	}
	if k < 2 {
		return Result{}, errors.New("srm: at least two variations with a positive weight are needed")
	}
	if total == 0 {
		return Result{}, errors.New("srm: no observations")
	}
	var chi float64
	for i, w := range weights {
		if w == 0 {
			continue
		}
		expected := float64(total) * w / wsum
		d := float64(observed[i]) - expected
		chi += d * d / expected
	}
	df := k - 1
	p := ChiSquareSurvival(chi, df)
	return Result{ChiSquare: chi, DegreesOfFreedom: df, PValue: p, Mismatch: p < Threshold}, nil
}

// ChiSquareSurvival returns P(X >= x) for X chi-square distributed with df
// degrees of freedom: the regularized upper incomplete gamma Q(df/2, x/2).
func ChiSquareSurvival(x float64, df int) float64 {
	if x <= 0 {
		return 1
	}
	if math.IsInf(x, 1) {
		return 0
	}
	return gammaQ(float64(df)/2, x/2)
}

// gammaQ is the regularized upper incomplete gamma function, by its power
// series when x < a+1 and by its continued fraction (modified Lentz)
// otherwise; both converge fast in their own region.
func gammaQ(a, x float64) float64 {
	lg, _ := math.Lgamma(a)
	if x < a+1 {
		// P(a, x) = e^-x x^a / Gamma(a+1) * sum x^n / ((a+1)...(a+n))
		term := 1 / a
		sum := term
		for n := 1; n < 1000; n++ {
			term *= x / (a + float64(n))
			sum += term
			if math.Abs(term) < math.Abs(sum)*1e-15 {
				break
			}
		}
		return 1 - sum*math.Exp(-x+a*math.Log(x)-lg)
	}
	const tiny = 1e-300
	b := x + 1 - a
	c := 1 / tiny
	d := 1 / b
	h := d
	for i := 1; i < 1000; i++ {
		an := -float64(i) * (float64(i) - a)
		b += 2
		d = an*d + b
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = b + an/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < 1e-15 {
			break
		}
	}
	return math.Exp(-x+a*math.Log(x)-lg) * h
}

// Weight is a variation's configured share (any positive scale).
type Weight struct {
	Variation string
	Weight    float64
}

// TestVariations tests subjects counted per variation against configured
// weights. A variation observed but not configured counts with weight zero:
// its subjects alone make a mismatch.
func TestVariations(weights []Weight, counts map[string]int64) (Result, error) {
	observed := make([]int64, 0, len(weights)+len(counts))
	expected := make([]float64, 0, len(weights)+len(counts))
	known := make(map[string]bool, len(weights))
	for _, w := range weights {
		known[w.Variation] = true
		observed = append(observed, counts[w.Variation])
		expected = append(expected, w.Weight)
	}
	for v, n := range counts {
		if !known[v] {
			observed = append(observed, n)
			expected = append(expected, 0)
		}
	}
	return Test(observed, expected)
}

// TestHalves checks a holdout's two halves (issue 15): its split salt
// divides the held-out subjects 50/50 between the status-quo and the
// all-shipped half, whatever the experiments it covers.
func TestHalves(statusQuo, allShipped int64) (Result, error) {
	return Test([]int64{statusQuo, allShipped}, []float64{1, 1})
}
