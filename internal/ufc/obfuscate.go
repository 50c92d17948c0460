package ufc

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
)

// Obfuscate returns the CLIENT form of a SERVER document (spec section 7),
// the one browser and mobile SDKs download: flag keys, attribute names,
// operators and ONE_OF values hashed with MD5, every other string base64.
//
// It hides names from a casual reader, nothing more: base64 is reversible
// and MD5 of a short, guessable name is too. What a client must not learn
// must not be in its environment at all (docs/client-side.md).
//
// doc is not modified. A document already in CLIENT form is returned as is.
func Obfuscate(doc *Document) *Document {
	if doc.Format == FormatClient {
		return doc
	}
	out := &Document{
		CreatedAt:        doc.CreatedAt,
		Format:           FormatClient,
		Environment:      doc.Environment,
		Flags:            make(map[string]*Flag, len(doc.Flags)),
		BanditReferences: map[string]json.RawMessage{},
	}
	for key, f := range doc.Flags {
		o := obfuscateFlag(f)
		o.Key = md5Hex(key)
		out.Flags[o.Key] = o
	}
	return out
}

func obfuscateFlag(f *Flag) *Flag {
	o := &Flag{
		Enabled:       f.Enabled,
		VariationType: f.VariationType,
		Variations:    make(Variations, len(f.Variations)),
		Allocations:   make([]Allocation, len(f.Allocations)),
		TotalShards:   f.TotalShards,
	}
	for i, v := range f.Variations {
		o.Variations[i] = Variation{Key: b64(v.Key), Value: obfuscateValue(v.Value)}
	}
	for i := range f.Allocations {
		a := &f.Allocations[i]
		oa := Allocation{Key: b64(a.Key), DoLog: a.DoLog, Splits: make([]Split, len(a.Splits))}
		if a.StartAt != "" {
			oa.StartAt = b64(a.StartAt)
		}
		if a.EndAt != "" {
			oa.EndAt = b64(a.EndAt)
		}
		if a.Rules != nil {
			oa.Rules = make([]Rule, len(a.Rules))
			for j, r := range a.Rules {
				oa.Rules[j].Conditions = make([]Condition, len(r.Conditions))
				for k, c := range r.Conditions {
					oa.Rules[j].Conditions[k] = obfuscateCondition(c)
				}
			}
		}
		for j, s := range a.Splits {
			sp := Split{VariationKey: b64(s.VariationKey), Shards: make([]Shard, len(s.Shards))}
			for k, sh := range s.Shards {
				// Ranges are shared, not copied: neither document is
				// modified after it is built.
				sp.Shards[k] = Shard{Salt: b64(sh.Salt), TotalShards: sh.TotalShards, Ranges: sh.Ranges}
			}
			if len(s.ExtraLogging) > 0 {
				sp.ExtraLogging = make(map[string]string, len(s.ExtraLogging))
				for k, v := range s.ExtraLogging {
					sp.ExtraLogging[b64(k)] = b64(v)
				}
			}
			oa.Splits[j] = sp
		}
		o.Allocations[i] = oa
	}
	return o
}

// obfuscateValue encodes a variation value: base64 of its string form (the
// string itself, or the JSON text of a number or boolean). A JSON object or
// array (the newer dialect's JSON flag value) stays as it is, which is how
// that dialect writes it in either format.
func obfuscateValue(v json.RawMessage) json.RawMessage {
	if s, ok := DecodeString(v); ok {
		return jsonString(b64(s))
	}
	if len(v) > 0 && (v[0] == '{' || v[0] == '[') {
		return v
	}
	return jsonString(b64(string(v)))
}

func obfuscateCondition(c Condition) Condition {
	o := Condition{Attribute: md5Hex(c.Attribute), Operator: md5Hex(c.Operator)}
	switch c.Operator {
	case OpOneOf, OpNotOneOf:
		// The SDK hashes String(attribute) and looks it up in the list.
		list, ok := DecodeStrings(c.Value)
		if !ok {
			// Not a list of strings: the engine refuses the condition in
			// either form; keep it refusable rather than guess.
			o.Value = c.Value
			return o
		}
		for i := range list {
			list[i] = md5Hex(list[i])
		}
		o.Value, _ = json.Marshal(list) // a []string always marshals
	case OpIsNull:
		// MD5 of "true" or "false", the JSON text of the boolean.
		o.Value = jsonString(md5Hex(string(c.Value)))
	default:
		s, ok := DecodeString(c.Value)
		if !ok {
			s = string(c.Value) // a number as written
		}
		o.Value = jsonString(b64(s))
	}
	return o
}

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// jsonString is the JSON text of s, which is base64 or hex here and so
// needs no escaping.
func jsonString(s string) json.RawMessage {
	b := make([]byte, 0, len(s)+2)
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
