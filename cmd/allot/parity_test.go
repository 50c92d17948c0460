package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/allot-dev/allot"
	"github.com/allot-dev/allot/cmd/allot/internal/apiclient"
	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/httpapi"
	"github.com/allot-dev/allot/cmd/allot/internal/server"
)

// The parity test (issue 9 item 3) drives the same scenario through the
// REST API, the web UI's handlers (real HTTP, session cookie and CSRF
// token) and the CLI (its command function, in-process) against three
// fresh servers on loopback, and asserts that the published configuration,
// the audit log and an SDK's answers come out identical. It lives in
// package main because that is the only way to call the CLI's code.

const parityToken = "allot_admin_parity-test-token-0123456789abcdef"

// frontEnd performs each step of the scenario its own way.
type frontEnd interface {
	createExperiment(t *testing.T) // flag checkout, draft experiment checkout: 10 %, 50/50
	start(t *testing.T)
	traffic(t *testing.T, percent string)
	weights(t *testing.T, control, treatment string)
	stop(t *testing.T)
	rollout(t *testing.T) // ramp: 25 % to treatment
	createKey(t *testing.T, name string)
	revokeKey(t *testing.T, id int64)
}

// parityScenario is the scenario every front end plays, step by step.
var parityScenario = []struct {
	name string
	do   func(*testing.T, frontEnd)
}{
	{"create a flag with a draft experiment", func(t *testing.T, f frontEnd) { f.createExperiment(t) }},
	{"start it (turns the flag on)", func(t *testing.T, f frontEnd) { f.start(t) }},
	{"raise traffic to 50 %", func(t *testing.T, f frontEnd) { f.traffic(t, "50") }},
	{"change weights to 30/70", func(t *testing.T, f frontEnd) { f.weights(t, "30", "70") }},
	{"stop it", func(t *testing.T, f frontEnd) { f.stop(t) }},
	{"start it again", func(t *testing.T, f frontEnd) { f.start(t) }},
	{"add a rollout", func(t *testing.T, f frontEnd) { f.rollout(t) }},
	{"create an SDK key", func(t *testing.T, f frontEnd) { f.createKey(t, "web") }},
	{"create another", func(t *testing.T, f frontEnd) { f.createKey(t, "old") }},
	{"revoke it", func(t *testing.T, f frontEnd) { f.revokeKey(t, 2) }},
}

func TestParity(t *testing.T) {
	fronts := map[string]func(t *testing.T, s *server.Server) frontEnd{
		"api": newAPIFront,
		"ui":  newUIFront,
		"cli": newCLIFront,
	}
	type outcome struct{ config, audit, answers string }
	results := map[string]outcome{}
	for _, name := range []string{"api", "ui", "cli"} {
		t.Run(name, func(t *testing.T) {
			s := startParityServer(t)
			f := fronts[name](t, s)
			for _, step := range parityScenario {
				t.Logf("step: %s", step.name)
				step.do(t, f)
			}
			results[name] = outcome{config: publishedConfig(t, s), audit: auditLog(t, s), answers: sdkAnswers(t, s)}
		})
	}
	if t.Failed() {
		return
	}
	api := results["api"]
	if !strings.Contains(api.config, `"enabled":true`) || !strings.Contains(api.answers, "treatment") || !strings.Contains(api.audit, "revoke sdk_key") {
		t.Fatalf("the scenario did not run as meant:\n%s\n%s\n%s", api.config, api.answers, api.audit)
	}
	for _, name := range []string{"ui", "cli"} {
		got := results[name]
		if got.config != api.config {
			t.Errorf("published configuration, %s vs api:\n%s\n%s", name, got.config, api.config)
		}
		if got.audit != api.audit {
			t.Errorf("audit log, %s vs api:\n%s\n---\n%s", name, got.audit, api.audit)
		}
		if got.answers != api.answers {
			t.Errorf("SDK answers, %s vs api:\n%s\n%s", name, got.answers, api.answers)
		}
	}
}

// startParityServer starts a server whose allocation salts are drawn from
// a counter, so that three servers given the same changes publish the same
// bytes and assign subjects alike.
func startParityServer(t *testing.T) *server.Server {
	t.Helper()
	var n atomic.Int64
	return startServer(t, server.Config{
		DB: filepath.Join(t.TempDir(), "parity.db"), AdminToken: parityToken,
		NewSalt: func() string { return fmt.Sprintf("salt%012d", n.Add(1)) },
	})
}

var (
	reCreatedAt = regexp.MustCompile(`"(createdAt|updatedAt|lastUsedAt|revokedAt)":\s*"[^"]*"`)
	reSDKKey    = regexp.MustCompile(`allot_sdk_[0-9a-f]+`)
)

func normalize(s string) string {
	s = reCreatedAt.ReplaceAllString(s, `"$1":"T"`)
	return reSDKKey.ReplaceAllString(s, "allot_sdk_X")
}

func publishedConfig(t *testing.T, s *server.Server) string {
	t.Helper()
	raw, err := apiclient.New(s.URL(), parityToken).Config(context.Background(), "production")
	if err != nil {
		t.Fatal(err)
	}
	return normalize(string(raw))
}

// auditLog is the whole log, oldest first, without ids and times.
func auditLog(t *testing.T, s *server.Server) string {
	t.Helper()
	entries, err := apiclient.New(s.URL(), parityToken).Audit(context.Background(), core.MaxAuditLimit, 0)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		fmt.Fprintf(&b, "%s %s %s %s %s\n  before %s\n  after  %s\n", e.Actor, e.Action, e.Entity, e.Key, e.Environment, compact(e.Before), compact(e.After))
	}
	return normalize(b.String())
}

func compact(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}

// sdkAnswers asks the Go SDK, with the live key, for 300 subjects.
func sdkAnswers(t *testing.T, s *server.Server) string {
	t.Helper()
	ctx := context.Background()
	var key string
	keys, err := apiclient.New(s.URL(), parityToken).SDKKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The secret is shown once; tests read it from the front end's
	// answer, kept by createKey.
	for _, k := range keys {
		if k.RevokedAt == nil {
			key = secrets[s.URL()+"/"+k.Name]
		}
	}
	c, err := allot.NewClient(ctx, allot.Config{SDKKey: key, BaseURL: s.URL() + "/api"})
	if err != nil {
		t.Fatalf("SDK: %v", err)
	}
	defer c.Close(ctx)
	var b strings.Builder
	for i := range 300 {
		fmt.Fprintf(&b, "%s ", c.GetStringAssignment("checkout", fmt.Sprint("user-", i), nil, "default"))
	}
	return b.String()
}

// secrets holds the SDK keys' secrets by server URL and key name.
var secrets = map[string]string{}

// ---- the REST API

type apiFront struct {
	c   *apiclient.Client
	url string
}

func newAPIFront(t *testing.T, s *server.Server) frontEnd {
	return &apiFront{c: apiclient.New(s.URL(), parityToken), url: s.URL()}
}

func (a *apiFront) version(t *testing.T) int64 {
	t.Helper()
	s, err := a.c.Settings(context.Background(), "production", "checkout")
	if err != nil {
		t.Fatal(err)
	}
	return s.Version
}

func (a *apiFront) check(t *testing.T, _ any, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func pct(s string) core.Percent {
	var p core.Percent
	p.UnmarshalJSON([]byte(s))
	return p
}

func (a *apiFront) createExperiment(t *testing.T) {
	ctx := context.Background()
	_, err := a.c.CreateFlag(ctx, core.Flag{Key: "checkout", VariationType: "STRING", Variations: []core.Variation{
		{Key: "control", Value: json.RawMessage(`"control"`)}, {Key: "treatment", Value: json.RawMessage(`"treatment"`)}}})
	a.check(t, nil, err)
	_, err = a.c.AddAllocation(ctx, "production", "checkout", a.version(t), core.Allocation{Key: "checkout", Type: core.Experiment, Traffic: pct("10"),
		Weights: []core.Weight{{Variation: "control", Weight: pct("50")}, {Variation: "treatment", Weight: pct("50")}}})
	a.check(t, nil, err)
}

func (a *apiFront) patch(t *testing.T, p httpapi.AllocationPatch) {
	t.Helper()
	out, err := a.c.PatchAllocation(context.Background(), "production", "checkout", "checkout", a.version(t), p)
	a.check(t, out, err)
}

func (a *apiFront) start(t *testing.T) {
	s := core.Running
	a.patch(t, httpapi.AllocationPatch{Status: &s})
}

func (a *apiFront) stop(t *testing.T) {
	s := core.Stopped
	a.patch(t, httpapi.AllocationPatch{Status: &s})
}

func (a *apiFront) traffic(t *testing.T, percent string) {
	p := pct(percent)
	a.patch(t, httpapi.AllocationPatch{Traffic: &p})
}

func (a *apiFront) weights(t *testing.T, control, treatment string) {
	ws := []core.Weight{{Variation: "control", Weight: pct(control)}, {Variation: "treatment", Weight: pct(treatment)}}
	a.patch(t, httpapi.AllocationPatch{Weights: &ws})
}

func (a *apiFront) rollout(t *testing.T) {
	_, err := a.c.AddAllocation(context.Background(), "production", "checkout", a.version(t),
		core.Allocation{Key: "ramp", Type: core.Rollout, Variation: "treatment", Percent: pct("25")})
	a.check(t, nil, err)
}

func (a *apiFront) createKey(t *testing.T, name string) {
	k, err := a.c.CreateSDKKey(context.Background(), "production", name)
	a.check(t, nil, err)
	secrets[a.url+"/"+name] = k.Secret
}

func (a *apiFront) revokeKey(t *testing.T, id int64) {
	a.check(t, nil, a.c.RevokeSDKKey(context.Background(), id))
}

// ---- the web UI

type uiFront struct {
	url  string
	c    *http.Client
	csrf string
}

var (
	reCSRF    = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	reVersion = regexp.MustCompile(`name="version" value="(\d+)"`)
	reSecret  = regexp.MustCompile(`allot_sdk_[0-9a-f]{48}`)
)

func newUIFront(t *testing.T, s *server.Server) frontEnd {
	jar, _ := cookiejar.New(nil)
	u := &uiFront{url: s.URL(), c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	body, _ := u.do(t, "GET", "/signin", nil)
	m := reCSRF.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("sign-in form: %s", body)
	}
	if _, status := u.do(t, "POST", "/signin", url.Values{"csrf": {m[1]}, "token": {parityToken}, "next": {"/flags"}}); status != http.StatusSeeOther {
		t.Fatalf("sign in: %d", status)
	}
	body, _ = u.do(t, "GET", "/flags", nil)
	if m = reCSRF.FindStringSubmatch(body); m == nil {
		t.Fatalf("not signed in: %s", body)
	}
	u.csrf = m[1]
	return u
}

func (u *uiFront) do(t *testing.T, method, path string, form url.Values) (string, int) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, u.url+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := u.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode
}

// post sends a form as the page would, with the CSRF token and the
// version the flag page shows; it wants the redirect of a success.
func (u *uiFront) post(t *testing.T, path string, form url.Values) string {
	t.Helper()
	if path != "/flags/new" && path != "/keys" && !strings.HasPrefix(path, "/keys/") {
		page, _ := u.do(t, "GET", "/flags/checkout?env=production", nil)
		m := reVersion.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no version on the flag page: %s", page)
		}
		form.Set("version", m[1])
	}
	form.Set("csrf", u.csrf)
	form.Set("env", "production")
	body, status := u.do(t, "POST", path, form)
	if status != http.StatusSeeOther && !(path == "/keys" && status == http.StatusOK) {
		t.Fatalf("POST %s: %d\n%s", path, status, body)
	}
	return body
}

func (u *uiFront) createExperiment(t *testing.T) {
	u.post(t, "/flags/new", url.Values{"key": {"checkout"}, "type": {"STRING"}, "traffic": {"10"},
		"var_key_0": {"control"}, "var_value_0": {"control"}, "var_weight_0": {"50"},
		"var_key_1": {"treatment"}, "var_value_1": {"treatment"}, "var_weight_1": {"50"}})
}

func (u *uiFront) start(t *testing.T) {
	u.post(t, "/flags/checkout/allocations/checkout/status", url.Values{"status": {"running"}})
}

func (u *uiFront) stop(t *testing.T) {
	u.post(t, "/flags/checkout/allocations/checkout/status", url.Values{"status": {"stopped"}})
}

func (u *uiFront) traffic(t *testing.T, percent string) {
	u.post(t, "/flags/checkout/allocations/checkout/traffic", url.Values{"traffic": {percent}})
}

func (u *uiFront) weights(t *testing.T, control, treatment string) {
	u.post(t, "/flags/checkout/allocations/checkout/weights", url.Values{"weight_control": {control}, "weight_treatment": {treatment}, "confirm": {"yes"}})
}

func (u *uiFront) rollout(t *testing.T) {
	u.post(t, "/flags/checkout/rollouts", url.Values{"key": {"ramp"}, "variation": {"treatment"}, "percent": {"25"}})
}

func (u *uiFront) createKey(t *testing.T, name string) {
	body := u.post(t, "/keys", url.Values{"name": {name}})
	secret := reSecret.FindString(body)
	if secret == "" {
		t.Fatalf("no secret shown: %s", body)
	}
	secrets[u.url+"/"+name] = secret
}

func (u *uiFront) revokeKey(t *testing.T, id int64) {
	u.post(t, fmt.Sprintf("/keys/%d/revoke", id), url.Values{})
}

// ---- the CLI

type cliFront struct{ url string }

func newCLIFront(t *testing.T, s *server.Server) frontEnd { return &cliFront{url: s.URL()} }

func (c *cliFront) run(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, getenv: func(k string) string {
		return map[string]string{"ALLOT_SERVER": c.url, "ALLOT_TOKEN": parityToken}[k]
	}}
	if code := Main(context.Background(), e, args); code != 0 {
		t.Fatalf("allot %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
	}
	return out.String()
}

func (c *cliFront) createExperiment(t *testing.T) {
	c.run(t, "flags", "create", "checkout", "--variation", "control=control", "--variation", "treatment=treatment")
	c.run(t, "experiments", "create", "checkout", "checkout", "--traffic", "10", "--weight", "control=50", "--weight", "treatment=50")
}

func (c *cliFront) start(t *testing.T) { c.run(t, "experiments", "start", "checkout", "checkout") }
func (c *cliFront) stop(t *testing.T)  { c.run(t, "experiments", "stop", "checkout", "checkout") }
func (c *cliFront) traffic(t *testing.T, percent string) {
	c.run(t, "experiments", "traffic", "checkout", "checkout", percent)
}
func (c *cliFront) weights(t *testing.T, control, treatment string) {
	c.run(t, "experiments", "weights", "checkout", "checkout", "control="+control, "treatment="+treatment)
}
func (c *cliFront) rollout(t *testing.T) {
	c.run(t, "flags", "rollout", "checkout", "--alloc", "ramp", "--variation", "treatment", "--percent", "25")
}
func (c *cliFront) createKey(t *testing.T, name string) {
	secrets[c.url+"/"+name] = strings.TrimSpace(c.run(t, "keys", "create", name))
}
func (c *cliFront) revokeKey(t *testing.T, id int64) { c.run(t, "keys", "revoke", fmt.Sprint(id)) }
