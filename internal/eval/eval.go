// Package eval compiles UFC documents into snapshots and evaluates flags on
// them: the one place in Allot where an assignment is computed. The SDK, the
// server's previews and the CLI all call Snapshot.Evaluate.
//
// Evaluation is pure: no I/O, no clock (the time is passed in), no locks, and
// no allocation on the paths that matter (string attributes, plain
// documents). It never panics on any snapshot that Compile produced.
package eval

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/allot-dev/allot/internal/ufc"
)

// Code is a flag evaluation code; the strings are those of the shared
// fixtures and of Eppo's SDKs.
type Code uint8

// Flag evaluation codes.
const (
	Match Code = iota + 1
	FlagUnrecognizedOrDisabled
	TypeMismatch
	AssignmentError
	DefaultAllocationNull
)

var codeNames = [...]string{"", "MATCH", "FLAG_UNRECOGNIZED_OR_DISABLED", "TYPE_MISMATCH", "ASSIGNMENT_ERROR", "DEFAULT_ALLOCATION_NULL"}

func (c Code) String() string {
	if int(c) < len(codeNames) && c != 0 {
		return codeNames[c]
	}
	return "Code(" + strconv.Itoa(int(c)) + ")"
}

// AllocationCode says what happened to one allocation in an evaluation.
type AllocationCode uint8

// Allocation evaluation codes.
const (
	AllocationMatch AllocationCode = iota + 1
	BeforeStartTime
	AfterEndTime
	FailingRule
	TrafficExposureMiss
	Unevaluated
)

var allocCodeNames = [...]string{"", "MATCH", "BEFORE_START_TIME", "AFTER_END_TIME", "FAILING_RULE", "TRAFFIC_EXPOSURE_MISS", "UNEVALUATED"}

func (c AllocationCode) String() string {
	if int(c) < len(allocCodeNames) && c != 0 {
		return allocCodeNames[c]
	}
	return "AllocationCode(" + strconv.Itoa(int(c)) + ")"
}

// AllocationOutcome is what happened to one allocation, in order.
type AllocationOutcome struct {
	Key      string
	Code     AllocationCode
	Position int // 1-based
}

// Result is the outcome of one evaluation. It points into the snapshot and
// costs nothing to return.
type Result struct {
	Flag       *Flag       // nil when the flag is unknown
	Allocation *Allocation // the matched allocation
	Rule       *Rule       // the rule that passed; nil when the allocation has none
	Split      *Split      // the matched split
	Variation  *Variation  // the assigned variation; set only when Code is Match
	Position   int32       // 1-based position of Allocation; 0 when none matched
	Code       Code
	subjectErr bool
	// Broken is a condition the evaluation read whose operand could not be
	// compiled (Condition.Err): it failed its rule, and Description says so.
	Broken *Condition
}

// Matched reports whether the evaluation assigned a variation.
func (r *Result) Matched() bool { return r.Code == Match }

// VariationKey returns the key of the variation the subject landed on ("" if
// none). With ASSIGNMENT_ERROR it names the unusable variation.
func (r *Result) VariationKey() string {
	if r.Split == nil {
		return ""
	}
	return r.Split.VariationKey
}

// AllocationKey returns the matched allocation's key, or "".
func (r *Result) AllocationKey() string {
	if r.Allocation == nil {
		return ""
	}
	return r.Allocation.Key
}

// DoLog reports whether this evaluation should produce an assignment event:
// only a match through an allocation that logs.
func (r *Result) DoLog() bool {
	return r.Code == Match && r.Allocation != nil && r.Allocation.DoLog
}

// Randomized reports whether the matched split was picked by hashing the
// subject (an experiment, a partial rollout) rather than covering everyone
// the allocation reaches. OpenFeature calls the first reason SPLIT.
func (r *Result) Randomized() bool {
	if r.Split == nil {
		return false
	}
	for i := range r.Split.Shards {
		if !r.Split.Shards[i].All {
			return true
		}
	}
	return false
}

// ExtraLogging returns the matched split's extra logging fields, or nil.
func (r *Result) ExtraLogging() map[string]string {
	if r.Code != Match || r.Split == nil {
		return nil
	}
	return r.Split.ExtraLogging
}

// Description explains the result in a sentence.
func (r *Result) Description(flagKey string) string {
	switch r.Code {
	case Match:
		if r.Broken != nil {
			return "Subject belongs to allocation " + strconv.Quote(r.AllocationKey()) + ". " + r.brokenNote()
		}
		if r.Rule != nil {
			return "Supplied attributes match rules defined in allocation " + strconv.Quote(r.AllocationKey()) + "."
		}
		return "Subject belongs to the range of traffic assigned to " + strconv.Quote(r.VariationKey()) + " defined in allocation " + strconv.Quote(r.AllocationKey()) + "."
	case FlagUnrecognizedOrDisabled:
		if r.Flag != nil {
			return "Flag " + strconv.Quote(flagKey) + " is disabled."
		}
		return "Unrecognized flag " + strconv.Quote(flagKey) + "."
	case TypeMismatch:
		return "Flag " + strconv.Quote(flagKey) + " has type " + string(r.Flag.Type) + "."
	case AssignmentError:
		switch {
		case r.subjectErr:
			return "The subject key is empty, and the flag needs one to pick a shard."
		case r.Flag != nil && r.Flag.Err != nil:
			return r.Flag.Err.Error()
		case r.Variation != nil && r.Variation.Err != nil:
			return r.Variation.Err.Error()
		case r.Split != nil:
			return "Allocation " + strconv.Quote(r.AllocationKey()) + " names variation " + strconv.Quote(r.VariationKey()) + ", which the flag does not have."
		}
		return "Assignment error."
	case DefaultAllocationNull:
		if r.Broken != nil {
			return "No allocation matched; serving the default. " + r.brokenNote()
		}
		return "No allocation matched; serving the default."
	}
	return ""
}

func (r *Result) brokenNote() string {
	return "A condition on " + strconv.Quote(r.Broken.Attribute) + " never passes: " + r.Broken.Err.Error() + "."
}

// Evaluate answers which variation subjectKey gets for flagKey. want is the
// type the caller expects ("" accepts any); now decides which allocations
// are active. attrs may be nil. It never allocates for plain documents and
// string, boolean or numeric attributes.
func (s *Snapshot) Evaluate(flagKey, subjectKey string, attrs map[string]any, want ufc.VariationType, now time.Time) Result {
	var f *Flag
	if flagKey != "" {
		f = s.Flag(flagKey)
	}
	return f.evaluate(subjectKey, attrs, want, now, nil)
}

// Explain is Evaluate plus what happened to every allocation, in order: the
// allocation codes of the fixtures' evaluationDetails.
func (s *Snapshot) Explain(flagKey, subjectKey string, attrs map[string]any, want ufc.VariationType, now time.Time) (Result, []AllocationOutcome) {
	trace := []AllocationOutcome{}
	r := s.evaluate(flagKey, subjectKey, attrs, want, now, &trace)
	return r, trace
}

// Evaluate is Snapshot.Evaluate for a flag already looked up, so a caller
// can inspect it first (say, read the clock only when f.Timed). A nil f is
// an unknown flag.
func (f *Flag) Evaluate(subjectKey string, attrs map[string]any, want ufc.VariationType, now time.Time) Result {
	return f.evaluate(subjectKey, attrs, want, now, nil)
}

func (s *Snapshot) evaluate(flagKey, subject string, attrs map[string]any, want ufc.VariationType, now time.Time, trace *[]AllocationOutcome) Result {
	var f *Flag
	if flagKey != "" {
		f = s.Flag(flagKey)
	}
	return f.evaluate(subject, attrs, want, now, trace)
}

func (f *Flag) evaluate(subject string, attrs map[string]any, want ufc.VariationType, now time.Time, trace *[]AllocationOutcome) Result {
	if f == nil {
		return Result{Code: FlagUnrecognizedOrDisabled}
	}
	// The type is checked before enabled, as Go's and the Node SDK do; the
	// caller gets the default either way.
	if want != "" && f.typed && f.Type != want {
		return Result{Code: TypeMismatch, Flag: f}
	}
	// A flag too broken to know its type or state reports its error; a
	// disabled flag reports being disabled even if it is also malformed.
	if !f.Enabled && f.typed {
		return Result{Code: FlagUnrecognizedOrDisabled, Flag: f}
	}
	if f.Err != nil {
		return Result{Code: AssignmentError, Flag: f}
	}
	if !f.Enabled {
		return Result{Code: FlagUnrecognizedOrDisabled, Flag: f}
	}
	// An empty subject key is fine until a shard must be hashed (newer
	// dialect: OpenFeature evaluates without a targeting key); the split
	// loop below answers ASSIGNMENT_ERROR then, never hashing "".
	ev := evaluation{flag: f, subject: subject, attrs: attrs}
	var nowMicros int64
	if f.Timed {
		nowMicros = now.UnixMicro()
	}
	for i := range f.Allocations {
		a := &f.Allocations[i]
		if act := a.Active(nowMicros); act != 0 {
			if trace != nil {
				code := BeforeStartTime
				if act > 0 {
					code = AfterEndTime
				}
				*trace = append(*trace, AllocationOutcome{a.Key, code, i + 1})
			}
			continue
		}
		var rule *Rule
		if len(a.Rules) > 0 {
			if rule = ev.matchRules(a.Rules); rule == nil {
				if trace != nil {
					*trace = append(*trace, AllocationOutcome{a.Key, FailingRule, i + 1})
				}
				continue
			}
		}
		for j := range a.Splits {
			sp := &a.Splits[j]
			if sp.keyed && len(subject) == 0 {
				return Result{Code: AssignmentError, Flag: f, subjectErr: true, Broken: ev.broken}
			}
			if !ev.matchShards(sp.Shards) {
				continue
			}
			if trace != nil {
				*trace = append(*trace, AllocationOutcome{a.Key, AllocationMatch, i + 1})
				for k := i + 1; k < len(f.Allocations); k++ {
					*trace = append(*trace, AllocationOutcome{f.Allocations[k].Key, Unevaluated, k + 1})
				}
			}
			r := Result{Code: Match, Flag: f, Allocation: a, Position: int32(i + 1), Rule: rule, Split: sp, Variation: sp.Variation, Broken: ev.broken}
			if sp.Variation == nil || sp.Variation.Err != nil {
				r.Code = AssignmentError
			}
			return r
		}
		if trace != nil {
			*trace = append(*trace, AllocationOutcome{a.Key, TrafficExposureMiss, i + 1})
		}
	}
	return Result{Code: DefaultAllocationNull, Flag: f, Broken: ev.broken}
}

// memoSlots is how many distinct salts per flag an evaluation remembers; an
// experiment uses two (traffic and split), shared by all of its splits. An
// experiment in a layer with a holdout allocation before it uses five (the
// split salt, the holdout's two, the layer's, the traffic's): with four, the
// fifth was hashed again for every split (issue 15). known has 8 bits.
const memoSlots = 8

type evaluation struct {
	flag    *Flag
	subject string
	attrs   map[string]any
	hashed  map[string]any // CLIENT documents: attrs keyed by MD5 of the name
	known   uint8          // bit i set: hashes[i] holds the hash of salt slot i
	hashes  [memoSlots]uint32
	// shards[i] is hashes[i] % totals[i]: nearly every shard of a salt has
	// the same total, so the division is done once per salt too.
	shards [memoSlots]uint32
	totals [memoSlots]uint32
	broken *Condition // the last condition read that could not be compiled
}

func (ev *evaluation) matchShards(shards []Shard) bool {
	for i := range shards {
		sh := &shards[i]
		if sh.All {
			continue
		}
		n := ev.shardOf(sh)
		in := false
		for _, r := range sh.Ranges {
			if n >= r.Start && n < r.End {
				in = true
				break
			}
		}
		if !in {
			return false
		}
	}
	return true
}

// shardOf returns the subject's shard for sh. The memo keeps the hash as
// well as the shard: shards with the same salt may have different totals
// (newer dialect), and then only the division is redone.
func (ev *evaluation) shardOf(sh *Shard) uint32 {
	if i := sh.Slot; i < memoSlots {
		bit := uint8(1) << i
		if ev.known&bit != 0 {
			if ev.totals[i] != sh.Total {
				ev.totals[i], ev.shards[i] = sh.Total, ev.hashes[i]%sh.Total
			}
			return ev.shards[i]
		}
		h := hashOf(sh.Prefix, ev.subject)
		ev.known |= bit
		ev.hashes[i], ev.totals[i], ev.shards[i] = h, sh.Total, h%sh.Total
		return ev.shards[i]
	}
	return hashOf(sh.Prefix, ev.subject) % sh.Total
}

// ShardOf returns the shard of prefix+subject (prefix is "salt-"): the first
// four bytes of its MD5 digest, big-endian, modulo total (spec section 2).
func ShardOf(prefix, subject string, total uint32) uint32 {
	return hashOf(prefix, subject) % total
}

// hashOf returns the first four bytes of MD5(prefix + subject), big-endian.
func hashOf(prefix, subject string) uint32 {
	countHash()
	n := len(prefix) + len(subject)
	if n > 64 {
		return hashOfLong(prefix, subject)
	}
	// A 64-byte buffer is all a one-block input needs (up to 55 bytes, as
	// with the server's 16-character salts); a larger one costs measurable
	// time just to zero on every call.
	var buf [64]byte
	copy(buf[copy(buf[:], prefix):], subject)
	sum := md5.Sum(buf[:n])
	return binary.BigEndian.Uint32(sum[:4])
}

func hashOfLong(prefix, subject string) uint32 {
	var buf [192]byte
	var b []byte
	if len(prefix)+len(subject) <= len(buf) {
		b = buf[:0]
	} else {
		b = make([]byte, 0, len(prefix)+len(subject))
	}
	b = append(append(b, prefix...), subject...)
	sum := md5.Sum(b)
	return binary.BigEndian.Uint32(sum[:4])
}

func (ev *evaluation) matchRules(rules []Rule) *Rule {
	for i := range rules {
		r := &rules[i]
		ok := true
		for j := range r.Conditions {
			if c := &r.Conditions[j]; !ev.matchCondition(c) {
				if c.Err != nil {
					ev.broken = c
				}
				ok = false
				break
			}
		}
		if ok {
			return r
		}
	}
	return nil
}

// attribute returns the targeting value of c's attribute. When the caller
// did not set "id", an "id" condition reads the subject key, reported through
// subject so that it is never boxed into an interface (which allocates).
func (ev *evaluation) attribute(c *Condition) (v any, subject, present bool) {
	m := ev.attrs
	if ev.flag.obfuscated {
		if ev.hashed == nil && len(ev.attrs) > 0 {
			ev.hashed = make(map[string]any, len(ev.attrs))
			for k, v := range ev.attrs {
				ev.hashed[md5hex(k)] = v
			}
		}
		m = ev.hashed
	}
	v, ok := m[c.Attribute]
	if !ok && c.IsID {
		return nil, true, true
	}
	return v, false, ok && v != nil
}

func (ev *evaluation) matchCondition(c *Condition) bool {
	v, subject, present := ev.attribute(c)
	if c.Op == IsNull {
		return present != c.WantNull
	}
	if !present {
		// A missing attribute fails every other operator, NOT_ONE_OF and
		// NOT_MATCHES included: absent is not "not one of".
		return false
	}
	if subject {
		return c.matchText(ev.subject, ev.flag.obfuscated)
	}
	if s, ok := v.(string); ok {
		return c.matchText(s, ev.flag.obfuscated)
	}
	switch c.Op {
	case Matches, NotMatches, OneOf, NotOneOf:
		var buf [64]byte
		b, ok := appendText(buf[:0], v)
		if !ok {
			return false
		}
		if c.Op == OneOf || c.Op == NotOneOf {
			return c.inSet(b, ev.flag.obfuscated) == (c.Op == OneOf)
		}
		return c.matchString(string(b)) == (c.Op == Matches)
	case GT, GTE, LT, LTE:
		if c.IsVersion {
			return false // versions are strings
		}
		x, ok := number(v)
		return ok && c.compareNumber(x)
	}
	return false
}

// matchText evaluates c on a string attribute.
func (c *Condition) matchText(s string, hashed bool) bool {
	switch c.Op {
	case Matches, NotMatches:
		return c.matchString(s) == (c.Op == Matches)
	case OneOf, NotOneOf:
		var in bool
		if hashed {
			in = c.inSet([]byte(s), true)
		} else {
			in = c.hasString(s)
		}
		return in == (c.Op == OneOf)
	case GT, GTE, LT, LTE:
		if c.IsVersion {
			ver, ok := ParseSemver(s)
			return ok && c.compare(ver.Compare(*c.Version))
		}
		x, ok := parseNumber(s)
		return ok && c.compareNumber(x)
	}
	return false
}

func (c *Condition) compareNumber(x float64) bool {
	switch {
	case x < c.Num:
		return c.compare(-1)
	case x > c.Num:
		return c.compare(1)
	case x == c.Num:
		return c.compare(0)
	}
	return false // NaN
}

// compare applies a comparison operator to the result of a three-way compare.
func (c *Condition) compare(cmp int) bool {
	switch c.Op {
	case GT:
		return cmp > 0
	case GTE:
		return cmp >= 0
	case LT:
		return cmp < 0
	case LTE:
		return cmp <= 0
	}
	return false
}

func (c *Condition) matchString(s string) bool {
	switch c.Literal.Kind {
	case 1:
		return strings.Contains(s, c.Literal.Text)
	case 2:
		return strings.HasPrefix(s, c.Literal.Text)
	case 3:
		return strings.HasSuffix(s, c.Literal.Text)
	case 4:
		return s == c.Literal.Text
	case kindUnicode:
		return c.uni.MatchString(s)
	}
	return c.Re.MatchString(s)
}

// inSet reports whether the string form b of an attribute is one of c's
// entries. In a CLIENT document the entries are MD5s of the string forms.
func (c *Condition) inSet(b []byte, hashed bool) bool {
	if hashed {
		sum := md5.Sum(b)
		var hx [32]byte
		hex.Encode(hx[:], sum[:])
		return c.hasBytes(hx[:])
	}
	return c.hasBytes(b)
}

func (c *Condition) hasString(s string) bool {
	if c.SetMap != nil {
		_, ok := c.SetMap[s]
		return ok
	}
	for _, e := range c.Set {
		if e == s {
			return true
		}
	}
	return false
}

func (c *Condition) hasBytes(b []byte) bool {
	if c.SetMap != nil {
		_, ok := c.SetMap[string(b)]
		return ok
	}
	for _, e := range c.Set {
		if e == string(b) {
			return true
		}
	}
	return false
}

// appendText appends the string form of a non-string attribute, as the
// shared fixtures pin it: booleans as true/false, integral numbers without a
// decimal point. Other numbers follow JavaScript's String(), which is what
// the Node SDK compares. Maps, slices and other types have no string form.
func appendText(dst []byte, v any) ([]byte, bool) {
	switch x := v.(type) {
	case bool:
		return strconv.AppendBool(dst, x), true
	case float64:
		return appendFloat(dst, x), true
	case float32:
		return appendFloat(dst, float64(x)), true
	case int:
		return strconv.AppendInt(dst, int64(x), 10), true
	case int8:
		return strconv.AppendInt(dst, int64(x), 10), true
	case int16:
		return strconv.AppendInt(dst, int64(x), 10), true
	case int32:
		return strconv.AppendInt(dst, int64(x), 10), true
	case int64:
		return strconv.AppendInt(dst, x, 10), true
	case uint:
		return strconv.AppendUint(dst, uint64(x), 10), true
	case uint8:
		return strconv.AppendUint(dst, uint64(x), 10), true
	case uint16:
		return strconv.AppendUint(dst, uint64(x), 10), true
	case uint32:
		return strconv.AppendUint(dst, uint64(x), 10), true
	case uint64:
		return strconv.AppendUint(dst, x, 10), true
	case json.Number:
		if f, err := x.Float64(); err == nil {
			return appendFloat(dst, f), true
		}
		return append(dst, x...), true
	}
	return dst, false
}

// appendFloat writes x as JavaScript's String(x) does for the usual range:
// integral values without a decimal point, others in shortest form, with an
// exponent only below 1e-6 or from 1e21.
func appendFloat(dst []byte, x float64) []byte {
	switch {
	case math.IsNaN(x):
		return append(dst, "NaN"...)
	case math.IsInf(x, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(x, -1):
		return append(dst, "-Infinity"...)
	}
	ax := math.Abs(x)
	if ax == 0 || (ax >= 1e-6 && ax < 1e21) {
		return strconv.AppendFloat(dst, x, 'f', -1, 64)
	}
	// Go writes e-07 and e+21; JavaScript writes e-7 and e+21.
	start := len(dst)
	dst = strconv.AppendFloat(dst, x, 'e', -1, 64)
	e := strings.LastIndexByte(string(dst[start:]), 'e')
	if e >= 0 && start+e+2 < len(dst)-1 && dst[start+e+2] == '0' {
		dst = append(dst[:start+e+2], dst[start+e+3:]...)
	}
	return dst
}

// number coerces an attribute for GT/GTE/LT/LTE: numbers, and strings that
// are decimal numbers. Booleans are not numbers here (Go and Rust agree;
// JavaScript's 1/0 coercion is the outlier).
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int8:
		return float64(x), true
	case int16:
		return float64(x), true
	case int32:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint:
		return float64(x), true
	case uint8:
		return float64(x), true
	case uint16:
		return float64(x), true
	case uint32:
		return float64(x), true
	case uint64:
		return float64(x), true
	case json.Number:
		return parseNumber(string(x))
	case string:
		return parseNumber(x)
	}
	return 0, false
}
