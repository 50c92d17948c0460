package allot

import (
	"encoding/json"
	"time"

	"github.com/allot-dev/allot/internal/eval"
	"github.com/allot-dev/allot/internal/ufc"
)

// Attributes describe a subject for targeting rules: strings, numbers
// (any Go integer or float type), booleans, or nil. The attribute "id"
// defaults to the subject key.
type Attributes map[string]any

// Code says how an assignment was decided. The values are the evaluation
// codes of the UFC fixtures and of Eppo's SDKs.
type Code string

// Evaluation codes.
const (
	// CodeMatch: the subject was assigned a variation.
	CodeMatch Code = "MATCH"
	// CodeFlagUnrecognizedOrDisabled: no such flag in the configuration
	// (or no configuration yet), or the flag is disabled.
	CodeFlagUnrecognizedOrDisabled Code = "FLAG_UNRECOGNIZED_OR_DISABLED"
	// CodeTypeMismatch: the flag has another type than the getter's.
	CodeTypeMismatch Code = "TYPE_MISMATCH"
	// CodeAssignmentError: the flag is malformed, the subject key is
	// empty, or the subject landed on an unusable variation.
	CodeAssignmentError Code = "ASSIGNMENT_ERROR"
	// CodeDefaultAllocationNull: no allocation applies to the subject
	// (outside the traffic, failing rules, or out of the date window).
	CodeDefaultAllocationNull Code = "DEFAULT_ALLOCATION_NULL"
)

var codes = [...]Code{
	eval.Match:                      CodeMatch,
	eval.FlagUnrecognizedOrDisabled: CodeFlagUnrecognizedOrDisabled,
	eval.TypeMismatch:               CodeTypeMismatch,
	eval.AssignmentError:            CodeAssignmentError,
	eval.DefaultAllocationNull:      CodeDefaultAllocationNull,
}

// Details explains an assignment.
type Details struct {
	// Code says how the value was decided; anything but CodeMatch means
	// the getter returned the caller's default.
	Code Code
	// Reason is a sentence for humans.
	Reason string
	// Variation and Allocation are the keys of the variation assigned and
	// of the allocation that assigned it ("" when none).
	Variation  string
	Allocation string
	// Environment and ConfigCreatedAt identify the configuration used.
	Environment     string
	ConfigCreatedAt time.Time
	// Targeted and Randomized say what decided a match: a targeting rule
	// passed, and the subject's hash picked the variation (an experiment or
	// a partial rollout); neither is a value for everyone. FlagFound tells
	// a disabled flag from an unknown one. OpenFeature's reasons
	// (TARGETING_MATCH, SPLIT, STATIC, DISABLED) come from these.
	Targeted, Randomized, FlagFound bool
}

// evaluate is the one path from a getter to the engine: load the current
// snapshot, evaluate, and record an assignment event when due. It never
// blocks and never panics.
func (c *Client) evaluate(flagKey, subjectKey string, attrs Attributes, want ufc.VariationType) (r eval.Result, s *snapshot) {
	if c == nil {
		return eval.Result{Code: eval.FlagUnrecognizedOrDisabled}, nil
	}
	defer func() {
		if recover() != nil {
			r = eval.Result{Code: eval.AssignmentError}
		}
	}()
	s = c.snap.Load()
	if s == nil {
		return eval.Result{Code: eval.FlagUnrecognizedOrDisabled}, nil
	}
	var f *eval.Flag
	if flagKey != "" {
		f = s.Flag(flagKey)
	}
	// Reading the clock costs a fifth of an evaluation, and only flags with
	// a startAt or endAt need it; the others ignore the time.
	var now time.Time
	if f != nil && f.Timed {
		now = c.now()
	}
	r = f.Evaluate(subjectKey, attrs, want, now)
	if r.Code == eval.Match && r.Allocation.DoLog {
		if p := c.events; p != nil {
			p.record(flagKey, subjectKey, attrs, r.Allocation, r.Split, now, c.now)
		}
	}
	return r, s
}

func details(r *eval.Result, s *snapshot, flagKey string) Details {
	d := Details{Code: CodeFlagUnrecognizedOrDisabled}
	if int(r.Code) < len(codes) && codes[r.Code] != "" {
		d.Code = codes[r.Code]
	}
	if d.Code == CodeMatch || d.Code == CodeAssignmentError {
		d.Variation = r.VariationKey()
		d.Allocation = r.AllocationKey()
		d.Targeted = r.Rule != nil
		d.Randomized = r.Randomized()
	}
	d.FlagFound = r.Flag != nil
	if s == nil {
		d.Reason = "No configuration yet; serving the default."
		return d
	}
	d.Reason = r.Description(flagKey)
	d.Environment = s.Environment
	d.ConfigCreatedAt = s.CreatedAt
	return d
}

// GetAssignment returns the key of the variation subjectKey is assigned in
// the experiment (the flag) experimentKey, whatever the flag's type. ok is
// false when the experiment is unknown or not running, or the subject is
// outside its traffic: log nothing and show the default experience then.
func (c *Client) GetAssignment(experimentKey, subjectKey string, attrs Attributes) (variation string, ok bool) {
	r, _ := c.evaluate(experimentKey, subjectKey, attrs, "")
	if r.Code != eval.Match {
		return "", false
	}
	return r.Split.VariationKey, true
}

// GetStringAssignment returns the value of a STRING flag for subjectKey,
// or defaultValue when the flag does not assign one.
func (c *Client) GetStringAssignment(flagKey, subjectKey string, attrs Attributes, defaultValue string) string {
	r, _ := c.evaluate(flagKey, subjectKey, attrs, ufc.TypeString)
	if r.Code != eval.Match {
		return defaultValue
	}
	return r.Variation.String()
}

// GetStringAssignmentDetails is GetStringAssignment with an explanation.
func (c *Client) GetStringAssignmentDetails(flagKey, subjectKey string, attrs Attributes, defaultValue string) (string, Details) {
	r, s := c.evaluate(flagKey, subjectKey, attrs, ufc.TypeString)
	d := details(&r, s, flagKey)
	if r.Code != eval.Match {
		return defaultValue, d
	}
	return r.Variation.String(), d
}

// GetBoolAssignment returns the value of a BOOLEAN flag for subjectKey, or
// defaultValue when the flag does not assign one.
func (c *Client) GetBoolAssignment(flagKey, subjectKey string, attrs Attributes, defaultValue bool) bool {
	r, _ := c.evaluate(flagKey, subjectKey, attrs, ufc.TypeBoolean)
	if r.Code != eval.Match {
		return defaultValue
	}
	return r.Variation.Bool()
}

// GetBoolAssignmentDetails is GetBoolAssignment with an explanation.
func (c *Client) GetBoolAssignmentDetails(flagKey, subjectKey string, attrs Attributes, defaultValue bool) (bool, Details) {
	r, s := c.evaluate(flagKey, subjectKey, attrs, ufc.TypeBoolean)
	d := details(&r, s, flagKey)
	if r.Code != eval.Match {
		return defaultValue, d
	}
	return r.Variation.Bool(), d
}

// GetIntegerAssignment returns the value of an INTEGER flag for
// subjectKey, or defaultValue when the flag does not assign one.
func (c *Client) GetIntegerAssignment(flagKey, subjectKey string, attrs Attributes, defaultValue int64) int64 {
	r, _ := c.evaluate(flagKey, subjectKey, attrs, ufc.TypeInteger)
	if r.Code != eval.Match {
		return defaultValue
	}
	return r.Variation.Int()
}

// GetIntegerAssignmentDetails is GetIntegerAssignment with an explanation.
func (c *Client) GetIntegerAssignmentDetails(flagKey, subjectKey string, attrs Attributes, defaultValue int64) (int64, Details) {
	r, s := c.evaluate(flagKey, subjectKey, attrs, ufc.TypeInteger)
	d := details(&r, s, flagKey)
	if r.Code != eval.Match {
		return defaultValue, d
	}
	return r.Variation.Int(), d
}

// GetNumericAssignment returns the value of a NUMERIC flag for
// subjectKey, or defaultValue when the flag does not assign one.
func (c *Client) GetNumericAssignment(flagKey, subjectKey string, attrs Attributes, defaultValue float64) float64 {
	r, _ := c.evaluate(flagKey, subjectKey, attrs, ufc.TypeNumeric)
	if r.Code != eval.Match {
		return defaultValue
	}
	return r.Variation.Float()
}

// GetNumericAssignmentDetails is GetNumericAssignment with an explanation.
func (c *Client) GetNumericAssignmentDetails(flagKey, subjectKey string, attrs Attributes, defaultValue float64) (float64, Details) {
	r, s := c.evaluate(flagKey, subjectKey, attrs, ufc.TypeNumeric)
	d := details(&r, s, flagKey)
	if r.Code != eval.Match {
		return defaultValue, d
	}
	return r.Variation.Float(), d
}

// GetJSONAssignment returns the value of a JSON flag for subjectKey,
// decoded as encoding/json decodes into an any (maps, slices, float64...),
// or defaultValue when the flag does not assign one. Each call decodes
// afresh, so the caller may modify the result.
func (c *Client) GetJSONAssignment(flagKey, subjectKey string, attrs Attributes, defaultValue any) any {
	v, _ := c.GetJSONAssignmentDetails(flagKey, subjectKey, attrs, defaultValue)
	return v
}

// GetJSONAssignmentDetails is GetJSONAssignment with an explanation.
func (c *Client) GetJSONAssignmentDetails(flagKey, subjectKey string, attrs Attributes, defaultValue any) (any, Details) {
	r, s := c.evaluate(flagKey, subjectKey, attrs, ufc.TypeJSON)
	d := details(&r, s, flagKey)
	if r.Code != eval.Match {
		return defaultValue, d
	}
	var v any
	if err := json.Unmarshal([]byte(r.Variation.JSON()), &v); err != nil {
		d.Code, d.Reason = CodeAssignmentError, "The variation's JSON value cannot be decoded: "+err.Error()
		return defaultValue, d
	}
	return v, d
}

// GetJSONBytesAssignment returns the JSON text of a JSON flag's value for
// subjectKey, for decoding into the caller's own type, or defaultValue when
// the flag does not assign one. The slice is the caller's.
func (c *Client) GetJSONBytesAssignment(flagKey, subjectKey string, attrs Attributes, defaultValue []byte) []byte {
	v, _ := c.GetJSONBytesAssignmentDetails(flagKey, subjectKey, attrs, defaultValue)
	return v
}

// GetJSONBytesAssignmentDetails is GetJSONBytesAssignment with an
// explanation.
func (c *Client) GetJSONBytesAssignmentDetails(flagKey, subjectKey string, attrs Attributes, defaultValue []byte) ([]byte, Details) {
	r, s := c.evaluate(flagKey, subjectKey, attrs, ufc.TypeJSON)
	d := details(&r, s, flagKey)
	if r.Code != eval.Match {
		return defaultValue, d
	}
	return []byte(r.Variation.JSON()), d
}
