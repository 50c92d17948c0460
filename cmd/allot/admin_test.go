package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/eval"
	"github.com/allot-dev/allot/internal/ufc"
)

func TestManagementCommands(t *testing.T) {
	const token = "allot_admin_cli-test-token-0123456789"
	s, c := startCLI(t, token)
	run := c.run
	run("environments", "create", "staging")
	if out, _ := run("environments"); !strings.Contains(out, "staging") || !strings.Contains(out, "production") {
		t.Fatalf("environments: %s", out)
	}
	run("flags", "create", "checkout", "--variation", "control=old", "--variation", "treatment=new", "--description", "checkout page")
	run("flags", "create", "limit", "--type", "INTEGER", "--variation", "low=10", "--variation", "high=100")
	run("experiments", "create", "checkout", "exp1", "--traffic", "20", "--weight", "control=50", "--weight", "treatment=50")
	run("experiments", "start", "checkout", "exp1")
	run("experiments", "traffic", "checkout", "exp1", "60")
	if _, warn := run("experiments", "weights", "checkout", "exp1", "control=30", "treatment=70"); !strings.Contains(warn, "re-randomizes") {
		t.Fatalf("no re-randomization warning: %q", warn)
	}
	run("flags", "rollout", "limit", "--alloc", "ramp", "--variation", "high", "--percent", "25",
		"--rules", `[{"conditions":[{"attribute":"plan","operator":"ONE_OF","value":["pro"]}]}]`)
	run("flags", "enable", "checkout")
	run("flags", "enable", "limit")
	key, _ := run("keys", "create", "web")
	key = strings.TrimSpace(key)
	if !strings.HasPrefix(key, "allot_sdk_") {
		t.Fatalf("key %q", key)
	}
	if out, _ := run("flags", "list"); !strings.Contains(out, "checkout") || !strings.Contains(out, "limit") {
		t.Fatalf("flags list: %s", out)
	}

	// The preview is the engine on the document the SDK endpoint serves.
	snap, err := fetchConfigForTest(s.URL(), key)
	if err != nil {
		t.Fatal(err)
	}
	for _, subj := range []string{"a", "b", "c", "d", "e", "f"} {
		out, _ := run("flags", "preview", "checkout", subj)
		var res struct{ Variation, Allocation string }
		json.Unmarshal([]byte(out), &res)
		want := snap.Evaluate("checkout", subj, nil, ufc.TypeString, time.Now())
		if res.Variation != want.VariationKey() || res.Allocation != want.AllocationKey() {
			t.Fatalf("%s: preview %+v, engine %s", subj, res, want.VariationKey())
		}
	}
	out, _ := run("flags", "preview", "limit", "u1", "--attr", "plan=pro")
	if !strings.Contains(out, `"code"`) {
		t.Fatalf("preview: %s", out)
	}
	run("experiments", "stop", "checkout", "exp1")
	if out, _ := run("flags", "get", "checkout"); !strings.Contains(out, `"status": "stopped"`) {
		t.Fatalf("get: %s", out)
	}
	if out, _ := run("audit", "--limit", "3"); !strings.Contains(out, "flag_settings checkout") {
		t.Fatalf("audit: %s", out)
	}
	if out, _ := run("keys", "list"); !strings.Contains(out, "web") {
		t.Fatalf("keys: %s", out)
	}
	run("keys", "revoke", "1")
}

func fetchConfigForTest(base, key string) (*eval.Snapshot, error) {
	resp, err := http.Get(base + "/api/flag-config/v1/config?apiKey=" + key)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return eval.Load(body)
}
