package allot

import (
	"os/exec"
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
		"github.com/allot-dev/allot":               true,
		"github.com/allot-dev/allot/internal/eval": true,
		"github.com/allot-dev/allot/internal/ufc":  true,
	}
	for _, p := range strings.Fields(string(out)) {
		if !allowed[p] {
			t.Errorf("package allot depends on %s; the SDK may import only the standard library and internal/eval, internal/ufc", p)
		}
	}
}
