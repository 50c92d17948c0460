package compat_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/apiclient"
	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/ofrep"
)

// ofrepResult is one evaluation by the OpenFeature Node SDK through OFREP.
type ofrepResult struct {
	Flag      string `json:"flag"`
	Subject   string `json:"subject"`
	Value     any    `json:"value"`
	Reason    string `json:"reason"`
	Variant   string `json:"variant"`
	ErrorCode string `json:"errorCode"`
}

// runOFREPNode evaluates with OpenFeature's Node server SDK and the official
// @openfeature/ofrep-provider.
func runOFREPNode(t *testing.T, baseURL, apiKey string, flags []flagSpec, subjects []subject) []ofrepResult {
	t.Helper()
	if _, err := os.Stat("node/node_modules/@openfeature/ofrep-provider"); err != nil {
		t.Fatalf("@openfeature/ofrep-provider is not installed: run npm ci --prefix compat/node (scripts/test does): %v", err)
	}
	req, _ := json.Marshal(map[string]any{"baseUrl": baseURL, "apiKey": apiKey, "flags": flags, "subjects": subjects})
	dir := t.TempDir()
	path, resultPath := filepath.Join(dir, "request.json"), filepath.Join(dir, "results.jsonl")
	if err := os.WriteFile(path, req, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if logs, err := exec.CommandContext(ctx, "node", "node/ofrep.js", path, resultPath).CombinedOutput(); err != nil {
		t.Fatalf("node: %v\n%s", err, logs)
	}
	out, err := os.ReadFile(resultPath)
	if err != nil {
		t.Fatal(err)
	}
	var got []ofrepResult
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r ofrepResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("node output %q: %v", sc.Text(), err)
		}
		got = append(got, r)
	}
	return got
}

// TestOFREPNodeProvider: OpenFeature's Node SDK with the official OFREP
// provider, evaluating remotely on `allot serve`, gets the Go SDK's value
// for every one of 10,000 subjects and every flag, and the server's
// assignment table holds exactly the assignments the Go SDK logged.
func TestOFREPNodeProvider(t *testing.T) {
	const token = "allot_admin_compat-ofrep-token-0123456789"
	url := startServe(t, token)
	c := apiclient.New(url, token)
	flags := serverFlags(t, c)
	key, err := c.CreateSDKKey(context.Background(), core.DefaultEnvironment, "ofrep")
	if err != nil {
		t.Fatal(err)
	}
	subjects := randomSubjects(10_000, 3)
	goVals, goEvents := runGo(t, url+"/api", key.Secret, flags, subjects)
	start := time.Now()
	nodeVals := runOFREPNode(t, url, key.Secret, flags, subjects)
	t.Logf("OFREP: %d evaluations by the Node provider in %v", len(nodeVals), time.Since(start).Round(time.Millisecond))
	if len(nodeVals) != len(goVals) {
		t.Fatalf("Go gave %d values, OFREP %d", len(goVals), len(nodeVals))
	}
	diffs := 0
	reasons := map[string]int{}
	for i, g := range goVals {
		n := nodeVals[i]
		reasons[n.Reason+"/"+n.ErrorCode]++
		if n.Flag != g.flag || n.Subject != g.subject || canonical(t, n.Value) != g.value {
			if diffs++; diffs <= 10 {
				t.Errorf("%s / %s: Go %s, OFREP %+v", g.flag, g.subject, g.value, n)
			}
		}
	}
	t.Logf("reasons/error codes seen by the Node provider: %v", reasons)
	for _, want := range []string{"TARGETING_MATCH/", "SPLIT/"} {
		if reasons[want] == 0 {
			t.Errorf("no %s evaluation: %v", want, reasons)
		}
	}

	// The assignment table: OFREP logged each assignment once, as the Go SDK
	// (whose events are deduplicated here) did.
	wantSet := map[string]bool{}
	for _, e := range goEvents {
		wantSet[strings.Join([]string{e.FeatureFlag, e.Subject, e.Allocation, e.Variation}, "/")] = true
	}
	var got []string
	for deadline := time.Now().Add(30 * time.Second); ; {
		got = got[:0]
		var buf bytes.Buffer
		if err := c.ExportAssignments(context.Background(), apiclient.ExportQuery{Environment: core.DefaultEnvironment, Format: "jsonl"}, &buf); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(&buf)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var row map[string]any
			if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
				t.Fatalf("export line %q: %v", sc.Text(), err)
			}
			if row["sdk_name"] != ofrep.SDKName {
				t.Fatalf("a row not from OFREP: %v", row)
			}
			got = append(got, strings.Join([]string{row["feature_flag"].(string), row["subject"].(string), row["allocation"].(string), row["variation"].(string)}, "/"))
		}
		if len(got) >= len(wantSet) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	want := make([]string, 0, len(wantSet))
	for k := range wantSet {
		want = append(want, k)
	}
	sort.Strings(want)
	sort.Strings(got)
	if len(want) == 0 {
		t.Fatal("the Go SDK logged nothing: the comparison would prove nothing")
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("assignment table: %d rows from OFREP, Go SDK logged %d distinct assignments", len(got), len(want))
		for i := 0; i < len(got) && i < len(want); i++ {
			if got[i] != want[i] {
				t.Errorf("first difference: table %q, Go %q", got[i], want[i])
				break
			}
		}
	}
	t.Logf("%d evaluations identical; %d assignments in the table", len(goVals), len(got))
}
