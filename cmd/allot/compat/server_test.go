package compat_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/apiclient"
	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/servetest"
)

// startServe builds the allot binary and runs `allot serve` on a free
// loopback port with a fresh SQLite file. It returns the server's URL.
func startServe(t *testing.T, adminToken string) string {
	t.Helper()
	bin := servetest.Build(t, "..")
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "serve", "--addr", addr, "--db", filepath.Join(dir, "allot.db"))
	cmd.Env = append(os.Environ(), "ALLOT_ADMIN_TOKEN="+adminToken)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := cmd.Wait(); err != nil && ctx.Err() == nil {
			t.Errorf("allot serve: %v", err)
		}
	})
	url := "http://" + addr
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("allot serve did not become ready: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func raw(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

func cond(attr, op string, value any) core.Condition {
	return core.Condition{Attribute: attr, Operator: op, Value: raw(value)}
}

// serverFlags defines, through the management API, flags of every type with
// experiments, rollouts and targeted allocations and every operator.
func serverFlags(t *testing.T, c *apiclient.Client) []flagSpec {
	t.Helper()
	ctx := context.Background()
	yes := true
	type def struct {
		flag    core.Flag
		enabled bool
		allocs  []core.Allocation
		dflt    any
	}
	vars := func(kv ...any) []core.Variation {
		var out []core.Variation
		for i := 0; i < len(kv); i += 2 {
			out = append(out, core.Variation{Key: kv[i].(string), Value: raw(kv[i+1])})
		}
		return out
	}
	defs := []def{
		{core.Flag{Key: "checkout-button", VariationType: "STRING", Variations: vars("control", "control", "blue", "blue", "green", "green", "large", "large", "staff", "staff")}, true, []core.Allocation{
			{Key: "staff", Type: core.Targeted, Variation: "staff", Rules: []core.Rule{{Conditions: []core.Condition{cond("email", "MATCHES", `@mycompany\.com$`)}}}},
			{Key: "spring-test", Type: core.Experiment, Status: core.Running, Traffic: 6000,
				Weights: []core.Weight{{Variation: "control", Weight: 5000}, {Variation: "blue", Weight: 3000}, {Variation: "green", Weight: 2000}},
				Rules:   []core.Rule{{Conditions: []core.Condition{cond("country", "ONE_OF", []string{"US", "Canada"})}}, {Conditions: []core.Condition{cond("plan", "ONE_OF", []string{"pro"})}}}},
			{Key: "big-button-rollout", Type: core.Rollout, Variation: "large", Percent: 2500, DoLog: &yes},
		}, "default"},
		{core.Flag{Key: "max-items", VariationType: "INTEGER", Variations: vars("small", 10, "big", 100, "huge", 1000)}, true, []core.Allocation{
			{Key: "seniors", Type: core.Targeted, Variation: "small", Rules: []core.Rule{{Conditions: []core.Condition{cond("age", "GTE", 50)}}}, DoLog: &yes},
			{Key: "limits", Type: core.Experiment, Status: core.Running, Traffic: 10000,
				Weights: []core.Weight{{Variation: "big", Weight: 5000}, {Variation: "huge", Weight: 5000}}},
		}, 1},
		{core.Flag{Key: "new-checkout", VariationType: "BOOLEAN", Variations: vars("on", true, "off", false)}, true, []core.Allocation{
			{Key: "modern-clients", Type: core.Targeted, Variation: "on", DoLog: &yes, Rules: []core.Rule{{Conditions: []core.Condition{
				cond("version", "GTE", "1.5.0"), cond("plan", "NOT_ONE_OF", []string{"free"})}}}},
			{Key: "no-size", Type: core.Targeted, Variation: "off", DoLog: &yes, Rules: []core.Rule{{Conditions: []core.Condition{cond("size", "IS_NULL", true)}}}},
			{Key: "half", Type: core.Experiment, Status: core.Running, Traffic: 5000,
				Weights: []core.Weight{{Variation: "on", Weight: 5000}, {Variation: "off", Weight: 5000}}},
		}, false},
		{core.Flag{Key: "price-multiplier", VariationType: "NUMERIC", Variations: vars("base", 1.0, "discount", 0.85, "premium", 1.25)}, true, []core.Allocation{
			{Key: "not-example", Type: core.Targeted, Variation: "premium", DoLog: &yes, Rules: []core.Rule{{Conditions: []core.Condition{
				cond("email", "NOT_MATCHES", `example\.com$`), cond("size", "LT", 10)}}}},
			{Key: "pricing", Type: core.Experiment, Status: core.Running, Traffic: 7550,
				Weights: []core.Weight{{Variation: "base", Weight: 3334}, {Variation: "discount", Weight: 3333}, {Variation: "premium", Weight: 3333}}},
		}, 0.5},
		{core.Flag{Key: "banner", VariationType: "JSON", Variations: vars("none", map[string]any{}, "sale", map[string]any{"text": "Sale", "percent": 20})}, true, []core.Allocation{
			{Key: "banner-test", Type: core.Experiment, Status: core.Running, Traffic: 9000,
				Weights: []core.Weight{{Variation: "none", Weight: 5000}, {Variation: "sale", Weight: 5000}}},
		}, map[string]any{"default": true}},
		{core.Flag{Key: "stopped-test", VariationType: "STRING", Variations: vars("a", "a", "b", "b")}, true, []core.Allocation{
			{Key: "old", Type: core.Experiment, Status: core.Stopped, Traffic: 10000,
				Weights: []core.Weight{{Variation: "a", Weight: 5000}, {Variation: "b", Weight: 5000}}},
			{Key: "fallback", Type: core.Rollout, Variation: "b", Percent: 1000},
		}, "none"},
		{core.Flag{Key: "switched-off", VariationType: "STRING", Variations: vars("a", "a")}, false, []core.Allocation{
			{Key: "everyone", Type: core.Rollout, Variation: "a", Percent: 10000},
		}, "off"},
	}
	var specs []flagSpec
	for _, d := range defs {
		if _, err := c.CreateFlag(ctx, d.flag); err != nil {
			t.Fatalf("create %s: %v", d.flag.Key, err)
		}
		s := core.FlagSettings{Flag: d.flag.Key, Environment: core.DefaultEnvironment, Enabled: d.enabled, Allocations: d.allocs}
		if _, err := c.PutSettings(ctx, s); err != nil {
			t.Fatalf("settings %s: %v", d.flag.Key, err)
		}
		specs = append(specs, flagSpec{Key: d.flag.Key, Type: string(d.flag.VariationType), Default: raw(d.dflt)})
	}
	return specs
}

// TestAllotServe: against a running `allot serve`, Eppo's Node SDK and
// Allot's Go SDK give identical assignments and assignment events for
// 10,000 subjects with attributes.
func TestAllotServe(t *testing.T) {
	const token = "allot_admin_compat-test-token-0123456789"
	url := startServe(t, token)
	c := apiclient.New(url, token)
	flags := serverFlags(t, c)
	key, err := c.CreateSDKKey(context.Background(), core.DefaultEnvironment, "compat")
	if err != nil {
		t.Fatal(err)
	}
	if key.Secret == "" {
		t.Fatal("no SDK key secret")
	}
	// Both SDKs read the environment through the SDK endpoint.
	vals := compare(t, flags, randomSubjects(10_000, 2), url+"/api", key.Secret, nil)
	// The agreement must not be trivial: every flag but the disabled one
	// gives several different answers across the subjects.
	distinct := map[string]map[string]bool{}
	for _, v := range vals {
		if distinct[v.flag] == nil {
			distinct[v.flag] = map[string]bool{}
		}
		distinct[v.flag][v.value] = true
	}
	for _, f := range flags {
		if n := len(distinct[f.Key]); (f.Key == "switched-off") != (n == 1) {
			t.Errorf("%s: %d distinct values", f.Key, n)
		}
	}
}
