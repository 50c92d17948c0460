package main

import (
	"strings"
	"testing"
)

// TestExperimentsCreateStartTurnsTheFlagOn: `allot experiments create
// --start` in a disabled flag turns it on (docs/rules.md) and prints the
// core's warning; before the core, the CLI left the flag off and SDKs
// served defaults.
func TestExperimentsCreateStartTurnsTheFlagOn(t *testing.T) {
	s := startParityServer(t)
	run := newCLI(t, s, parityToken).run
	run("flags", "create", "checkout", "--variation", "control=old", "--variation", "treatment=new")
	out, warn := run("experiments", "create", "checkout", "exp", "--traffic", "10", "--weight", "control=50", "--weight", "treatment=50", "--start")
	if !strings.Contains(warn, "warning: experiment exp started, so flag checkout is now on in production") {
		t.Fatalf("no warning: %q", warn)
	}
	if !strings.Contains(out, `"enabled": true`) || !strings.Contains(out, `"status": "running"`) {
		t.Fatalf("settings: %s", out)
	}
}
