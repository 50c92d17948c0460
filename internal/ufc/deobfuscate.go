package ufc

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
)

// Deobfuscate turns a CLIENT document back into the SERVER one it was made
// from (Obfuscate's inverse), as far as it can. Base64 decodes; MD5 does
// not, so each hashed text (flag keys, attribute names, ONE_OF values) is
// resolved by finding, among names, the text whose MD5 it is. Operators
// and IS_NULL operands resolve on their own.
//
// Flags that cannot be fully restored are left out of the result and
// listed in unresolved (key: the flag's hashed key, or its name when
// known; value: what is missing), so a caller can refuse them with the
// reason rather than guess. A SERVER document is returned as is.
func Deobfuscate(doc *Document, names []string) (out *Document, unresolved map[string]string) {
	unresolved = map[string]string{}
	if doc.Format != FormatClient {
		return doc, unresolved
	}
	table := make(map[string]string, len(names)+len(operators)+2)
	for _, n := range names {
		table[md5Hex(n)] = n
	}
	ops := make(map[string]string, len(operators))
	for _, op := range operators {
		ops[md5Hex(op)] = op
	}
	out = &Document{
		CreatedAt:        doc.CreatedAt,
		Format:           FormatServer,
		Environment:      doc.Environment,
		Flags:            make(map[string]*Flag, len(doc.Flags)),
		BanditReferences: map[string]json.RawMessage{},
	}
	for hashed, f := range doc.Flags {
		key, ok := table[hashed]
		if !ok {
			unresolved[hashed] = "the flag's key is an MD5 hash that none of the given names produces: add the flag's key to the names"
			continue
		}
		d, err := deobfuscateFlag(f, table, ops)
		if err != nil {
			unresolved[key] = err.Error()
			continue
		}
		d.Key = key
		out.Flags[key] = d
	}
	return out, unresolved
}

// operators are the condition operators a CLIENT document hashes.
var operators = []string{OpMatches, OpNotMatches, OpOneOf, OpNotOneOf, OpIsNull, OpGT, OpGTE, OpLT, OpLTE}

func deobfuscateFlag(f *Flag, table, ops map[string]string) (*Flag, error) {
	d := &Flag{
		Enabled:       f.Enabled,
		VariationType: f.VariationType,
		Variations:    make(Variations, len(f.Variations)),
		Allocations:   make([]Allocation, len(f.Allocations)),
		TotalShards:   f.TotalShards,
	}
	for i, v := range f.Variations {
		k, err := unb64(v.Key)
		if err != nil {
			return nil, fmt.Errorf("variation key %q: %v", v.Key, err)
		}
		value, err := deobfuscateValue(f.VariationType, v.Value)
		if err != nil {
			return nil, fmt.Errorf("variation %s: %v", k, err)
		}
		d.Variations[i] = Variation{Key: k, Value: value}
	}
	for i := range f.Allocations {
		a := &f.Allocations[i]
		key, err := unb64(a.Key)
		if err != nil {
			return nil, fmt.Errorf("allocation key %q: %v", a.Key, err)
		}
		da := Allocation{Key: key, DoLog: a.DoLog, Splits: make([]Split, len(a.Splits))}
		if da.StartAt, err = unb64Opt(a.StartAt); err != nil {
			return nil, fmt.Errorf("allocation %s: startAt: %v", key, err)
		}
		if da.EndAt, err = unb64Opt(a.EndAt); err != nil {
			return nil, fmt.Errorf("allocation %s: endAt: %v", key, err)
		}
		if a.Rules != nil {
			da.Rules = make([]Rule, len(a.Rules))
			for j, r := range a.Rules {
				da.Rules[j].Conditions = make([]Condition, len(r.Conditions))
				for k, c := range r.Conditions {
					dc, err := deobfuscateCondition(c, table, ops)
					if err != nil {
						return nil, fmt.Errorf("allocation %s: rule %d: condition %d: %v", key, j, k, err)
					}
					da.Rules[j].Conditions[k] = dc
				}
			}
		}
		for j, s := range a.Splits {
			vk, err := unb64(s.VariationKey)
			if err != nil {
				return nil, fmt.Errorf("allocation %s: split %d: %v", key, j, err)
			}
			sp := Split{VariationKey: vk, Shards: make([]Shard, len(s.Shards))}
			for k, sh := range s.Shards {
				salt, err := unb64(sh.Salt)
				if err != nil {
					return nil, fmt.Errorf("allocation %s: split %d: salt: %v", key, j, err)
				}
				sp.Shards[k] = Shard{Salt: salt, TotalShards: sh.TotalShards, Ranges: sh.Ranges}
			}
			if len(s.ExtraLogging) > 0 {
				sp.ExtraLogging = make(map[string]string, len(s.ExtraLogging))
				for ek, ev := range s.ExtraLogging {
					k2, err1 := unb64(ek)
					v2, err2 := unb64(ev)
					if err1 != nil || err2 != nil {
						return nil, fmt.Errorf("allocation %s: split %d: extraLogging is not base64", key, j)
					}
					sp.ExtraLogging[k2] = v2
				}
			}
			da.Splits[j] = sp
		}
		d.Allocations[i] = da
	}
	return d, nil
}

// deobfuscateValue reverses obfuscateValue: the base64 of a value's string
// form becomes the value of the flag's type.
func deobfuscateValue(t VariationType, v json.RawMessage) (json.RawMessage, error) {
	if len(v) > 0 && (v[0] == '{' || v[0] == '[') {
		return v, nil // the newer dialect's JSON value, never encoded
	}
	s, ok := DecodeString(v)
	if !ok {
		return nil, fmt.Errorf("value is not a base64 string")
	}
	text, err := unb64(s)
	if err != nil {
		return nil, err
	}
	switch t {
	case TypeString, TypeJSON:
		// A JSON value travels as a string holding JSON in either format.
		return json.Marshal(text)
	default:
		// The JSON text of a number or boolean.
		return json.RawMessage(text), nil
	}
}

func deobfuscateCondition(c Condition, table, ops map[string]string) (Condition, error) {
	op, ok := ops[c.Operator]
	if !ok {
		return c, fmt.Errorf("operator hash %s is no known operator", c.Operator)
	}
	attr, ok := table[c.Attribute]
	if !ok {
		return c, fmt.Errorf("attribute name hash %s: none of the given names produces it; add the attribute's name to the names", c.Attribute)
	}
	d := Condition{Attribute: attr, Operator: op}
	switch op {
	case OpOneOf, OpNotOneOf:
		list, ok := DecodeStrings(c.Value)
		if !ok {
			return c, fmt.Errorf("%s operand is not a list of hashes", op)
		}
		for i, h := range list {
			n, ok := table[h]
			if !ok {
				return c, fmt.Errorf("attribute %s: %s value hash %s: none of the given names produces it; add the value to the names", attr, op, h)
			}
			list[i] = n
		}
		d.Value, _ = json.Marshal(list) // a []string always marshals
	case OpIsNull:
		h, _ := DecodeString(c.Value)
		switch h {
		case md5Hex("true"):
			d.Value = json.RawMessage("true")
		case md5Hex("false"):
			d.Value = json.RawMessage("false")
		default:
			return c, fmt.Errorf("attribute %s: IS_NULL operand is neither true nor false", attr)
		}
	default:
		s, ok := DecodeString(c.Value)
		if !ok {
			return c, fmt.Errorf("attribute %s: %s operand is not a base64 string", attr, op)
		}
		text, err := unb64(s)
		if err != nil {
			return c, fmt.Errorf("attribute %s: %v", attr, err)
		}
		d.Value, _ = json.Marshal(text)
		if op == OpGT || op == OpGTE || op == OpLT || op == OpLTE {
			// A number was encoded as its text; a version string stays
			// a string.
			if _, ok := ParseNumberString(text); ok {
				if _, err := strconv.ParseFloat(text, 64); err == nil {
					d.Value = json.RawMessage(text)
				}
			}
		}
	}
	return d, nil
}

func unb64(s string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", fmt.Errorf("%.40q is not base64", s)
	}
	return string(b), nil
}

func unb64Opt(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	return unb64(s)
}
