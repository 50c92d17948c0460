package eval

import (
	"time"

	"github.com/allot-dev/allot/internal/ufc"
)

// Precompute evaluates every flag of s for one subject and returns, keyed by
// flag key, the assignments of the flags that assign the subject a variation
// (code MATCH): the plain content of a PRECOMPUTED document, for
// ufc.ObfuscatePrecomputed. Flags that are disabled, fall through to the
// default or fail with ASSIGNMENT_ERROR are left out, so the client SDK
// answers its own default for them, as it would for an unknown flag.
//
// An obfuscated (CLIENT) snapshot knows only hashes of its flag keys, so it
// cannot be precomputed: the result is empty.
func (s *Snapshot) Precompute(subject string, attrs map[string]any, now time.Time) map[string]ufc.PrecomputedFlag {
	if s == nil || s.obfuscated {
		return map[string]ufc.PrecomputedFlag{}
	}
	out := make(map[string]ufc.PrecomputedFlag, len(s.flags))
	for key, f := range s.flags {
		res := f.Evaluate(subject, attrs, "", now)
		if res.Code != Match {
			continue
		}
		out[key] = ufc.PrecomputedFlag{
			AllocationKey:  res.AllocationKey(),
			VariationKey:   res.VariationKey(),
			VariationType:  f.Type,
			VariationValue: res.Variation.Text(f.Type),
			ExtraLogging:   res.ExtraLogging(),
			DoLog:          res.DoLog(),
		}
	}
	return out
}
