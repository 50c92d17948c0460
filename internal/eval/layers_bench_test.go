package eval_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/eval"
	"github.com/allot-dev/allot/internal/ufc"
)

// Issue 15: what a layer shard and a holdout allocation (as
// internal/core.UFCFlag compiles them) cost over the same experiment
// without them. The layer's range is [0, 9999) so that it is hashed
// (a full range is skipped) and nearly every subject goes on to the
// experiment: the worst case. The holdout holds 10 %.

const layerShard = `{"salt": "layer-checkout-5e1f0a9b", "ranges": [{"start": 0, "end": 9999}]},`

func holdoutAllocation() string {
	half := func(variation, name string, from, to int) string {
		return `{"variationKey": "` + variation + `", "shards": [
        {"salt": "c4e8a2f6b0d9e1a7", "ranges": [{"start": 0, "end": 10000}]},
        {"salt": "q3-holdout-traffic", "ranges": [{"start": 0, "end": 1000}]},
        {"salt": "q3-holdout-split", "ranges": [{"start": ` + strconv.Itoa(from) + `, "end": ` + strconv.Itoa(to) + `}]}],
       "extraLogging": {"holdoutKey": "q3", "holdoutVariation": "` + name + `"}}`
	}
	return `{"key": "experiment-q3", "doLog": true, "splits": [` + half("control", "status_quo", 0, 5000) + `,` +
		half("treatment", "all_shipped", 5000, 10000) + `]},`
}

func layeredDoc(layer, holdout bool) string {
	doc := experimentDoc
	if layer {
		doc = strings.ReplaceAll(doc, `"shards": [
        {"salt": "7f3a9c1e5b2d4f60"`, `"shards": [`+layerShard+`
        {"salt": "7f3a9c1e5b2d4f60"`)
	}
	if holdout {
		doc = strings.Replace(doc, `"allocations": [`, `"allocations": [`+holdoutAllocation(), 1)
	}
	return doc
}

func TestLayeredDocs(t *testing.T) {
	now := time.Now()
	subs := subjects(2000)
	for _, c := range []struct {
		layer, holdout bool
	}{{true, false}, {false, true}, {true, true}} {
		doc := layeredDoc(c.layer, c.holdout)
		if doc == experimentDoc {
			t.Fatal("no change")
		}
		snap, err := eval.Load([]byte(doc))
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		held := 0
		for _, s := range subs {
			r := snap.Evaluate("checkout-experiment", s, nil, ufc.TypeString, now)
			if r.AllocationKey() == "experiment-q3" {
				held++
			}
		}
		if c.holdout != (held > 100 && held < 300) {
			t.Fatalf("%+v: %d of 2000 held out", c, held)
		}
	}
}

// BenchmarkLayerHoldout runs the plain experiment and the same with a
// layer, a holdout, and both, in one run so that they can be compared.
func BenchmarkLayerHoldout(b *testing.B) {
	for _, c := range []struct {
		name           string
		layer, holdout bool
	}{{"plain", false, false}, {"layer", true, false}, {"holdout", false, true}, {"layer+holdout", true, true}} {
		b.Run(c.name, func(b *testing.B) { benchExperiment(b, layeredDoc(c.layer, c.holdout)) })
	}
}
