package core

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/allot-dev/allot/internal/ufc"
)

// UFCFlag is a flag as it is published in one environment, given its
// definition and its settings there (spec section 8.5): totalShards 10000
// and an explicit doLog on every allocation.
//
// Allocations compile as follows, with shard ranges in basis points:
//   - a running experiment: one split per variation with a nonzero weight,
//     each ANDing the traffic shard (its own salt, range [0, traffic)) with
//     the split shard (a second salt; ranges partition [0, 10000) by
//     weight, contiguous in the flag's variation order). A draft or stopped
//     experiment is left out, so it assigns no one.
//   - a rollout: one split to its variation with one shard [0, percent).
//   - a targeted allocation: one split to its variation with no shards.
//   - an experiment in a layer: each split starts with one more shard, on
//     the layer's salt with the experiment's ranges of the layer, so that
//     experiments of one layer never share a subject.
//   - an experiment in a holdout, when it runs or has shipped: first an
//     allocation <experiment>-<holdout> with the experiment's rules and two
//     splits, compiled as Eppo's servers do: the split salt over [0, 10000),
//     <holdout>-holdout-traffic over [0, percent) and
//     <holdout>-holdout-split over one half; the status_quo half gets the
//     status quo, the all_shipped half the shipped winner (the status quo
//     until then), with extraLogging {holdoutKey, holdoutVariation}.
//
// Publishing (internal/publish) and the core's validation (check) both call
// it, so what is checked is exactly what is published.
func UFCFlag(def *Flag, set *FlagSettings) (*ufc.Flag, error) {
	f := &ufc.Flag{
		Key:           def.Key,
		Enabled:       set.Enabled,
		VariationType: def.VariationType,
		Variations:    make(ufc.Variations, 0, len(def.Variations)),
		Allocations:   []ufc.Allocation{},
		TotalShards:   Whole,
	}
	for _, v := range def.Variations {
		value := v.Value
		if def.VariationType == ufc.TypeJSON {
			// JSON values travel as strings holding serialized JSON.
			b, err := json.Marshal(string(v.Value))
			if err != nil {
				return nil, err
			}
			value = b
		}
		f.Variations = append(f.Variations, ufc.Variation{Key: v.Key, Value: value})
	}
	order := make(map[string]int, len(def.Variations))
	for i, v := range def.Variations {
		order[v.Key] = i
	}
	for i := range set.Allocations {
		a := &set.Allocations[i]
		// A variation the flag no longer has must not be published as
		// another one (issue 10, item 1): refuse the flag, loudly.
		if err := knownVariations(a, order); err != nil {
			return nil, err
		}
		w := ufc.Allocation{Key: a.Key, DoLog: a.Logs(), Rules: compileRules(a.Rules)}
		if a.StartAt != nil {
			w.StartAt = a.StartAt.UTC().Format(time.RFC3339Nano)
		}
		if a.EndAt != nil {
			w.EndAt = a.EndAt.UTC().Format(time.RFC3339Nano)
		}
		switch a.Type {
		case Experiment:
			if a.TrafficSalt == "" || a.SplitSalt == "" {
				return nil, fmt.Errorf("allocation %s has no salts", a.Key)
			}
			if h := a.Holdout; h != nil && (a.Status == Running || h.Shipped != "") {
				f.Allocations = append(f.Allocations, holdoutAllocation(a, w.Rules))
			}
			if a.Status != Running {
				continue
			}
			if a.Layer != nil && (a.Layer.Salt == "" || len(a.Layer.Ranges) == 0) {
				return nil, fmt.Errorf("allocation %s has no part of layer %s", a.Key, a.Layer.Name)
			}
			w.Splits = experimentSplits(a, order)
		case Rollout:
			if a.SplitSalt == "" {
				return nil, fmt.Errorf("allocation %s has no salt", a.Key)
			}
			w.Splits = []ufc.Split{{
				VariationKey: a.Variation,
				Shards:       []ufc.Shard{{Salt: a.SplitSalt, Ranges: []ufc.Range{{Start: 0, End: int(a.Percent)}}}},
			}}
		case Targeted:
			w.Splits = []ufc.Split{{VariationKey: a.Variation, Shards: []ufc.Shard{}}}
		case Imported:
			w.Splits = importedSplits(a)
		default:
			return nil, fmt.Errorf("allocation %s has unknown type %q", a.Key, a.Type)
		}
		f.Allocations = append(f.Allocations, w)
	}
	return f, nil
}

func knownVariations(a *Allocation, order map[string]int) error {
	if a.Variation != "" {
		if _, ok := order[a.Variation]; !ok {
			return fmt.Errorf("allocation %s names variation %q, which the flag does not have", a.Key, a.Variation)
		}
	}
	for _, wt := range a.Weights {
		if _, ok := order[wt.Variation]; !ok {
			return fmt.Errorf("allocation %s weighs variation %q, which the flag does not have", a.Key, wt.Variation)
		}
	}
	// An imported split to a variation the flag does not have is published
	// as it is, never as another variation: the engine refuses it on every
	// write (check) unless an import keeps it on purpose (import.go).
	if h := a.Holdout; h != nil {
		for _, v := range []string{h.StatusQuo, h.Shipped} {
			if _, ok := order[v]; v != "" && !ok {
				return fmt.Errorf("allocation %s: holdout %s names variation %q, which the flag does not have", a.Key, h.Key, v)
			}
		}
	}
	return nil
}

// holdoutAllocation is the allocation placed before experiment a for the
// subjects of its holdout.
func holdoutAllocation(a *Allocation, rules []ufc.Rule) ufc.Allocation {
	h := a.Holdout
	shipped := h.Shipped
	if shipped == "" {
		shipped = h.StatusQuo
	}
	half := func(variation, name string, from, to int) ufc.Split {
		return ufc.Split{
			VariationKey: variation,
			Shards: []ufc.Shard{
				{Salt: a.SplitSalt, Ranges: []ufc.Range{{Start: 0, End: Whole}}},
				{Salt: HoldoutTrafficSalt(h.Key), Ranges: []ufc.Range{{Start: 0, End: int(h.Percent)}}},
				{Salt: HoldoutSplitSalt(h.Key), Ranges: []ufc.Range{{Start: from, End: to}}},
			},
			ExtraLogging: map[string]string{"holdoutKey": h.Key, "holdoutVariation": name},
		}
	}
	return ufc.Allocation{
		Key:   a.Key + "-" + h.Key,
		Rules: rules,
		DoLog: true,
		Splits: []ufc.Split{
			half(h.StatusQuo, HoldoutStatusQuo, 0, Whole/2),
			half(shipped, HoldoutAllShipped, Whole/2, Whole),
		},
	}
}

func experimentSplits(a *Allocation, order map[string]int) []ufc.Split {
	weights := make([]int, len(order))
	for _, wt := range a.Weights {
		weights[order[wt.Variation]] = int(wt.Weight)
	}
	keys := make([]string, len(order))
	for k, i := range order {
		keys[i] = k
	}
	traffic := ufc.Shard{Salt: a.TrafficSalt, Ranges: []ufc.Range{{Start: 0, End: int(a.Traffic)}}}
	var layer []ufc.Shard
	if a.Layer != nil {
		// First, so that a subject outside the experiment's part of the
		// layer costs one hash.
		rs := make([]ufc.Range, len(a.Layer.Ranges))
		for i, r := range a.Layer.Ranges {
			rs[i] = ufc.Range{Start: r.Start, End: r.End}
		}
		layer = []ufc.Shard{{Salt: a.Layer.Salt, Ranges: rs}}
	}
	splits := []ufc.Split{}
	start := 0
	for i, wt := range weights {
		if wt == 0 {
			continue
		}
		splits = append(splits, ufc.Split{
			VariationKey: keys[i],
			Shards: append(slices.Clone(layer),
				traffic,
				ufc.Shard{Salt: a.SplitSalt, Ranges: []ufc.Range{{Start: start, End: start + wt}}},
			),
		})
		start += wt
	}
	return splits
}

func compileRules(rules []Rule) []ufc.Rule {
	if len(rules) == 0 {
		return nil
	}
	out := make([]ufc.Rule, len(rules))
	for i, r := range rules {
		out[i].Conditions = make([]ufc.Condition, len(r.Conditions))
		for j, c := range r.Conditions {
			out[i].Conditions[j] = ufc.Condition{Attribute: c.Attribute, Operator: c.Operator, Value: c.Value}
		}
	}
	return out
}
