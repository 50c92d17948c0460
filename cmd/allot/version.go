package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set at link time by release builds, which have no VCS stamp to read (a
// Docker build without .git, a tarball):
//
//	go build -ldflags "-X main.version=v1.2.3 -X main.commit=abc123 -X main.date=2026-11-27T13:00:00Z" ./cmd/allot
//
// When empty, runtime/debug.ReadBuildInfo fills them in: the module
// version `go install ...@v1.2.3` recorded, and the vcs.revision and
// vcs.time that `go build` stamps from the git checkout.
var version, commit, date string

func init() {
	register("version", "print the version, commit, Go version and build date", runVersion)
}

// buildInfo is what allot version prints.
type buildInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Modified  bool   `json:"modified,omitempty"`
	GoVersion string `json:"go"`
	Date      string `json:"date"`
}

// currentBuild merges the link-time overrides with what the Go toolchain
// recorded in the binary; an override always wins.
func currentBuild(bi *debug.BuildInfo, ok bool) buildInfo {
	b := buildInfo{Version: "(devel)", Commit: "unknown", Date: "unknown", GoVersion: runtime.Version()}
	if ok && bi != nil {
		if v := bi.Main.Version; v != "" {
			b.Version = v
		}
		if bi.GoVersion != "" {
			b.GoVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Commit = s.Value
			case "vcs.time":
				b.Date = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	if version != "" {
		b.Version = version
	}
	if commit != "" {
		b.Commit = commit
		b.Modified = false
	}
	if date != "" {
		b.Date = date
	}
	return b
}

func runVersion(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "usage: allot version [--json]\n\nflags:")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return &exitError{code: 2}
	}
	b := currentBuild(debug.ReadBuildInfo())
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		return enc.Encode(b)
	}
	c := b.Commit
	if b.Modified {
		c += " (modified)"
	}
	fmt.Fprintf(e.stdout, "allot %s\ncommit %s\nbuilt  %s\ngo     %s\n", b.Version, c, b.Date, b.GoVersion)
	return nil
}
