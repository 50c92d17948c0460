// Package leakcheck finds goroutines that tests leave running. It is the
// SDK module's own, standard-library-only replacement for goleak: the SDK
// module has no third-party requirement at all, not even for its tests.
package leakcheck

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Main runs the tests of m and then fails the binary if goroutines other
// than the runtime's and the testing package's are still running once they
// have had up to 5 s to end. Use it as TestMain:
//
//	func TestMain(m *testing.M) { leakcheck.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := Check(5 * time.Second); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// Check waits up to wait for every goroutine but the caller and the known
// background ones to end, and describes those that did not.
func Check(wait time.Duration) error {
	deadline := time.Now().Add(wait)
	pause := time.Millisecond
	for {
		leaked := Leaked()
		if len(leaked) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("leakcheck: %d goroutine(s) still running after the tests:\n\n%s", len(leaked), strings.Join(leaked, "\n\n"))
		}
		time.Sleep(pause)
		pause = min(2*pause, 100*time.Millisecond)
	}
}

// Leaked returns the stack of every goroutine running now except the
// caller's and the runtime's or testing package's own.
func Leaked() []string {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	blocks := bytes.Split(buf, []byte("\n\n"))
	var out []string
	// The first block is the calling goroutine.
	for _, b := range blocks[1:] {
		s := strings.TrimSpace(string(b))
		if s == "" || background(s) {
			continue
		}
		out = append(out, s)
	}
	return out
}

// ignored are functions whose goroutines are not the tests' doing: the
// test runner's, signal handling's, the fuzzing engine's.
var ignored = []string{
	"\ntesting.(*M).",
	"\ntesting.runTests",
	"\ntesting.(*T).Run",
	"\ntesting.tRunner(",
	"\ntesting.runFuzzTests",
	"\ntesting.(*F).",
	"\ninternal/fuzz.",
	"\nos/signal.signal_recv",
	"\nos/signal.loop",
	"\nruntime.ensureSigM",
	"\nruntime/trace.",
}

func background(stack string) bool {
	for _, f := range ignored {
		if strings.Contains(stack, f) {
			return true
		}
	}
	return false
}
