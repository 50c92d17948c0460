package core

import (
	"encoding/json"
	"fmt"
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
			if a.Status != Running {
				continue
			}
			if a.TrafficSalt == "" || a.SplitSalt == "" {
				return nil, fmt.Errorf("allocation %s has no salts", a.Key)
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
	return nil
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
	splits := []ufc.Split{}
	start := 0
	for i, wt := range weights {
		if wt == 0 {
			continue
		}
		splits = append(splits, ufc.Split{
			VariationKey: keys[i],
			Shards: []ufc.Shard{
				traffic,
				{Salt: a.SplitSalt, Ranges: []ufc.Range{{Start: start, End: start + wt}}},
			},
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
