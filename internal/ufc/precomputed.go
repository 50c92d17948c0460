package ufc

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
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

// AppendPrecomputed appends to dst the JSON of
// ObfuscatePrecomputed(createdAt, environment, salt, flags), written
// directly rather than through maps and reflection: the precomputed
// endpoint builds one per request. Flags come in map order.
func AppendPrecomputed(dst []byte, createdAt, environment, salt string, flags map[string]PrecomputedFlag) []byte {
	dst = slices.Grow(dst, 128+len(environment)+len(flags)*256)
	dst = append(dst, `{"createdAt":`...)
	dst = appendJSONString(dst, createdAt)
	dst = append(dst, `,"format":"PRECOMPUTED","salt":`...)
	dst = appendJSONString(dst, salt)
	dst = append(dst, `,"obfuscated":true,"environment":{"name":`...)
	dst = appendJSONString(dst, environment)
	dst = append(dst, `},"flags":{`...)
	first := true
	var sum [md5.Size]byte
	var buf []byte
	for key, f := range flags {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		buf = append(append(buf[:0], salt...), key...)
		sum = md5.Sum(buf)
		dst = append(dst, '"')
		dst = hex.AppendEncode(dst, sum[:])
		dst = append(dst, `":{"allocationKey":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, []byte(f.AllocationKey))
		dst = append(dst, `","variationKey":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, []byte(f.VariationKey))
		dst = append(dst, `","variationType":`...)
		switch f.VariationType {
		case TypeString, TypeInteger, TypeNumeric, TypeBoolean, TypeJSON:
			dst = append(append(append(dst, '"'), f.VariationType...), '"') // plain ASCII
		default:
			dst = appendJSONString(dst, string(f.VariationType))
		}
		dst = append(dst, `,"variationValue":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, []byte(f.VariationValue))
		dst = append(dst, `","extraLogging":{`...)
		firstExtra := true
		for k, v := range f.ExtraLogging {
			if !firstExtra {
				dst = append(dst, ',')
			}
			firstExtra = false
			dst = append(dst, '"')
			dst = base64.StdEncoding.AppendEncode(dst, []byte(k))
			dst = append(dst, `":"`...)
			dst = base64.StdEncoding.AppendEncode(dst, []byte(v))
			dst = append(dst, '"')
		}
		dst = append(dst, `},"doLog":`...)
		dst = strconv.AppendBool(dst, f.DoLog)
		dst = append(dst, '}')
	}
	return append(dst, `},"bandits":{}}`...)
}

// appendJSONString appends s as a JSON string.
func appendJSONString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return append(dst, b...)
}
