package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
)

// allot experiments history prints what the web UI's experiment page marks
// on its chart, from the same core operation, in text and --json.
func TestExperimentsHistory(t *testing.T) {
	const token = "allot_admin_cli-history-token-0123456789"
	_, c := startCLI(t, token)
	run := c.out
	run("flags", "create", "button", "--variation", "control=old", "--variation", "treatment=new")
	run("experiments", "create", "button", "color", "--traffic", "10", "--weight", "control=50", "--weight", "treatment=50")
	run("experiments", "start", "button", "color")
	run("experiments", "traffic", "button", "color", "30")

	out := run("experiments", "history", "button", "color")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "WHEN (UTC)") {
		t.Fatalf("history:\n%s", out)
	}
	for i, want := range []string{"Created (draft, traffic 10 %, weights control 50 % / treatment 50 %)", "Started; Flag turned on", "Traffic 10 % → 30 %"} {
		if !strings.Contains(lines[i+1], want) || !strings.Contains(lines[i+1], "admin@localhost") {
			t.Errorf("line %d %q lacks %q", i+1, lines[i+1], want)
		}
	}
	var h core.AllocationHistory
	if err := json.Unmarshal([]byte(run("experiments", "history", "button", "color", "--json")), &h); err != nil {
		t.Fatal(err)
	}
	if len(h.Events) != 3 || !h.Complete || h.Events[2].After.Traffic != 3000 {
		t.Fatalf("history --json: %+v", h)
	}
}
