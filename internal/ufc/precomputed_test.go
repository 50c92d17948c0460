package ufc_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/allot-dev/allot/internal/ufc"
)

// wireFixture reads one of the shared configuration-wire fixtures.
func wireFixture(t *testing.T, name string) []byte {
	t.Helper()
	for _, dir := range []string{"../../testdata/configuration-wire", "../../../shared/testdata/configuration-wire"} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
			return b
		}
	}
	t.Fatalf("fixture %s not found", name)
	return nil
}

// TestObfuscatePrecomputedFixture encodes the plain twin of Eppo's
// precomputed-v1.json with the fixture's salt and compares the result, flag
// by flag and field by field, with the obfuscated fixture.
func TestObfuscatePrecomputedFixture(t *testing.T) {
	var plain struct {
		Precomputed struct {
			Response struct {
				CreatedAt   string          `json:"createdAt"`
				Salt        string          `json:"salt"`
				Environment ufc.Environment `json:"environment"`
				Flags       map[string]struct {
					AllocationKey  string            `json:"allocationKey"`
					VariationKey   string            `json:"variationKey"`
					VariationType  ufc.VariationType `json:"variationType"`
					VariationValue json.RawMessage   `json:"variationValue"`
					ExtraLogging   map[string]string `json:"extraLogging"`
					DoLog          bool              `json:"doLog"`
				} `json:"flags"`
			} `json:"response"`
		} `json:"precomputed"`
	}
	if err := json.Unmarshal(wireFixture(t, "precomputed-v1-deobfuscated.json"), &plain); err != nil {
		t.Fatal(err)
	}
	var obf struct {
		Precomputed struct {
			Response string `json:"response"`
		} `json:"precomputed"`
	}
	if err := json.Unmarshal(wireFixture(t, "precomputed-v1.json"), &obf); err != nil {
		t.Fatal(err)
	}
	var want map[string]json.RawMessage
	if err := json.Unmarshal([]byte(obf.Precomputed.Response), &want); err != nil {
		t.Fatal(err)
	}

	resp := plain.Precomputed.Response
	in := map[string]ufc.PrecomputedFlag{}
	for key, f := range resp.Flags {
		// The string form of the value: a JSON string's text, else the
		// literal as written (true, 42, 3.14).
		text := string(f.VariationValue)
		var s string
		if json.Unmarshal(f.VariationValue, &s) == nil {
			text = s
		}
		in[key] = ufc.PrecomputedFlag{AllocationKey: f.AllocationKey, VariationKey: f.VariationKey, VariationType: f.VariationType,
			VariationValue: text, ExtraLogging: f.ExtraLogging, DoLog: f.DoLog}
	}
	got := ufc.ObfuscatePrecomputed(resp.CreatedAt, resp.Environment.Name, resp.Salt, in)
	gotJSON, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var gotFields map[string]json.RawMessage
	if err := json.Unmarshal(gotJSON, &gotFields); err != nil {
		t.Fatal(err)
	}
	// Every top-level field but bandits (Allot has none) is equal.
	for _, k := range []string{"createdAt", "format", "salt", "obfuscated", "environment"} {
		if string(gotFields[k]) != string(want[k]) {
			t.Errorf("%s = %s, want %s", k, gotFields[k], want[k])
		}
	}
	var wantFlags, gotFlags map[string]map[string]any
	if err := json.Unmarshal(want["flags"], &wantFlags); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(gotFields["flags"], &gotFlags); err != nil {
		t.Fatal(err)
	}
	if len(wantFlags) != 7 || len(gotFlags) != len(wantFlags) {
		t.Fatalf("got %d flags, want %d (fixture has 7)", len(gotFlags), len(wantFlags))
	}
	for k, w := range wantFlags {
		if !reflect.DeepEqual(gotFlags[k], w) {
			t.Errorf("flag %s:\n got  %v\n want %v", k, gotFlags[k], w)
		}
	}
	// The field order of a flag entry is the fixture's, byte for byte.
	for _, key := range []string{"string-flag", "string-flag-with-extra-logging"} {
		h := ufc.SaltedFlagKey(resp.Salt, key)
		entry, _ := json.Marshal(got.Flags[h])
		if want := fmt.Sprintf(`"%s":%s`, h, entry); !contains(obf.Precomputed.Response, want) {
			t.Errorf("flag %s is not byte-for-byte the fixture's: %s", key, entry)
		}
	}
	if string(gotFields["bandits"]) != "{}" {
		t.Errorf("bandits = %s, want {}", gotFields["bandits"])
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestAppendPrecomputedIsObfuscatePrecomputed: the fast writer produces the
// same document as the structured encoder, escaping included.
func TestAppendPrecomputedIsObfuscatePrecomputed(t *testing.T) {
	flags := map[string]ufc.PrecomputedFlag{
		"a": {AllocationKey: "exp", VariationKey: "on", VariationType: ufc.TypeBoolean, VariationValue: "true", DoLog: true},
		"b": {AllocationKey: "r", VariationKey: "v", VariationType: ufc.TypeJSON, VariationValue: `{"k":"é\"<"}`,
			ExtraLogging: map[string]string{"holdoutKey": "h", "holdoutVariation": "status_quo"}},
		"c-ü": {AllocationKey: "", VariationKey: "x", VariationType: ufc.TypeString, VariationValue: ""},
	}
	for _, n := range []int{0, 1, 3} {
		in := map[string]ufc.PrecomputedFlag{}
		for k, v := range flags {
			if len(in) < n {
				in[k] = v
			}
		}
		want, _ := json.Marshal(ufc.ObfuscatePrecomputed("2026-01-02T03:04:05.000Z", `prod "eu"<>`, "c2FsdA==", in))
		got := ufc.AppendPrecomputed(nil, "2026-01-02T03:04:05.000Z", `prod "eu"<>`, "c2FsdA==", in)
		var a, b any
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatalf("not JSON: %v: %s", err, got)
		}
		json.Unmarshal(want, &b)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%d flags:\n got  %s\n want %s", n, got, want)
		}
	}
}
