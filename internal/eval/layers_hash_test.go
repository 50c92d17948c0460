//go:build allot_hashcount

package eval_test

import (
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/eval"
	"github.com/allot-dev/allot/internal/ufc"
)

// TestLayerHoldoutHashes counts, exactly, the MD5 digests a layer shard and
// a holdout allocation add to an experiment (issue 15). Run it with
// go test -tags allot_hashcount -run TestLayerHoldoutHashes ./internal/eval
func TestLayerHoldoutHashes(t *testing.T) {
	subs := subjects(20000)
	now := time.Now()
	count := func(doc string) (perSubject float64, max int64) {
		snap, err := eval.Load([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		total := int64(0)
		for _, s := range subs {
			before := eval.HashCount()
			snap.Evaluate("checkout-experiment", s, nil, ufc.TypeString, now)
			n := eval.HashCount() - before
			total += n
			max = maxOf(max, n)
		}
		return float64(total) / float64(len(subs)), max
	}
	plain, plainMax := count(layeredDoc(false, false))
	layer, layerMax := count(layeredDoc(true, false))
	holdout, holdoutMax := count(layeredDoc(false, true))
	both, bothMax := count(layeredDoc(true, true))
	t.Logf("MD5 per evaluation (mean, max): plain %.3f, %d; layer %.3f, %d; holdout %.3f, %d; layer+holdout %.3f, %d",
		plain, plainMax, layer, layerMax, holdout, holdoutMax, both, bothMax)
	if plainMax != 2 || layerMax != 3 || holdoutMax != 3 || bothMax != 4 {
		t.Errorf("max MD5s: plain %d (want 2), layer %d (3), holdout %d (3), both %d (4)", plainMax, layerMax, holdoutMax, bothMax)
	}
	// Each salt is hashed once per evaluation, however many splits use it,
	// and the traffic shard (80 %) is tried before the layer's (99.99 %):
	// the layer's salt is hashed only for subjects in the traffic. The
	// holdout's traffic salt is hashed for everyone, its split salt for
	// the 10 % held out, who then skip the experiment's two.
	t.Logf("added: layer %.3f, holdout %.3f, both %.3f (the floor with independent salts: 1 + t(1 - 2h) = %.3f)",
		layer-plain, holdout-plain, both-plain, 1+0.8*(1-2*0.1))
	if layer-plain > 0.81 || holdout-plain > 1.0001 || both-plain > 1.0+0.8*(1-2*0.1)+0.02 {
		t.Errorf("added MD5s: layer %.3f, holdout %.3f, both %.3f", layer-plain, holdout-plain, both-plain)
	}
}

func maxOf(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}
