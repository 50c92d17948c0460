package eval

import (
	"crypto/md5"
	"encoding/hex"
	"math"
	"regexp"
	"strconv"
	"time"

	"github.com/allot-dev/allot/internal/ufc"
)

// Snapshot is a compiled, immutable configuration. It is safe for concurrent
// use; evaluation (package eval) reads it without locks or allocation.
type Snapshot struct {
	CreatedAt   time.Time // zero when the document had none
	Environment string
	Format      string
	obfuscated  bool
	flags       map[string]*Flag
}

// Flag returns the compiled flag with the given (plain) key, or nil. In a
// CLIENT document flags are stored under the MD5 of their key, so the key is
// hashed first.
func (s *Snapshot) Flag(key string) *Flag {
	if s == nil {
		return nil
	}
	if !s.obfuscated {
		return s.flags[key]
	}
	var buf [32]byte
	sum := md5.Sum([]byte(key))
	hex.Encode(buf[:], sum[:])
	return s.flags[string(buf[:])]
}

// Len returns the number of flags, including malformed ones.
func (s *Snapshot) Len() int {
	if s == nil {
		return 0
	}
	return len(s.flags)
}

// Obfuscated reports whether the snapshot came from a CLIENT document, whose
// flag keys and attribute names are hashed.
func (s *Snapshot) Obfuscated() bool { return s != nil && s.obfuscated }

// Flags calls fn for each flag (in no particular order) until fn returns
// false. In an obfuscated snapshot Flag.Key is the MD5 of the real key.
func (s *Snapshot) Flags(fn func(*Flag) bool) {
	if s == nil {
		return
	}
	for _, f := range s.flags {
		if !fn(f) {
			return
		}
	}
}

// Flag is a compiled flag.
type Flag struct {
	Key     string
	Type    ufc.VariationType
	Enabled bool
	// TotalShards is the flag's own totalShards, 0 when the document left
	// it out; each Shard carries the count it uses (Shard.Total).
	TotalShards uint32
	// Salts is the number of distinct shard salts; each Shard.Slot indexes
	// them so an evaluation hashes each salt at most once.
	Salts      int
	obfuscated bool
	typed      bool // Type is one of the five UFC types
	// Timed is set when an allocation has a startAt or endAt, that is, when
	// the evaluation time matters. Callers may skip reading the clock (which
	// costs a fifth of an evaluation) for the other flags.
	Timed       bool
	Variations  []Variation
	Allocations []Allocation
	// Err is set when the flag is malformed (unknown operator, wrongly typed
	// operand, a shard without totalShards...); it is a *FlagError, or the
	// reader's *ufc.SyntaxError for a flag of the wrong shape. Such a flag
	// evaluates to the caller's default with code ASSIGNMENT_ERROR and Err
	// as reason. An invalid regular expression is not a flag error: see
	// Condition.Err.
	Err error
}

// UsesAttribute reports whether any of the flag's conditions reads the
// attribute name ("id" included). Callers that build attribute maps per
// evaluation can leave out the others.
func (f *Flag) UsesAttribute(name string) bool {
	hashed := ""
	if f.obfuscated {
		hashed = md5hex(name)
	}
	for i := range f.Allocations {
		for _, r := range f.Allocations[i].Rules {
			for _, c := range r.Conditions {
				if c.Attribute == name || (hashed != "" && c.Attribute == hashed) {
					return true
				}
			}
		}
	}
	return false
}

// Variation is a compiled variation: a key and a typed value.
type Variation struct {
	Key string
	str string // STRING value, or JSON text
	num uint64 // INTEGER: int64 bits; NUMERIC: float64 bits; BOOLEAN: 0 or 1
	// Err is set when the wire value does not fit the flag's type. Such a
	// variation is only an error when an evaluation lands on it (fixture
	// invalid-value-flag): the evaluation then returns ASSIGNMENT_ERROR.
	Err error
}

// String returns the value of a STRING variation.
func (v *Variation) String() string { return v.str }

// Int returns the value of an INTEGER variation.
func (v *Variation) Int() int64 { return int64(v.num) }

// Float returns the value of a NUMERIC variation.
func (v *Variation) Float() float64 { return math.Float64frombits(v.num) }

// Bool returns the value of a BOOLEAN variation.
func (v *Variation) Bool() bool { return v.num != 0 }

// JSON returns the serialized JSON of a JSON variation.
func (v *Variation) JSON() string { return v.str }

// Value returns the value boxed by type: string, int64, float64, bool, or
// for JSON flags the JSON text as a json.RawMessage-compatible []byte.
func (v *Variation) Value(t ufc.VariationType) any {
	switch t {
	case ufc.TypeString:
		return v.str
	case ufc.TypeInteger:
		return v.Int()
	case ufc.TypeNumeric:
		return v.Float()
	case ufc.TypeBoolean:
		return v.Bool()
	case ufc.TypeJSON:
		return []byte(v.str)
	}
	return nil
}

// Text returns the value in its string form ("true", "42", JSON text...).
func (v *Variation) Text(t ufc.VariationType) string {
	switch t {
	case ufc.TypeInteger:
		return strconv.FormatInt(v.Int(), 10)
	case ufc.TypeNumeric:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	case ufc.TypeBoolean:
		return strconv.FormatBool(v.Bool())
	}
	return v.str
}

// Allocation is a compiled allocation.
type Allocation struct {
	Key string
	// start and end are Unix microseconds; absent bounds are MinInt64 and
	// MaxInt64 so the check is two comparisons.
	start, end int64
	Rules      []Rule
	Splits     []Split
	DoLog      bool
}

// Active reports where now (Unix microseconds) falls: -1 before startAt,
// +1 after endAt, 0 inside. now == endAt is still inside (spec 1.4).
func (a *Allocation) Active(nowMicros int64) int {
	if nowMicros < a.start {
		return -1
	}
	if nowMicros > a.end {
		return 1
	}
	return 0
}

// StartAt returns the allocation's start, if it has one.
func (a *Allocation) StartAt() (time.Time, bool) {
	return time.UnixMicro(a.start).UTC(), a.start != math.MinInt64
}

// EndAt returns the allocation's end, if it has one.
func (a *Allocation) EndAt() (time.Time, bool) {
	return time.UnixMicro(a.end).UTC(), a.end != math.MaxInt64
}

// Rule passes when every condition passes.
type Rule struct {
	Conditions []Condition
}

// Op is a compiled operator.
type Op uint8

// Compiled operators.
const (
	OpInvalid Op = iota
	Matches
	NotMatches
	OneOf
	NotOneOf
	IsNull
	GT
	GTE
	LT
	LTE
)

var opNames = [...]string{"", ufc.OpMatches, ufc.OpNotMatches, ufc.OpOneOf, ufc.OpNotOneOf, ufc.OpIsNull, ufc.OpGT, ufc.OpGTE, ufc.OpLT, ufc.OpLTE}

func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return "Op(" + strconv.Itoa(int(o)) + ")"
}

// Condition is a compiled condition. Its operand is ready to use: a compiled
// regular expression (with a plain-string fast path), a set, a number or a
// version.
type Condition struct {
	Attribute string // the attribute name; in CLIENT documents its MD5
	Op        Op
	// IsID is set when Attribute names "id", which defaults to the subject
	// key when the caller does not supply it.
	IsID bool

	// MATCHES / NOT_MATCHES. Re is nil for a pattern that runs on the
	// Unicode fallback engine (regexp.go) or failed to compile.
	Re      *regexp.Regexp
	Literal literalMatch
	uni     *unicodeProg
	// ONE_OF / NOT_ONE_OF: the entries; in CLIENT documents their MD5s.
	// Small lists are scanned; larger ones use SetMap.
	Set    []string
	SetMap map[string]struct{}
	// IS_NULL: whether the attribute must be missing.
	WantNull bool
	// GT / GTE / LT / LTE: a number, or a version when IsVersion.
	Num       float64
	Version   *Semver
	IsVersion bool
	// Err is set when the operand could not be compiled (an invalid regular
	// expression): the condition never passes, whatever the operator, and
	// the rest of the flag keeps working.
	Err error
}

// literalMatch is a regular expression reduced to a string test, when the
// pattern is only literal text, optionally anchored. Such patterns ("zach",
// "^admin$") are common in targeting rules and strings.Contains is an order
// of magnitude faster than the regexp engine.
type literalMatch struct {
	Kind uint8 // 0 none, 1 contains, 2 prefix, 3 suffix, 4 equal
	Text string
}

// Split is a compiled split.
type Split struct {
	VariationKey string
	Variation    *Variation // nil when VariationKey names no variation
	Shards       []Shard
	ExtraLogging map[string]string
	keyed        bool // a shard must be hashed: the subject key is needed
}

// Shard is a compiled shard.
type Shard struct {
	Prefix string // salt + "-": the hash input is Prefix + subject key
	Slot   int    // index of the salt among Flag.Salts
	Total  uint32 // totalShards: the shard's own, or else the flag's
	// All is set when Ranges cover every shard: the shard matches everyone
	// and evaluation skips the hash (a 100 % traffic shard, say).
	All    bool
	Ranges []ShardRange
}

// Salt returns the shard's salt.
func (s *Shard) Salt() string { return s.Prefix[:len(s.Prefix)-1] }

// ShardRange is a compiled half-open range [Start, End).
type ShardRange struct {
	Start, End uint32
}
