package eval

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

func TestDropUnicodeFlag(t *testing.T) {
	for _, c := range []struct {
		in, out string
		ascii   bool
	}{
		{`abc`, `abc`, false},
		{`(?u)\bx`, `\bx`, false},
		{`(?iu)x`, `(?i)x`, false},
		{`(?ui:x)`, `(?i:x)`, false},
		{`(?u:x)`, `(?:x)`, false},
		{`(?-u)\bx`, `\bx`, true},
		{`(?i-u)x`, `(?i)x`, true},
		{`(?-u:x)`, `(?:x)`, true},
		{`\(?u)`, `\(?u)`, false},           // an escaped parenthesis is no group
		{`[(?u)]`, `[(?u)]`, false},         // nor is one inside a class
		{`[]](?u)x`, `[]]x`, false},         // a leading ] is a literal
		{`(?P<u>x)(?u)`, `(?P<u>x)`, false}, // named groups are left alone
		{`[[:alnum:]]+(?u)`, `[[:alnum:]]+`, false},
	} {
		out, ascii := dropUnicodeFlag(c.in)
		if out != c.out || ascii != c.ascii {
			t.Errorf("dropUnicodeFlag(%q) = %q, %v; want %q, %v", c.in, out, ascii, c.out, c.ascii)
		}
	}
}

func TestUnicodeWordBoundary(t *testing.T) {
	for _, c := range []struct {
		pattern, text string
		want          bool
	}{
		{`\bcafé\b`, "un café noir", true},
		{`\bcafé\b`, "cafés", false},
		{`\bcaf\b`, "café", false}, // é is a word character; Go's ASCII \b says true
		{`\bété`, "l'été", true},
		{`\Bté`, "été", true},
		{`(?u)^\b\w+\b$`, "word", true},
		{`\b`, "", false},
		{`\B`, "", true},
		{`\bНовый\b`, "С Новым годом", false},
		{`\bгод`, "С Новым годом", true},
		{`(?i)\bCAFÉ\b`, "un café", true},
		{`x*\b`, "ab", true},
	} {
		cr := compileRegexp(c.pattern)
		if cr.err != nil || cr.uni == nil {
			t.Fatalf("%q: %v (fallback %v)", c.pattern, cr.err, cr.uni != nil)
		}
		if got := cr.uni.MatchString(c.text); got != c.want {
			t.Errorf("%q on %q: %v, want %v", c.pattern, c.text, got, c.want)
		}
	}
	if cr := compileRegexp(`(?-u)\bcaf\b`); cr.uni != nil || !cr.re.MatchString("café") {
		t.Error("(?-u) must keep Go's ASCII \\b")
	}
	if cr := compileRegexp(`^[[:alpha:]]+$`); cr.err != nil || cr.uni != nil || !cr.re.MatchString("abc") {
		t.Errorf("POSIX class: %+v", cr)
	}
	for _, bad := range []string{`(?<=x)y`, `(a`, `\1`, `(?x) a b`, strings.Repeat("a", maxPattern+1)} {
		if cr := compileRegexp(bad); cr.err == nil {
			t.Errorf("%q compiled", bad[:min(len(bad), 20)])
		}
	}
}

// TestUnicodeProgAgreesOnASCII: on ASCII text, where Unicode and ASCII word
// boundaries coincide, the fallback engine answers as Go's regexp does, for
// random patterns made of the pieces that matter.
func TestUnicodeProgAgreesOnASCII(t *testing.T) {
	pieces := []string{`\b`, `\B`, `a`, `b`, `.`, `a*`, `(a|b)`, `[ab]+`, ` `, `^`, `$`, `\w`, `\W`, `x?`, `(?i)A`, `(ab)+`, `[^a]`}
	texts := []string{"", "a", "ab", "a b", " ab ", "ba a", "xx", "A", "b\nb", "aab bba"}
	r := rand.New(rand.NewPCG(3, 4))
	for range 3000 {
		var p strings.Builder
		for range 1 + r.IntN(5) {
			p.WriteString(pieces[r.IntN(len(pieces))])
		}
		re, err := regexp.Compile(p.String())
		if err != nil {
			continue
		}
		cr := compileRegexp(p.String())
		if cr.err != nil {
			t.Fatalf("%q: %v", p.String(), cr.err)
		}
		for _, s := range texts {
			var got bool
			if cr.uni != nil {
				got = cr.uni.MatchString(s)
			} else {
				got = cr.re.MatchString(s)
			}
			if got != re.MatchString(s) {
				t.Fatalf("%q on %q: fallback %v, regexp %v", p.String(), s, got, !got)
			}
		}
	}
}

// FuzzUnicodeRegexp: any pattern and text: compiling never panics, and on
// ASCII text the fallback engine agrees with Go's regexp.
func FuzzUnicodeRegexp(f *testing.F) {
	f.Add(`\bcafé\b`, "un café")
	f.Add(`(?u)^\w+\b`, "ab cd")
	f.Add(`(?iu:[[:alpha:]]+\B)`, "xyz")
	f.Fuzz(func(t *testing.T, pattern, text string) {
		cr := compileRegexp(pattern)
		if cr.err != nil || cr.uni == nil {
			return
		}
		got := cr.uni.MatchString(text)
		for i := 0; i < len(text); i++ {
			if text[i] >= 0x80 {
				return
			}
		}
		if re, err := regexp.Compile(cr.pattern); err == nil && re.MatchString(text) != got {
			t.Fatalf("%q on %q: fallback %v", pattern, text, got)
		}
	})
}

// TestUnicodeProgNoAlloc: the fallback engine reuses its state; a warm
// evaluation through it allocates nothing.
func TestUnicodeProgNoAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	cr := compileRegexp(`(?u)\bcafé\b`)
	if cr.uni == nil {
		t.Fatal("no fallback engine")
	}
	cr.uni.MatchString("warm up")
	if n := testing.AllocsPerRun(200, func() { cr.uni.MatchString("un café noir, s'il vous plaît") }); n >= 0.5 {
		t.Fatalf("%v allocations per match", n)
	}
}
