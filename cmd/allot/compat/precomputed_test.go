package compat_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/apiclient"
	"github.com/allot-dev/allot/cmd/allot/internal/core"
)

// TestPrecomputedClient: the precomputed client of Eppo's browser SDK core
// (@eppo/js-client-sdk-common), with a client key against `allot serve`,
// gets for every subject the values the Go SDK computes from the SERVER
// document (with a server key).
func TestPrecomputedClient(t *testing.T) {
	if _, err := os.Stat("node/node_modules/@eppo/js-client-sdk-common"); err != nil {
		t.Fatalf("@eppo/js-client-sdk-common is not installed: run npm ci --prefix compat/node (scripts/test does): %v", err)
	}
	const token = "allot_admin_compat-precomputed-0123456789"
	url := startServe(t, token)
	c := apiclient.New(url, token)
	flags := serverFlags(t, c)
	ctx := context.Background()
	serverKey, err := c.CreateSDKKey(ctx, core.DefaultEnvironment, "go")
	if err != nil {
		t.Fatal(err)
	}
	clientKey, err := c.CreateClientKey(ctx, core.DefaultEnvironment, "page", nil)
	if err != nil {
		t.Fatal(err)
	}
	subjects := randomSubjects(1000, 7)

	req, _ := json.Marshal(map[string]any{"baseUrl": url, "apiKey": clientKey.Secret, "flags": flags, "subjects": subjects})
	dir := t.TempDir()
	path, resultPath := filepath.Join(dir, "request.json"), filepath.Join(dir, "results.jsonl")
	if err := os.WriteFile(path, req, 0o600); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	if logs, err := exec.CommandContext(cctx, "node", "node/precomputed.js", path, resultPath).CombinedOutput(); err != nil {
		t.Fatalf("node: %v\n%s", err, logs)
	}
	out, err := os.ReadFile(resultPath)
	if err != nil {
		t.Fatal(err)
	}
	var got []assignment
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			Flag    string `json:"flag"`
			Subject string `json:"subject"`
			Value   any    `json:"value"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("node output %q: %v", sc.Text(), err)
		}
		got = append(got, assignment{line.Flag, line.Subject, canonical(t, line.Value)})
	}

	want, _ := runGo(t, url+"/api", serverKey.Secret, flags, subjects)
	if len(got) != len(want) || len(want) != len(flags)*len(subjects) {
		t.Fatalf("%d precomputed answers, %d from Go, want %d", len(got), len(want), len(flags)*len(subjects))
	}
	differ, nonDefault := 0, 0
	defaults := map[string]string{}
	for _, f := range flags {
		var d any
		json.Unmarshal(f.Default, &d)
		defaults[f.Key] = canonical(t, d)
	}
	for i := range want {
		if got[i] != want[i] {
			if differ++; differ <= 10 {
				t.Errorf("%s/%s: precomputed %s, Go SDK %s", want[i].flag, want[i].subject, got[i].value, want[i].value)
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
	t.Logf("%d assignments agree (%d not the default)", len(want), nonDefault)
}
