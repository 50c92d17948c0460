package ofrep_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot"
	"github.com/allot-dev/allot/cmd/allot/internal/apiclient"
	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/ofrep"
	"github.com/allot-dev/allot/cmd/allot/internal/server"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

const adminToken = "allot_admin_ofrep-test-token-0123456789"

func raw(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// env is a running server with a few flags and an SDK key.
type env struct {
	s   *server.Server
	api *apiclient.Client
	key string
}

func startEnv(t *testing.T) *env { return startEnvAt(t, filepath.Join(t.TempDir(), "allot.db")) }

func startEnvAt(t *testing.T, db string) *env {
	t.Helper()
	s, err := server.Start(context.Background(), server.Config{
		Addr: "127.0.0.1:0", DB: db, AdminToken: adminToken, Metrics: server.MetricsPublic,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	ctx := context.Background()
	c := apiclient.New(s.URL(), adminToken)
	vars := func(kv ...any) []core.Variation {
		var out []core.Variation
		for i := 0; i < len(kv); i += 2 {
			out = append(out, core.Variation{Key: kv[i].(string), Value: raw(kv[i+1])})
		}
		return out
	}
	yes := true
	defs := []struct {
		flag    core.Flag
		enabled bool
		allocs  []core.Allocation
	}{
		{core.Flag{Key: "checkout", VariationType: "STRING", Variations: vars("control", "control", "blue", "blue", "staff", "staff")}, true, []core.Allocation{
			{Key: "staff", Type: core.Targeted, Variation: "staff", Rules: []core.Rule{{Conditions: []core.Condition{{Attribute: "email", Operator: "MATCHES", Value: raw(`@example\.com$`)}}}}},
			{Key: "test", Type: core.Experiment, Status: core.Running, Traffic: 10000,
				Weights: []core.Weight{{Variation: "control", Weight: 5000}, {Variation: "blue", Weight: 5000}}},
		}},
		{core.Flag{Key: "dark-mode", VariationType: "BOOLEAN", Variations: vars("on", true, "off", false)}, true, []core.Allocation{
			{Key: "all-off", Type: core.Rollout, Variation: "off", Percent: 10000, DoLog: &yes},
		}},
		{core.Flag{Key: "limit", VariationType: "INTEGER", Variations: vars("small", 10)}, true, []core.Allocation{
			{Key: "pro-only", Type: core.Targeted, Variation: "small", Rules: []core.Rule{{Conditions: []core.Condition{{Attribute: "plan", Operator: "ONE_OF", Value: raw([]string{"pro"})}}}}},
		}},
		{core.Flag{Key: "banner", VariationType: "JSON", Variations: vars("sale", map[string]any{"pct": 20})}, false, []core.Allocation{
			{Key: "everyone", Type: core.Rollout, Variation: "sale", Percent: 10000},
		}},
	}
	for _, d := range defs {
		if _, err := c.CreateFlag(ctx, d.flag); err != nil {
			t.Fatalf("create %s: %v", d.flag.Key, err)
		}
		if _, err := c.PutSettings(ctx, core.FlagSettings{Flag: d.flag.Key, Environment: core.DefaultEnvironment, Enabled: d.enabled, Allocations: d.allocs}); err != nil {
			t.Fatalf("settings %s: %v", d.flag.Key, err)
		}
	}
	k, err := c.CreateSDKKey(ctx, core.DefaultEnvironment, "ofrep")
	if err != nil {
		t.Fatal(err)
	}
	return &env{s: s, api: c, key: k.Secret}
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	text   string
}

func (e *env) post(t *testing.T, path, body string, hdr ...string) response {
	t.Helper()
	req, _ := http.NewRequest("POST", e.s.URL()+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e.key)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, text: string(b)}
	if len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, &r.body); err != nil {
			t.Fatalf("%s: not JSON: %q", path, b)
		}
	}
	return r
}

func ctxBody(subject string, attrs map[string]any) string {
	c := map[string]any{}
	for k, v := range attrs {
		c[k] = v
	}
	if subject != "" {
		c["targetingKey"] = subject
	}
	return string(raw(map[string]any{"context": c}))
}

// TestSingleFlagAgreesWithTheSDK: for each flag and many subjects, the OFREP
// answer (value, variant, reason, allocation) is what the Go SDK computes
// from the same server, and the reasons are OpenFeature's.
func TestSingleFlagAgreesWithTheSDK(t *testing.T) {
	e := startEnv(t)
	ctx := context.Background()
	c, err := allot.NewClient(ctx, allot.Config{SDKKey: e.key, BaseURL: e.s.URL() + "/api", PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	reasons := map[string]int{}
	for i := range 200 {
		subject := fmt.Sprintf("user-%d", i)
		attrs := map[string]any{}
		if i%5 == 0 {
			attrs["email"] = subject + "@example.com"
		}
		if i%3 == 0 {
			attrs["plan"] = "pro"
		}
		for _, flag := range []string{"checkout", "dark-mode", "limit", "banner"} {
			r := e.post(t, "/ofrep/v1/evaluate/flags/"+flag, ctxBody(subject, attrs))
			if r.status != 200 {
				t.Fatalf("%s %s: %d %s", flag, subject, r.status, r.text)
			}
			var want any
			var d allot.Details
			switch flag {
			case "checkout":
				want, d = c.GetStringAssignmentDetails(flag, subject, attrs, "")
			case "dark-mode":
				want, d = c.GetBoolAssignmentDetails(flag, subject, attrs, true)
			case "limit":
				var n int64
				n, d = c.GetIntegerAssignmentDetails(flag, subject, attrs, -1)
				want = float64(n)
			case "banner":
				want, d = c.GetJSONAssignmentDetails(flag, subject, attrs, nil)
			}
			reason, _ := r.body["reason"].(string)
			reasons[flag+":"+reason]++
			meta, _ := r.body["metadata"].(map[string]any)
			if d.Code != allot.CodeMatch {
				if _, has := r.body["value"]; has {
					t.Errorf("%s %s: SDK says %s, OFREP gave a value: %s", flag, subject, d.Code, r.text)
				}
				wantReason := map[allot.Code]string{allot.CodeDefaultAllocationNull: "DEFAULT", allot.CodeFlagUnrecognizedOrDisabled: "DISABLED"}[d.Code]
				if reason != wantReason {
					t.Errorf("%s %s: reason %q, want %q", flag, subject, reason, wantReason)
				}
				continue
			}
			if got := canonical(r.body["value"]); got != canonical(want) {
				t.Errorf("%s %s: value %s, SDK %s", flag, subject, got, canonical(want))
			}
			if r.body["variant"] != d.Variation || meta["allocation"] != d.Allocation {
				t.Errorf("%s %s: variant %v allocation %v, SDK %s %s", flag, subject, r.body["variant"], meta["allocation"], d.Variation, d.Allocation)
			}
		}
	}
	// Every mapping was exercised: a rule (TARGETING_MATCH), an experiment
	// (SPLIT), a 100 % rollout (STATIC), no allocation (DEFAULT), disabled.
	for _, want := range []string{"checkout:TARGETING_MATCH", "checkout:SPLIT", "dark-mode:STATIC", "limit:TARGETING_MATCH", "limit:DEFAULT", "banner:DISABLED"} {
		if reasons[want] == 0 {
			t.Errorf("no %s answer: %v", want, reasons)
		}
	}
}

func canonical(v any) string {
	b, _ := json.Marshal(v)
	var x any
	json.Unmarshal(b, &x)
	b, _ = json.Marshal(x)
	return string(b)
}

// TestErrors: each bad request has its OpenFeature error code and status,
// and none is answered with a value.
func TestErrors(t *testing.T) {
	e := startEnv(t)
	nested := `{"context":{"targetingKey":"u","tags":["a","b"]}}`
	many := map[string]any{}
	for i := range ofrep.MaxAttributes + 1 {
		many[fmt.Sprint("a", i)] = i
	}
	for _, tc := range []struct {
		name, path, body string
		hdr              []string
		status           int
		code             string
	}{
		{"unknown flag", "/ofrep/v1/evaluate/flags/nope", ctxBody("u", nil), nil, 404, "FLAG_NOT_FOUND"},
		{"not JSON", "/ofrep/v1/evaluate/flags/checkout", `{"context":`, nil, 400, "PARSE_ERROR"},
		{"invalid UTF-8", "/ofrep/v1/evaluate/flags/checkout", "{\"context\":{\"targetingKey\":\"u\xff\"}}", nil, 400, "PARSE_ERROR"},
		{"trailing data", "/ofrep/v1/evaluate/flags/checkout", `{} {}`, nil, 400, "PARSE_ERROR"},
		{"context not an object", "/ofrep/v1/evaluate/flags/checkout", `{"context":[1]}`, nil, 400, "INVALID_CONTEXT"},
		{"targetingKey not a string", "/ofrep/v1/evaluate/flags/checkout", `{"context":{"targetingKey":7}}`, nil, 400, "INVALID_CONTEXT"},
		{"nested attribute", "/ofrep/v1/evaluate/flags/checkout", nested, nil, 400, "INVALID_CONTEXT"},
		{"too many attributes", "/ofrep/v1/evaluate/flags/checkout", ctxBody("u", many), nil, 400, "INVALID_CONTEXT"},
		{"too large", "/ofrep/v1/evaluate/flags/checkout", `{"context":{"x":"` + strings.Repeat("a", ofrep.MaxBodyBytes) + `"}}`, nil, 400, "PARSE_ERROR"},
		{"experiment without a subject", "/ofrep/v1/evaluate/flags/checkout", `{"context":{}}`, nil, 400, "TARGETING_KEY_MISSING"},
		{"bulk not JSON", "/ofrep/v1/evaluate/flags", `nope`, nil, 400, "PARSE_ERROR"},
		{"no key", "/ofrep/v1/evaluate/flags/checkout", ctxBody("u", nil), []string{"Authorization", ""}, 401, ""},
		{"wrong key", "/ofrep/v1/evaluate/flags", ctxBody("u", nil), []string{"Authorization", "Bearer allot_sdk_nope"}, 401, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.post(t, tc.path, tc.body, tc.hdr...)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.text)
			}
			if tc.code != "" && r.body["errorCode"] != tc.code {
				t.Errorf("errorCode %v, want %s: %s", r.body["errorCode"], tc.code, r.text)
			}
			if _, has := r.body["value"]; has {
				t.Errorf("an error with a value: %s", r.text)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
	// X-API-Key works as well as a bearer token.
	r := e.post(t, "/ofrep/v1/evaluate/flags/dark-mode", ctxBody("u", nil), "Authorization", "", "X-API-Key", e.key)
	if r.status != 200 || r.body["value"] != false {
		t.Errorf("X-API-Key: %d %s", r.status, r.text)
	}
	// Other paths under /ofrep/ are a JSON 404, not the web UI.
	r = e.post(t, "/ofrep/v2/whatever", "{}")
	if r.status != 404 {
		t.Errorf("unknown OFREP path: %d %s", r.status, r.text)
	}
}

// TestBulkETag: an unchanged context (in any key order) gets 304; a changed
// context, or a changed configuration, gets 200 with a new ETag. The
// response advertises the configuration stream.
func TestBulkETag(t *testing.T) {
	e := startEnv(t)
	path := "/ofrep/v1/evaluate/flags"
	first := e.post(t, path, `{"context":{"targetingKey":"u1","plan":"pro","email":"a@b.c"}}`)
	if first.status != 200 {
		t.Fatalf("%d %s", first.status, first.text)
	}
	etag := first.header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	flags, _ := first.body["flags"].([]any)
	keys := []string{}
	for _, f := range flags {
		keys = append(keys, f.(map[string]any)["key"].(string))
	}
	if strings.Join(keys, ",") != "banner,checkout,dark-mode,limit" {
		t.Errorf("flags %v", keys)
	}
	streams, _ := first.body["eventStreams"].([]any)
	if len(streams) != 1 {
		t.Fatalf("eventStreams: %s", first.text)
	}
	st := streams[0].(map[string]any)
	if st["type"] != "sse" || !strings.HasPrefix(st["url"].(string), e.s.URL()+ofrep.StreamPath+"?apiKey=") {
		t.Errorf("eventStreams: %v", st)
	}

	same := e.post(t, path, `{"context":{"email":"a@b.c","plan":"pro","targetingKey":"u1"}}`, "If-None-Match", etag)
	if same.status != 304 || same.header.Get("ETag") != etag {
		t.Errorf("same context: %d, ETag %q (want 304, %q)", same.status, same.header.Get("ETag"), etag)
	}
	for _, body := range []string{
		`{"context":{"targetingKey":"u2","plan":"pro","email":"a@b.c"}}`,  // another subject
		`{"context":{"targetingKey":"u1","plan":"free","email":"a@b.c"}}`, // another attribute value
		`{"context":{"targetingKey":"u1","plan":"pro"}}`,                  // one attribute less
	} {
		r := e.post(t, path, body, "If-None-Match", etag)
		if r.status != 200 || r.header.Get("ETag") == etag {
			t.Errorf("changed context %s: %d, ETag %q", body, r.status, r.header.Get("ETag"))
		}
	}

	// A configuration change: same context, new answer.
	ctx := context.Background()
	if _, err := e.api.PutSettings(ctx, core.FlagSettings{Flag: "banner", Environment: core.DefaultEnvironment, Enabled: true, Version: 1,
		Allocations: []core.Allocation{{Key: "everyone", Type: core.Rollout, Variation: "sale", Percent: 10000}}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := e.post(t, path, `{"context":{"targetingKey":"u1","plan":"pro","email":"a@b.c"}}`, "If-None-Match", etag)
		if r.status == 200 {
			if r.header.Get("ETag") == etag {
				t.Error("new configuration, same ETag")
			}
			banner := r.body["flags"].([]any)[0].(map[string]any)
			if banner["reason"] != "STATIC" || canonical(banner["value"]) != `{"pct":20}` {
				t.Errorf("banner after enabling: %v", banner)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %d after the configuration changed", r.status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAssignmentsAreLogged: OFREP evaluations land in the assignment table
// once per subject and assignment, with the context's attributes, whichever
// endpoint evaluated them; allocations that do not log are left out.
func TestAssignmentsAreLogged(t *testing.T) {
	e := startEnv(t)
	const subjects = 30
	for round := range 3 {
		for i := range subjects {
			body := ctxBody(fmt.Sprintf("user-%d", i), map[string]any{"country": "NL", "n": i})
			path := "/ofrep/v1/evaluate/flags/checkout"
			if round == 2 {
				path = "/ofrep/v1/evaluate/flags"
			}
			if r := e.post(t, path, body); r.status != 200 {
				t.Fatalf("%d %s", r.status, r.text)
			}
		}
	}
	ctx := context.Background()
	var rows []table.Row
	deadline := time.Now().Add(10 * time.Second)
	for {
		rows = rows[:0]
		err := e.s.DB().Assignments(ctx, store.AssignmentFilter{Environment: core.DefaultEnvironment}, func(a *table.Row) error {
			rows = append(rows, *a)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// checkout (experiment, logs) and dark-mode (rollout with doLog)
		// per subject; limit does not match, banner is disabled.
		if len(rows) >= 2*subjects || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(600 * time.Millisecond) // anything extra would have been written by now
	rows = rows[:0]
	e.s.DB().Assignments(ctx, store.AssignmentFilter{Environment: core.DefaultEnvironment}, func(a *table.Row) error {
		rows = append(rows, *a)
		return nil
	})
	if len(rows) != 2*subjects {
		t.Fatalf("%d rows, want %d (one per subject and logged flag)", len(rows), 2*subjects)
	}
	seen := map[string]bool{}
	for _, a := range rows {
		k := a.FeatureFlag + "/" + a.Subject
		if seen[k] {
			t.Errorf("%s logged twice", k)
		}
		seen[k] = true
		if a.SDKName != ofrep.SDKName || a.Experiment != a.FeatureFlag+"-"+a.Allocation || a.Variation == "" {
			t.Errorf("row %+v", a)
		}
		var attrs map[string]any
		json.Unmarshal(a.SubjectAttributes, &attrs)
		if attrs["country"] != "NL" || attrs["targetingKey"] != nil {
			t.Errorf("attributes %s", a.SubjectAttributes)
		}
	}
	// The counters are exported.
	resp, err := http.Get(e.s.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{fmt.Sprintf("allot_ofrep_assignments_written_total %d", 2*subjects), "allot_ofrep_assignments_dropped_total 0"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestShutdownKeepsAssignments: assignments handed out just before the
// server closes are in the table afterwards (the recorder is drained before
// the ingestion writer and the database close).
func TestShutdownKeepsAssignments(t *testing.T) {
	path := filepath.Join(t.TempDir(), "allot.db")
	e := startEnvAt(t, path)
	const subjects = 200
	for i := range subjects {
		if r := e.post(t, "/ofrep/v1/evaluate/flags/checkout", ctxBody(fmt.Sprint("user-", i), nil)); r.status != 200 {
			t.Fatalf("%d %s", r.status, r.text)
		}
	}
	ctx := context.Background()
	if err := e.s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n := 0
	if err := db.Assignments(ctx, store.AssignmentFilter{}, func(*table.Row) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != subjects {
		t.Fatalf("%d assignments in the table after shutdown, want %d", n, subjects)
	}
}

// TestConfiguration: the OFREP configuration extension answers with the
// capabilities, an ETag and 304 on a match, and only to a valid key.
func TestConfiguration(t *testing.T) {
	e := startEnv(t)
	get := func(hdr ...string) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", e.s.URL()+"/ofrep/v1/configuration", nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, body := get("X-API-Key", e.key)
	var cfg struct {
		Name         string `json:"name"`
		Capabilities struct {
			FlagEvaluation struct {
				SupportedTypes []string `json:"supportedTypes"`
			} `json:"flagEvaluation"`
		} `json:"capabilities"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &cfg) != nil || cfg.Name != "Allot" || len(cfg.Capabilities.FlagEvaluation.SupportedTypes) != 5 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if resp, _ := get("X-API-Key", e.key, "If-None-Match", resp.Header.Get("ETag")); resp.StatusCode != 304 {
		t.Errorf("If-None-Match: %d", resp.StatusCode)
	}
	if resp, _ := get(); resp.StatusCode != 401 {
		t.Errorf("no key: %d", resp.StatusCode)
	}
}
