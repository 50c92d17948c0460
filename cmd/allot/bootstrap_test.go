package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/apiclient"
	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/server"
	"github.com/allot-dev/allot/internal/eval"
	"github.com/allot-dev/allot/internal/ufc"
	"github.com/allot-dev/allot/internal/ufctest"
)

func readWire(t *testing.T, out string) configurationWire {
	t.Helper()
	var w configurationWire
	if err := json.Unmarshal([]byte(out), &w); err != nil || w.Version != 1 {
		t.Fatalf("not a configuration-wire document (%v): %.200s", err, out)
	}
	return w
}

// TestBootstrapOffline: from the fixtures' SERVER document, the environment
// document is the CLIENT form, which evaluates every fixture subject as the
// SERVER one does; a subject's document holds its precomputed assignments.
func TestBootstrapOffline(t *testing.T) {
	cfg := filepath.Join(ufctest.Dir(t), "flags-v1.json")
	server, err := eval.Load(ufctest.Document(t, "flags-v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	code, out, msg := runWith(nil, "bootstrap", "--config", cfg)
	if code != 0 {
		t.Fatalf("bootstrap: %d %s", code, msg)
	}
	w := readWire(t, out)
	if w.Config == nil || w.Precomputed != nil || w.Config.FetchedAt == "" {
		t.Fatalf("envelope: %.200s", out)
	}
	client, err := eval.Load([]byte(w.Config.Response))
	if err != nil || !client.Obfuscated() || strings.Contains(w.Config.Response, "new-user-onboarding") {
		t.Fatalf("not the CLIENT document (%v): %.200s", err, w.Config.Response)
	}
	now := time.Now()
	for _, c := range ufctest.Cases(t) {
		for _, s := range c.Subjects {
			a := server.Evaluate(c.Flag, s.SubjectKey, s.SubjectAttributes, "", now)
			b := client.Evaluate(c.Flag, s.SubjectKey, s.SubjectAttributes, "", now)
			if a.Code != b.Code || a.VariationKey() != b.VariationKey() {
				t.Errorf("%s/%s: SERVER %s %s, CLIENT %s %s", c.Flag, s.SubjectKey, a.Code, a.VariationKey(), b.Code, b.VariationKey())
			}
		}
	}
	// --format server keeps the document as it is.
	if code, out, _ := runWith(nil, "bootstrap", "--config", cfg, "--format", "server"); code != 0 || !strings.Contains(readWire(t, out).Config.Response, `"format":"SERVER"`) {
		t.Fatalf("--format server: %d", code)
	}

	// A subject: alice with a Mexican address gets the targeted variation.
	code, out, msg = runWith(nil, "bootstrap", "--config", cfg, "--subject", "alice", "--attributes", `{"email":"alice@mycompany.com","country":"Mexico","age":50}`)
	if code != 0 {
		t.Fatalf("bootstrap --subject: %d %s", code, msg)
	}
	w = readWire(t, out)
	if w.Precomputed == nil || w.Config != nil || w.Precomputed.SubjectKey != "alice" ||
		w.Precomputed.SubjectAttributes.NumericAttributes["age"] == nil || w.Precomputed.SubjectAttributes.CategoricalAttributes["country"] != "Mexico" {
		t.Fatalf("precomputed envelope: %.300s", out)
	}
	var pc ufc.Precomputed
	if err := json.Unmarshal([]byte(w.Precomputed.Response), &pc); err != nil || pc.Format != "PRECOMPUTED" || pc.Salt == "" {
		t.Fatalf("response: %v %.200s", err, w.Precomputed.Response)
	}
	want := server.Precompute("alice", map[string]any{"email": "alice@mycompany.com", "country": "Mexico", "age": 50.0}, now)
	if len(want) == 0 || len(pc.Flags) != len(want) {
		t.Fatalf("%d flags, want %d", len(pc.Flags), len(want))
	}
	for key, f := range want {
		got, ok := pc.Flags[ufc.SaltedFlagKey(pc.Salt, key)]
		if !ok || base64Decode(t, got.VariationKey) != f.VariationKey || base64Decode(t, got.VariationValue) != f.VariationValue {
			t.Errorf("%s: got %+v, want %+v", key, got, f)
		}
	}

	// Usage errors.
	for _, args := range [][]string{
		{"bootstrap", "--config", cfg, "--attributes", `{"a":1}`},
		{"bootstrap", "--config", cfg, "--subject", "s", "--attributes", `[1]`},
		{"bootstrap", "--config", cfg, "--subject", "s", "--attributes", `{"a":[1]}`},
		{"bootstrap", "--config", cfg, "--format", "both"},
	} {
		if code, _, msg := runWith(nil, args...); code != 2 || msg == "" {
			t.Errorf("%q: exit %d %q, want 2 and a message", args, code, msg)
		}
	}
	if code, _, _ := runWith(nil, "bootstrap", "--config", filepath.Join(ufctest.Dir(t), "flags-v1-obfuscated.json")); code == 0 {
		t.Error("a CLIENT document was accepted offline")
	}
}

func base64Decode(t *testing.T, s string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("not base64: %q", s)
	}
	return string(b)
}

// TestBootstrapFromTheServer: with an admin token, the CLI reads the
// environment as published and computes the subject's assignments with the
// engine.
func TestBootstrapFromTheServer(t *testing.T) {
	const token = "allot_admin_cli-bootstrap-token-0123456789"
	s := startServer(t, server.Config{AdminToken: token})
	ctx := context.Background()
	c := apiclient.New(s.URL(), token)
	variations := []core.Variation{{Key: "control", Value: json.RawMessage(`"blue"`)}, {Key: "treatment", Value: json.RawMessage(`"green"`)}}
	if _, err := c.CreateFlag(ctx, core.Flag{Key: "checkout-button", VariationType: ufc.TypeString, Variations: variations}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutSettings(ctx, core.FlagSettings{Flag: "checkout-button", Environment: "production", Enabled: true, Allocations: []core.Allocation{
		{Key: "dutch", Type: core.Targeted, Variation: "treatment", Rules: []core.Rule{{Conditions: []core.Condition{
			{Attribute: "country", Operator: ufc.OpOneOf, Value: json.RawMessage(`["NL"]`)}}}}}}}); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"ALLOT_SERVER": s.URL(), "ALLOT_TOKEN": token}
	code, out, msg := runWith(vars, "bootstrap", "--env", "production", "--subject", "u1", "--attributes", `{"country":"NL"}`)
	if code != 0 {
		t.Fatalf("bootstrap: %d %s", code, msg)
	}
	var pc ufc.Precomputed
	if err := json.Unmarshal([]byte(readWire(t, out).Precomputed.Response), &pc); err != nil {
		t.Fatal(err)
	}
	f, ok := pc.Flags[ufc.SaltedFlagKey(pc.Salt, "checkout-button")]
	if !ok || base64Decode(t, f.VariationValue) != "green" || pc.Environment.Name != "production" {
		t.Fatalf("got %+v", pc)
	}
	// Someone else gets nothing for this flag (the SDK's default).
	_, out, _ = runWith(vars, "bootstrap", "--env", "production", "--subject", "u2", "--attributes", `{"country":"FR"}`)
	var fr ufc.Precomputed
	if err := json.Unmarshal([]byte(readWire(t, out).Precomputed.Response), &fr); err != nil || fr.Format != "PRECOMPUTED" || len(fr.Flags) != 0 {
		t.Fatalf("FR subject: %v %+v", err, fr.Flags)
	}
	// The environment's document, CLIENT by default.
	code, out, _ = runWith(vars, "bootstrap", "--env", "production")
	if code != 0 || !strings.Contains(readWire(t, out).Config.Response, `"format":"CLIENT"`) {
		t.Fatalf("environment: %d %.200s", code, out)
	}
	if code, _, msg := runWith(vars, "bootstrap", "--env", "nope"); code == 0 || !strings.Contains(msg, "nope") {
		t.Fatalf("unknown environment: %d %q", code, msg)
	}
	if code, _, _ := runWith(map[string]string{"ALLOT_SERVER": s.URL()}, "bootstrap", "--env", "production"); code != 2 {
		t.Fatalf("no token: %d", code)
	}
}
