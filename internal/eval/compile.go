package eval

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"regexp/syntax"
	"slices"
	"strconv"
	"time"

	"github.com/allot-dev/allot/internal/ufc"
)

// Load parses and compiles a document in one step.
func Load(data []byte) (*Snapshot, error) {
	doc, err := ufc.Parse(data)
	if err != nil {
		return nil, err
	}
	return Compile(doc)
}

// Compile turns a parsed document into a Snapshot. Only document-level
// problems (an unreadable createdAt) are errors; a malformed flag compiles to
// a flag carrying Err, so that every other flag keeps working.
func Compile(doc *ufc.Document) (*Snapshot, error) {
	s, _, err := compile(doc)
	return s, err
}

// compile is Compile, also returning how many lookup steps (entries
// scanned, maps probed) the compiler took, which tests hold linear in the
// document's size.
func compile(doc *ufc.Document) (*Snapshot, int, error) {
	s := &Snapshot{
		Environment: doc.Environment.Name,
		Format:      doc.Format,
		obfuscated:  doc.Format == ufc.FormatClient,
		flags:       make(map[string]*Flag, len(doc.Flags)+len(doc.Invalid)),
	}
	if s.Format == "" {
		s.Format = ufc.FormatServer
	}
	if doc.CreatedAt != "" {
		t, err := time.Parse(time.RFC3339Nano, doc.CreatedAt)
		if err != nil {
			return nil, 0, fmt.Errorf("ufc: createdAt %q is not an RFC 3339 time", doc.CreatedAt)
		}
		s.CreatedAt = t
	}
	c := compiler{obfuscated: s.obfuscated, regexps: make(map[string]compiledRegexp)}
	// One backing array per kind for the whole document: fewer, larger
	// allocations compile faster and retain less heap than one per flag.
	var nf, nv, na, nr, nc, ns, nsh, nrg int
	for _, f := range doc.Flags {
		nf++
		nv += len(f.Variations)
		na += len(f.Allocations)
		for i := range f.Allocations {
			a := &f.Allocations[i]
			nr += len(a.Rules)
			for _, r := range a.Rules {
				nc += len(r.Conditions)
			}
			ns += len(a.Splits)
			for _, sp := range a.Splits {
				nsh += len(sp.Shards)
				for _, sh := range sp.Shards {
					nrg += len(sh.Ranges)
				}
			}
		}
	}
	c.flags = make([]Flag, 0, nf+len(doc.Invalid))
	c.vars = make([]Variation, 0, nv)
	c.allocs = make([]Allocation, 0, na)
	c.rules = make([]Rule, 0, nr)
	c.conds = make([]Condition, 0, nc)
	c.splits = make([]Split, 0, ns)
	c.shards = make([]Shard, 0, nsh)
	c.ranges = make([]ShardRange, 0, nrg)

	for key, wf := range doc.Flags {
		c.flags = append(c.flags, Flag{})
		f := &c.flags[len(c.flags)-1]
		c.compileFlag(f, key, wf)
		s.flags[key] = f
	}
	for key, err := range doc.Invalid {
		c.flags = append(c.flags, Flag{Key: key, Err: err})
		s.flags[key] = &c.flags[len(c.flags)-1]
	}
	return s, c.steps, nil
}

type compiler struct {
	obfuscated bool
	regexps    map[string]compiledRegexp
	salts      []string // the current flag's distinct shard prefixes, by slot
	// saltSlot and varIndex index salts and variations by key once a flag
	// has more than a few of them (smallIndex), so that compiling a flag
	// stays linear in its size: a scan per lookup was quadratic (issue 10:
	// 60,000 variations took 37 s in the duplicate check).
	saltSlot map[string]int
	varIndex map[string]int
	steps    int // lookup steps taken, for the linearity test

	flags  []Flag
	vars   []Variation
	allocs []Allocation
	rules  []Rule
	conds  []Condition
	splits []Split
	shards []Shard
	ranges []ShardRange
	// orderShards' scratch
	reach []saltReach
	refs  []slotRange
}

// take returns the next n elements of a preallocated backing array.
func take[T any](buf *[]T, n int) []T {
	start := len(*buf)
	*buf = (*buf)[:start+n]
	return (*buf)[start : start+n : start+n]
}

// smallIndex is the size up to which a scan beats a map for looking up a
// flag's salts and variations; past it the compiler builds a map.
const smallIndex = 8

// salt returns the hash prefix of a salt and its slot within the current
// flag. A flag has a handful of salts, so a scan beats a map until it has
// more than smallIndex.
func (c *compiler) salt(salt string) (string, int) {
	if c.saltSlot != nil {
		c.steps++
		if i, ok := c.saltSlot[salt]; ok {
			return c.salts[i], i
		}
	} else {
		for i, p := range c.salts {
			c.steps++
			if len(p) == len(salt)+1 && p[:len(salt)] == salt {
				return p, i
			}
		}
	}
	p := salt + "-"
	c.salts = append(c.salts, p)
	switch {
	case c.saltSlot != nil:
		c.saltSlot[salt] = len(c.salts) - 1
	case len(c.salts) > smallIndex:
		c.saltSlot = make(map[string]int, 2*len(c.salts))
		for i, p := range c.salts {
			c.saltSlot[p[:len(p)-1]] = i
		}
	}
	return p, len(c.salts) - 1
}

// FlagError is why a flag is malformed: the flag's key, the JSON path of the
// problem within the flag ("allocations[0].rules[1].conditions[0].operator")
// and what is wrong. A malformed flag evaluates to ASSIGNMENT_ERROR with
// this as its reason.
type FlagError struct {
	Flag string
	Path string // relative to the flag; "" for the flag as a whole
	Msg  string
}

func (e *FlagError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("flag %q: %s", e.Flag, e.Msg)
	}
	return fmt.Sprintf("flag %q: %s: %s", e.Flag, e.Path, e.Msg)
}

// flagError marks f malformed, keeping what was already known about it.
func flagError(f *Flag, path, format string, args ...any) {
	if f.Err == nil {
		f.Err = &FlagError{Flag: f.Key, Path: path, Msg: fmt.Sprintf(format, args...)}
	}
}

// pathError is a problem found below a flag, with its path relative to the
// place that reports it; compileAllocation returns these.
type pathError struct {
	path string
	err  error
}

func (e *pathError) Error() string { return e.path + ": " + e.err.Error() }

func atPath(path string, err error) error {
	var pe *pathError
	if errors.As(err, &pe) {
		return &pathError{path + "." + pe.path, pe.err}
	}
	return &pathError{path, err}
}

func (c *compiler) compileFlag(f *Flag, key string, w *ufc.Flag) {
	f.Key = key
	f.Enabled = w.Enabled
	f.Type = w.VariationType
	f.obfuscated = c.obfuscated
	if !f.Type.Valid() {
		flagError(f, "variationType", "unknown variationType %q", w.VariationType)
		return
	}
	// totalShards is optional on the flag (newer dialect): it is only needed
	// by a shard that does not carry its own, and compileAllocation says so
	// there. 0 stands for absent; a negative or oversized count is an error.
	if w.TotalShards < 0 || w.TotalShards > math.MaxUint32 {
		flagError(f, "totalShards", "totalShards must be a positive integer, found %d", w.TotalShards)
		return
	}
	f.TotalShards = uint32(w.TotalShards)
	f.typed = true

	f.Variations = take(&c.vars, len(w.Variations))
	c.varIndex = nil
	if len(w.Variations) > smallIndex {
		c.varIndex = make(map[string]int, len(w.Variations))
	}
	for i, wv := range w.Variations {
		v := &f.Variations[i]
		v.Key = c.text(wv.Key)
		dup := false
		if c.varIndex != nil {
			c.steps++
			_, dup = c.varIndex[v.Key]
			c.varIndex[v.Key] = i
		} else {
			dup = c.variationIndex(f.Variations[:i], v.Key) >= 0
		}
		if dup {
			flagError(f, "variations."+wv.Key, "variation %q appears twice", v.Key)
			return
		}
		c.compileValue(v, f.Type, wv.Value)
	}

	f.Allocations = take(&c.allocs, len(w.Allocations))
	c.salts = c.salts[:0]
	c.saltSlot = nil
	for i := range w.Allocations {
		if err := c.compileAllocation(&f.Allocations[i], &w.Allocations[i], f); err != nil {
			path, msg := "allocations["+strconv.Itoa(i)+"]", err.Error()
			var pe *pathError
			if errors.As(err, &pe) {
				path, msg = path+"."+pe.path, pe.err.Error()
			}
			flagError(f, path, "%s", msg)
			return
		}
	}
	f.Salts = len(c.salts)
}

func (c *compiler) variation(f *Flag, key string) *Variation {
	i := -1
	if c.varIndex != nil {
		c.steps++
		if j, ok := c.varIndex[key]; ok {
			i = j
		}
	} else {
		i = c.variationIndex(f.Variations, key)
	}
	if i >= 0 {
		return &f.Variations[i]
	}
	return nil
}

func (c *compiler) variationIndex(vs []Variation, key string) int {
	for i := range vs {
		c.steps++
		if vs[i].Key == key {
			return i
		}
	}
	return -1
}

// text de-obfuscates a base64 string of a CLIENT document; plain documents
// pass it through.
func (c *compiler) text(s string) string {
	if !c.obfuscated {
		return s
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return s
	}
	return string(b)
}

// compileValue types a variation value. INTEGER takes only a JSON integer
// literal in the int64 range: Go's SDK rejects 1.0 as well, and the server
// never emits it (spec 1.3).
func (c *compiler) compileValue(v *Variation, t ufc.VariationType, raw []byte) {
	bad := func() {
		v.Err = fmt.Errorf("variation (%s) is configured for type %s, but is set to incompatible value (%s)", v.Key, t, raw)
	}
	if t == ufc.TypeJSON && len(raw) > 0 && (raw[0] == '{' || raw[0] == '[') {
		// The newer dialect writes a JSON flag's value as the object or array
		// itself, in either format (there is nothing to obfuscate in it).
		// The reader has checked its syntax.
		v.str = string(raw)
		return
	}
	if c.obfuscated {
		// CLIENT values are base64 of the value's string form.
		s, ok := ufc.DecodeString(raw)
		if !ok {
			bad()
			return
		}
		dec, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			bad()
			return
		}
		text := string(dec)
		switch t {
		case ufc.TypeString:
			v.str = text
		case ufc.TypeInteger:
			n, err := strconv.ParseInt(text, 10, 64)
			if err != nil {
				bad()
				return
			}
			v.num = uint64(n)
		case ufc.TypeNumeric:
			x, err := strconv.ParseFloat(text, 64)
			if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
				bad()
				return
			}
			v.num = math.Float64bits(x)
		case ufc.TypeBoolean:
			switch text {
			case "true":
				v.num = 1
			case "false":
			default:
				bad()
			}
		case ufc.TypeJSON:
			if !ufc.Valid([]byte(text)) {
				bad()
				return
			}
			v.str = text
		}
		return
	}
	switch t {
	case ufc.TypeString:
		s, ok := ufc.DecodeString(raw)
		if !ok {
			bad()
			return
		}
		v.str = s
	case ufc.TypeInteger:
		if !ufc.IsNumber(raw) {
			bad()
			return
		}
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			bad()
			return
		}
		v.num = uint64(n)
	case ufc.TypeNumeric:
		if !ufc.IsNumber(raw) {
			bad()
			return
		}
		x, err := strconv.ParseFloat(string(raw), 64)
		if err != nil {
			bad()
			return
		}
		v.num = math.Float64bits(x)
	case ufc.TypeBoolean:
		switch string(raw) {
		case "true":
			v.num = 1
		case "false":
		default:
			bad()
		}
	case ufc.TypeJSON:
		s, ok := ufc.DecodeString(raw)
		if !ok || !ufc.Valid([]byte(s)) {
			bad()
			return
		}
		v.str = s
	}
}

var (
	idHash   = md5hex("id")
	trueHash = md5hex("true")
	falseHsh = md5hex("false")
	opHashes = func() map[string]Op {
		m := make(map[string]Op, len(opNames))
		for i, n := range opNames[1:] {
			m[md5hex(n)] = Op(i + 1)
		}
		return m
	}()
)

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func parseOp(s string, obfuscated bool) Op {
	if obfuscated {
		if op, ok := opHashes[s]; ok {
			return op
		}
	}
	for i, n := range opNames[1:] {
		if n == s {
			return Op(i + 1)
		}
	}
	return OpInvalid
}

func (c *compiler) compileTime(s string) (int64, error) {
	t, err := time.Parse(time.RFC3339Nano, c.text(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not an RFC 3339 time", c.text(s))
	}
	return t.UnixMicro(), nil
}

func (c *compiler) compileAllocation(a *Allocation, w *ufc.Allocation, f *Flag) error {
	a.Key = c.text(w.Key)
	a.DoLog = w.DoLog
	a.start, a.end = math.MinInt64, math.MaxInt64
	var err error
	f.Timed = f.Timed || w.StartAt != "" || w.EndAt != ""
	if w.StartAt != "" {
		if a.start, err = c.compileTime(w.StartAt); err != nil {
			return atPath("startAt", err)
		}
	}
	if w.EndAt != "" {
		if a.end, err = c.compileTime(w.EndAt); err != nil {
			return atPath("endAt", err)
		}
	}
	a.Rules = take(&c.rules, len(w.Rules))
	for i, wr := range w.Rules {
		a.Rules[i].Conditions = take(&c.conds, len(wr.Conditions))
		for j := range wr.Conditions {
			if err := c.compileCondition(&a.Rules[i].Conditions[j], &wr.Conditions[j]); err != nil {
				return atPath(fmt.Sprintf("rules[%d].conditions[%d]", i, j), err)
			}
		}
	}
	a.Splits = take(&c.splits, len(w.Splits))
	for i := range w.Splits {
		ws, sp := &w.Splits[i], &a.Splits[i]
		sp.VariationKey = c.text(ws.VariationKey)
		sp.Variation = c.variation(f, sp.VariationKey)
		if len(ws.ExtraLogging) > 0 {
			sp.ExtraLogging = make(map[string]string, len(ws.ExtraLogging))
			for k, v := range ws.ExtraLogging {
				sp.ExtraLogging[c.text(k)] = c.text(v)
			}
		}
		sp.Shards = take(&c.shards, len(ws.Shards))
		for j := range ws.Shards {
			wsh, sh := &ws.Shards[j], &sp.Shards[j]
			sh.Prefix, sh.Slot = c.salt(c.text(wsh.Salt))
			// A shard's own totalShards wins over the flag's; a shard with
			// neither is the one place a missing totalShards is an error
			// (newer dialect, docs/ufc-dialects.md).
			total := wsh.TotalShards
			switch {
			case total < 0 || total > math.MaxUint32:
				return &pathError{fmt.Sprintf("splits[%d].shards[%d].totalShards", i, j), fmt.Errorf("totalShards must be a positive integer, found %d", total)}
			case total == 0 && f.TotalShards == 0:
				return &pathError{fmt.Sprintf("splits[%d].shards[%d]", i, j), errors.New("no totalShards, on the shard or on the flag")}
			case total == 0:
				total = int(f.TotalShards)
			}
			sh.Total = uint32(total)
			sh.Ranges = take(&c.ranges, len(wsh.Ranges))
			for k, r := range wsh.Ranges {
				if r.Start < 0 || r.End < r.Start || r.End > total {
					return &pathError{fmt.Sprintf("splits[%d].shards[%d].ranges[%d]", i, j, k), fmt.Errorf("[%d, %d) is not within [0, %d)", r.Start, r.End, total)}
				}
				sh.Ranges[k] = ShardRange{uint32(r.Start), uint32(r.End)}
			}
			sh.All = coversAll(sh.Ranges, sh.Total)
			sp.keyed = sp.keyed || !sh.All
		}
	}
	c.orderShards(a.Splits)
	return nil
}

// orderShards puts the shards of each split in the order that needs the
// fewest MD5s on average: a split matches only when every shard does, so
// their order changes no answer, only how soon a miss stops the work. Each
// salt is hashed at most once per evaluation (the memo), so what counts is
// the share of subjects that can still match the allocation after a salt:
// its reach, the union of its ranges over the splits (a split without the
// salt leaves it unconstrained, so its reach is everyone). Salts of smaller
// reach go first; ties keep the document's order. An experiment's traffic
// (say 80 %) then comes before a layer's range (up to 100 %) and before the
// split salt its splits share out whole: subjects outside the traffic cost
// one MD5, not two (issue 15). The work is linear in the shards (and a sort
// of their ranges), on scratch buffers the compiler keeps.
func (c *compiler) orderShards(splits []Split) {
	// Nothing to order when no split has two shards (rollouts, targeting).
	if !slices.ContainsFunc(splits, func(sp Split) bool { return len(sp.Shards) > 1 }) {
		return
	}
	if n := len(c.salts); cap(c.reach) < n {
		c.reach = make([]saltReach, n)
	}
	reach := c.reach[:len(c.salts)]
	refs := c.refs[:0]
	for i := range splits {
		for j := range splits[i].Shards {
			sh := &splits[i].Shards[j]
			x := &reach[sh.Slot]
			if x.last != i+1 {
				x.splits, x.last = x.splits+1, i+1
			}
			if x.total == 0 {
				x.total = sh.Total
			}
			x.mixed = x.mixed || x.total != sh.Total
			for _, r := range sh.Ranges {
				refs = append(refs, slotRange{sh.Slot, r})
			}
		}
	}
	slices.SortFunc(refs, func(a, b slotRange) int {
		if a.slot != b.slot {
			return a.slot - b.slot
		}
		return int(a.r.Start) - int(b.r.Start)
	})
	for k := 0; k < len(refs); {
		slot := refs[k].slot
		var covered, end uint32
		for ; k < len(refs) && refs[k].slot == slot; k++ {
			r := refs[k].r
			if from := max(r.Start, end); r.End > from {
				covered += r.End - from
				end = r.End
			}
		}
		reach[slot].covered = covered
	}
	rank := func(sh *Shard) float64 {
		x := &reach[sh.Slot]
		switch {
		case sh.All:
			return 2 // never hashed: last
		case x.splits < len(splits) || x.mixed || x.total == 0:
			return 1
		}
		return float64(x.covered) / float64(x.total)
	}
	for i := range splits {
		slices.SortStableFunc(splits[i].Shards, func(a, b Shard) int {
			ra, rb := rank(&a), rank(&b)
			switch {
			case ra < rb:
				return -1
			case ra > rb:
				return 1
			}
			return 0
		})
	}
	for i := range splits {
		for j := range splits[i].Shards {
			reach[splits[i].Shards[j].Slot] = saltReach{}
		}
	}
	c.refs = refs[:0]
}

// saltReach is what orderShards gathers about one salt of an allocation.
type saltReach struct {
	splits, last int    // how many splits have it; the last one seen, plus one
	total        uint32 // its shards' totalShards
	mixed        bool   // shards of different totals: reach unknown
	covered      uint32 // shards in the union of its ranges
}

type slotRange struct {
	slot int
	r    ShardRange
}

func (c *compiler) compileCondition(cd *Condition, w *ufc.Condition) error {
	cd.Attribute = w.Attribute
	cd.IsID = w.Attribute == "id" || (c.obfuscated && w.Attribute == idHash)
	cd.Op = parseOp(w.Operator, c.obfuscated)
	raw := w.Value
	switch cd.Op {
	case OpInvalid:
		return atPath("operator", fmt.Errorf("unknown operator %q", w.Operator))
	case Matches, NotMatches:
		s, ok := ufc.DecodeString(raw)
		if !ok {
			return atPath("value", fmt.Errorf("%s needs a string value, found %s", cd.Op, short(raw)))
		}
		s = c.text(s)
		cr, ok := c.regexps[s]
		if !ok {
			cr = compileRegexp(s)
			c.regexps[s] = cr
		}
		if cr.err != nil {
			// A pattern the engine cannot compile fails its own condition
			// only (newer dialect): the condition never passes, and a
			// result that skipped a rule because of it says so. The flag
			// keeps working; CheckPublishable refuses it.
			cd.Err = fmt.Errorf("%s: invalid regular expression %q: %v", cd.Op, s, cr.err)
			cd.Op = OpInvalid // fails every evaluation, NOT_MATCHES included
			return nil
		}
		cd.Re = cr.re
		if cr.uni != nil {
			cd.uni = cr.uni
			cd.Literal = literalMatch{Kind: kindUnicode}
		} else {
			cd.Literal = literalOf(cr.pattern)
		}
	case OneOf, NotOneOf:
		list, ok := ufc.DecodeStrings(raw)
		if !ok {
			return atPath("value", fmt.Errorf("%s needs an array of strings, found %s", cd.Op, short(raw)))
		}
		cd.Set = list
		if len(list) > 8 {
			cd.SetMap = make(map[string]struct{}, len(list))
			for _, s := range list {
				cd.SetMap[s] = struct{}{}
			}
		}
	case IsNull:
		switch {
		case string(raw) == "true":
			cd.WantNull = true
		case string(raw) == "false":
		case c.obfuscated:
			s, _ := ufc.DecodeString(raw)
			switch s {
			case trueHash:
				cd.WantNull = true
			case falseHsh:
			default:
				return atPath("value", fmt.Errorf("IS_NULL needs a boolean value, found %s", short(raw)))
			}
		default:
			return atPath("value", fmt.Errorf("IS_NULL needs a boolean value, found %s", short(raw)))
		}
	case GT, GTE, LT, LTE:
		// A number or numeric string compares numerically; otherwise a strict
		// MAJOR.MINOR.PATCH version compares by semver precedence. No string
		// is both, so the order of the two checks cannot change a result.
		var text string
		if ufc.IsNumber(raw) {
			text = string(raw)
		} else if s, ok := ufc.DecodeString(raw); ok {
			text = c.text(s)
		} else {
			return atPath("value", fmt.Errorf("%s needs a number or a version, found %s", cd.Op, short(raw)))
		}
		if x, ok := parseNumber(text); ok {
			cd.Num = x
		} else if v, ok := ParseSemver(text); ok {
			cd.Version, cd.IsVersion = &v, true
		} else {
			return atPath("value", fmt.Errorf("%s needs a number or a version, found %s", cd.Op, short(raw)))
		}
	}
	return nil
}

func short(raw []byte) string {
	if len(raw) > 40 {
		return string(raw[:37]) + "..."
	}
	if len(raw) == 0 {
		return "nothing"
	}
	return string(raw)
}

// parseNumber parses a decimal number (see ufc.ParseNumberString).
func parseNumber(s string) (float64, bool) { return ufc.ParseNumberString(s) }

// literalOf reduces a pattern made only of literal text, optionally anchored
// with ^ and $, to a string test.
func literalOf(pattern string) literalMatch {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return literalMatch{}
	}
	re = re.Simplify()
	parts := []*syntax.Regexp{re}
	if re.Op == syntax.OpConcat {
		parts = re.Sub
	}
	begin, end := false, false
	if len(parts) > 0 && parts[0].Op == syntax.OpBeginText {
		begin, parts = true, parts[1:]
	}
	if len(parts) > 0 && parts[len(parts)-1].Op == syntax.OpEndText {
		end, parts = true, parts[:len(parts)-1]
	}
	var text []rune
	for _, p := range parts {
		if p.Op != syntax.OpLiteral || p.Flags&syntax.FoldCase != 0 {
			return literalMatch{}
		}
		text = append(text, p.Rune...)
	}
	if len(parts) == 0 && !begin && !end {
		return literalMatch{}
	}
	kind := uint8(1)
	switch {
	case begin && end:
		kind = 4
	case begin:
		kind = 2
	case end:
		kind = 3
	}
	return literalMatch{Kind: kind, Text: string(text)}
}

// coversAll reports whether the union of ranges is [0, total).
func coversAll(ranges []ShardRange, total uint32) bool {
	if len(ranges) == 1 { // nearly always: no copy, no sort
		return ranges[0].Start == 0 && ranges[0].End >= total
	}
	rs := slices.Clone(ranges)
	slices.SortFunc(rs, func(a, b ShardRange) int { return int(a.Start) - int(b.Start) })
	var end uint32
	for _, r := range rs {
		if r.Start > end {
			return false
		}
		end = max(end, r.End)
	}
	return end >= total
}
