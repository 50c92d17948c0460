package ufc_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/allot-dev/allot/internal/ufc"
	"github.com/allot-dev/allot/internal/ufctest"
)

// TestDeobfuscateEppoFixture: Eppo's flags-v1-obfuscated.json, given the
// names it hashed, decodes to flags-v1.json flag for flag; a name missing
// leaves out exactly the flags that need it, each with what is missing.
func TestDeobfuscateEppoFixture(t *testing.T) {
	server := ufctest.Document(t, "flags-v1.json")
	names := ufctest.Names(t, server)
	client, err := ufc.Parse(ufctest.Document(t, "flags-v1-obfuscated.json"))
	if err != nil {
		t.Fatal(err)
	}
	doc, unresolved := ufc.Deobfuscate(client, names)
	if len(unresolved) != 0 || doc.Format != ufc.FormatServer {
		t.Fatalf("format %s, unresolved %v", doc.Format, unresolved)
	}
	parsed, err := ufc.Parse(server)
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Flags) != len(parsed.Flags) {
		t.Fatalf("%d flags, want %d", len(doc.Flags), len(parsed.Flags))
	}
	for k, w := range parsed.Flags {
		g := doc.Flags[k]
		// The obfuscated form keeps no trace of whether a comparison's
		// operand was a number or a numeric string (both compare the
		// same), nor of an empty list against an absent one.
		if gj, wj := comparable(t, g), comparable(t, w); !reflect.DeepEqual(gj, wj) {
			t.Errorf("flag %s differs:\n got %.600s\nwant %.600s", k, mustMarshal(t, gj), mustMarshal(t, wj))
		}
	}
	want := parsed.Flags

	// Without the attribute "country", the flags with a rule on it are
	// left out, and say so.
	var fewer []string
	for _, n := range names {
		if n != "country" {
			fewer = append(fewer, n)
		}
	}
	doc, unresolved = ufc.Deobfuscate(client, fewer)
	if len(unresolved) == 0 || len(doc.Flags)+len(unresolved) != len(want) {
		t.Fatalf("%d flags, %d unresolved", len(doc.Flags), len(unresolved))
	}
	for k, why := range unresolved {
		if !strings.Contains(why, "attribute name hash") {
			t.Errorf("%s: %s", k, why)
		}
	}
	// Without flag keys, every flag is unresolved, under its hash.
	doc, unresolved = ufc.Deobfuscate(client, nil)
	if len(doc.Flags) != 0 || len(unresolved) != len(want) {
		t.Fatalf("no names: %d flags, %d unresolved", len(doc.Flags), len(unresolved))
	}
}

func comparable(t *testing.T, f *ufc.Flag) any {
	var v any
	if err := json.Unmarshal(mustMarshal(t, f), &v); err != nil {
		t.Fatal(err)
	}
	return numbersAsText(v)
}

// numbersAsText turns every number in v into its text, so that 5 and "5"
// compare equal, and drops empty lists and nulls from objects.
func numbersAsText(v any) any {
	switch x := v.(type) {
	case float64:
		return mustText(x)
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			if l, ok := e.([]any); e == nil || ok && len(l) == 0 {
				continue
			}
			out[k] = numbersAsText(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = numbersAsText(e)
		}
		return out
	}
	return v
}

func mustText(f float64) string {
	b, _ := json.Marshal(f)
	return string(b)
}
