package eval

import (
	"errors"
	"regexp"
	"regexp/syntax"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Regular expressions of MATCHES and NOT_MATCHES.
//
// Eppo's SDKs hand patterns to their platform's engine (JavaScript, Go's
// RE2, Java); the newer dialect's patterns are written for the Rust regex
// crate, an RE2-style engine. Go's regexp reads both alike except for:
//
//   - the flag u ("(?u)", "(?iu:...)"): Unicode mode, always on in Rust and
//     unknown to Go, which rejects it. It is removed before compiling; "(?-u)"
//     (ASCII mode) is removed too and makes \b ASCII again.
//   - \b and \B: Unicode-aware in Rust, ASCII in Go. A pattern that uses them
//     runs on a small NFA simulation of Go's own compiled program (unicodeProg
//     below) with a Unicode word test; every other pattern keeps Go's regexp,
//     so the fallback costs only where it is used. For ASCII text both agree.
//
// POSIX classes ("[[:alnum:]]") need nothing: Go reads them as Rust does
// (ASCII). \d, \w and \s stay ASCII as in Go, JavaScript and Eppo's SDKs;
// the Rust crate reads them as Unicode classes (docs/ufc-dialects.md lists
// this difference). Anything else Go cannot compile (look-around,
// backreferences, the x flag) is an invalid pattern: its condition never
// passes and the flag keeps working.

// maxPattern bounds the length of a pattern: generous, since targeting by
// long alternations ("^(id1|id2|...)$") is common, and compiling stays
// linear in it (Go's own limits bound the program per byte).
const maxPattern = 1 << 20

// compiledRegexp is a compiled pattern, cached per document by its text.
type compiledRegexp struct {
	pattern string         // the pattern as Go reads it
	re      *regexp.Regexp // set unless the pattern needs unicodeProg
	uni     *unicodeProg   // set for patterns with \b or \B in Unicode mode
	err     error
}

// kindUnicode is the literalMatch kind of a condition that runs on its
// unicodeProg.
const kindUnicode = 5

func compileRegexp(pattern string) compiledRegexp {
	if len(pattern) > maxPattern {
		return compiledRegexp{err: errors.New("pattern longer than 1 MiB")}
	}
	translated, ascii := dropUnicodeFlag(pattern)
	re, err := syntax.Parse(translated, syntax.Perl)
	if err != nil {
		return compiledRegexp{err: err}
	}
	if !ascii && usesWordBoundary(re) {
		prog, err := syntax.Compile(re.Simplify())
		if err != nil {
			return compiledRegexp{err: err}
		}
		return compiledRegexp{pattern: translated, uni: newUnicodeProg(prog)}
	}
	rx, err := regexp.Compile(translated)
	if err != nil {
		var se *syntax.Error
		if errors.As(err, &se) {
			err = se
		}
		return compiledRegexp{err: err}
	}
	return compiledRegexp{pattern: translated, re: rx}
}

// dropUnicodeFlag removes the flag u from every flag group of a pattern
// ("(?u)", "(?iu)", "(?u:x)", "(?-u)") and reports whether the pattern
// turned Unicode mode off anywhere ("-u"). Escapes and character classes
// are copied as they are.
func dropUnicodeFlag(p string) (string, bool) {
	if !strings.Contains(p, "u") {
		return p, false
	}
	var b strings.Builder
	ascii := false
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p):
			b.WriteByte(c)
			i++
			b.WriteByte(p[i])
			continue
		case inClass:
			if c == ']' {
				inClass = false
			}
			b.WriteByte(c)
			continue
		case c == '[':
			inClass = true
			b.WriteByte(c)
			// A ']' right after '[' or '[^' is a literal, not the end.
			if i+1 < len(p) && p[i+1] == '^' {
				i++
				b.WriteByte('^')
			}
			if i+1 < len(p) && p[i+1] == ']' {
				i++
				b.WriteByte(']')
			}
			continue
		case c == '(' && i+1 < len(p) && p[i+1] == '?':
			j := i + 2
			for j < len(p) && strings.IndexByte("imsUux-", p[j]) >= 0 {
				j++
			}
			if j < len(p) && (p[j] == ')' || p[j] == ':') && j > i+2 {
				var flags []byte
				neg := false
				for _, f := range []byte(p[i+2 : j]) {
					switch {
					case f == '-':
						neg = true
						flags = append(flags, f)
					case f == 'u':
						ascii = ascii || neg
					default:
						flags = append(flags, f)
					}
				}
				if len(flags) > 0 && flags[len(flags)-1] == '-' {
					flags = flags[:len(flags)-1] // "(?i-u)" becomes "(?i)"
				}
				switch {
				case len(flags) > 0:
					b.WriteString("(?")
					b.Write(flags)
					b.WriteByte(p[j])
				case p[j] == ':':
					b.WriteString("(?:")
				}
				// "(?u)" alone disappears.
				i = j
				continue
			}
		}
		b.WriteByte(c)
	}
	return b.String(), ascii
}

func usesWordBoundary(re *syntax.Regexp) bool {
	if re.Op == syntax.OpWordBoundary || re.Op == syntax.OpNoWordBoundary {
		return true
	}
	for _, s := range re.Sub {
		if usesWordBoundary(s) {
			return true
		}
	}
	return false
}

// isWordRune is Rust's Unicode \w: alphabetic, marks, decimal digits,
// connector punctuation and the two join controls.
func isWordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return r == '_' || ('0' <= r && r <= '9') || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z')
	}
	return unicode.IsLetter(r) || unicode.Is(unicode.Nd, r) || unicode.IsMark(r) ||
		unicode.Is(unicode.Pc, r) || unicode.Is(unicode.Nl, r) || r == 0x200C || r == 0x200D
}

// unicodeProg runs a compiled program by NFA simulation (Thompson's
// construction, as Go's regexp does without its faster paths): time is
// linear in the text times the program, whatever the pattern. It only
// answers whether the pattern matches somewhere.
type unicodeProg struct {
	prog *syntax.Prog
	// machines holds the per-match state (*machine), reused so that a match
	// allocates nothing once warm.
	machines sync.Pool
}

type machine struct {
	clist, nlist threads
	stack        []uint32
}

func newUnicodeProg(p *syntax.Prog) *unicodeProg {
	u := &unicodeProg{prog: p}
	u.machines.New = func() any {
		n := len(p.Inst)
		return &machine{clist: newThreads(n), nlist: newThreads(n), stack: make([]uint32, 0, 16)}
	}
	return u
}

// threads is a sparse set of instruction indices (Briggs and Torczon):
// constant-time insert, membership and clear.
type threads struct {
	sparse []uint32
	dense  []uint32
}

func newThreads(n int) threads {
	return threads{sparse: make([]uint32, n), dense: make([]uint32, 0, n)}
}

func (t *threads) has(pc uint32) bool {
	i := t.sparse[pc]
	return int(i) < len(t.dense) && t.dense[i] == pc
}

func (t *threads) add(pc uint32) {
	t.sparse[pc] = uint32(len(t.dense))
	t.dense = append(t.dense, pc)
}

// emptyFlags is syntax.EmptyOpContext with a Unicode word boundary.
func emptyFlags(before, after rune) syntax.EmptyOp {
	f := syntax.EmptyOpContext(before, after) &^ (syntax.EmptyWordBoundary | syntax.EmptyNoWordBoundary)
	if (before >= 0 && isWordRune(before)) != (after >= 0 && isWordRune(after)) {
		return f | syntax.EmptyWordBoundary
	}
	return f | syntax.EmptyNoWordBoundary
}

// MatchString reports whether the pattern matches somewhere in s.
func (u *unicodeProg) MatchString(s string) bool {
	m := u.machines.Get().(*machine)
	defer u.machines.Put(m)
	m.clist.dense, m.nlist.dense = m.clist.dense[:0], m.nlist.dense[:0]
	clist, nlist, stack := &m.clist, &m.nlist, &m.stack
	before := rune(-1)
	for pos := 0; ; {
		after, width := rune(-1), 0
		if pos < len(s) {
			after, width = utf8.DecodeRuneInString(s[pos:])
		}
		flags := emptyFlags(before, after)
		// Unanchored search: a new thread starts at every position.
		if u.addThread(clist, uint32(u.prog.Start), flags, stack) {
			return true
		}
		if after < 0 {
			return false
		}
		nlist.dense = nlist.dense[:0]
		nextFlags := syntax.EmptyOp(0)
		computed := false
		for _, pc := range clist.dense {
			in := &u.prog.Inst[pc]
			switch in.Op {
			case syntax.InstRune, syntax.InstRune1, syntax.InstRuneAny, syntax.InstRuneAnyNotNL:
				if !in.MatchRune(after) {
					continue
				}
				if !computed {
					next := rune(-1)
					if pos+width < len(s) {
						next, _ = utf8.DecodeRuneInString(s[pos+width:])
					}
					nextFlags, computed = emptyFlags(after, next), true
				}
				if u.addThread(nlist, in.Out, nextFlags, stack) {
					return true
				}
			}
		}
		clist, nlist = nlist, clist
		before = after
		pos += width
	}
}

// addThread follows the empty transitions from pc under flags and adds the
// rune-consuming instructions it reaches to t. It reports whether a match
// instruction is reachable, which ends the search.
func (u *unicodeProg) addThread(t *threads, pc uint32, flags syntax.EmptyOp, stack *[]uint32) bool {
	st := append((*stack)[:0], pc)
	defer func() { *stack = st[:0] }()
	for len(st) > 0 {
		pc := st[len(st)-1]
		st = st[:len(st)-1]
		if t.has(pc) {
			continue
		}
		t.add(pc)
		in := &u.prog.Inst[pc]
		switch in.Op {
		case syntax.InstMatch:
			return true
		case syntax.InstAlt, syntax.InstAltMatch:
			st = append(st, in.Arg, in.Out)
		case syntax.InstCapture, syntax.InstNop:
			st = append(st, in.Out)
		case syntax.InstEmptyWidth:
			if syntax.EmptyOp(in.Arg)&^flags == 0 {
				st = append(st, in.Out)
			}
		}
	}
	return false
}
