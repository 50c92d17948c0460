package web_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/publish"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
	"github.com/allot-dev/allot/cmd/allot/internal/table"
	"github.com/allot-dev/allot/cmd/allot/internal/web"
)

type env struct {
	t     *testing.T
	db    *store.DB
	core  *core.Core // for the tests' own reads and setup
	cache *publish.Cache
	srv   *httptest.Server
	c     *http.Client
	token core.AdminToken
	csrf  string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db := storetest.Open(t, "sqlite")
	ctx := context.Background()
	tok, err := core.New(db, core.Options{}).CreateAdminToken(ctx, "tester")
	if err != nil {
		t.Fatal(err)
	}
	cache := publish.NewCache(db, nil)
	if err := cache.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(web.New(db, cache, nil))
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &env{t: t, db: db, core: core.New(db, core.Options{}), cache: cache, srv: srv, c: c, token: tok}
}

type resp struct {
	status int
	loc    string
	body   string
	header http.Header
}

func (e *env) do(method, path string, form url.Values) resp {
	e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := e.c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, loc: res.Header.Get("Location"), body: string(b), header: res.Header}
}

func (e *env) get(path string) resp { e.t.Helper(); return e.do("GET", path, nil) }

// post sends a form with the session's CSRF token.
func (e *env) post(path string, form url.Values) resp {
	e.t.Helper()
	form.Set("csrf", e.csrf)
	return e.do("POST", path, form)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (e *env) signIn() {
	e.t.Helper()
	r := e.get("/signin")
	m := csrfField.FindStringSubmatch(r.body)
	if m == nil {
		e.t.Fatalf("no csrf in sign-in form: %s", r.body)
	}
	r = e.do("POST", "/signin", url.Values{"csrf": {m[1]}, "token": {e.token.Secret}, "next": {"/flags"}})
	if r.status != http.StatusSeeOther || r.loc != "/flags" {
		e.t.Fatalf("sign in: %d %q %s", r.status, r.loc, r.body)
	}
	r = e.get("/flags")
	m = csrfField.FindStringSubmatch(r.body)
	if r.status != 200 || m == nil {
		e.t.Fatalf("after sign in: %d %s", r.status, r.body)
	}
	e.csrf = m[1]
}

func want(t *testing.T, r resp, status int, contains ...string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body:\n%s", r.status, status, r.body)
	}
	for _, s := range contains {
		if !strings.Contains(r.body, s) {
			t.Fatalf("body lacks %q:\n%s", s, r.body)
		}
	}
}

func TestUnauthenticatedRedirectsToSignIn(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/", "/flags", "/flags/new", "/flags/x?env=production", "/keys", "/audit", "/nope"} {
		r := e.get(path)
		if r.status != http.StatusSeeOther || !strings.HasPrefix(r.loc, "/signin?next=") {
			t.Errorf("GET %s: %d %q", path, r.status, r.loc)
		}
	}
	r := e.do("POST", "/flags/new", url.Values{"key": {"x"}})
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.loc, "/signin") {
		t.Errorf("POST: %d %q", r.status, r.loc)
	}
	if r := e.get("/api/flag-config/v9/config"); r.status != http.StatusNotFound {
		t.Errorf("unknown API path: %d", r.status)
	}
	// Static assets are public.
	if r := e.get("/static/style.css"); r.status != 200 || !strings.Contains(r.header.Get("Content-Type"), "text/css") {
		t.Errorf("style.css: %d %s", r.status, r.header.Get("Content-Type"))
	}
}

func TestSignInAndOut(t *testing.T) {
	e := newEnv(t)
	r := e.get("/signin?next=/keys")
	m := csrfField.FindStringSubmatch(r.body)
	want(t, r, 200, `<label for="token">Admin token</label>`, `value="/keys"`)

	// Without the form's token: refused.
	r = e.do("POST", "/signin", url.Values{"token": {e.token.Secret}})
	want(t, r, http.StatusForbidden, "expired")
	r = e.get("/signin")
	m = csrfField.FindStringSubmatch(r.body)

	// A wrong token: an error next to the field.
	r = e.do("POST", "/signin", url.Values{"csrf": {m[1]}, "token": {"allot_admin_nope"}})
	want(t, r, http.StatusUnauthorized, `id="token-error"`, "unknown or has been revoked")
	m = csrfField.FindStringSubmatch(r.body)

	// An offsite next is ignored.
	r = e.do("POST", "/signin", url.Values{"csrf": {m[1]}, "token": {e.token.Secret}, "next": {"//evil.example/"}})
	if r.status != http.StatusSeeOther || r.loc != "/flags" {
		t.Fatalf("sign in: %d %q", r.status, r.loc)
	}
	var sess *http.Cookie
	for _, c := range e.c.Jar.Cookies(mustURL(e.srv.URL)) {
		if c.Name == "allot_session" {
			sess = c
		}
	}
	if sess == nil {
		t.Fatal("no session cookie")
	}
	// The Set-Cookie attributes the jar does not show.
	if sc := findSetCookie(t, e, m); !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Lax") || strings.Contains(sc, "Secure") {
		t.Fatalf("session cookie %q", sc)
	}
	e.signIn()
	want(t, e.get("/flags"), 200, "Sign out", "There are no flags yet")

	// Sign out without the CSRF token: refused, still signed in.
	want(t, e.do("POST", "/signout", url.Values{}), http.StatusForbidden)
	want(t, e.get("/flags"), 200)
	r = e.post("/signout", url.Values{})
	if r.status != http.StatusSeeOther || r.loc != "/signin" {
		t.Fatalf("sign out: %d %q", r.status, r.loc)
	}
	if r := e.get("/flags"); r.status != http.StatusSeeOther {
		t.Fatalf("after sign out: %d", r.status)
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// findSetCookie signs in once more without the jar and returns the
// session's Set-Cookie header.
func findSetCookie(t *testing.T, e *env, _ []string) string {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Get(e.srv.URL + "/signin")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	tok := csrfField.FindStringSubmatch(string(b))[1]
	req, _ := http.NewRequest("POST", e.srv.URL+"/signin", strings.NewReader(url.Values{"csrf": {tok}, "token": {e.token.Secret}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "allot_signin", Value: tok})
	res, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	for _, sc := range res.Header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, "allot_session=") {
			return sc
		}
	}
	t.Fatalf("no session Set-Cookie: %v", res.Header)
	return ""
}

func TestSecureCookieOverTLS(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	tok, _ := core.New(db, core.Options{}).CreateAdminToken(context.Background(), "tls")
	cache := publish.NewCache(db, nil)
	cache.Refresh(context.Background())
	ui := web.New(db, cache, nil)
	req := httptest.NewRequest("POST", "https://allot.example/signin", strings.NewReader(url.Values{"csrf": {"abc"}, "token": {tok.Secret}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "allot_signin", Value: "abc"})
	req.TLS = &tls.ConnectionState{}
	rec := httptest.NewRecorder()
	ui.ServeHTTP(rec, req)
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	found := false
	for _, sc := range rec.Result().Header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, "allot_session=") {
			found = true
			if !strings.Contains(sc, "Secure") || !strings.Contains(sc, "HttpOnly") {
				t.Fatalf("cookie over TLS: %q", sc)
			}
		}
	}
	if !found {
		t.Fatal("no session cookie")
	}
}

func TestCrossOriginPostRefused(t *testing.T) {
	e := newEnv(t)
	e.signIn()
	req, _ := http.NewRequest("POST", e.srv.URL+"/keys", strings.NewReader(url.Values{"csrf": {e.csrf}, "name": {"x"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	res, err := e.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin POST: %d", res.StatusCode)
	}
	keys, _ := e.core.SDKKeys(context.Background())
	if len(keys) != 0 {
		t.Fatal("a key was created")
	}
}

func TestRevokingTheTokenEndsTheSession(t *testing.T) {
	e := newEnv(t)
	e.signIn()
	// Another token exists: the last one cannot be revoked.
	if _, err := e.core.CreateAdminToken(context.Background(), "spare"); err != nil {
		t.Fatal(err)
	}
	if err := e.core.RevokeAdminToken(context.Background(), e.token.ID); err != nil {
		t.Fatal(err)
	}
	if r := e.get("/flags"); r.status != http.StatusSeeOther {
		t.Fatalf("revoked token's session still works: %d", r.status)
	}
}

func experimentForm(key string) url.Values {
	return url.Values{
		"key": {key}, "description": {"Which button converts"}, "type": {"STRING"},
		"var_key_0": {"control"}, "var_value_0": {"blue"}, "var_weight_0": {"50"},
		"var_key_1": {"treatment"}, "var_value_1": {"green"}, "var_weight_1": {"50"},
		"traffic":     {"10"},
		"cond_rule_0": {"1"}, "cond_attr_0": {"country"}, "cond_op_0": {"ONE_OF"}, "cond_value_0": {"US, CA"},
		"cond_rule_1": {"2"}, "cond_attr_1": {"age"}, "cond_op_1": {"GTE"}, "cond_value_1": {"18"},
	}
}

func TestCreateExperimentValidation(t *testing.T) {
	e := newEnv(t)
	e.signIn()
	cases := []struct {
		name  string
		edit  func(url.Values)
		field string // the id of the error next to the field
		text  string
	}{
		{"bad key", func(f url.Values) { f.Set("key", "no spaces") }, "key-error", "Key: must be 1 to 128"},
		{"weights", func(f url.Values) { f.Set("var_weight_1", "40") }, "variations-error", "must sum to 100, not 90"},
		{"weight not a number", func(f url.Values) { f.Set("var_weight_1", "lots") }, "var-1-error", "Variation 2 weight"},
		{"duplicate variation", func(f url.Values) { f.Set("var_key_1", "control") }, "var-1-error", "appears twice"},
		{"integer value", func(f url.Values) { f.Set("type", "INTEGER") }, "var-0-error", "Variation 1 value"},
		{"traffic", func(f url.Values) { f.Set("traffic", "120") }, "traffic-error", "Traffic allocation: must be a percentage"},
		{"regex", func(f url.Values) { f.Set("cond_op_1", "MATCHES"); f.Set("cond_value_1", "(") }, "cond-1-error", "Condition 2 value"},
		{"version operand", func(f url.Values) { f.Set("cond_value_1", "new") }, "cond-1-error", "needs a number or a version"},
		{"no attribute", func(f url.Values) { f.Set("cond_attr_0", "") }, "cond-0-error", "Condition 1 attribute: is required"},
		{"dates", func(f url.Values) { f.Set("start", "2026-05-01T00:00"); f.Set("end", "2026-04-01T00:00") }, "end-error", "End: is before startAt"},
		{"bad date", func(f url.Values) { f.Set("start", "tomorrow") }, "start-error", "Start: must be a date"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := experimentForm("checkout")
			c.edit(f)
			r := e.post("/flags/new?env=production", f)
			want(t, r, http.StatusBadRequest, `id="`+c.field+`"`, c.text, `role="alert"`)
		})
	}
	// Nothing was created half-way.
	flags, _ := e.core.Flags(context.Background())
	if len(flags) != 0 {
		t.Fatalf("flags created: %v", flags)
	}
	// Without the CSRF token nothing happens.
	f := experimentForm("checkout")
	r := e.do("POST", "/flags/new", f)
	want(t, r, http.StatusForbidden, "expired")
}

func TestExperimentLifecycle(t *testing.T) {
	e := newEnv(t)
	e.signIn()
	ctx := context.Background()
	r := e.post("/flags/new?env=production", experimentForm("checkout"))
	if r.status != http.StatusSeeOther || r.loc != "/flags/checkout?env=production" {
		t.Fatalf("create: %d %q %s", r.status, r.loc, r.body)
	}
	r = e.get(r.loc)
	want(t, r, 200, "Created experiment checkout", `id="status">DRAFT`,
		"subjects whose country is one of &#34;US&#34;, &#34;CA&#34;, or whose age is at least 18",
		"control 50 % / treatment 50 %", `&#34;key&#34;: &#34;checkout&#34;`)
	want(t, e.get("/flags?env=production"), 200, `href="/flags/checkout?env=production"`, "DRAFT", "10 %")
	want(t, e.get("/flags?env=production&status=RUNNING"), 200, "No flag matches")
	if _, err := e.core.CreateEnvironment(ctx, "staging"); err != nil {
		t.Fatal(err)
	}
	want(t, e.get("/flags?env=staging"), 200, `<option value="staging" selected>`, `href="/flags/checkout?env=staging"`, `class="badge off">OFF`)
	want(t, e.get("/flags/checkout?env=staging"), 200, "No allocations in staging", `href="/flags/checkout?env=production"`)
	want(t, e.get("/flags?env=production&q=button"), 200, `href="/flags/checkout?env=production"`)

	s, _ := e.core.FlagSettings(ctx, "production", "checkout")
	version := func() string {
		s, _ := e.core.FlagSettings(ctx, "production", "checkout")
		return itoa(s.Version)
	}
	start := url.Values{"env": {"production"}, "version": {version()}, "status": {"running"}}
	r = e.post("/flags/checkout/allocations/checkout/status", start)
	if r.status != http.StatusSeeOther {
		t.Fatalf("start: %d %s", r.status, r.body)
	}
	// The flag was off (a draft): starting turns it on, and the page says so.
	want(t, e.get(r.loc), 200, `id="status">RUNNING`, "Started checkout", "flag checkout is now on in production")

	// A stale version: a conflict, shown on the page.
	stale := url.Values{"env": {"production"}, "version": {itoa(s.Version)}, "traffic": {"50"}}
	want(t, e.post("/flags/checkout/allocations/checkout/traffic", stale), http.StatusConflict, "someone changed this flag")

	raise := url.Values{"env": {"production"}, "version": {version()}, "traffic": {"50"}}
	r = e.post("/flags/checkout/allocations/checkout/traffic", raise)
	want(t, e.get(r.loc), 200, "10 % → 50 %. Everyone assigned so far keeps their variation; about 40 % more subjects enter.")
	lower := url.Values{"env": {"production"}, "version": {version()}, "traffic": {"30"}}
	r = e.post("/flags/checkout/allocations/checkout/traffic", lower)
	want(t, e.get(r.loc), 200, "About 20 % of subjects leave the experiment; raising it back brings exactly them back.")
	bad := url.Values{"env": {"production"}, "version": {version()}, "traffic": {"abc"}}
	want(t, e.post("/flags/checkout/allocations/checkout/traffic", bad), http.StatusBadRequest,
		`id="traffic-checkout-error"`, "Traffic allocation: must be a percentage")

	// Weights need the confirmation.
	w := url.Values{"env": {"production"}, "version": {version()}, "weight_control": {"30"}, "weight_treatment": {"70"}}
	want(t, e.post("/flags/checkout/allocations/checkout/weights", w), http.StatusBadRequest,
		`id="weights-checkout-error"`, "re-randomizes the experiment; tick the box")
	w.Set("confirm", "yes")
	r = e.post("/flags/checkout/allocations/checkout/weights", w)
	want(t, e.get(r.loc), 200, "control 30 % / treatment 70 %", "changing weights re-randomizes it") // the core's warning

	// Preview: the engine answers.
	want(t, e.get("/flags/checkout?env=production&subject=u1&attrs="+url.QueryEscape("country = FR\nage = 12")), 200,
		`id="preview-variation">no variation`, "subject matches none of its rules")
	r = e.get("/flags/checkout?env=production&subject=u1&attrs=" + url.QueryEscape(`{"country": "US"}`))
	want(t, r, 200, `id="preview-result"`)
	if !strings.Contains(r.body, "gets variation") && !strings.Contains(r.body, "outside its traffic") {
		t.Fatalf("preview: %s", r.body)
	}
	want(t, e.get("/flags/checkout?env=production&subject=&attrs="), 200, "Subject key: is required")
	want(t, e.get("/flags/checkout?env=production&subject=x&attrs=nonsense"), 200, "Attributes: line 1")

	// Stop, turn off.
	r = e.post("/flags/checkout/allocations/checkout/status", url.Values{"env": {"production"}, "version": {version()}, "status": {"stopped"}})
	want(t, e.get(r.loc), 200, `id="status">STOPPED`)
	r = e.post("/flags/checkout/enabled", url.Values{"env": {"production"}, "version": {version()}, "enabled": {"false"}})
	want(t, e.get(r.loc), 200, `id="status">OFF`)

	want(t, e.get("/flags/nope?env=production"), http.StatusNotFound, "flag &#34;nope&#34; not found")
	want(t, e.post("/flags/new?env=production", experimentForm("checkout")), http.StatusConflict,
		`id="key-error"`, "already exists; choose another key")
	if r := e.get("/static/"); r.status != http.StatusNotFound {
		t.Fatalf("static directory listing: %d", r.status)
	}

	// The audit log names the token.
	want(t, e.get("/audit"), 200, "admin@localhost (token tester, ", "update flag_settings", "create flag", "Before and after",
		"allocations[0].traffic: 10 → 50", "allocations[0].status: &#34;draft&#34; → &#34;running&#34;", "enabled: true → false")
}

func TestSDKKeys(t *testing.T) {
	e := newEnv(t)
	e.signIn()
	ctx := context.Background()
	want(t, e.post("/keys?env=production", url.Values{"env": {"production"}, "name": {" "}}), http.StatusBadRequest,
		`id="name-error"`, "Name: is required")
	r := e.post("/keys?env=production", url.Values{"env": {"production"}, "name": {"checkout-service"}})
	want(t, r, 200, "shown only this once", `data-copy="secret"`)
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control %q", cc)
	}
	secret := regexp.MustCompile(`id="secret" value="(allot_sdk_[0-9a-f]+)"`).FindStringSubmatch(r.body)
	if secret == nil {
		t.Fatalf("no secret: %s", r.body)
	}
	if e.cache.ForKey(secret[1]) == nil {
		t.Fatal("new key not published")
	}
	e.cache.FlushUse(ctx)
	keys, _ := e.core.SDKKeys(ctx)
	r = e.get("/keys")
	want(t, r, 200, keys[0].Prefix+"…", "checkout-service", "production")
	if strings.Contains(r.body, secret[1]) {
		t.Fatal("the secret is shown again")
	}
	r = e.post("/keys/"+itoa(keys[0].ID)+"/revoke", url.Values{"env": {"production"}})
	want(t, e.get(r.loc), 200, "Revoked the SDK key", "revoked ")
	if e.cache.ForKey(secret[1]) != nil {
		t.Fatal("revoked key still published")
	}
	want(t, e.post("/keys/"+itoa(keys[0].ID)+"/revoke", url.Values{}), http.StatusNotFound, "no live SDK key")
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestAuditPages(t *testing.T) {
	e := newEnv(t)
	e.signIn()
	ctx := core.WithActor(context.Background(), "seeder")
	for i := range 60 {
		if _, err := e.core.CreateSDKKey(ctx, "production", "key-"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	r := e.get("/audit")
	want(t, r, 200, "key-59", "seeder", "Older entries")
	m := regexp.MustCompile(`href="/audit\?env=production&amp;before=(\d+)"`).FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no link to older entries: %s", r.body)
	}
	r = e.get("/audit?env=production&before=" + m[1])
	want(t, r, 200, "key-0")
	if strings.Contains(r.body, "key-59") || strings.Contains(r.body, "Older entries") {
		t.Fatal("the second page repeats the first or goes on")
	}
}

var (
	controlTag = regexp.MustCompile(`<(input|select|textarea)\b[^>]*>`)
	idAttr     = regexp.MustCompile(`\bid="([^"]+)"`)
)

// Every visible form control has a label.
func TestEveryInputHasALabel(t *testing.T) {
	e := newEnv(t)
	r := e.get("/signin")
	pages := map[string]string{"/signin": r.body}
	e.signIn()
	e.post("/flags/new?env=production", experimentForm("checkout"))
	r = e.post("/keys", url.Values{"env": {"production"}, "name": {"svc"}})
	pages["/keys (new key)"] = r.body
	pages["/tokens (new token)"] = e.post("/tokens", url.Values{"name": {"ci"}}).body
	for _, p := range []string{"/flags", "/flags/new", "/flags/checkout?env=production&subject=u&attrs=", "/keys", "/audit", "/tokens", "/import"} {
		pages[p] = e.get(p).body
	}
	for name, body := range pages {
		for _, tag := range controlTag.FindAllString(body, -1) {
			if strings.Contains(tag, `type="hidden"`) {
				continue
			}
			m := idAttr.FindStringSubmatch(tag)
			if m == nil {
				t.Errorf("%s: control without an id: %s", name, tag)
				continue
			}
			if !strings.Contains(body, `<label for="`+m[1]+`"`) {
				t.Errorf("%s: no label for %s", name, tag)
			}
		}
	}
}

// TestAssignmentSummary: an experiment's page shows its assignment table
// at a glance, and flags a sample ratio mismatch.
func TestAssignmentSummary(t *testing.T) {
	e := newEnv(t)
	e.signIn()
	ctx := context.Background()
	if r := e.post("/flags/new?env=production", experimentForm("checkout")); r.status != http.StatusSeeOther {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	want(t, e.get("/flags/checkout?env=production"), 200, "Assignments: 0 subjects", "No assignment events yet")

	day := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var rows []table.Row
	add := func(n int, variation string, offset int) {
		for i := range n {
			rows = append(rows, table.Row{EventID: fmt.Sprintf("%s-%d", variation, i), Environment: "production",
				Experiment: "checkout-checkout", FeatureFlag: "checkout", Allocation: "checkout", Variation: variation,
				Subject: fmt.Sprintf("u-%d", offset+i), Timestamp: day, ReceivedAt: day})
		}
	}
	add(5000, "control", 0)
	add(4300, "treatment", 10000) // configured 50/50: a mismatch
	if _, err := e.db.InsertAssignments(ctx, rows); err != nil {
		t.Fatal(err)
	}
	r := e.get("/flags/checkout?env=production")
	want(t, r, 200, "Assignments: 9300 subjects", "sample ratio mismatch", "53.8 %", "46.2 %", "2026-05-01", "<details class=\"assignments\" id=\"assignments-checkout\" open>")
	if !strings.Contains(r.body, "p = ") {
		t.Fatalf("no p-value on the page")
	}
}

// TestAddRollout: the flag page adds a rollout through the core, and
// shows the core's field errors next to the control.
func TestAddRollout(t *testing.T) {
	e := newEnv(t)
	e.signIn()
	r := e.post("/flags/new?env=production", experimentForm("checkout"))
	if r.status != http.StatusSeeOther {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	version := func() string {
		s, _ := e.core.FlagSettings(context.Background(), "production", "checkout")
		return itoa(s.Version)
	}
	bad := url.Values{"env": {"production"}, "version": {version()}, "key": {"ramp"}, "variation": {"treatment"}, "percent": {"abc"}}
	want(t, e.post("/flags/checkout/rollouts", bad), http.StatusBadRequest, `id="rollout-percent-error"`, "Subjects: must be a percentage")
	nokey := url.Values{"env": {"production"}, "version": {version()}, "key": {"no spaces"}, "variation": {"treatment"}, "percent": {"25"}}
	want(t, e.post("/flags/checkout/rollouts", nokey), http.StatusBadRequest, `id="rollout-key-error"`)
	ok := url.Values{"env": {"production"}, "version": {version()}, "key": {"ramp"}, "variation": {"treatment"}, "percent": {"25"}}
	r = e.post("/flags/checkout/rollouts", ok)
	want(t, e.get(r.loc), 200, "Added rollout ramp in production: 25 % of subjects get treatment.", "Rollout: 25 % of all subjects get treatment.")
}
