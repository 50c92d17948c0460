package eval

import "strings"

// Semver is a strictly parsed semantic version (semver.org 2.0.0):
// MAJOR.MINOR.PATCH with an optional -prerelease and +build, no "v" prefix,
// no leading zeros. The strict form is what the npm and Rust parsers used by
// Eppo's Node and Python SDKs accept, so every SDK agrees on it.
type Semver struct {
	Major, Minor, Patch uint64
	Pre                 string // dot-separated identifiers, without the '-'
}

// ParseSemver parses a strict semantic version.
func ParseSemver(s string) (Semver, bool) {
	var v Semver
	if i := strings.IndexByte(s, '+'); i >= 0 {
		if !validIdents(s[i+1:], false) {
			return v, false
		}
		s = s[:i]
	}
	if i := strings.IndexByte(s, '-'); i >= 0 {
		v.Pre = s[i+1:]
		if !validIdents(v.Pre, true) {
			return v, false
		}
		s = s[:i]
	}
	var ok bool
	var rest string
	if v.Major, rest, ok = versionPart(s); !ok || rest == "" || rest[0] != '.' {
		return v, false
	}
	if v.Minor, rest, ok = versionPart(rest[1:]); !ok || rest == "" || rest[0] != '.' {
		return v, false
	}
	if v.Patch, rest, ok = versionPart(rest[1:]); !ok || rest != "" {
		return v, false
	}
	return v, true
}

func versionPart(s string) (uint64, string, bool) {
	i := 0
	var n uint64
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		if n > (1<<63)/10 {
			return 0, "", false
		}
		n = n*10 + uint64(s[i]-'0')
		i++
	}
	if i == 0 || (i > 1 && s[0] == '0') {
		return 0, "", false
	}
	return n, s[i:], true
}

func validIdents(s string, noLeadingZero bool) bool {
	if s == "" {
		return false
	}
	for id := range strings.SplitSeq(s, ".") {
		if id == "" {
			return false
		}
		numeric := true
		for i := 0; i < len(id); i++ {
			c := id[i]
			switch {
			case c >= '0' && c <= '9':
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-':
				numeric = false
			default:
				return false
			}
		}
		if noLeadingZero && numeric && len(id) > 1 && id[0] == '0' {
			return false
		}
	}
	return true
}

// Compare returns -1, 0 or +1 by semver precedence (build metadata ignored).
func (v Semver) Compare(w Semver) int {
	if c := cmpU(v.Major, w.Major); c != 0 {
		return c
	}
	if c := cmpU(v.Minor, w.Minor); c != 0 {
		return c
	}
	if c := cmpU(v.Patch, w.Patch); c != 0 {
		return c
	}
	// A version without prerelease ranks above one with.
	switch {
	case v.Pre == "" && w.Pre == "":
		return 0
	case v.Pre == "":
		return 1
	case w.Pre == "":
		return -1
	}
	a, b := v.Pre, w.Pre
	for {
		var x, y string
		x, a, _ = strings.Cut(a, ".")
		y, b, _ = strings.Cut(b, ".")
		if c := cmpIdent(x, y); c != 0 {
			return c
		}
		switch {
		case a == "" && b == "":
			return 0
		case a == "":
			return -1
		case b == "":
			return 1
		}
	}
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func isNum(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// cmpIdent compares prerelease identifiers: numeric ones numerically and
// below alphanumeric ones, which compare in ASCII order.
func cmpIdent(a, b string) int {
	an, bn := isNum(a), isNum(b)
	switch {
	case an && bn:
		if len(a) != len(b) {
			return cmpU(uint64(len(a)), uint64(len(b)))
		}
		return strings.Compare(a, b)
	case an:
		return -1
	case bn:
		return 1
	}
	return strings.Compare(a, b)
}
