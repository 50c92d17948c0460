package web_test

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/httpapi"
)

// The Tokens page (issue 17 item 2) over a real server on SQLite, with the
// real API beside it over the same database: a token made in the page must
// work there, and one revoked in the page must stop working there.

// api serves the REST API over e's database, as allot serve mounts it.
func (e *env) api() *httptest.Server {
	e.t.Helper()
	mux := http.NewServeMux()
	httpapi.New(e.db, e.cache, nil).Register(mux)
	srv := httptest.NewServer(mux)
	e.t.Cleanup(srv.Close)
	return srv
}

// apiStatus is the status of method path on the API with secret as the
// bearer token.
func apiStatus(t *testing.T, api *httptest.Server, secret, method, path, body string) int {
	t.Helper()
	req, _ := http.NewRequest(method, api.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+secret)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// as is a second browser on e's server, signed in with an account's email
// and password.
func (e *env) as(email, password string) *env {
	e.t.Helper()
	jar, _ := cookiejar.New(nil)
	o := *e
	o.c = &http.Client{Jar: jar, CheckRedirect: e.c.CheckRedirect}
	m := csrfField.FindStringSubmatch(o.get("/signin").body)
	if m == nil {
		e.t.Fatal("no csrf in the sign-in form")
	}
	r := o.do("POST", "/signin", url.Values{"csrf": {m[1]}, "email": {email}, "password": {password}, "next": {"/tokens"}})
	if r.status != http.StatusSeeOther || r.loc != "/tokens" {
		e.t.Fatalf("sign in as %s: %d %q %s", email, r.status, r.loc, r.body)
	}
	m = csrfField.FindStringSubmatch(o.get("/tokens").body)
	if m == nil {
		e.t.Fatal("no csrf after sign-in")
	}
	o.csrf = m[1]
	return &o
}

var secretField = regexp.MustCompile(`id="secret" value="(` + regexp.QuoteMeta(core.AdminTokenPrefix) + `[^"]+)"`)

// created returns the secret a create response shows, failing if it shows
// none.
func created(t *testing.T, r resp) string {
	t.Helper()
	want(t, r, http.StatusOK, "shown only this once")
	m := secretField.FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no secret in:\n%s", r.body)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control %q, want no-store", cc)
	}
	return m[1]
}

func liveTokens(t *testing.T, e *env) int {
	t.Helper()
	toks, err := e.core.AdminTokens(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, tok := range toks {
		if tok.RevokedAt == nil {
			n++
		}
	}
	return n
}

func TestTokensCreateShowsTheSecretOnce(t *testing.T) {
	e := newEnv(t)
	e.signIn()
	api := e.api()

	r := e.get("/tokens")
	want(t, r, http.StatusOK, "All tokens", "tester", "this session", e.token.Prefix+"…",
		`<option value="viewer"`, `<option value="editor"`, `<option value="admin" selected`, `aria-current="page">API tokens`)

	// A bad name is refused next to the field, and nothing is created.
	before := liveTokens(t, e)
	want(t, e.post("/tokens", url.Values{"name": {"  "}, "role": {"editor"}}), http.StatusBadRequest,
		`id="name-error"`, "Name: is required", `<option value="editor" selected`)
	want(t, e.post("/tokens", url.Values{"name": {"ci"}, "role": {"owner"}}), http.StatusBadRequest, "Role: must be viewer, editor or admin")
	if n := liveTokens(t, e); n != before {
		t.Fatalf("%d live tokens after refused creates, want %d", n, before)
	}

	r = e.post("/tokens", url.Values{"name": {"ci"}, "role": {"editor"}})
	secret := created(t, r)
	if r.loc != "" || strings.Contains(r.header.Get("Set-Cookie"), secret) {
		t.Fatal("the secret left the page body")
	}
	want(t, r, http.StatusOK, "Created the editor token ci")

	// It authenticates against the API, with the role it was given.
	if s := apiStatus(t, api, secret, "GET", "/api/v1/flags", ""); s != http.StatusOK {
		t.Fatalf("GET with the new token: %d", s)
	}
	if s := apiStatus(t, api, secret, "POST", "/api/v1/environments", `{"name":"staging"}`); s != http.StatusForbidden {
		t.Fatalf("an editor token created an environment: %d", s)
	}

	// Never again: the list shows its prefix, not its secret.
	r = e.get("/tokens")
	want(t, r, http.StatusOK, "ci", secret[:len(core.AdminTokenPrefix)+6]+"…")
	if strings.Contains(r.body, secret) {
		t.Fatal("the secret is shown again")
	}
}

func TestTokensViewerOnlyNarrowerRoles(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.core.CreateUser(ctx, "vi@example.com", "the viewer's password", core.RoleViewer); err != nil {
		t.Fatal(err)
	}
	v := e.as("vi@example.com", "the viewer's password")
	api := e.api()

	r := v.get("/tokens")
	want(t, r, http.StatusOK, "Your tokens", "No API tokens yet", `<option value="viewer" selected`)
	for _, no := range []string{`<option value="editor"`, `<option value="admin"`, e.token.Prefix} {
		if strings.Contains(r.body, no) {
			t.Fatalf("a viewer's page shows %q:\n%s", no, r.body)
		}
	}

	// The select offers no admin role; a forged form gets the core's
	// refusal, and nothing is created.
	before := liveTokens(t, e)
	for _, role := range []string{"admin", "editor"} {
		want(t, v.post("/tokens", url.Values{"name": {"wide"}, "role": {role}}), http.StatusForbidden,
			"cannot have a wider role ("+role+") than its creator&#39;s (viewer)")
	}
	if n := liveTokens(t, e); n != before {
		t.Fatalf("%d live tokens after refused creates, want %d", n, before)
	}

	secret := created(t, v.post("/tokens", url.Values{"name": {"dashboard"}, "role": {"viewer"}}))
	if s := apiStatus(t, api, secret, "GET", "/api/v1/flags", ""); s != http.StatusOK {
		t.Fatalf("GET with the viewer's token: %d", s)
	}
	if s := apiStatus(t, api, secret, "POST", "/api/v1/flags", `{"key":"x","variationType":"BOOLEAN"}`); s != http.StatusForbidden {
		t.Fatalf("a viewer token created a flag: %d", s)
	}
}

func TestTokensRevoke(t *testing.T) {
	e := newEnv(t)
	e.signIn()
	ctx := context.Background()
	api := e.api()

	// The last live token cannot be revoked: the core says why, on the page.
	r := e.post("/tokens/"+itoa(e.token.ID)+"/revoke", url.Values{})
	want(t, r, http.StatusConflict, `id="page-error"`, "is the last live one")
	if s := apiStatus(t, api, e.token.Secret, "GET", "/api/v1/flags", ""); s != http.StatusOK {
		t.Fatalf("the refused revoke changed something: %d", s)
	}

	secret := created(t, e.post("/tokens", url.Values{"name": {"cron"}, "role": {"admin"}}))
	toks, _ := e.core.AdminTokens(ctx)
	cron := toks[len(toks)-1]
	if cron.Name != "cron" {
		t.Fatalf("newest token %+v", cron)
	}

	// A viewer sees none of the admin's tokens and cannot revoke them.
	if _, err := e.core.CreateUser(ctx, "vi@example.com", "the viewer's password", core.RoleViewer); err != nil {
		t.Fatal(err)
	}
	v := e.as("vi@example.com", "the viewer's password")
	if r := v.get("/tokens"); strings.Contains(r.body, `id="revoke-`+itoa(cron.ID)+`"`) || strings.Contains(r.body, "cron") {
		t.Fatalf("a viewer sees the admin's token:\n%s", r.body)
	}
	want(t, v.post("/tokens/"+itoa(cron.ID)+"/revoke", url.Values{}), http.StatusForbidden, "belongs to another account")
	if s := apiStatus(t, api, secret, "GET", "/api/v1/flags", ""); s != http.StatusOK {
		t.Fatalf("the viewer's refused revoke stopped the token: %d", s)
	}

	// The admin revokes it: the page says so and the API refuses it.
	want(t, e.get("/tokens"), http.StatusOK, `id="revoke-`+itoa(cron.ID)+`"`)
	r = e.post("/tokens/"+itoa(cron.ID)+"/revoke", url.Values{})
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.loc, "/tokens") {
		t.Fatalf("revoke: %d %q %s", r.status, r.loc, r.body)
	}
	want(t, e.get(r.loc), http.StatusOK, "Revoked the token", "revoked ")
	if s := apiStatus(t, api, secret, "GET", "/api/v1/flags", ""); s != http.StatusUnauthorized {
		t.Fatalf("a revoked token still authenticates: %d", s)
	}

	// The viewer revokes a token of its own; the admin revokes another of
	// the viewer's (an admin: any).
	own := created(t, v.post("/tokens", url.Values{"name": {"mine"}, "role": {"viewer"}}))
	other := created(t, v.post("/tokens", url.Values{"name": {"other"}, "role": {"viewer"}}))
	var mine, others core.AdminToken
	toks, _ = e.core.AdminTokens(ctx)
	for _, tok := range toks {
		switch tok.Name {
		case "mine":
			mine = tok
		case "other":
			others = tok
		}
	}
	want(t, v.get("/tokens"), http.StatusOK, `id="revoke-`+itoa(mine.ID)+`"`)
	if r := v.post("/tokens/"+itoa(mine.ID)+"/revoke", url.Values{}); r.status != http.StatusSeeOther {
		t.Fatalf("a viewer revoking its own token: %d %s", r.status, r.body)
	}
	want(t, e.get("/tokens"), http.StatusOK, "vi@example.com")
	if r := e.post("/tokens/"+itoa(others.ID)+"/revoke", url.Values{}); r.status != http.StatusSeeOther {
		t.Fatalf("an admin revoking a viewer's token: %d %s", r.status, r.body)
	}
	for _, s := range []string{own, other} {
		if st := apiStatus(t, api, s, "GET", "/api/v1/flags", ""); st != http.StatusUnauthorized {
			t.Fatalf("a revoked viewer token still authenticates: %d", st)
		}
	}
	want(t, e.post("/tokens/nope/revoke", url.Values{}), http.StatusNotFound)
}
