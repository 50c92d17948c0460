package compat_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/apiclient"
	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/internal/ufctest"
)

// TestBrowserImportedFixtures is issue 13's browser proof on Eppo's own
// fixtures: flags-v1.json is imported into `allot serve` (allot import
// --keep-faults, through the API), and Eppo's browser SDK core, bundled into
// a page on another origin in headless Chromium with a client key, reads
// the obfuscated CLIENT document and passes every one of the 225 fixture
// checks.
func TestBrowserImportedFixtures(t *testing.T) {
	page := chromiumPage(t, eppoPage("browser/fixtures-entry.js", 3*time.Minute))
	pageURL, eval, shot := page.URL, page.fresh, page.shot
	const admin = "allot_admin_browser-fixtures-0123456789"
	base := startServe(t, admin)
	c := apiclient.New(base, admin)
	ctx := context.Background()
	rep, err := c.Import(ctx, core.DefaultEnvironment, ufctest.Document(t, "flags-v1.json"), apiclient.ImportOptions{KeepFaults: true})
	if err != nil || len(rep.Created) != 22 || len(rep.Refused) != 0 {
		t.Fatalf("import: %v %+v", err, rep)
	}
	key, err := c.CreateClientKey(ctx, core.DefaultEnvironment, "fixtures page", []string{pageURL})
	if err != nil {
		t.Fatal(err)
	}
	cases := ufctest.Cases(t)
	arg, _ := json.Marshal(map[string]any{"baseUrl": base + "/api", "apiKey": key.Secret, "cases": cases})
	var got struct {
		FetchError *string           `json:"fetchError"`
		Obfuscated bool              `json:"obfuscated"`
		Values     []json.RawMessage `json:"values"`
	}
	if err := json.Unmarshal([]byte(eval("runFixtures("+string(arg)+")")), &got); err != nil {
		t.Fatal(err)
	}
	if os.Getenv("ALLOT_UPDATE_SCREENSHOTS") == "1" {
		shot("../../../docs/images/client-side-fixtures.png")
	}
	if got.FetchError != nil || !got.Obfuscated {
		t.Fatalf("the page read the configuration: error %v, obfuscated %v", deref(got.FetchError), got.Obfuscated)
	}
	checks, passed := 0, 0
	for _, fc := range cases {
		for _, s := range fc.Subjects {
			if checks >= len(got.Values) {
				t.Fatalf("the page gave %d values", len(got.Values))
			}
			var g, w any
			_ = json.Unmarshal(got.Values[checks], &g)
			_ = json.Unmarshal(s.Assignment, &w)
			checks++
			if reflect.DeepEqual(g, w) {
				passed++
			} else {
				t.Errorf("%s / %s: browser %s, fixture %s", fc.Flag, s.SubjectKey, got.Values[checks-1], s.Assignment)
			}
		}
	}
	if checks != ufctest.Checks || passed != ufctest.Checks || len(got.Values) != checks {
		t.Fatalf("%d of %d fixture checks pass in Chromium (the page gave %d values); want all %d", passed, checks, len(got.Values), ufctest.Checks)
	}
	t.Logf("headless Chromium on %s, CLIENT document of the imported flags-v1.json: %d of %d fixture checks pass", pageURL, passed, checks)
}

// TestBrowserPrecomputedClient: the precomputed client of Eppo's browser
// SDK core, in headless Chromium on another origin with a client key, gets
// for 10,000 subjects with attributes the values the Go SDK computes from
// the SERVER document; its assignment events, posted with the client key,
// are the Go SDK's and reach the assignment table exactly once. The server
// runs with ALLOT_PRECOMPUTED_RATE=0 (no per-key limit), which is what a
// test sending 10,000 requests from one key needs.
func TestBrowserPrecomputedClient(t *testing.T) {
	page := chromiumPage(t, eppoPage("browser/fixtures-entry.js", 8*time.Minute))
	pageURL, eval := page.URL, page.fresh
	t.Setenv("ALLOT_PRECOMPUTED_RATE", "0")
	const admin = "allot_admin_browser-precomputed-0123456789"
	base := startServe(t, admin)
	c := apiclient.New(base, admin)
	ctx := context.Background()
	flags := serverFlags(t, c)
	serverKey, err := c.CreateSDKKey(ctx, core.DefaultEnvironment, "go")
	if err != nil {
		t.Fatal(err)
	}
	clientKey, err := c.CreateClientKey(ctx, core.DefaultEnvironment, "page", []string{pageURL})
	if err != nil {
		t.Fatal(err)
	}
	subjects := randomSubjects(10000, 1313)
	want, goEvents := runGo(t, base+"/api", serverKey.Secret, flags, subjects)

	arg, _ := json.Marshal(map[string]any{"baseUrl": base, "apiKey": clientKey.Secret, "flags": flags, "subjects": subjects, "parallel": 8})
	var got browserResult
	var errs struct {
		Errors []string `json:"errors"`
	}
	out := eval("runPrecomputed(" + string(arg) + ")")
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal([]byte(out), &errs)
	if len(errs.Errors) > 0 || got.PostError != nil {
		t.Fatalf("page errors: %q, post %v", errs.Errors, deref(got.PostError))
	}
	if len(got.Values) != len(want) || len(want) != len(flags)*len(subjects) {
		t.Fatalf("%d values from the page, %d from Go, want %d", len(got.Values), len(want), len(flags)*len(subjects))
	}
	differ, nonDefault := 0, 0
	defaults := map[string]string{}
	for _, f := range flags {
		var d any
		json.Unmarshal(f.Default, &d)
		defaults[f.Key] = canonical(t, d)
	}
	for i, v := range got.Values {
		if canonical(t, v) != want[i].value {
			if differ++; differ <= 10 {
				t.Errorf("%s / %s: Go %s, precomputed in the browser %s", want[i].flag, want[i].subject, want[i].value, v)
			}
		}
		if want[i].value != defaults[want[i].flag] {
			nonDefault++
		}
	}
	if differ > 0 {
		t.Fatalf("%d of %d assignments differ", differ, len(want))
	}
	if nonDefault < len(want)/4 {
		t.Fatalf("only %d of %d assignments are not the default: the agreement proves little", nonDefault, len(want))
	}
	if len(goEvents) == 0 || eventSet(got.Events) != eventSet(goEvents) {
		t.Errorf("assignment events differ: Go logged %d, the browser %d", len(goEvents), len(got.Events))
	}
	if got.Accepted != len(got.Events) || got.Duplicates != 0 {
		t.Errorf("ingestion: %d accepted, %d duplicates, of %d events", got.Accepted, got.Duplicates, len(got.Events))
	}
	// In the table exactly once each.
	var buf bytes.Buffer
	if err := c.ExportAssignments(ctx, apiclient.ExportQuery{Environment: core.DefaultEnvironment, Format: "jsonl"}, &buf); err != nil {
		t.Fatal(err)
	}
	var rows []event
	for line := range strings.SplitSeq(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var r struct {
			Flag       string `json:"feature_flag"`
			Subject    string `json:"subject"`
			Allocation string `json:"allocation"`
			Experiment string `json:"experiment"`
			Variation  string `json:"variation"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("export row %q: %v", line, err)
		}
		rows = append(rows, event{FeatureFlag: r.Flag, Subject: r.Subject, Allocation: r.Allocation, Experiment: r.Experiment, Variation: r.Variation})
	}
	if eventSet(rows) != eventSet(got.Events) {
		t.Errorf("the assignment table holds %d rows for %d browser events (or other rows)", len(rows), len(got.Events))
	}
	t.Logf("headless Chromium on %s: %d precomputed assignments for %d subjects agree with the Go SDK (%d not the default); %d events stored once",
		pageURL, len(want), len(subjects), nonDefault, len(rows))
}
