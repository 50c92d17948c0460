package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The flag's life from the CLI, against a real server on loopback: update
// (tags, owner), copy with the diff first, move and replace allocations,
// archive (refused with the reason, then done) and restore.
func TestFlagLifeCommands(t *testing.T) {
	const token = "allot_admin_cli-life-token-0123456789"
	_, c := startCLI(t, token)
	try, run := c.try, c.out
	run("environments", "create", "staging")
	run("flags", "create", "checkout", "--variation", "control=old", "--variation", "treatment=new")
	out := run("flags", "update", "checkout", "--tag", "pay", "--tag", "web", "--owner", "team-pay", "--description", "the checkout")
	var f struct {
		Tags        []string
		Owner       string
		Description string
	}
	json.Unmarshal([]byte(out), &f)
	if strings.Join(f.Tags, ",") != "pay,web" || f.Owner != "team-pay" || f.Description != "the checkout" {
		t.Fatalf("update: %s", out)
	}
	run("flags", "rollout", "checkout", "--env", "staging", "--alloc", "ramp", "--variation", "treatment", "--percent", "25")
	run("experiments", "create", "checkout", "exp", "--env", "staging", "--traffic", "10", "--weight", "control=50", "--weight", "treatment=50")
	run("flags", "move", "checkout", "--env", "staging", "--alloc", "exp", "--position", "0")

	// The diff first, nothing changed.
	out = run("flags", "copy", "checkout", "--from", "staging", "--to", "production")
	if !strings.Contains(out, "allocation ramp") || !strings.Contains(out, "allocation exp") || !strings.Contains(out, "--yes") {
		t.Fatalf("copy without --yes: %s", out)
	}
	if got := run("flags", "get", "checkout"); strings.Contains(got, `"ramp"`) {
		t.Fatalf("copy without --yes changed production: %s", got)
	}
	out = run("flags", "copy", "checkout", "--from", "staging", "--to", "production", "--yes")
	if !strings.Contains(out, "Copied") {
		t.Fatalf("copy --yes: %s", out)
	}
	var got struct {
		Settings struct {
			Allocations []struct {
				Key     string
				Traffic float64
				StartAt *string
			}
		}
	}
	json.Unmarshal([]byte(run("flags", "get", "checkout")), &got)
	if len(got.Settings.Allocations) != 2 || got.Settings.Allocations[0].Key != "exp" || got.Settings.Allocations[1].Key != "ramp" {
		t.Fatalf("production after the copy: %+v", got.Settings)
	}
	if out := run("flags", "copy", "checkout", "--from", "staging", "--to", "production", "--json"); !strings.Contains(out, `"differences": []`) {
		t.Fatalf("diff after the copy: %s", out)
	}

	file := filepath.Join(t.TempDir(), "exp.json")
	os.WriteFile(file, []byte(`{"type":"experiment","status":"running","traffic":40,"weights":[{"variation":"control","weight":50},{"variation":"treatment","weight":50}]}`), 0o600)
	run("flags", "replace", "checkout", "--alloc", "exp", "--file", file)
	json.Unmarshal([]byte(run("flags", "get", "checkout")), &got)
	if got.Settings.Allocations[0].Traffic != 40 {
		t.Fatalf("after replace: %+v", got.Settings)
	}

	// A running experiment: archiving is refused, with the reason.
	if code, _, errOut := try("flags", "archive", "checkout"); code == 0 || !strings.Contains(errOut, "stop it") {
		t.Fatalf("archive with a running experiment: exit %d, %s", code, errOut)
	}
	run("experiments", "stop", "checkout", "exp")
	if out := run("flags", "archive", "checkout"); !strings.Contains(out, "Archived checkout") {
		t.Fatalf("archive: %s", out)
	}
	if out := run("flags", "list", "--json"); !strings.Contains(out, `"archivedAt"`) {
		t.Fatalf("list after archive: %s", out)
	}
	if out := run("flags", "list"); !strings.Contains(out, "archived") || !strings.Contains(out, "pay,web") {
		t.Fatalf("list after archive: %s", out)
	}
	if out := run("flags", "restore", "checkout", "--json"); strings.Contains(out, `"archivedAt"`) {
		t.Fatalf("restore: %s", out)
	}
	if out := run("audit", "--limit", "3"); !strings.Contains(out, "restore") || !strings.Contains(out, "archive") {
		t.Fatalf("audit: %s", out)
	}
}
