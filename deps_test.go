package allot

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestStandardLibraryOnly keeps the SDK free of third-party code: the
// package and everything it imports (tests excluded) must be the standard
// library or the module's own engine.
func TestStandardLibraryOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	allowed := map[string]bool{
		"github.com/allot-dev/allot":                  true,
		"github.com/allot-dev/allot/internal/eval":    true,
		"github.com/allot-dev/allot/internal/ufc":     true,
		"github.com/allot-dev/allot/internal/sdkseam": true,
	}
	for _, p := range strings.Fields(string(out)) {
		if !allowed[p] {
			t.Errorf("package allot depends on %s; the SDK may import only the standard library and internal/eval, internal/ufc, internal/sdkseam", p)
		}
	}
}

// TestSDKTestsStandardLibraryOnly: the SDK's packages and their tests import
// nothing outside the standard library and the module, so that the module
// can (and does, once the server has its own module) require nothing.
func TestSDKTestsStandardLibraryOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	out, err := exec.Command("go", "list", "-deps", "-test", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}",
		".", "./allottest", "./internal/eval", "./internal/ufc").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		p, _, _ = strings.Cut(p, " ") // "pkg [pkg.test]"
		p = strings.TrimSuffix(strings.TrimSuffix(p, ".test"), "_test")
		if p != "github.com/allot-dev/allot" && !strings.HasPrefix(p, "github.com/allot-dev/allot/") {
			t.Errorf("the SDK's packages or tests depend on %s", p)
		}
	}
}

// sdkModuleAlone reports whether this module is the SDK alone (the server
// lives in a nested module) rather than the single module of old, whose
// go.mod requires the server's dependencies.
func sdkModuleAlone(t *testing.T) bool {
	t.Helper()
	_, err := os.Stat(filepath.Join("cmd", "allot", "go.mod"))
	return err == nil
}

// TestModuleGraph: the SDK's module requires no other module, so that a
// program importing it gets no third-party code.
func TestModuleGraph(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	if !sdkModuleAlone(t) {
		t.Skip("the server shares this module until it moves to cmd/allot (its own go.mod)")
	}
	cmd := exec.Command("go", "list", "-m", "all")
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -m all: %v\n%s", err, out)
	}
	if mods := strings.Fields(string(out)); len(mods) != 1 || mods[0] != "github.com/allot-dev/allot" {
		t.Errorf("go list -m all in the SDK's module lists %q, want only github.com/allot-dev/allot", mods)
	}
}

// TestConsumerModule: a program that imports only the SDK (and allottest,
// in its tests) builds with no third-party module in its graph.
func TestConsumerModule(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	if !sdkModuleAlone(t) {
		t.Skip("the server shares this module until it moves to cmd/allot (its own go.mod)")
	}
	root, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string]string{
		"go.mod": "module example.com/consumer\n\ngo 1.25\n\nrequire github.com/allot-dev/allot v0.0.0\n\nreplace github.com/allot-dev/allot => " + root + "\n",
		"main.go": `package main

import (
	"context"
	"fmt"

	"github.com/allot-dev/allot"
)

func main() {
	c, _ := allot.NewClient(context.Background(), allot.Config{Offline: true})
	defer c.Close(context.Background())
	fmt.Println(c.GetStringAssignment("f", "s", nil, "d"))
}
`,
		"main_test.go": `package main

import (
	"testing"

	"github.com/allot-dev/allot/allottest"
)

func TestFlag(t *testing.T) {
	c, _ := allottest.NewClient(t, allottest.NewFlags().Set("f", "on"))
	if v := c.GetStringAssignment("f", "s", nil, "d"); v != "on" {
		t.Fatal(v)
	}
}
`,
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local")
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	mods := strings.Fields(run("list", "-m", "all"))
	// The consumer and the SDK (with its replacement), nothing else.
	var third []string
	for _, m := range mods {
		if m != "example.com/consumer" && m != "github.com/allot-dev/allot" && m != "v0.0.0" && m != "=>" && m != root {
			third = append(third, m)
		}
	}
	if len(third) != 0 {
		t.Errorf("a consumer of the SDK gets third-party modules: %q (go list -m all: %q)", third, mods)
	}
	if got := strings.TrimSpace(run("run", ".")); got != "d" {
		t.Errorf("the consumer printed %q", got)
	}
	run("vet", "./...")
	if runtime.GOOS != "windows" {
		run("test", "-count=1", "./...")
	}
}
