package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/httpapi"
	"github.com/allot-dev/allot/cmd/allot/internal/server"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

// experiments list and summary, human-readable and --json, against a real
// server whose database holds assignments (written through a second
// connection to the same SQLite file, as ingestion would).
func TestExperimentsListAndSummary(t *testing.T) {
	const token = "allot_admin_cli-view-token-0123456789"
	dbPath := filepath.Join(t.TempDir(), "a.db")
	s := startServer(t, server.Config{DB: dbPath, AdminToken: token})
	c := newCLI(t, s, token)
	run := c.out
	if out := run("experiments", "list"); !strings.Contains(out, "no experiments in production") {
		t.Errorf("empty list:\n%s", out)
	}
	for _, f := range []string{"button", "banner", "plain"} {
		run("flags", "create", f, "--variation", "control=old", "--variation", "treatment=new")
	}
	run("experiments", "create", "button", "color", "--traffic", "12.5", "--weight", "control=50", "--weight", "treatment=50", "--start")
	run("experiments", "create", "banner", "copy", "--weight", "control=50", "--weight", "treatment=50")
	run("flags", "rollout", "plain", "--alloc", "ramp", "--variation", "treatment", "--percent", "10")

	list := run("experiments", "list")
	for _, want := range []string{"FLAG", "banner", "copy", "draft", "button", "color", "running", "12.5%", "control=50% treatment=50%"} {
		if !strings.Contains(list, want) {
			t.Errorf("experiments list lacks %q:\n%s", want, list)
		}
	}
	if strings.Contains(list, "ramp") {
		t.Errorf("experiments list shows a rollout:\n%s", list)
	}
	if strings.Index(list, "banner") > strings.Index(list, "button") {
		t.Errorf("experiments list is not in flag order:\n%s", list)
	}
	var rows []experimentRow
	if err := json.Unmarshal([]byte(run("experiments", "list", "button", "--json")), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Flag != "button" || rows[0].Experiment != "color" || rows[0].Traffic != 1250 || rows[0].Status != "running" {
		t.Errorf("experiments list button --json: %+v", rows)
	}

	// 1000 subjects in control and 800 in treatment against 50/50: a
	// mismatch (p far below 0.001); banner's 500/510 is not one.
	db, err := store.Open(context.Background(), dbPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rowsIn []table.Row
	now := time.Now()
	add := func(flag, alloc, variation string, n int) {
		for i := range n {
			rowsIn = append(rowsIn, table.Row{EventID: fmt.Sprintf("%s-%s-%d", flag, variation, i), Environment: "production",
				Experiment: flag + "-" + alloc, FeatureFlag: flag, Allocation: alloc, Variation: variation,
				Subject: fmt.Sprintf("%s-%d", variation, i), SubjectAttributes: []byte("{}"), Timestamp: now, ReceivedAt: now})
		}
	}
	add("button", "color", "control", 1000)
	add("button", "color", "treatment", 800)
	add("banner", "copy", "control", 500)
	add("banner", "copy", "treatment", 510)
	if _, err := db.InsertAssignments(context.Background(), rowsIn); err != nil {
		t.Fatal(err)
	}

	sum := run("experiments", "summary", "button", "color")
	for _, want := range []string{"experiment button-color", "assignments 1800, subjects 1800", "control", "1000", "55.6%", "50.0%", "treatment", "800", "MISMATCH"} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary lacks %q:\n%s", want, sum)
		}
	}
	if sum := run("experiments", "summary", "banner", "copy"); !strings.Contains(sum, "sample ratio mismatch: none") {
		t.Errorf("balanced summary:\n%s", sum)
	}
	var js httpapi.SummaryResponse
	if err := json.Unmarshal([]byte(run("experiments", "summary", "button", "color", "--json")), &js); err != nil {
		t.Fatal(err)
	}
	if js.SRM == nil || !js.SRM.Mismatch || js.Variations["control"] != 1000 {
		t.Errorf("summary --json: %+v", js)
	}
}
