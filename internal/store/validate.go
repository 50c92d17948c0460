package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/allot-dev/allot/internal/ufc"
)

var keyPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$`)

func checkKey(field, key string) error {
	if !keyPattern.MatchString(key) {
		return Invalid(field, "must be 1 to 128 letters, digits, '_', '.' or '-', starting with a letter or digit")
	}
	return nil
}

// ValidateEnvironmentName checks an environment name.
func ValidateEnvironmentName(name string) error { return checkKey("name", name) }

// ValidateFlag checks a flag definition and normalizes its variation values
// (compact JSON; integers without a decimal point).
func ValidateFlag(f *Flag) error {
	if err := checkKey("key", f.Key); err != nil {
		return err
	}
	if len(f.Description) > 10000 {
		return Invalid("description", "is longer than 10000 bytes")
	}
	if !f.VariationType.Valid() {
		return Invalid("variationType", "must be one of STRING, INTEGER, NUMERIC, BOOLEAN, JSON")
	}
	if len(f.Variations) == 0 {
		return Invalid("variations", "must name at least one variation")
	}
	seen := make(map[string]bool, len(f.Variations))
	for i := range f.Variations {
		v := &f.Variations[i]
		field := fmt.Sprintf("variations[%d]", i)
		if err := checkKey(field+".key", v.Key); err != nil {
			return err
		}
		if seen[v.Key] {
			return Invalid(field+".key", "duplicate variation %q", v.Key)
		}
		seen[v.Key] = true
		norm, err := normalizeValue(f.VariationType, v.Value)
		if err != nil {
			return Invalid(field+".value", "%s", err)
		}
		v.Value = norm
	}
	return nil
}

func normalizeValue(t ufc.VariationType, raw json.RawMessage) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, fmt.Errorf("is required")
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("is not valid JSON")
	}
	switch t {
	case ufc.TypeString:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("must be a string for a STRING flag")
		}
		return json.Marshal(s)
	case ufc.TypeBoolean:
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("must be true or false for a BOOLEAN flag")
		}
		return json.Marshal(b)
	case ufc.TypeInteger:
		n, ok := v.(json.Number)
		if !ok {
			return nil, fmt.Errorf("must be an integer for an INTEGER flag")
		}
		i, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil {
			f, ferr := n.Float64()
			if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
				return nil, fmt.Errorf("must be an integer for an INTEGER flag")
			}
			i = int64(f)
		}
		return strconv.AppendInt(nil, i, 10), nil
	case ufc.TypeNumeric:
		n, ok := v.(json.Number)
		if !ok {
			return nil, fmt.Errorf("must be a number for a NUMERIC flag")
		}
		f, err := n.Float64()
		if err != nil || math.IsInf(f, 0) {
			return nil, fmt.Errorf("must be a finite number")
		}
		return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
	case ufc.TypeJSON:
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return nil, fmt.Errorf("is not valid JSON")
		}
		return buf.Bytes(), nil
	}
	return nil, fmt.Errorf("unknown variation type")
}

// ValidateSettings checks a flag's settings in an environment against the
// flag's definition, and normalizes condition values to the forms every
// SDK reads alike (spec 1.5.1, "Server rules").
func ValidateSettings(s *FlagSettings, f *Flag) error {
	vars := make(map[string]bool, len(f.Variations))
	for _, v := range f.Variations {
		vars[v.Key] = true
	}
	if len(s.Allocations) > 100 {
		return Invalid("allocations", "has more than 100 entries")
	}
	seen := make(map[string]bool, len(s.Allocations))
	for i := range s.Allocations {
		a := &s.Allocations[i]
		field := fmt.Sprintf("allocations[%d]", i)
		if err := checkKey(field+".key", a.Key); err != nil {
			return err
		}
		if seen[a.Key] {
			return Invalid(field+".key", "duplicate allocation %q", a.Key)
		}
		seen[a.Key] = true
		if err := validateAllocation(field, a, vars); err != nil {
			return err
		}
	}
	return nil
}

func validateAllocation(field string, a *Allocation, vars map[string]bool) error {
	checkVariation := func(name, v string) error {
		if v == "" {
			return Invalid(field+"."+name, "is required")
		}
		if !vars[v] {
			return Invalid(field+"."+name, "names no variation of the flag: %q", v)
		}
		return nil
	}
	switch a.Type {
	case Experiment:
		switch a.Status {
		case "":
			a.Status = Draft
		case Draft, Running, Stopped:
		default:
			return Invalid(field+".status", "must be draft, running or stopped")
		}
		if a.Traffic < 0 || a.Traffic > Whole {
			return Invalid(field+".traffic", "must be a percentage from 0 to 100 with at most two decimals")
		}
		if len(a.Weights) == 0 {
			return Invalid(field+".weights", "must give at least one variation a weight")
		}
		sum := 0
		seen := map[string]bool{}
		for j, w := range a.Weights {
			wf := fmt.Sprintf("%s.weights[%d]", field, j)
			if !vars[w.Variation] {
				return Invalid(wf+".variation", "names no variation of the flag: %q", w.Variation)
			}
			if seen[w.Variation] {
				return Invalid(wf+".variation", "duplicate variation %q", w.Variation)
			}
			seen[w.Variation] = true
			if w.Weight < 0 || w.Weight > Whole {
				return Invalid(wf+".weight", "must be a percentage from 0 to 100 with at most two decimals")
			}
			sum += int(w.Weight)
		}
		if sum != Whole {
			return Invalid(field+".weights", "must sum to 100, not %s", strconv.FormatFloat(float64(sum)/100, 'f', -1, 64))
		}
		if a.Percent != 0 || a.Variation != "" {
			return Invalid(field, "an experiment takes traffic and weights, not percent or variation")
		}
	case Rollout:
		if a.Percent < 0 || a.Percent > Whole {
			return Invalid(field+".percent", "must be a percentage from 0 to 100 with at most two decimals")
		}
		if err := checkVariation("variation", a.Variation); err != nil {
			return err
		}
		if a.Status != "" || a.Traffic != 0 || len(a.Weights) != 0 {
			return Invalid(field, "a rollout takes percent and variation, not status, traffic or weights")
		}
	case Targeted:
		if err := checkVariation("variation", a.Variation); err != nil {
			return err
		}
		if a.Status != "" || a.Traffic != 0 || len(a.Weights) != 0 || a.Percent != 0 {
			return Invalid(field, "a targeted allocation takes rules and variation only")
		}
	default:
		return Invalid(field+".type", "must be experiment, rollout or targeted")
	}
	if a.StartAt != nil && a.EndAt != nil && a.EndAt.Before(*a.StartAt) {
		return Invalid(field+".endAt", "is before startAt")
	}
	if a.Type == Experiment && a.DoLog != nil && !*a.DoLog {
		return Invalid(field+".doLog", "experiments always log assignments")
	}
	if len(a.Rules) > 100 {
		return Invalid(field+".rules", "has more than 100 entries")
	}
	for j := range a.Rules {
		rf := fmt.Sprintf("%s.rules[%d]", field, j)
		for k := range a.Rules[j].Conditions {
			if err := normalizeCondition(fmt.Sprintf("%s.conditions[%d]", rf, k), &a.Rules[j].Conditions[k]); err != nil {
				return err
			}
		}
	}
	return nil
}

var strictSemver = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`)

func normalizeCondition(field string, c *Condition) error {
	if c.Attribute == "" {
		return Invalid(field+".attribute", "is required")
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(c.Value))
	dec.UseNumber()
	if len(bytes.TrimSpace(c.Value)) == 0 || dec.Decode(&v) != nil {
		return Invalid(field+".value", "is required and must be JSON")
	}
	vf := field + ".value"
	switch c.Operator {
	case ufc.OpMatches, ufc.OpNotMatches:
		s, ok := v.(string)
		if !ok {
			return Invalid(vf, "must be a string (a regular expression)")
		}
		if _, err := regexp.Compile(s); err != nil {
			return Invalid(vf, "is not a valid RE2 regular expression: %v", err)
		}
		c.Value, _ = json.Marshal(s)
	case ufc.OpOneOf, ufc.OpNotOneOf:
		list, ok := v.([]any)
		if !ok || len(list) == 0 {
			return Invalid(vf, "must be a non-empty array of strings")
		}
		out := make([]string, len(list))
		for i, e := range list {
			s, ok := canonicalString(e)
			if !ok {
				return Invalid(fmt.Sprintf("%s[%d]", vf, i), "must be a string, an integer or a boolean")
			}
			out[i] = s
		}
		c.Value, _ = json.Marshal(out)
	case ufc.OpIsNull:
		b, ok := v.(bool)
		if !ok {
			return Invalid(vf, "must be true or false")
		}
		c.Value, _ = json.Marshal(b)
	case ufc.OpGT, ufc.OpGTE, ufc.OpLT, ufc.OpLTE:
		switch x := v.(type) {
		case json.Number:
			f, err := x.Float64()
			if err != nil {
				return Invalid(vf, "is not a finite number")
			}
			c.Value = strconv.AppendFloat(nil, f, 'g', -1, 64)
		case string:
			if strictSemver.MatchString(x) {
				c.Value, _ = json.Marshal(x)
			} else if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
				c.Value = strconv.AppendFloat(nil, f, 'g', -1, 64)
			} else {
				return Invalid(vf, "must be a number or a MAJOR.MINOR.PATCH version")
			}
		default:
			return Invalid(vf, "must be a number or a MAJOR.MINOR.PATCH version")
		}
	default:
		return Invalid(field+".operator", "must be one of MATCHES, NOT_MATCHES, ONE_OF, NOT_ONE_OF, IS_NULL, GT, GTE, LT, LTE")
	}
	return nil
}

// canonicalString is how every SDK prints a ONE_OF operand: booleans as
// "true"/"false", integers without a decimal point.
func canonicalString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return strconv.FormatInt(i, 10), true
		}
		f, err := x.Float64()
		if err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return strconv.FormatInt(int64(f), 10), true
		}
	}
	return "", false
}
