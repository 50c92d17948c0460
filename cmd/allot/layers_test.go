package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/httpapi"
	"github.com/allot-dev/allot/cmd/allot/internal/server"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/table"
	"github.com/allot-dev/allot/internal/eval"
	"github.com/allot-dev/allot/internal/ufc"
)

// The layer and holdout commands against a real server, down to the
// configuration the SDK endpoint serves.
func TestLayerAndHoldoutCommands(t *testing.T) {
	const token = "allot_admin_cli-test-token-0123456789"
	dbPath := filepath.Join(t.TempDir(), "a.db")
	s := startServer(t, server.Config{DB: dbPath, AdminToken: token})
	c := newCLI(t, s, token)
	try := c.try
	run := c.out
	fail := func(want string, args ...string) {
		t.Helper()
		code, out, errOut := try(args...)
		if code == 0 || !strings.Contains(errOut, want) {
			t.Fatalf("allot %s: exit %d, want a failure saying %q\n%s%s", strings.Join(args, " "), code, want, out, errOut)
		}
	}
	run("layers", "create", "checkout")
	for _, f := range []string{"a", "b", "c"} {
		run("flags", "create", f, "--variation", "control=old", "--variation", "treatment=new")
	}
	run("experiments", "create", "a", "exp", "--weight", "control=50", "--weight", "treatment=50", "--layer", "checkout", "--layer-share", "30", "--start")
	run("experiments", "create", "b", "exp", "--weight", "control=50", "--weight", "treatment=50", "--layer", "checkout", "--layer-share", "50", "--start")
	fail("layer checkout has 20 % free", "experiments", "create", "c", "exp", "--weight", "control=50", "--weight", "treatment=50", "--layer", "checkout", "--layer-share", "30")
	fail("has 2 experiments", "layers", "delete", "checkout")
	run("experiments", "layer", "a", "exp", "--layer", "checkout", "--layer-share", "40")
	show := run("layers", "show", "checkout")
	for _, want := range []string{"[AAAAAAAAAAAAAAABBBBBBBBBBBBBBBBBBBBBBBBBAAAAA.....]", "a/exp", "40 %", "[0, 3000) [8000, 9000)", "free", "10 %"} {
		if !strings.Contains(show, want) {
			t.Fatalf("layers show lacks %q:\n%s", want, show)
		}
	}
	if out := run("layers", "list"); !strings.Contains(out, "a/exp 40 %, b/exp 50 %") {
		t.Fatalf("layers list:\n%s", out)
	}

	run("holdouts", "create", "q3", "--percent", "10")
	run("experiments", "create", "c", "exp", "--weight", "control=50", "--weight", "treatment=50")
	run("holdouts", "add-flag", "q3", "c")
	run("experiments", "start", "c", "exp")
	fail("running", "holdouts", "add-flag", "q3", "a", "exp")
	if out := run("holdouts", "ship", "q3", "c", "--winner", "treatment"); !strings.Contains(out, `"shipped": "treatment"`) {
		t.Fatalf("ship: %s", out)
	}
	run("flags", "enable", "c")
	key := strings.TrimSpace(run("keys", "create", "web"))
	snap, err := fetchConfigForTest(s.URL(), key)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	inA, inB, held := 0, 0, 0
	var logged []table.Row // c's assignments, as an SDK would log them
	halves := map[string]int64{}
	for i := range 20000 {
		subj := fmt.Sprintf("s%d", i)
		a := snap.Evaluate("a", subj, nil, ufc.TypeString, now)
		b := snap.Evaluate("b", subj, nil, ufc.TypeString, now)
		if a.AllocationKey() == "exp" {
			inA++
		}
		if b.AllocationKey() == "exp" {
			inB++
			if a.AllocationKey() == "exp" {
				t.Fatalf("%s is in the experiments of a and b", subj)
			}
		}
		c := snap.Evaluate("c", subj, nil, ufc.TypeString, now)
		if c.Code == eval.Match {
			row := table.Row{EventID: "c-" + subj, Environment: "production", Experiment: "c-" + c.AllocationKey(), FeatureFlag: "c",
				Allocation: c.AllocationKey(), Variation: c.VariationKey(), Subject: subj, SubjectAttributes: []byte("{}"), Timestamp: now, ReceivedAt: now}
			if c.Split != nil {
				row.Holdout, row.HoldoutVariation = c.Split.ExtraLogging["holdoutKey"], c.Split.ExtraLogging["holdoutVariation"]
			}
			halves[row.HoldoutVariation]++
			logged = append(logged, row)
		}
		if c.AllocationKey() == "exp-q3" {
			held++
			if h := c.Split.ExtraLogging["holdoutVariation"]; (h == "all_shipped") != (c.VariationKey() == "treatment") {
				t.Fatalf("%s: holdout half %s sees %s", subj, h, c.VariationKey())
			}
		}
	}
	if inA < 7600 || inA > 8400 || inB < 9600 || inB > 10400 || held < 1700 || held > 2300 {
		t.Fatalf("a %d, b %d, held %d of 20000", inA, inB, held)
	}
	// The experiment's summary, per holdout half, from the assignment
	// table (written through a second connection, as ingestion would).
	db, err := store.Open(context.Background(), dbPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.InsertAssignments(context.Background(), logged); err != nil {
		t.Fatal(err)
	}
	sum := run("experiments", "summary", "c", "exp")
	for _, want := range []string{"holdout q3 (allocation exp-q3)", fmt.Sprintf("subjects %d", held),
		fmt.Sprintf("status_quo   %d", halves["status_quo"]), fmt.Sprintf("all_shipped  %d", halves["all_shipped"]),
		"treatment " + strconv.FormatInt(halves["all_shipped"], 10), "holdout halves: no sample ratio mismatch"} {
		if !strings.Contains(sum, want) {
			t.Fatalf("summary lacks %q:\n%s", want, sum)
		}
	}
	var js httpapi.SummaryResponse
	if err := json.Unmarshal([]byte(run("experiments", "summary", "c", "exp", "--json")), &js); err != nil {
		t.Fatal(err)
	}
	if h := js.Holdout; h == nil || h.Subjects != int64(held) || len(h.HoldoutHalves) != 2 || h.SRM == nil || h.SRM.Mismatch ||
		h.HoldoutHalves[0].Variations["control"] != halves["status_quo"] || js.Subjects != halves[""] || js.HoldoutHalves != nil {
		t.Fatalf("summary --json: %+v holdout %+v", js, js.Holdout)
	}

	run("experiments", "leave-layer", "a", "exp")
	if out := run("layers", "show", "checkout"); strings.Contains(out, "a/exp") {
		t.Fatalf("a still in the layer:\n%s", out)
	}
	// Taking c out of the holdout moves its held-out subjects: refused
	// without --confirm, done and said with it.
	fail("confirm", "holdouts", "remove-flag", "q3", "c")
	fail("does not cover", "holdouts", "remove-flag", "q3", "a", "exp")
	out := run("holdouts", "remove-flag", "q3", "c", "--confirm")
	if !strings.Contains(out, `"flags": []`) || !strings.Contains(out, "left holdout q3") {
		t.Fatalf("remove-flag: %s", out)
	}
}
