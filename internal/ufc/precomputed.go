package ufc

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
)

// FormatPrecomputed is the format of a subject's precomputed assignments
// (spec section 7, the JS "precomputed client").
const FormatPrecomputed = "PRECOMPUTED"

// PrecomputedFlag is one flag's assignment for one subject. In a plain
// (not yet obfuscated) value, VariationValue is the value's string form
// ("true", "42", "3.14", JSON text), as the engine's Variation.Text gives it.
type PrecomputedFlag struct {
	AllocationKey  string            `json:"allocationKey"`
	VariationKey   string            `json:"variationKey"`
	VariationType  VariationType     `json:"variationType"`
	VariationValue string            `json:"variationValue"`
	ExtraLogging   map[string]string `json:"extraLogging"`
	DoLog          bool              `json:"doLog"`
}

// Precomputed is the PRECOMPUTED document: the assignments of one subject,
// flag keys hashed with the salt, every other string base64. Fields are in
// the order Eppo's edge service writes them.
type Precomputed struct {
	CreatedAt   string                     `json:"createdAt"`
	Format      string                     `json:"format"`
	Salt        string                     `json:"salt"`
	Obfuscated  bool                       `json:"obfuscated"`
	Environment Environment                `json:"environment"`
	Flags       map[string]PrecomputedFlag `json:"flags"`
	// Bandits is always emitted ({} when empty): Allot has no bandits.
	Bandits map[string]json.RawMessage `json:"bandits"`
}

// ObfuscatePrecomputed builds the PRECOMPUTED document from plain
// assignments keyed by flag key. Each flag key becomes the MD5 hex of
// salt + key, with the salt used exactly as written in the document (Eppo's
// SDK hashes the salt string it receives, base64 text included); allocation
// and variation keys, values and extra logging become base64.
//
// The salt must be fresh for every response: hashing with a fixed salt
// would let a reader match flag keys across subjects and over time.
func ObfuscatePrecomputed(createdAt, environment, salt string, flags map[string]PrecomputedFlag) *Precomputed {
	out := &Precomputed{
		CreatedAt:   createdAt,
		Format:      FormatPrecomputed,
		Salt:        salt,
		Obfuscated:  true,
		Environment: Environment{Name: environment},
		Flags:       make(map[string]PrecomputedFlag, len(flags)),
		Bandits:     map[string]json.RawMessage{},
	}
	for key, f := range flags {
		o := PrecomputedFlag{
			AllocationKey:  b64(f.AllocationKey),
			VariationKey:   b64(f.VariationKey),
			VariationType:  f.VariationType,
			VariationValue: b64(f.VariationValue),
			ExtraLogging:   make(map[string]string, len(f.ExtraLogging)),
			DoLog:          f.DoLog,
		}
		for k, v := range f.ExtraLogging {
			o.ExtraLogging[b64(k)] = b64(v)
		}
		out.Flags[SaltedFlagKey(salt, key)] = o
	}
	return out
}

// SaltedFlagKey is the key of flagKey in a PRECOMPUTED document with salt.
func SaltedFlagKey(salt, flagKey string) string {
	sum := md5.Sum([]byte(salt + flagKey))
	return hex.EncodeToString(sum[:])
}
