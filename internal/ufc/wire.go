// Package ufc reads, validates and compiles flag configurations in the
// Universal Flag Configuration (UFC) wire format, and defines the wire types
// the server emits. The format is specified in shared/spec/ufc.md.
//
// A document is decoded once (Parse), then compiled (Compile) into a Snapshot
// that package eval reads without further parsing: regular expressions
// compiled, numbers and versions parsed, variation values typed, salts
// prepared for hashing. Load does both.
package ufc

import "encoding/json"

// VariationType is the type of a flag's values.
type VariationType string

// The variation types of the UFC format.
const (
	TypeString  VariationType = "STRING"
	TypeInteger VariationType = "INTEGER"
	TypeNumeric VariationType = "NUMERIC"
	TypeBoolean VariationType = "BOOLEAN"
	TypeJSON    VariationType = "JSON"
)

// Valid reports whether t is one of the five UFC types.
func (t VariationType) Valid() bool {
	switch t {
	case TypeString, TypeInteger, TypeNumeric, TypeBoolean, TypeJSON:
		return true
	}
	return false
}

// Formats of a document.
const (
	FormatServer = "SERVER" // plain text, for server SDKs
	FormatClient = "CLIENT" // obfuscated, for client SDKs (spec section 7)
)

// The operators of a condition.
const (
	OpMatches    = "MATCHES"
	OpNotMatches = "NOT_MATCHES"
	OpOneOf      = "ONE_OF"
	OpNotOneOf   = "NOT_ONE_OF"
	OpIsNull     = "IS_NULL"
	OpGT         = "GT"
	OpGTE        = "GTE"
	OpLT         = "LT"
	OpLTE        = "LTE"
)

// Document is a UFC document as it travels on the wire. The server builds one
// and marshals it with encoding/json; SDKs Parse one.
type Document struct {
	CreatedAt   string           `json:"createdAt"`
	Format      string           `json:"format"`
	Environment Environment      `json:"environment"`
	Flags       map[string]*Flag `json:"flags"`
	// BanditReferences is always emitted ({} when empty) because the Node SDK
	// requires it for offline initialisation. Allot has no bandits.
	BanditReferences map[string]json.RawMessage `json:"banditReferences"`

	// Invalid holds flags whose JSON had the wrong shape (say, a string where
	// a number belongs). They are kept out of Flags; Compile turns each into a
	// flag that evaluates to the default with the error as its reason.
	Invalid map[string]error `json:"-"`
}

// Environment names the environment a document was published for.
type Environment struct {
	Name string `json:"name"`
}

// Flag is one flag of a document.
type Flag struct {
	Key           string        `json:"key"`
	Enabled       bool          `json:"enabled"`
	VariationType VariationType `json:"variationType"`
	Variations    Variations    `json:"variations"`
	Allocations   []Allocation  `json:"allocations"`
	// TotalShards is the shard count of every shard that does not carry its
	// own. The newer dialect (docs/ufc-dialects.md) leaves it out and writes
	// it on each shard instead; 0 when absent.
	TotalShards int `json:"totalShards"`
}

// Variations are a flag's variations, in order. On the wire they are an
// object keyed by variation key; a slice keeps their order and costs far
// less to build than a map for every flag of a large document.
type Variations []Variation

// MarshalJSON writes the variations as an object keyed by variation key.
func (vs Variations) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		k, err := json.Marshal(v.Key)
		if err != nil {
			return nil, err
		}
		b = append(append(b, k...), ':')
		vb, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		b = append(b, vb...)
	}
	return append(b, '}'), nil
}

// UnmarshalJSON reads the object form. Parse does not use it (it has its
// own reader); it is here for code that decodes wire types with
// encoding/json.
func (vs *Variations) UnmarshalJSON(data []byte) error {
	var m map[string]Variation
	if err := json.Unmarshal(data, &m); err != nil {
		return err
	}
	*vs = (*vs)[:0]
	for k, v := range m {
		if v.Key == "" {
			v.Key = k
		}
		*vs = append(*vs, v)
	}
	return nil
}

// Variation is a named value of a flag. Value holds the JSON text: a string,
// number or boolean; for JSON flags, a string containing serialized JSON or
// (newer dialect) the JSON object or array itself.
type Variation struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
}

// Allocation is one step of a flag's ordered allocation list.
type Allocation struct {
	Key     string  `json:"key"`
	Rules   []Rule  `json:"rules,omitempty"`
	StartAt string  `json:"startAt,omitempty"`
	EndAt   string  `json:"endAt,omitempty"`
	Splits  []Split `json:"splits"`
	// DoLog is always emitted: SDKs disagree on what its absence means.
	DoLog bool `json:"doLog"`
}

// Rule passes when all of its conditions pass.
type Rule struct {
	Conditions []Condition `json:"conditions"`
}

// Condition tests one subject attribute. Value is the JSON text of the
// operand: a string, number, boolean or array of strings.
type Condition struct {
	Attribute string          `json:"attribute"`
	Operator  string          `json:"operator"`
	Value     json.RawMessage `json:"value"`
}

// Split sends the subjects matching all of its shards to one variation.
type Split struct {
	VariationKey string            `json:"variationKey"`
	Shards       []Shard           `json:"shards"`
	ExtraLogging map[string]string `json:"extraLogging,omitempty"`
}

// Shard matches subjects whose hash with Salt falls in one of Ranges.
type Shard struct {
	Salt string `json:"salt"`
	// TotalShards, when set, wins over the flag's (newer dialect); 0 when
	// absent. The server leaves it out and sets the flag's.
	TotalShards int     `json:"totalShards,omitempty"`
	Ranges      []Range `json:"ranges"`
}

// Range is the half-open shard interval [Start, End).
type Range struct {
	Start int `json:"start"`
	End   int `json:"end"`
}
