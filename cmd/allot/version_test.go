package main

import (
	"encoding/json"
	"runtime/debug"
	"strings"
	"testing"
)

// The VCS stamp fills the version in, and -ldflags -X overrides win.
func TestCurrentBuild(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.0",
		Main:      debug.Module{Path: "github.com/allot-dev/allot/cmd/allot", Version: "v0.3.0"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123abcd"},
			{Key: "vcs.time", Value: "2026-11-27T12:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	got := currentBuild(bi, true)
	want := buildInfo{Version: "v0.3.0", Commit: "0123abcd", Modified: true, GoVersion: "go1.26.0", Date: "2026-11-27T12:00:00Z"}
	if got != want {
		t.Errorf("from build info: got %+v, want %+v", got, want)
	}

	version, commit, date = "v9.9.9", "feedface", "2026-01-02T03:04:05Z"
	t.Cleanup(func() { version, commit, date = "", "", "" })
	got = currentBuild(bi, true)
	want = buildInfo{Version: "v9.9.9", Commit: "feedface", GoVersion: "go1.26.0", Date: "2026-01-02T03:04:05Z"}
	if got != want {
		t.Errorf("with -X overrides: got %+v, want %+v", got, want)
	}
	if got := currentBuild(nil, false); got.Version != "v9.9.9" || got.GoVersion == "" {
		t.Errorf("without build info: %+v", got)
	}
}

func TestVersionCommand(t *testing.T) {
	code, out, errOut := runWith(nil, "version")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, w := range []string{"allot ", "commit ", "built ", "go "} {
		if !strings.Contains(out, w) {
			t.Errorf("version output lacks %q:\n%s", w, out)
		}
	}
	code, out, _ = runWith(nil, "version", "--json")
	var b buildInfo
	if code != 0 || json.Unmarshal([]byte(out), &b) != nil || !strings.HasPrefix(b.GoVersion, "go") || b.Version == "" {
		t.Errorf("version --json: exit %d, %q", code, out)
	}
	if code, _, _ := runWith(nil, "version", "extra"); code != 2 {
		t.Errorf("version extra: exit %d, want 2", code)
	}
}
