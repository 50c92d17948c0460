package core

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"unicode/utf8"

	"github.com/allot-dev/allot/internal/ufc"
)

// Management limits: every input has one, and an error over a limit names
// it. docs/limits.md lists them.
const (
	MaxKeyLength        = 128      // environment, flag, variation and allocation keys
	MaxNameLength       = 200      // bytes in an SDK key's or admin token's name
	MaxDescription      = 10000    // bytes in a flag's description
	MaxVariations       = 1000     // variations per flag
	MaxValueBytes       = 64 << 10 // bytes in one variation value or condition value
	MaxAllocations      = 100      // allocations per flag and environment
	MaxRules            = 100      // rules per allocation
	MaxConditions       = 100      // conditions per rule
	MaxListValues       = 10000    // values in one ONE_OF / NOT_ONE_OF list
	MaxAttributeLength  = 256      // bytes in a condition's attribute name
	MaxAttributes       = 1000     // attributes of a subject in a preview
	MaxSubjectLength    = 1024     // bytes in a subject key in a preview
	MaxEnvironments     = 100      // environments
	MaxTags             = 20       // tags per flag (each a key)
	MaxAuditLimit       = 1000     // entries in one audit page
	MaxAuditPageBytes   = 4 << 20  // bytes of before/after in one audit page
	MaxSettingsJSON     = 3 << 20  // bytes of one flag's settings in one environment, as stored
	maxFlagJSON         = 3 << 20  // bytes of one flag definition, as stored
	defaultAuditLimit   = 100
	minSecretTokenBytes = 16
)

// CheckPreview checks the input of a preview (an evaluation on the
// published configuration, which changes nothing): a subject key and at
// most MaxAttributes attributes with names of at most MaxAttributeLength
// bytes.
func CheckPreview(subject string, attrs map[string]any) error {
	if subject == "" {
		return Invalid("subject", "is required")
	}
	if err := checkText("subject", subject, MaxSubjectLength, false); err != nil {
		return err
	}
	if len(attrs) > MaxAttributes {
		return Invalid("attributes", "has %d entries; the limit is %d", len(attrs), MaxAttributes)
	}
	for name := range attrs {
		if err := checkText("attributes", name, MaxAttributeLength, false); err != nil {
			return Invalid("attributes", "name %.40q: %s", name, err.(*Error).Message)
		}
	}
	return nil
}

// These rules are the ones the engine cannot know: key syntax, names,
// limits, and the shape of Allot's allocation model (an experiment's weights
// sum to 100 and name variations of the flag; drafts are not published, so
// the engine never sees them). Whether the flag, as it will be published,
// is valid is decided by the engine in check.

var keyPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$`)

func checkKey(field, key string) error {
	if !keyPattern.MatchString(key) {
		if !utf8.ValidString(key) {
			return Invalid(field, "is not valid UTF-8")
		}
		return Invalid(field, "must be 1 to %d letters, digits, '_', '.' or '-', starting with a letter or digit", MaxKeyLength)
	}
	return nil
}

// checkText checks free text: valid UTF-8, at most max bytes.
func checkText(field, s string, max int, required bool) error {
	if !utf8.ValidString(s) {
		return Invalid(field, "is not valid UTF-8")
	}
	if len(s) > max {
		return Invalid(field, "is %d bytes; the limit is %d", len(s), max)
	}
	if required && len(bytes.TrimSpace([]byte(s))) == 0 {
		return Invalid(field, "is required")
	}
	return nil
}

func tooMany(field string, n, max int) error {
	return Invalid(field, "has %d entries; the limit is %d", n, max)
}

// ValidateEnvironmentName checks an environment name.
func ValidateEnvironmentName(name string) error { return checkKey("name", name) }

// checkFlag checks a flag definition and normalizes its variation values
// (compact JSON; integers without a decimal point). Whether the values fit
// the type is the engine's call (check).
func checkFlag(f *Flag) error { return checkFlagWith(f, false) }

// checkFlagWith is checkFlag; noVariations lets a flag have none, as an
// imported flag may (it then assigns no one, as it did where it came from).
func checkFlagWith(f *Flag, noVariations bool) error {
	if err := checkKey("key", f.Key); err != nil {
		return err
	}
	if err := checkText("description", f.Description, MaxDescription, false); err != nil {
		return err
	}
	if len(f.Tags) > MaxTags {
		return tooMany("tags", len(f.Tags), MaxTags)
	}
	seen := make(map[string]bool, len(f.Tags))
	tags := f.Tags[:0:0]
	for i, t := range f.Tags {
		if err := checkKey(fmt.Sprintf("tags[%d]", i), t); err != nil {
			return err
		}
		if !seen[t] {
			seen[t] = true
			tags = append(tags, t)
		}
	}
	f.Tags = tags
	if len(f.Tags) == 0 {
		f.Tags = nil
	}
	if err := checkText("owner", f.Owner, MaxNameLength, false); err != nil {
		return err
	}
	if !f.VariationType.Valid() {
		return Invalid("variationType", "must be one of STRING, INTEGER, NUMERIC, BOOLEAN, JSON")
	}
	if len(f.Variations) == 0 && !noVariations {
		return Invalid("variations", "must name at least one variation")
	}
	if len(f.Variations) > MaxVariations {
		return tooMany("variations", len(f.Variations), MaxVariations)
	}
	for i := range f.Variations {
		v := &f.Variations[i]
		field := fmt.Sprintf("variations[%d]", i)
		if err := checkKey(field+".key", v.Key); err != nil {
			return err
		}
		norm, err := normalizeValue(f.VariationType, v.Value)
		if err != nil {
			return Invalid(field+".value", "%s", err)
		}
		v.Value = norm
	}
	return nil
}

// normalizeValue returns the canonical JSON of a variation value. Only what
// cannot be stored is an error here (no value, not JSON, too large); a
// value of the wrong type is returned as is, for the engine to refuse.
func normalizeValue(t ufc.VariationType, raw json.RawMessage) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, fmt.Errorf("is required")
	}
	if len(raw) > MaxValueBytes {
		return nil, fmt.Errorf("is %d bytes; the limit is %d", len(raw), MaxValueBytes)
	}
	if !utf8.Valid(raw) {
		return nil, fmt.Errorf("is not valid UTF-8")
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil || dec.More() {
		return nil, fmt.Errorf("is not valid JSON")
	}
	switch t {
	case ufc.TypeString:
		if s, ok := v.(string); ok {
			return json.Marshal(s)
		}
	case ufc.TypeBoolean:
		if b, ok := v.(bool); ok {
			return json.Marshal(b)
		}
	case ufc.TypeInteger:
		if n, ok := v.(json.Number); ok {
			if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
				return strconv.AppendInt(nil, i, 10), nil
			}
			// 1.0 and 1e3 are integers written as numbers.
			if f, err := n.Float64(); err == nil && f == math.Trunc(f) && math.Abs(f) <= 1<<53 {
				return strconv.AppendInt(nil, int64(f), 10), nil
			}
		}
	case ufc.TypeNumeric:
		if n, ok := v.(json.Number); ok {
			if f, err := n.Float64(); err == nil && !math.IsInf(f, 0) {
				return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
			}
		}
	case ufc.TypeJSON:
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err == nil {
			return buf.Bytes(), nil
		}
	}
	return raw, nil
}

// checkSettings checks a flag's settings in an environment against the
// flag's definition, and normalizes condition values to the forms every
// SDK reads alike (spec 1.5.1, "Server rules").
func checkSettings(s *FlagSettings, f *Flag) error {
	vars := make(map[string]bool, len(f.Variations))
	for _, v := range f.Variations {
		vars[v.Key] = true
	}
	if len(s.Allocations) > MaxAllocations {
		return tooMany("allocations", len(s.Allocations), MaxAllocations)
	}
	seen := make(map[string]bool, len(s.Allocations))
	for i := range s.Allocations {
		a := &s.Allocations[i]
		field := fmt.Sprintf("allocations[%d]", i)
		keyErr := checkKey(field+".key", a.Key)
		if a.Type == Imported {
			keyErr = checkImportedKey(field+".key", a.Key)
		}
		if keyErr != nil {
			return keyErr
		}
		if seen[a.Key] {
			return Invalid(field+".key", "duplicate allocation %q", a.Key)
		}
		seen[a.Key] = true
		if err := checkAllocation(field, a, vars); err != nil {
			return err
		}
	}
	return nil
}

func checkAllocation(field string, a *Allocation, vars map[string]bool) error {
	checkVariation := func(name, v string) error {
		if v == "" {
			return Invalid(field+"."+name, "is required")
		}
		if !vars[v] {
			return Invalid(field+"."+name, "names no variation of the flag: %q", v)
		}
		return nil
	}
	badPercent := "must be a percentage from 0 to 100 with at most two decimals"
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
			return Invalid(field+".traffic", "%s", badPercent)
		}
		if len(a.Weights) == 0 {
			return Invalid(field+".weights", "must give at least one variation a weight")
		}
		if len(a.Weights) > len(vars) {
			return Invalid(field+".weights", "has %d entries for %d variations", len(a.Weights), len(vars))
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
				return Invalid(wf+".weight", "%s", badPercent)
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
			return Invalid(field+".percent", "%s", badPercent)
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
	case Imported:
		if err := checkImported(field, a); err != nil {
			return err
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
	if len(a.Rules) > MaxRules {
		return tooMany(field+".rules", len(a.Rules), MaxRules)
	}
	for j := range a.Rules {
		rf := fmt.Sprintf("%s.rules[%d]", field, j)
		if len(a.Rules[j].Conditions) > MaxConditions {
			return tooMany(rf+".conditions", len(a.Rules[j].Conditions), MaxConditions)
		}
		for k := range a.Rules[j].Conditions {
			if err := normalizeCondition(fmt.Sprintf("%s.conditions[%d]", rf, k), &a.Rules[j].Conditions[k]); err != nil {
				return err
			}
		}
	}
	return nil
}

// normalizeCondition checks what the engine cannot (an attribute is named,
// the value is JSON, limits) and writes values in the one form every SDK
// reads alike: ONE_OF lists as strings, numeric strings of GT... as numbers.
// Whether the operator and value make a valid condition is the engine's
// call (check).
func normalizeCondition(field string, c *Condition) error {
	if c.Attribute == "" {
		return Invalid(field+".attribute", "is required")
	}
	if err := checkText(field+".attribute", c.Attribute, MaxAttributeLength, false); err != nil {
		return err
	}
	vf := field + ".value"
	raw := bytes.TrimSpace(c.Value)
	if len(raw) > MaxValueBytes && c.Operator != ufc.OpOneOf && c.Operator != ufc.OpNotOneOf {
		return Invalid(vf, "is %d bytes; the limit is %d", len(raw), MaxValueBytes)
	}
	if !utf8.Valid(raw) {
		return Invalid(vf, "is not valid UTF-8")
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if len(raw) == 0 || dec.Decode(&v) != nil || dec.More() {
		return Invalid(vf, "is required and must be JSON")
	}
	c.Value = raw
	switch c.Operator {
	case ufc.OpOneOf, ufc.OpNotOneOf:
		list, ok := v.([]any)
		if !ok {
			return nil // the engine names the problem
		}
		if len(list) > MaxListValues {
			return Invalid(vf, "has %d values; the limit is %d", len(list), MaxListValues)
		}
		if len(list) == 0 {
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
	case ufc.OpGT, ufc.OpGTE, ufc.OpLT, ufc.OpLTE:
		switch x := v.(type) {
		case json.Number:
			if f, err := x.Float64(); err == nil {
				c.Value = strconv.AppendFloat(nil, f, 'g', -1, 64)
			}
		case string:
			if f, ok := ufc.ParseNumberString(x); ok {
				c.Value = strconv.AppendFloat(nil, f, 'g', -1, 64)
			}
		}
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
