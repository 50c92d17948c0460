package allotof_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	of "github.com/open-feature/go-sdk/openfeature"

	"github.com/allot-dev/allot"
	allotof "github.com/allot-dev/allot/openfeature"
)

const adminToken = "allot_admin_openfeature-test-0123456789"

// serve builds the allot binary and runs `allot serve` on a free loopback
// port with a fresh SQLite file, as a user would. It returns the URL.
func serve(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "allot")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = "../cmd/allot" // works whether or not cmd/allot is a module of its own
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "serve", "--addr", addr, "--db", filepath.Join(dir, "allot.db"))
	cmd.Env = append(os.Environ(), "ALLOT_ADMIN_TOKEN="+adminToken)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	url := "http://" + addr
	for deadline := time.Now().Add(30 * time.Second); ; {
		if resp, err := http.Get(url + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return url
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("allot serve did not become ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// admin calls the management API.
func admin(t *testing.T, url, method, path string, ifMatch int, in any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(in)
	req, _ := http.NewRequest(method, url+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	if ifMatch >= 0 {
		req.Header.Set("If-Match", fmt.Sprintf(`"%d"`, ifMatch))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, body)
	}
	var out map[string]any
	json.Unmarshal(body, &out)
	return out
}

type variation struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
}

func flag(t *testing.T, url, key, typ string, enabled bool, vars []variation, allocs ...map[string]any) {
	admin(t, url, "POST", "/api/v1/flags", -1, map[string]any{"key": key, "variationType": typ, "variations": vars})
	if allocs == nil {
		allocs = []map[string]any{}
	}
	admin(t, url, "PUT", "/api/v1/environments/production/flags/"+key, 0, map[string]any{"flag": key, "environment": "production", "enabled": enabled, "allocations": allocs})
}

// TestOpenFeatureEndToEnd: the OpenFeature Go SDK, with this provider over
// an allot.Client reading a real server, gets the Go SDK's values with
// OpenFeature reasons, variants, metadata and error codes, and hears about
// readiness and configuration changes through events.
func TestOpenFeatureEndToEnd(t *testing.T) {
	url := serve(t)
	flag(t, url, "checkout", "STRING", true, []variation{{"control", "control"}, {"blue", "blue"}, {"staff", "staff"}},
		map[string]any{"key": "staff", "type": "targeted", "variation": "staff", "rules": []any{map[string]any{"conditions": []any{
			map[string]any{"attribute": "email", "operator": "MATCHES", "value": `@example\.com$`}}}}},
		map[string]any{"key": "test", "type": "experiment", "status": "running", "traffic": 100,
			"weights": []any{map[string]any{"variation": "control", "weight": 50}, map[string]any{"variation": "blue", "weight": 50}}})
	flag(t, url, "dark-mode", "BOOLEAN", true, []variation{{"on", true}, {"off", false}},
		map[string]any{"key": "everyone", "type": "rollout", "variation": "on", "percent": 100})
	flag(t, url, "limit", "INTEGER", true, []variation{{"small", 10}},
		map[string]any{"key": "pro", "type": "targeted", "variation": "small", "rules": []any{map[string]any{"conditions": []any{
			map[string]any{"attribute": "plan", "operator": "ONE_OF", "value": []string{"pro"}}}}}})
	flag(t, url, "price", "NUMERIC", true, []variation{{"base", 1.5}}, map[string]any{"key": "everyone", "type": "rollout", "variation": "base", "percent": 100})
	flag(t, url, "banner", "JSON", false, []variation{{"sale", map[string]any{"pct": 20}}})
	key := admin(t, url, "POST", "/api/v1/sdk-keys", -1, map[string]any{"name": "of", "environment": "production"})["secret"].(string)

	ctx := context.Background()
	client, err := allot.NewClient(ctx, allot.Config{SDKKey: key, BaseURL: url + "/api", PollInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close(ctx)
	provider := allotof.New(client, allotof.Options{WatchInterval: 20 * time.Millisecond})

	events := make(chan of.EventDetails, 100)
	onEvent := func(d of.EventDetails) { events <- d }
	cb := of.EventCallback(&onEvent)
	ready := make(chan of.EventDetails, 10)
	onReady := func(d of.EventDetails) { ready <- d }
	rcb := of.EventCallback(&onReady)
	of.AddHandler(of.ProviderConfigChange, cb)
	of.AddHandler(of.ProviderReady, rcb)
	defer of.RemoveHandler(of.ProviderConfigChange, cb)
	defer of.RemoveHandler(of.ProviderReady, rcb)
	if err := of.SetProviderAndWait(provider); err != nil {
		t.Fatal(err)
	}
	defer of.Shutdown()
	select {
	case d := <-ready:
		if d.ProviderName != allotof.Name {
			t.Errorf("ready from %q", d.ProviderName)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no PROVIDER_READY")
	}
	oc := of.NewClient("test")

	reasons := map[of.Reason]int{}
	for i := range 100 {
		subject := fmt.Sprintf("user-%d", i)
		attrs := map[string]any{"n": i}
		if i%4 == 0 {
			attrs["email"] = subject + "@example.com"
		}
		if i%3 == 0 {
			attrs["plan"] = "pro"
		}
		ec := of.NewEvaluationContext(subject, attrs)
		sd, err := oc.StringValueDetails(ctx, "checkout", "none", ec)
		want, wd := client.GetStringAssignmentDetails("checkout", subject, attrs, "none")
		if err != nil || sd.Value != want || sd.Variant != wd.Variation {
			t.Fatalf("checkout %s: %+v %v, SDK %q %+v", subject, sd, err, want, wd)
		}
		if a, _ := sd.FlagMetadata.GetString("allocation"); a != wd.Allocation {
			t.Errorf("allocation metadata %q, want %q", a, wd.Allocation)
		}
		reasons[sd.Reason]++
		id, err := oc.IntValueDetails(ctx, "limit", -1, ec)
		if err != nil {
			t.Fatal(err)
		}
		if plan := attrs["plan"]; (plan == "pro") != (id.Value == 10 && id.Reason == of.TargetingMatchReason) || (plan != "pro" && (id.Value != -1 || id.Reason != of.DefaultReason)) {
			t.Errorf("limit for %v: %+v", attrs, id)
		}
	}
	if reasons[of.TargetingMatchReason] == 0 || reasons[of.SplitReason] == 0 {
		t.Errorf("reasons %v: want both TARGETING_MATCH and SPLIT", reasons)
	}
	ec := of.NewEvaluationContext("u1", nil)
	if d, _ := oc.BooleanValueDetails(ctx, "dark-mode", false, ec); d.Value != true || d.Reason != of.StaticReason || d.Variant != "on" {
		t.Errorf("dark-mode: %+v", d)
	}
	if d, _ := oc.FloatValueDetails(ctx, "price", 0, ec); d.Value != 1.5 {
		t.Errorf("price: %+v", d)
	}
	if d, _ := oc.FloatValueDetails(ctx, "limit", 0, of.NewEvaluationContext("u1", map[string]any{"plan": "pro"})); d.Value != 10 || d.ErrorCode != "" {
		t.Errorf("limit as a float: %+v", d)
	}
	if d, _ := oc.ObjectValueDetails(ctx, "banner", "dflt", ec); d.Value != "dflt" || d.Reason != of.DisabledReason || d.ErrorCode != "" {
		t.Errorf("banner (disabled): %+v", d)
	}
	for _, tc := range []struct {
		name string
		eval func() (of.InterfaceEvaluationDetails, error)
		code of.ErrorCode
	}{
		{"unknown flag", func() (of.InterfaceEvaluationDetails, error) {
			d, err := oc.StringValueDetails(ctx, "nope", "dflt", ec)
			return of.InterfaceEvaluationDetails{Value: d.Value, EvaluationDetails: d.EvaluationDetails}, err
		}, of.FlagNotFoundCode},
		{"wrong type", func() (of.InterfaceEvaluationDetails, error) {
			d, err := oc.StringValueDetails(ctx, "dark-mode", "dflt", ec)
			return of.InterfaceEvaluationDetails{Value: d.Value, EvaluationDetails: d.EvaluationDetails}, err
		}, of.TypeMismatchCode},
		{"no targeting key", func() (of.InterfaceEvaluationDetails, error) {
			d, err := oc.StringValueDetails(ctx, "checkout", "dflt", of.NewTargetlessEvaluationContext(nil))
			return of.InterfaceEvaluationDetails{Value: d.Value, EvaluationDetails: d.EvaluationDetails}, err
		}, of.TargetingKeyMissingCode},
		{"nested attribute", func() (of.InterfaceEvaluationDetails, error) {
			d, err := oc.StringValueDetails(ctx, "checkout", "dflt", of.NewEvaluationContext("u1", map[string]any{"tags": []string{"a"}}))
			return of.InterfaceEvaluationDetails{Value: d.Value, EvaluationDetails: d.EvaluationDetails}, err
		}, of.InvalidContextCode},
	} {
		d, err := tc.eval()
		if err == nil || d.ErrorCode != tc.code || d.Value != "dflt" || d.Reason != of.ErrorReason {
			t.Errorf("%s: %+v, err %v; want %s and the default", tc.name, d, err, tc.code)
		}
	}

	// A change on the server reaches OpenFeature as an event, and the new
	// value follows.
	admin(t, url, "PUT", "/api/v1/environments/production/flags/dark-mode", 1, map[string]any{"flag": "dark-mode", "environment": "production", "enabled": true,
		"allocations": []any{map[string]any{"key": "everyone", "type": "rollout", "variation": "off", "percent": 100}}})
	select {
	case d := <-events:
		if d.ProviderName != allotof.Name {
			t.Errorf("event from %q", d.ProviderName)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no PROVIDER_CONFIGURATION_CHANGED after a change")
	}
	if v, _ := oc.BooleanValue(ctx, "dark-mode", true, ec); v != false {
		t.Errorf("dark-mode after the change: %v", v)
	}
}

// TestInitFailsWithoutAServer: a client that never got a configuration
// makes Init fail (the OpenFeature SDK reports PROVIDER_ERROR), and
// evaluations answer the default with PROVIDER_NOT_READY.
func TestInitFailsWithoutAServer(t *testing.T) {
	ctx := context.Background()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String()
	ln.Close()
	client, _ := allot.NewClient(ctx, allot.Config{SDKKey: "k", BaseURL: dead + "/api", InitTimeout: -1})
	defer client.Close(ctx)
	p := allotof.New(client, allotof.Options{InitTimeout: 100 * time.Millisecond})
	if err := p.Init(of.EvaluationContext{}); err == nil {
		t.Fatal("Init succeeded without a configuration")
	}
	defer p.Shutdown()
	d := p.StringEvaluation(ctx, "f", "dflt", of.FlattenedContext{of.TargetingKey: "u"})
	if d.Value != "dflt" || d.ResolutionDetail().ErrorCode != of.ProviderNotReadyCode {
		t.Errorf("%+v", d)
	}
}
