package ufc

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestParseErrorPositions: every refusal is a *SyntaxError whose line,
// column (1-based, in bytes) and JSON path point at the problem.
func TestParseErrorPositions(t *testing.T) {
	cases := []struct {
		name      string
		doc       string
		line, col int
		path, msg string
	}{
		{"empty input", "", 1, 1, "", "expected a JSON object, found end of input"},
		{"only spaces", " \n\t ", 2, 3, "", "found end of input"},
		{"not an object", "\n\n  [1]", 3, 3, "", "found array"},
		{"trailing data", "{\"flags\": {}}\n  x", 2, 3, "", "unexpected data after the document"},
		{"trailing second document", `{"flags": {}}{"flags": {}}`, 1, 14, "", "unexpected data"},
		{"unterminated string", `{"flags": {"a`, 1, 14, "flags", "unterminated string"},
		{"truncated object", "{\"flags\": {\n", 2, 1, "flags", "expected object key, found end of input"},
		{"missing colon", `{"flags" {}}`, 1, 10, "", `expected ':'`},
		{"control character", "{\"flags\": {}, \"createdAt\": \"a\tb\"}", 1, 30, "createdAt", "control character"},
		{"bad escape", `{"createdAt": "\q", "flags": {}}`, 1, 17, "createdAt", `bad escape \q`},
		{"short unicode escape", `{"createdAt": "\u12", "flags": {}}`, 1, 18, "createdAt", `bad \u escape`},
		{"invalid UTF-8", "{\"createdAt\": \"a\xff\", \"flags\": {}}", 1, 16, "createdAt", "not valid UTF-8"},
		{"invalid UTF-8 outside a string", "{\"flags\": \xff}", 1, 11, "flags", `"flags" must be an object`},
		{"leading zero", `{"flags": {}, "x": 01}`, 1, 21, "", "expected ',' or '}'"},
		{"fraction without digits", `{"flags": {}, "x": 1.}`, 1, 22, "x", "malformed number"},
		{"exponent without digits", `{"flags": {}, "x": 1e}`, 1, 22, "x", "malformed number"},
		{"bad literal", `{"flags": {}, "x": nul}`, 1, 20, "x", "invalid literal"},
		{"trailing comma in array", `{"flags": {}, "x": [1,]}`, 1, 23, "x", "expected a value, found ']'"},
		{"deep nesting", `{"flags": {}, "x": ` + strings.Repeat("[", 600) + strings.Repeat("]", 600) + `}`, 1, 533, "x", "nesting too deep"},
		{"flags twice nested wrong", `{"flags": {"a": {"variations": {"v": {"key": "v", "value": [}}}}}`, 1, 61, `flags."a"`, "expected a value"},
		{"no flags", "{\n\"createdAt\": \"2026-01-01T00:00:00Z\"}", 1, 1, "", `no "flags" member`},
		{"unknown format", `{"format": "PRECOMPUTED", "flags": {}}`, 1, 1, "", "unsupported format"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.doc))
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("want a *SyntaxError, got %v", err)
			}
			if se.Line != c.line || se.Column != c.col || se.Path != c.path || !strings.Contains(se.Msg, c.msg) {
				t.Fatalf("got line %d, column %d, path %q: %q; want %d, %d, %q: %q", se.Line, se.Column, se.Path, se.Msg, c.line, c.col, c.path, c.msg)
			}
			if !strings.Contains(se.Error(), fmt.Sprintf("line %d, column %d", c.line, c.col)) {
				t.Fatalf("message %q does not give the position", se.Error())
			}
		})
	}
}

// TestParseInvalidFlagPaths: a flag of the wrong shape is set aside with the
// position and path of the problem; the rest of the document loads.
func TestParseInvalidFlagPaths(t *testing.T) {
	doc := "{\"flags\": {\n" +
		"  \"good\": {\"key\": \"good\", \"enabled\": true, \"variationType\": \"STRING\", \"variations\": {}, \"allocations\": []},\n" +
		"  \"bad.one\": {\"key\": \"bad.one\", \"enabled\": true,\n" +
		"    \"variations\": {\"v\": {\"key\": \"v\", \"value\": 1}},\n" +
		"    \"allocations\": [{\"key\": \"a\", \"splits\": [{\"variationKey\": \"v\", \"shards\": [{\"salt\": \"s\", \"ranges\": [{\"start\": \"0\", \"end\": 1}]}]}]}]},\n" +
		"  \"huge\": {\"key\": \"huge\", \"totalShards\": 99999999999999999999}\n" +
		"}}"
	d, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if d.Flags["good"] == nil || len(d.Invalid) != 2 {
		t.Fatalf("flags %v, invalid %v", d.Flags, d.Invalid)
	}
	var se *SyntaxError
	if !errors.As(d.Invalid["bad.one"], &se) || se.Line != 5 || se.Column != 113 ||
		se.Path != `flags."bad.one".allocations[0].splits[0].shards[0].ranges[0].start` || !strings.Contains(se.Msg, "expected number") {
		t.Fatalf("bad.one: %#v", d.Invalid["bad.one"])
	}
	if !errors.As(d.Invalid["huge"], &se) || se.Line != 6 || se.Path != `flags."huge".totalShards` || !strings.Contains(se.Msg, "expected an integer") {
		t.Fatalf("huge: %#v", d.Invalid["huge"])
	}
}

func TestParseEdgeCases(t *testing.T) {
	// Escapes in keys and values; unknown members, null included, at every
	// level; a surrogate pair and a lone surrogate; huge numbers kept as
	// their text; 500 levels of nesting in an unknown member are fine.
	doc := `{"id": null, "bandits": null, "fl\u0061gs": {"caf\u00e9": {"key": "caf\u00e9", "enabled": true, "variationType": "STRING",
	  "extra": {"deep": ` + strings.Repeat("[", 500) + strings.Repeat("]", 500) + `},
	  "variations": {"\ud83d\ude00": {"key": "\ud83d\ude00", "value": "\ud800 \"quoted\" \\ \/ \b\f\n\r\t"},
	                 "big": {"key": "big", "value": 1e400}, "neg": {"key": "neg", "value": -0.0E-0}},
	  "allocations": [{"key": "a", "rules": null, "startAt": null, "endAt": null, "doLog": null, "splits": [{"variationKey": "big", "shards": [], "extraLogging": null}]}]}},
	  "environment": null, "createdAt": null, "format": null}`
	d, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	f := d.Flags["café"]
	if f == nil || len(d.Invalid) != 0 {
		t.Fatalf("flags %v, invalid %v", d.Flags, d.Invalid)
	}
	if f.Variations[0].Key != "😀" {
		t.Fatalf("surrogate pair: %q", f.Variations[0].Key)
	}
	if s, ok := DecodeString(f.Variations[0].Value); !ok || s != "\uFFFD \"quoted\" \\ / \b\f\n\r\t" {
		t.Fatalf("escapes: %q", s)
	}
	if string(f.Variations[1].Value) != "1e400" || string(f.Variations[2].Value) != "-0.0E-0" {
		t.Fatalf("numbers: %s %s", f.Variations[1].Value, f.Variations[2].Value)
	}
	if !f.Allocations[0].DoLog || f.Allocations[0].Rules != nil {
		t.Fatalf("null members: %+v", f.Allocations[0])
	}
}

func TestDecodeHelpers(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string
		ok   bool
	}{
		{`"a"`, "a", true}, {`"a" `, "a", true}, {`"a"x`, "", false}, {`a`, "", false}, {``, "", false},
		{`"\u00e9"`, "é", true}, {"\"\xff\"", "", false},
	} {
		if got, ok := DecodeString([]byte(c.in)); got != c.want || ok != c.ok {
			t.Errorf("DecodeString(%q) = %q, %v", c.in, got, ok)
		}
	}
	if l, ok := DecodeStrings([]byte(`["a", "b,c"]`)); !ok || len(l) != 2 || l[1] != "b,c" {
		t.Errorf("DecodeStrings: %q %v", l, ok)
	}
	for _, bad := range []string{`["a", 1]`, `["a"] x`, `["a",]`, `"a"`, `[`} {
		if _, ok := DecodeStrings([]byte(bad)); ok {
			t.Errorf("DecodeStrings(%q) accepted", bad)
		}
	}
	for in, want := range map[string]bool{`{}`: true, ` [1, {"a": null}] `: true, `{} {}`: false, `{"a"}`: false, ``: false, `tru`: false} {
		if Valid([]byte(in)) != want {
			t.Errorf("Valid(%q) != %v", in, want)
		}
	}
}

// TestErrorPositionsLinear: a document of many malformed flags on one line
// (minified, as servers send it) costs one pass to locate every error; it
// used to count lines and columns from the start for each one.
func TestErrorPositionsLinear(t *testing.T) {
	const n = 5000
	var b strings.Builder
	b.WriteString(`{"flags": {`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"f%d": {"key": "f%d", "enabled": "yes"}`, i, i)
	}
	b.WriteString(`}}`)
	data := []byte(b.String())
	r := &reader{data: data, intern: map[string]string{}}
	d, err := r.parse()
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Invalid) != n {
		t.Fatalf("%d invalid flags, want %d", len(d.Invalid), n)
	}
	if r.scanned > len(data) {
		t.Fatalf("locating %d errors scanned %d bytes of a %d-byte document", n, r.scanned, len(data))
	}
	var se *SyntaxError
	if !errors.As(d.Invalid["f4999"], &se) || se.Line != 1 || data[se.Offset] != '"' || se.Column != se.Offset+1 {
		t.Fatalf("last error: %#v", d.Invalid["f4999"])
	}
}
