package ufc

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// Parse decodes a UFC document. It rejects input that is not JSON or not a
// UFC document with a *SyntaxError naming the line, column and path. A flag
// whose members have the wrong JSON types is not fatal: it is set aside in
// Document.Invalid so that the other flags keep working. Unknown members are
// ignored.
func Parse(data []byte) (*Document, error) {
	r := &reader{data: data, intern: make(map[string]string, 64)}
	return r.parse()
}

func (r *reader) parse() (*Document, error) {
	doc := &Document{}
	if c := r.peek(); c != '{' {
		return nil, r.errAt(r.pos, "not a UFC document: expected a JSON object, found %s", describe(c))
	}
	sawFlags := false
	if err := r.parseDocument(doc, &sawFlags); err != nil {
		return nil, err
	}
	if r.peek() != 0 {
		return nil, r.errAt(r.pos, "unexpected data after the document")
	}
	if !sawFlags {
		return nil, r.errAt(0, `not a UFC document: no "flags" member`)
	}
	switch doc.Format {
	case "", FormatServer, FormatClient:
	default:
		return nil, r.errAt(0, "unsupported format %q (want SERVER or CLIENT)", doc.Format)
	}
	return doc, nil
}

func (r *reader) parseDocument(doc *Document, sawFlags *bool) error {
	r.pos++ // the '{' Parse checked
	for first := true; ; {
		key, ok, err := r.key(&first)
		if err != nil || !ok {
			return err
		}
		switch string(key) {
		case "createdAt":
			if !r.null() {
				doc.CreatedAt, err = r.str()
			}
		case "format":
			if !r.null() {
				doc.Format, err = r.str()
			}
		case "environment":
			if !r.null() {
				err = r.parseEnvironment(doc)
			}
		case "flags":
			*sawFlags = true
			err = r.parseFlags(doc)
		default:
			err = r.skip()
		}
		if err != nil {
			return pathErr(err, string(key))
		}
	}
}

func (r *reader) parseEnvironment(doc *Document) error {
	if err := r.beginObject(); err != nil {
		return err
	}
	for first := true; ; {
		k, ok, err := r.key(&first)
		if err != nil || !ok {
			return err
		}
		if string(k) == "name" && !r.null() {
			doc.Environment.Name, err = r.str()
		} else {
			err = r.skip()
		}
		if err != nil {
			return pathErr(err, string(k))
		}
	}
}

// pathErr prefixes the path of a *SyntaxError with seg.
func pathErr(err error, seg string) error {
	var se *SyntaxError
	if err == nil || !errors.As(err, &se) {
		return err
	}
	if se.Path == "" {
		se.Path = seg
	} else if se.Path[0] == '[' {
		se.Path = seg + se.Path
	} else {
		se.Path = seg + "." + se.Path
	}
	return err
}

func idx(i int) string { return "[" + strconv.Itoa(i) + "]" }

func (r *reader) parseFlags(doc *Document) error {
	if r.peek() != '{' {
		return r.errAt(r.pos, `"flags" must be an object, found %s`, describe(r.peek()))
	}
	doc.Flags = make(map[string]*Flag, 16)
	r.pos++
	for first := true; ; {
		k, ok, err := r.key(&first)
		if err != nil || !ok {
			return err
		}
		key := string(k)
		start := r.pos
		f, err := r.parseFlag()
		if err == nil {
			doc.Flags[key] = f
			continue
		}
		// Rewind and check the flag's syntax alone: if it is well-formed JSON,
		// only its shape was wrong and the flag is isolated, not the document.
		r.pos = start
		if serr := r.skip(); serr != nil {
			return pathErr(serr, strconv.Quote(key))
		}
		if doc.Invalid == nil {
			doc.Invalid = make(map[string]error)
		}
		doc.Invalid[key] = pathErr(err, "flags."+strconv.Quote(key))
	}
}

func (r *reader) parseFlag() (*Flag, error) {
	f := &Flag{}
	if err := r.beginObject(); err != nil {
		return nil, err
	}
	for first := true; ; {
		k, ok, err := r.key(&first)
		if err != nil || !ok {
			return f, err
		}
		switch string(k) {
		case "key":
			f.Key, err = r.str()
		case "enabled":
			f.Enabled, err = r.boolean()
		case "variationType":
			var s string
			s, err = r.istr()
			f.VariationType = VariationType(s)
		case "totalShards":
			// Optional: the newer dialect writes it on each shard, or not at
			// all when no split has a shard (docs/ufc-dialects.md).
			if !r.null() {
				f.TotalShards, err = r.integer()
			}
		case "variations":
			err = r.parseVariations(f)
		case "allocations":
			err = r.parseAllocations(f)
		default:
			err = r.skip()
		}
		if err != nil {
			return f, pathErr(err, string(k))
		}
	}
}

func (r *reader) parseVariations(f *Flag) error {
	if err := r.beginObject(); err != nil {
		return err
	}
	f.Variations = make(Variations, 0, 2)
	for first := true; ; {
		k, ok, err := r.key(&first)
		if err != nil || !ok {
			return err
		}
		key := r.internBytes(k)
		var v Variation
		if err := r.beginObject(); err != nil {
			return pathErr(err, strconv.Quote(key))
		}
		for first := true; ; {
			m, ok, err := r.key(&first)
			if err != nil {
				return pathErr(err, strconv.Quote(key))
			}
			if !ok {
				break
			}
			switch string(m) {
			case "key":
				v.Key, err = r.istr()
			case "value":
				v.Value, err = r.raw()
			default:
				err = r.skip()
			}
			if err != nil {
				return pathErr(pathErr(err, string(m)), strconv.Quote(key))
			}
		}
		if v.Key != key {
			return r.errAt(r.pos, "variation %q has key %q", key, v.Key)
		}
		f.Variations = append(f.Variations, v)
	}
}

func (r *reader) parseAllocations(f *Flag) error {
	if err := r.beginArray(); err != nil {
		return err
	}
	for i, first := 0, true; ; i++ {
		if more, err := r.elem(&first); err != nil || !more {
			return err
		}
		a, err := r.parseAllocation()
		if err != nil {
			return pathErr(err, idx(i))
		}
		f.Allocations = append(f.Allocations, a)
	}
}

func (r *reader) parseAllocation() (Allocation, error) {
	a := Allocation{DoLog: true} // absent doLog logs: see spec 1.4 and eval/compile.go
	if err := r.beginObject(); err != nil {
		return a, err
	}
	for first := true; ; {
		k, ok, err := r.key(&first)
		if err != nil || !ok {
			return a, err
		}
		switch string(k) {
		case "key":
			a.Key, err = r.istr()
		case "startAt":
			if !r.null() {
				a.StartAt, err = r.str()
			}
		case "endAt":
			if !r.null() {
				a.EndAt, err = r.str()
			}
		case "doLog":
			if !r.null() {
				a.DoLog, err = r.boolean()
			}
		case "rules":
			if !r.null() {
				a.Rules, err = r.parseRules()
			}
		case "splits":
			a.Splits, err = r.parseSplits()
		default:
			err = r.skip()
		}
		if err != nil {
			return a, pathErr(err, string(k))
		}
	}
}

func (r *reader) parseRules() ([]Rule, error) {
	if err := r.beginArray(); err != nil {
		return nil, err
	}
	var rules []Rule
	for i, first := 0, true; ; i++ {
		if more, err := r.elem(&first); err != nil || !more {
			return rules, err
		}
		var rule Rule
		if err := r.beginObject(); err != nil {
			return rules, pathErr(err, idx(i))
		}
		for first := true; ; {
			k, ok, err := r.key(&first)
			if err != nil {
				return rules, pathErr(err, idx(i))
			}
			if !ok {
				break
			}
			if string(k) != "conditions" {
				err = r.skip()
			} else {
				rule.Conditions, err = r.parseConditions()
			}
			if err != nil {
				return rules, pathErr(pathErr(err, string(k)), idx(i))
			}
		}
		rules = append(rules, rule)
	}
}

func (r *reader) parseConditions() ([]Condition, error) {
	if err := r.beginArray(); err != nil {
		return nil, err
	}
	var conds []Condition
	for i, first := 0, true; ; i++ {
		if more, err := r.elem(&first); err != nil || !more {
			return conds, err
		}
		c, err := r.parseCondition()
		if err != nil {
			return conds, pathErr(err, idx(i))
		}
		conds = append(conds, c)
	}
}

func (r *reader) parseCondition() (Condition, error) {
	var c Condition
	if err := r.beginObject(); err != nil {
		return c, err
	}
	for first := true; ; {
		k, ok, err := r.key(&first)
		if err != nil || !ok {
			return c, err
		}
		switch string(k) {
		case "attribute":
			c.Attribute, err = r.istr()
		case "operator":
			c.Operator, err = r.istr()
		case "value":
			c.Value, err = r.raw()
		default:
			err = r.skip()
		}
		if err != nil {
			return c, pathErr(err, string(k))
		}
	}
}

func (r *reader) parseSplits() ([]Split, error) {
	if err := r.beginArray(); err != nil {
		return nil, err
	}
	splits := make([]Split, 0, 2)
	for i, first := 0, true; ; i++ {
		if more, err := r.elem(&first); err != nil || !more {
			return splits, err
		}
		s, err := r.parseSplit()
		if err != nil {
			return splits, pathErr(err, idx(i))
		}
		splits = append(splits, s)
	}
}

func (r *reader) parseSplit() (Split, error) {
	var s Split
	if err := r.beginObject(); err != nil {
		return s, err
	}
	for first := true; ; {
		k, ok, err := r.key(&first)
		if err != nil || !ok {
			return s, err
		}
		switch string(k) {
		case "variationKey":
			s.VariationKey, err = r.istr()
		case "shards":
			s.Shards, err = r.parseShards()
		case "extraLogging":
			if !r.null() {
				s.ExtraLogging, err = r.stringMap()
			}
		default:
			err = r.skip()
		}
		if err != nil {
			return s, pathErr(err, string(k))
		}
	}
}

func (r *reader) stringMap() (map[string]string, error) {
	if err := r.beginObject(); err != nil {
		return nil, err
	}
	m := make(map[string]string, 2)
	for first := true; ; {
		k, ok, err := r.key(&first)
		if err != nil || !ok {
			return m, err
		}
		key := r.internBytes(k)
		if m[key], err = r.istr(); err != nil {
			return m, pathErr(err, strconv.Quote(key))
		}
	}
}

func (r *reader) parseShards() ([]Shard, error) {
	if err := r.beginArray(); err != nil {
		return nil, err
	}
	shards := make([]Shard, 0, 2)
	for i, first := 0, true; ; i++ {
		if more, err := r.elem(&first); err != nil || !more {
			return shards, err
		}
		sh, err := r.parseShard()
		if err != nil {
			return shards, pathErr(err, idx(i))
		}
		shards = append(shards, sh)
	}
}

func (r *reader) parseShard() (Shard, error) {
	var sh Shard
	if err := r.beginObject(); err != nil {
		return sh, err
	}
	for first := true; ; {
		k, ok, err := r.key(&first)
		if err != nil || !ok {
			return sh, err
		}
		switch string(k) {
		case "salt":
			sh.Salt, err = r.str()
		case "totalShards":
			if !r.null() {
				sh.TotalShards, err = r.integer()
			}
		case "ranges":
			sh.Ranges, err = r.parseRanges()
		default:
			err = r.skip()
		}
		if err != nil {
			return sh, pathErr(err, string(k))
		}
	}
}

func (r *reader) parseRanges() ([]Range, error) {
	if err := r.beginArray(); err != nil {
		return nil, err
	}
	ranges := make([]Range, 0, 1)
	for i, first := 0, true; ; i++ {
		if more, err := r.elem(&first); err != nil || !more {
			return ranges, err
		}
		var rg Range
		if err := r.beginObject(); err != nil {
			return ranges, pathErr(err, idx(i))
		}
		for first := true; ; {
			k, ok, err := r.key(&first)
			if err != nil {
				return ranges, pathErr(err, idx(i))
			}
			if !ok {
				break
			}
			switch string(k) {
			case "start":
				rg.Start, err = r.integer()
			case "end":
				rg.End, err = r.integer()
			default:
				err = r.skip()
			}
			if err != nil {
				return ranges, pathErr(pathErr(err, string(k)), idx(i))
			}
		}
		ranges = append(ranges, rg)
	}
}

func (r *reader) integer() (int, error) {
	b, err := r.numberBytes()
	if err != nil {
		return 0, err
	}
	// Parse by hand: no fraction or exponent, and no allocation.
	neg := b[0] == '-'
	if neg {
		b = b[1:]
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' || n > (1<<53) {
			return 0, r.errAt(r.pos-len(b), "expected an integer, found %s", b)
		}
		n = n*10 + int(c-'0')
	}
	if neg {
		n = -n
	}
	return n, nil
}

// String returns a short description of d, for logs.
func (d *Document) String() string {
	return fmt.Sprintf("UFC %s document for %q, %d flags, created %s", d.Format, d.Environment.Name, len(d.Flags)+len(d.Invalid), d.CreatedAt)
}

// DecodeString returns the string that raw encodes, if raw is a JSON string.
func DecodeString(raw []byte) (string, bool) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	r := reader{data: raw}
	b, err := r.strBytes()
	if err != nil || r.peek() != 0 {
		return "", false
	}
	return string(b), true
}

// DecodeStrings returns the strings of raw, if raw is a JSON array of strings.
func DecodeStrings(raw []byte) ([]string, bool) {
	r := reader{data: raw}
	if r.beginArray() != nil {
		return nil, false
	}
	list := make([]string, 0, bytes.Count(raw, []byte{','})+1)
	for first := true; ; {
		more, err := r.elem(&first)
		if err != nil {
			return nil, false
		}
		if !more {
			return list, r.peek() == 0
		}
		b, err := r.strBytes()
		if err != nil {
			return nil, false
		}
		list = append(list, string(b))
	}
}

// Valid reports whether b is exactly one well-formed JSON value.
func Valid(b []byte) bool {
	r := reader{data: b}
	return r.skip() == nil && r.peek() == 0
}

// IsNumber reports whether raw is a JSON number (raw must be well-formed).
func IsNumber(raw []byte) bool {
	if len(raw) == 0 {
		return false
	}
	c := raw[0]
	return c == '-' || (c >= '0' && c <= '9')
}

// ParseNumberString parses a decimal number as JSON writes it (optionally
// with a leading +), never allocating on failure. It rejects "", hex,
// "NaN" and "Inf".
func ParseNumberString(s string) (float64, bool) {
	if !looksNumeric(s) {
		return 0, false
	}
	x, err := strconv.ParseFloat(s, 64)
	return x, err == nil
}

// looksNumeric reports whether s is [+-]digits[.digits][(e|E)[+-]digits].
func looksNumeric(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		i++
	}
	digits := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '-' || s[i] == '+') {
			i++
		}
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	return i == len(s)
}
