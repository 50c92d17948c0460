// Package ufctest loads the shared UFC conformance fixtures (testdata/ufc at
// the module root) for the tests of every package that evaluates them: the
// engine, the SDK, the CLI and the compatibility tests.
package ufctest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/allot-dev/allot/internal/ufc"
)

// Case is one fixture file: a flag, the type and default a getter passes,
// and the subjects with their expected results.
type Case struct {
	File          string            `json:"-"`
	Flag          string            `json:"flag"`
	VariationType ufc.VariationType `json:"variationType"`
	DefaultValue  json.RawMessage   `json:"defaultValue"`
	Subjects      []Subject         `json:"subjects"`
}

// Subject is one subject check of a fixture.
type Subject struct {
	SubjectKey        string          `json:"subjectKey"`
	SubjectAttributes map[string]any  `json:"subjectAttributes"`
	Assignment        json.RawMessage `json:"assignment"`
	EvaluationDetails Details         `json:"evaluationDetails"`
}

// Details is the part of a fixture's evaluationDetails that Allot checks.
type Details struct {
	FlagEvaluationCode     string              `json:"flagEvaluationCode"`
	VariationKey           *string             `json:"variationKey"`
	MatchedAllocation      *AllocationOutcome  `json:"matchedAllocation"`
	UnmatchedAllocations   []AllocationOutcome `json:"unmatchedAllocations"`
	UnevaluatedAllocations []AllocationOutcome `json:"unevaluatedAllocations"`
}

// AllocationOutcome is what happened to one allocation.
type AllocationOutcome struct {
	Key      string `json:"key"`
	Code     string `json:"allocationEvaluationCode"`
	Position int    `json:"orderPosition"`
}

// Variation returns the expected variation key ("" when none).
func (d Details) Variation() string {
	if d.VariationKey == nil {
		return ""
	}
	return *d.VariationKey
}

// Allocation returns the expected matched allocation key ("" when none).
func (d Details) Allocation() string {
	if d.MatchedAllocation == nil {
		return ""
	}
	return d.MatchedAllocation.Key
}

// Checks is the number of subject checks in the fixtures.
const Checks = 225

// Dir returns the fixture directory, found by walking up from the test's
// working directory to the root of the SDK's module (not the first go.mod:
// tests of the server's nested module under cmd/allot use the fixtures too).
func Dir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if mod, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && isRootModule(mod) {
			return filepath.Join(dir, "testdata", "ufc")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("ufctest: no go.mod of " + rootModule + " above the working directory")
		}
		dir = parent
	}
}

const rootModule = "github.com/allot-dev/allot"

// isRootModule reports whether a go.mod declares the SDK's module.
func isRootModule(gomod []byte) bool {
	for line := range strings.Lines(string(gomod)) {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`) == rootModule
		}
	}
	return false
}

// Document returns a fixture document: "flags-v1.json" or
// "flags-v1-obfuscated.json".
func Document(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(Dir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// Cases returns every fixture file, sorted by name, and checks that they
// hold all Checks subject checks.
func Cases(t testing.TB) []Case {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(Dir(t), "tests", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("ufctest: no fixtures: %v", err)
	}
	sort.Strings(files)
	var cases []Case
	n := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var c Case
		if err := json.Unmarshal(data, &c); err != nil {
			t.Fatalf("ufctest: %s: %v", f, err)
		}
		c.File = filepath.Base(f)
		n += len(c.Subjects)
		cases = append(cases, c)
	}
	if n != Checks {
		t.Fatalf("ufctest: %d subject checks, want %d", n, Checks)
	}
	return cases
}

// Names is every string in a JSON document, keys and values, sorted: for
// the fixture SERVER document, the names that resolve every hash of its
// obfuscated twin.
func Names(t testing.TB, doc []byte) []string {
	t.Helper()
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	var walk func(any)
	walk = func(x any) {
		switch x := x.(type) {
		case string:
			set[x] = true
		case map[string]any:
			for k, e := range x {
				set[k] = true
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}
