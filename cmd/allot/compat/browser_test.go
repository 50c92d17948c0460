package compat_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/apiclient"
	"github.com/allot-dev/allot/cmd/allot/internal/core"
)

// browserResult is what the page's runAllot returns.
type browserResult struct {
	FetchError *string           `json:"fetchError"`
	PostError  *string           `json:"postError"`
	Values     []json.RawMessage `json:"values"`
	Events     []event           `json:"events"`
	Accepted   int               `json:"accepted"`
	Duplicates int               `json:"duplicates"`
}

// TestBrowserClientKey is issue 13's proof in a real browser: Eppo's
// browser SDK core (@eppo/js-client-sdk-common 4.14.4), bundled with
// esbuild into a page served from another loopback origin, run in headless
// Chromium with a client key against `allot serve`. It reads the CLIENT
// document cross-origin and agrees with the Go SDK (reading the SERVER
// document with a server key) on every evaluation and assignment event; its
// events reach the assignment table exactly once. A page on an origin the
// key does not allow is refused by the browser: every value is the default.
//
// It needs compat/browser/node_modules (npm ci --prefix compat/browser) and
// Chromium; ALLOT_BROWSER_TESTS=off skips it.
func TestBrowserClientKey(t *testing.T) {
	page := chromiumPage(t, eppoPage("browser/entry.js", 3*time.Minute))

	const admin = "allot_admin_browser-compat-0123456789"
	base := startServe(t, admin)
	c := apiclient.New(base, admin)
	ctx := context.Background()
	flags := serverFlags(t, c)
	serverKey, err := c.CreateSDKKey(ctx, core.DefaultEnvironment, "go")
	if err != nil {
		t.Fatal(err)
	}
	clientKey, err := c.CreateClientKey(ctx, core.DefaultEnvironment, "page", []string{page.URL})
	if err != nil {
		t.Fatal(err)
	}
	elsewhere, err := c.CreateClientKey(ctx, core.DefaultEnvironment, "elsewhere", []string{"https://elsewhere.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(page.URL, base) || page.URL == base {
		t.Fatalf("page %s and server %s share an origin", page.URL, base)
	}
	subjects := randomSubjects(2000, 13)
	goVals, goEvents := runGo(t, base+"/api", serverKey.Secret, flags, subjects)

	run := func(key string) browserResult {
		t.Helper()
		arg, _ := json.Marshal(map[string]any{"baseUrl": base + "/api", "apiKey": key, "flags": flags, "subjects": subjects})
		out := page.fresh("runAllot(" + string(arg) + ")")
		if os.Getenv("ALLOT_UPDATE_SCREENSHOTS") == "1" && key == clientKey.Secret {
			page.shot("../../../docs/images/client-side-page.png")
		}
		var r browserResult
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("page result: %v", err)
		}
		return r
	}

	got := run(clientKey.Secret)
	if got.FetchError != nil || got.PostError != nil {
		t.Fatalf("page errors: fetch %v, post %v", deref(got.FetchError), deref(got.PostError))
	}
	if len(got.Values) != len(goVals) {
		t.Fatalf("browser gave %d values, Go %d", len(got.Values), len(goVals))
	}
	diffs := 0
	for i, v := range got.Values {
		if canonical(t, v) != goVals[i].value {
			if diffs++; diffs <= 10 {
				t.Errorf("%s / %s: Go %s, browser %s", goVals[i].flag, goVals[i].subject, goVals[i].value, v)
			}
		}
	}
	if len(goEvents) == 0 || eventSet(got.Events) != eventSet(goEvents) {
		t.Errorf("assignment events differ: Go logged %d, the browser %d", len(goEvents), len(got.Events))
	}
	if got.Accepted != len(got.Events) || got.Duplicates != 0 {
		t.Errorf("ingestion: %d accepted, %d duplicates, of %d events", got.Accepted, got.Duplicates, len(got.Events))
	}
	// In the table exactly once each, with the browser SDK's name.
	var buf bytes.Buffer
	if err := c.ExportAssignments(ctx, apiclient.ExportQuery{Environment: core.DefaultEnvironment, Format: "jsonl"}, &buf); err != nil {
		t.Fatal(err)
	}
	rows := 0
	for line := range strings.SplitSeq(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		rows++
		// The SDK core names itself "javascript" in its events' metaData.
		if !strings.Contains(line, `"sdk_name":"javascript"`) {
			t.Fatalf("row without the browser SDK's name: %s", line)
		}
	}
	if rows != len(got.Events) {
		t.Errorf("assignment table holds %d rows for %d browser events", rows, len(got.Events))
	}
	t.Logf("headless Chromium on %s: %d evaluations agree with the Go SDK; %d events stored once", page.URL, len(got.Values), rows)

	// An origin the key does not allow: the browser refuses the answer and
	// the SDK falls back to the defaults.
	refused := run(elsewhere.Secret)
	if len(refused.Values) != len(goVals) {
		t.Fatalf("refused page gave %d values", len(refused.Values))
	}
	defaults := map[string]string{}
	for _, f := range flags {
		defaults[f.Key] = canonical(t, f.Default)
	}
	for i, v := range refused.Values {
		if canonical(t, v) != defaults[goVals[i].flag] {
			t.Fatalf("a disallowed origin assigned %s / %s = %s", goVals[i].flag, goVals[i].subject, v)
		}
	}
	if len(refused.Events) != 0 || refused.Accepted != 0 {
		t.Fatalf("a disallowed origin logged %d events, stored %d", len(refused.Events), refused.Accepted)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
