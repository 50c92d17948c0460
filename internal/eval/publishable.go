package eval

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/allot-dev/allot/internal/ufc"
)

// maxSafeInteger is 2^53: JavaScript numbers (Eppo's JavaScript and Node
// SDKs) represent every integer up to it exactly, and no further.
const maxSafeInteger = 1 << 53

// Problem is one reason a flag cannot be published.
type Problem struct {
	Flag string // the flag's key in the document
	// Path is the JSON path of the problem in the document, such as
	// `flags.checkout.variations.big.value` or
	// `flags.checkout.allocations[0].rules[1].conditions[0].value`.
	Path   string
	Reason string
}

func (p Problem) String() string { return p.Path + ": " + p.Reason }

// PublishError lists every problem CheckPublishable found, in document
// order within a flag and flags sorted by key.
type PublishError struct {
	Problems []Problem
}

func (e *PublishError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// Flags returns the distinct keys of the flags with problems, sorted.
func (e *PublishError) Flags() []string {
	var keys []string
	for _, p := range e.Problems {
		if len(keys) == 0 || keys[len(keys)-1] != p.Flag {
			keys = append(keys, p.Flag)
		}
	}
	return keys
}

// CheckPublishable is the strict judge of a document a server is about to
// publish, and so the single judge of a valid flag for Allot's server. It
// returns nil, or a *PublishError naming each flag and the JSON path of each
// problem. It refuses everything that would make an SDK answer
// ASSIGNMENT_ERROR for some subject:
//
//   - a flag Compile marks malformed (a wrongly shaped flag, an unknown
//     variationType or operator, a badly typed operand, a shard without a
//     totalShards or with a range outside it, a duplicate variation, an
//     unreadable startAt or endAt);
//   - a regular expression the engine cannot compile (the lenient load path
//     lets that condition fail alone; a server must not publish it);
//   - a variation whose value does not fit the flag's type;
//   - a split naming a variation the flag does not have;
//
// and, because Eppo's JavaScript SDKs cannot represent them, INTEGER values
// beyond ±2^53.
//
// Loading (Load, Compile) stays lenient: an SDK given a document from
// elsewhere keeps every good flag and answers ASSIGNMENT_ERROR only for the
// bad ones. CheckPublishable compiles the document itself, so it costs one
// Compile; it does not check createdAt or the format (Compile does).
func CheckPublishable(doc *ufc.Document) error {
	s, err := Compile(doc)
	if err != nil {
		return err
	}
	var problems []Problem
	for key, err := range doc.Invalid {
		problems = append(problems, Problem{Flag: key, Path: syntaxPath(key, err), Reason: reason(err)})
	}
	for key, w := range doc.Flags {
		problems = append(problems, checkFlag(key, w, s.flags[key])...)
	}
	if len(problems) == 0 {
		return nil
	}
	sort.SliceStable(problems, func(i, j int) bool { return problems[i].Flag < problems[j].Flag })
	return &PublishError{Problems: problems}
}

// CheckFlag is CheckPublishable for one flag of a SERVER document, as the
// server's domain core checks a flag it is about to store.
func CheckFlag(key string, f *ufc.Flag) error {
	return CheckPublishable(&ufc.Document{Format: ufc.FormatServer, Flags: map[string]*ufc.Flag{key: f}})
}

func flagPath(key string) string { return "flags." + key }

// syntaxPath is the document path of a reader error. The reader quotes
// the flag key ("flags.\"f\".enabled"); paths here do not.
func syntaxPath(key string, err error) string {
	var se *ufc.SyntaxError
	if errors.As(err, &se) && se.Path != "" {
		if rest, ok := strings.CutPrefix(se.Path, "flags."+strconv.Quote(key)); ok {
			return flagPath(key) + rest
		}
		return se.Path
	}
	return flagPath(key)
}

func reason(err error) string {
	var se *ufc.SyntaxError
	if errors.As(err, &se) {
		return se.Msg
	}
	var fe *FlagError
	if errors.As(err, &fe) {
		return fe.Msg
	}
	return err.Error()
}

func checkFlag(key string, w *ufc.Flag, f *Flag) []Problem {
	if f == nil {
		return nil
	}
	base := flagPath(key)
	if f.Err != nil {
		path := base
		var fe *FlagError
		if errors.As(f.Err, &fe) && fe.Path != "" {
			path += "." + fe.Path
		}
		return []Problem{{Flag: key, Path: path, Reason: reason(f.Err)}}
	}
	var out []Problem
	for i := range f.Variations {
		v := &f.Variations[i]
		path := base + ".variations." + w.Variations[i].Key + ".value"
		switch {
		case v.Err != nil:
			out = append(out, Problem{key, path, v.Err.Error()})
		case f.Type == ufc.TypeInteger && (v.Int() > maxSafeInteger || v.Int() < -maxSafeInteger):
			out = append(out, Problem{key, path, fmt.Sprintf("INTEGER value %d is beyond ±2^53, which JavaScript SDKs cannot represent", v.Int())})
		}
	}
	for i := range f.Allocations {
		a := &f.Allocations[i]
		apath := base + ".allocations[" + strconv.Itoa(i) + "]"
		for j := range a.Rules {
			for k := range a.Rules[j].Conditions {
				if c := &a.Rules[j].Conditions[k]; c.Err != nil {
					out = append(out, Problem{key, fmt.Sprintf("%s.rules[%d].conditions[%d].value", apath, j, k), c.Err.Error()})
				}
			}
		}
		for j := range a.Splits {
			if sp := &a.Splits[j]; sp.Variation == nil {
				out = append(out, Problem{key, fmt.Sprintf("%s.splits[%d].variationKey", apath, j), fmt.Sprintf("names variation %q, which the flag does not have", sp.VariationKey)})
			}
		}
	}
	return out
}
