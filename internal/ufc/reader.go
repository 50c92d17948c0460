package ufc

import (
	"bytes"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// reader is a small, strict JSON scanner used to decode UFC documents.
//
// encoding/json decodes a 10,000-flag document in well over 100 ms because it
// walks reflection metadata for every field; a hand-written reader that knows
// the schema does the same work in a fraction of that and lets us report the
// exact line and column of a problem. It only accepts RFC 8259 JSON.
type reader struct {
	data   []byte
	pos    int
	intern map[string]string // shares repeated strings (variation keys, salts)
	// lineAt and lineNo remember where the last error's line count stopped,
	// so that a document with many malformed flags (each one an error at a
	// later offset) counts its lines once rather than once per error.
	lineAt, lineNo, lineStart int
	scanned                   int // bytes errAt has scanned, for the linearity test
}

// SyntaxError reports malformed JSON or a document that is not UFC, with the
// place it was found.
type SyntaxError struct {
	Offset int    // byte offset into the document
	Line   int    // 1-based
	Column int    // 1-based, in bytes
	Path   string // JSON path of the value being read, when known
	Msg    string
}

func (e *SyntaxError) Error() string {
	if e.Path != "" {
		return fmt.Sprintf("ufc: line %d, column %d (at %s): %s", e.Line, e.Column, e.Path, e.Msg)
	}
	return fmt.Sprintf("ufc: line %d, column %d: %s", e.Line, e.Column, e.Msg)
}

func (r *reader) errAt(pos int, format string, args ...any) *SyntaxError {
	if pos > len(r.data) {
		pos = len(r.data)
	}
	if pos < r.lineAt || r.lineNo == 0 {
		r.lineAt, r.lineNo, r.lineStart = 0, 1, 0
	}
	seg := r.data[r.lineAt:pos]
	r.scanned += len(seg)
	r.lineNo += bytes.Count(seg, []byte{'\n'})
	if i := bytes.LastIndexByte(seg, '\n'); i >= 0 {
		r.lineStart = r.lineAt + i + 1
	}
	r.lineAt = pos
	line, col := r.lineNo, pos-r.lineStart+1
	return &SyntaxError{Offset: pos, Line: line, Column: col, Msg: fmt.Sprintf(format, args...)}
}

func (r *reader) ws() {
	for r.pos < len(r.data) {
		switch r.data[r.pos] {
		case ' ', '\t', '\n', '\r':
			r.pos++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end of input.
func (r *reader) peek() byte {
	r.ws()
	if r.pos >= len(r.data) {
		return 0
	}
	return r.data[r.pos]
}

func describe(c byte) string {
	switch {
	case c == 0:
		return "end of input"
	case c == '{':
		return "object"
	case c == '[':
		return "array"
	case c == '"':
		return "string"
	case c == 't' || c == 'f':
		return "boolean"
	case c == 'n':
		return "null"
	case c == '-' || (c >= '0' && c <= '9'):
		return "number"
	default:
		return strconv.QuoteRune(rune(c))
	}
}

func (r *reader) expect(c byte) error {
	if got := r.peek(); got != c {
		return r.errAt(r.pos, "expected %q, found %s", c, describe(got))
	}
	r.pos++
	return nil
}

// beginObject consumes '{'. Iterate the members with more.
func (r *reader) beginObject() error { return r.expect('{') }

// beginArray consumes '['. Iterate the elements with more.
func (r *reader) beginArray() error { return r.expect('[') }

// key reads the next member key of an object opened with beginObject. It
// returns ok=false after the closing '}'. first must start true.
func (r *reader) key(first *bool) (key []byte, ok bool, err error) {
	c := r.peek()
	if c == '}' {
		r.pos++
		return nil, false, nil
	}
	if !*first {
		if c != ',' {
			return nil, false, r.errAt(r.pos, "expected ',' or '}' in object, found %s", describe(c))
		}
		r.pos++
		c = r.peek()
	}
	*first = false
	if c != '"' {
		return nil, false, r.errAt(r.pos, "expected object key, found %s", describe(c))
	}
	if key, err = r.strBytes(); err != nil {
		return nil, false, err
	}
	if err := r.expect(':'); err != nil {
		return nil, false, err
	}
	return key, true, nil
}

// elem reports whether another element follows in an array opened with
// beginArray, consuming the separator or the closing ']'.
func (r *reader) elem(first *bool) (bool, error) {
	c := r.peek()
	if c == ']' {
		r.pos++
		return false, nil
	}
	if !*first {
		if c != ',' {
			return false, r.errAt(r.pos, "expected ',' or ']' in array, found %s", describe(c))
		}
		r.pos++
		if r.peek() == ']' {
			return false, r.errAt(r.pos, "expected a value, found ']'")
		}
	}
	*first = false
	return true, nil
}

// strBytes reads a string. Without escapes it returns a sub-slice of the
// input; with escapes, a freshly decoded copy.
func (r *reader) strBytes() ([]byte, error) {
	if err := r.expect('"'); err != nil {
		return nil, err
	}
	start := r.pos
	for i := r.pos; i < len(r.data); i++ {
		c := r.data[i]
		switch {
		case c == '"':
			r.pos = i + 1
			if !utf8.Valid(r.data[start:i]) {
				return nil, r.errAt(start, "string is not valid UTF-8")
			}
			return r.data[start:i], nil
		case c == '\\':
			return r.strEscaped(start)
		case c < 0x20:
			return nil, r.errAt(i, "control character in string")
		}
	}
	return nil, r.errAt(len(r.data), "unterminated string")
}

func (r *reader) strEscaped(start int) ([]byte, error) {
	out := make([]byte, 0, 32)
	i := start
	for i < len(r.data) {
		c := r.data[i]
		switch {
		case c == '"':
			r.pos = i + 1
			if !utf8.Valid(out) {
				return nil, r.errAt(start, "string is not valid UTF-8")
			}
			return out, nil
		case c < 0x20:
			return nil, r.errAt(i, "control character in string")
		case c != '\\':
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(r.data) {
			break
		}
		e := r.data[i+1]
		i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			ru, ok := r.hex4(i)
			if !ok {
				return nil, r.errAt(i, "bad \\u escape")
			}
			i += 4
			if utf16.IsSurrogate(ru) {
				if i+6 <= len(r.data) && r.data[i] == '\\' && r.data[i+1] == 'u' {
					if lo, ok := r.hex4(i + 2); ok {
						if d := utf16.DecodeRune(ru, lo); d != utf8.RuneError {
							ru = d
							i += 6
						} else {
							ru = utf8.RuneError
						}
					}
				} else {
					ru = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, ru)
		default:
			return nil, r.errAt(i-1, "bad escape \\%c", e)
		}
	}
	return nil, r.errAt(len(r.data), "unterminated string")
}

func (r *reader) hex4(i int) (rune, bool) {
	if i+4 > len(r.data) {
		return 0, false
	}
	var v rune
	for _, c := range r.data[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			v = v<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

// str reads a string.
func (r *reader) str() (string, error) {
	b, err := r.strBytes()
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// istr reads a string and interns it: for strings that repeat across flags,
// such as variation keys, attribute names and operators.
func (r *reader) istr() (string, error) {
	b, err := r.strBytes()
	if err != nil {
		return "", err
	}
	return r.internBytes(b), nil
}

func (r *reader) internBytes(b []byte) string {
	if r.intern == nil {
		return string(b)
	}
	if s, ok := r.intern[string(b)]; ok {
		return s
	}
	s := string(b)
	r.intern[s] = s
	return s
}

// numberBytes reads a JSON number and returns its text.
func (r *reader) numberBytes() ([]byte, error) {
	r.ws()
	start := r.pos
	i := r.pos
	d := r.data
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		return nil, r.errAt(start, "expected number, found %s", describe(r.peek()))
	}
	if i < len(d) && d[i] == '.' {
		i++
		j := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == j {
			return nil, r.errAt(i, "malformed number")
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		j := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == j {
			return nil, r.errAt(i, "malformed number")
		}
	}
	r.pos = i
	return d[start:i], nil
}

func (r *reader) boolean() (bool, error) {
	r.ws()
	if bytes.HasPrefix(r.data[r.pos:], []byte("true")) {
		r.pos += 4
		return true, nil
	}
	if bytes.HasPrefix(r.data[r.pos:], []byte("false")) {
		r.pos += 5
		return false, nil
	}
	return false, r.errAt(r.pos, "expected boolean, found %s", describe(r.peek()))
}

// null consumes a null literal if one is next and reports whether it did.
func (r *reader) null() bool {
	r.ws()
	if bytes.HasPrefix(r.data[r.pos:], []byte("null")) {
		r.pos += 4
		return true
	}
	return false
}

// skip consumes any value, checking its syntax.
func (r *reader) skip() error {
	return r.skipDepth(0)
}

const maxDepth = 512

func (r *reader) skipDepth(depth int) error {
	if depth > maxDepth {
		return r.errAt(r.pos, "nesting too deep")
	}
	switch c := r.peek(); {
	case c == '{':
		r.pos++
		for first := true; ; {
			_, ok, err := r.key(&first)
			if err != nil || !ok {
				return err
			}
			if err := r.skipDepth(depth + 1); err != nil {
				return err
			}
		}
	case c == '[':
		r.pos++
		for first := true; ; {
			more, err := r.elem(&first)
			if err != nil || !more {
				return err
			}
			if err := r.skipDepth(depth + 1); err != nil {
				return err
			}
		}
	case c == '"':
		_, err := r.strBytes()
		return err
	case c == 't' || c == 'f':
		_, err := r.boolean()
		return err
	case c == 'n':
		if r.null() {
			return nil
		}
		return r.errAt(r.pos, "invalid literal")
	case c == '-' || (c >= '0' && c <= '9'):
		_, err := r.numberBytes()
		return err
	default:
		return r.errAt(r.pos, "expected a value, found %s", describe(c))
	}
}

// raw consumes any value and returns its exact text.
func (r *reader) raw() ([]byte, error) {
	r.ws()
	start := r.pos
	if err := r.skip(); err != nil {
		return nil, err
	}
	return r.data[start:r.pos], nil
}
