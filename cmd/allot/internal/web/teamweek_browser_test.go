package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/server"
)

// TestBrowserTeamWeek is issue 17's proof: a team's week in headless
// Chromium against a real server, each person signed in with their own
// account. The first admin signs in with email and password, creates the
// staging environment, an editor and a viewer. The editor, signed in as
// that account, does the week (editorsWeek). The viewer opens every page
// the week touched, sees its data and finds no form that changes anything;
// a POST from the viewer's browser to each changing route the week used,
// with a valid CSRF token, is refused with 403 and changes nothing. The
// audit log names the account of each change. With
// ALLOT_UPDATE_SCREENSHOTS=1 it writes docs/images/week-*.png and the
// life-*.png docs/web-ui.md shows.
func TestBrowserTeamWeek(t *testing.T) {
	ctx, cancel := browserWithin(t, 180*time.Second) // three argon2id sign-ins and some 60 pages on a shared machine
	defer cancel()
	srv, err := server.Start(context.Background(), server.Config{
		Addr: "127.0.0.1:0", DB: filepath.Join(t.TempDir(), "allot.db"),
		AdminEmail: "root@example.com", AdminPassword: "the first admin's password",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	bg := context.Background()
	dom := srv.Core()
	// The other flag, archived at the end of the week.
	if _, err := dom.CreateFlag(bg, core.Flag{Key: "old-banner", VariationType: "BOOLEAN", Variations: []core.Variation{
		{Key: "on", Value: json.RawMessage(`true`)}, {Key: "off", Value: json.RawMessage(`false`)}}}); err != nil {
		t.Fatal(err)
	}
	w := &walker{t: t, ctx: ctx, base: srv.URL()}

	// Monday: the admin sets up the team.
	w.signIn("root@example.com", "the first admin's password")
	w.do("create staging", chromedp.Navigate(w.base+"/environments"), visible("#env-name"),
		sendKeys("#env-name", "staging"), submit("#create-env"))
	contains(t, "staging", w.text("#flash"), "Created environment staging")
	for _, u := range []struct{ email, role string }{{"eddie@example.com", "editor"}, {"vera@example.com", "viewer"}} {
		w.do("create "+u.email, chromedp.Navigate(w.base+"/accounts"), visible("#create-account"),
			sendKeys("#email", u.email), sendKeys("#password", "password of "+u.email),
			chromedp.SetValue(chromedp.CSS("#role"), u.role), submit("#create-account"), visible("#flash"))
	}
	w.do("accounts screenshot", shot("week-accounts"))
	accounts := w.text("#accounts")
	for _, want := range []string{"eddie@example.com\teditor", "vera@example.com\tviewer", "root@example.com\tadmin"} {
		contains(t, "accounts", accounts, want)
	}
	w.signOut()

	// The editor's week, as the editor.
	w.signIn("eddie@example.com", "password of eddie@example.com")
	if n := w.eval(`String(document.querySelectorAll('nav a[href^="/flags/new"]').length)`); n != "1" {
		t.Fatalf("the editor's top bar has %s links to a new experiment", n)
	}
	editorsWeek(w)
	w.signOut()

	// What production holds after the week: the copy, with the edited
	// rule; old-banner archived (so not published).
	for _, want := range []string{`"beta-testers"`, `"alpha"`, `"ramp"`} {
		contains(t, "production's settings", publishedJSON(t, dom, "production"), want)
	}
	if f, err := dom.Flag(bg, "old-banner"); err != nil || f.ArchivedAt == nil {
		t.Fatalf("old-banner after the week: %+v %v", f, err)
	}

	// The viewer sees all of it and can change none of it.
	w.signIn("vera@example.com", "password of vera@example.com")
	vera := userID(t, dom, "vera@example.com")
	ownPassword := fmt.Sprintf("/accounts/%d/password", vera)
	for _, pg := range []struct{ path, sel, want, shot string }{
		{"/flags?env=production", "#flags", "hero", ""},
		{"/flags?env=production&status=ARCHIVED", "#flags", "old-banner", ""},
		{"/flags?env=staging", "#flags", "hero", ""},
		{"/flags/hero?env=staging", "#alloc-ramp", "25", ""},
		{"/flags/hero?env=production", "#alloc-beta-testers", `"beta", "alpha"`, "week-viewer-flag"},
		{"/flags/hero?env=production", "#status", "RUNNING", ""},
		{"/flags/old-banner?env=production", "#archived", "Archived", ""},
		{"/flags/hero/experiments/hero?env=production", "#timeline", "eddie@example.com", "week-viewer-experiment"},
		{"/flags/hero/copy?env=staging&to=production", "#diff", "allocation", ""},
		{"/layers?env=production", "main h1", "Layers", ""},
		{"/environments?env=production", "#envs", "staging", ""},
		{"/keys?env=production", "main h1", "SDK keys", ""},
		{"/accounts?env=production", "#accounts", "eddie@example.com", ""},
		{"/audit?env=production", "#audit", "eddie@example.com", ""},
	} {
		w.do("viewer opens "+pg.path, chromedp.Navigate(w.base+pg.path), visible("#signout"))
		contains(t, "the viewer's "+pg.path, w.text(pg.sel), pg.want)
		w.noChangingForms(pg.path, ownPassword)
		if pg.shot != "" {
			w.do("screenshot "+pg.shot, shot(pg.shot))
		}
	}
	// The editor's forms are refused outright: a 403 page with no form.
	for _, path := range []string{"/flags/new?env=staging", "/flags/hero/edit?env=staging", "/flags/hero/allocations/beta-testers/edit?env=production",
		"/flags/hero/allocations/new?env=staging&kind=rollout"} {
		w.do("viewer opens "+path, chromedp.Navigate(w.base+path), visible("#signout"))
		w.noChangingForms(path, ownPassword)
		contains(t, "refused "+path, w.text("#page-error"), "whose role is viewer; this needs the editor role")
		u, err := url.Parse(path)
		if err != nil {
			t.Fatal(err)
		}
		if env := w.eval(`document.querySelector("#env-switch").value`); env != u.Query().Get("env") {
			t.Fatalf("the refusal of %s has the environment switcher on %q", path, env)
		}
		if got := w.fetch("GET", path, nil); got != "403" {
			t.Fatalf("a viewer's GET %s: %s, want 403", path, got)
		}
		if strings.Contains(path, "beta-testers") {
			w.do("refused screenshot", shot("week-viewer-refused"))
		}
	}
	w.do("phone", phone(),
		chromedp.Navigate(w.base+"/flags/hero?env=production"), visible("#status"), shot("week-viewer-phone-flag"),
		chromedp.Navigate(w.base+"/audit?env=production"), visible("#audit"), viewShot("week-phone-audit"),
		laptop())

	// A POST to each changing route of the week, from the viewer's own
	// browser with its session's CSRF token and current versions, so that
	// only the role check stands between it and a change.
	hero, err := dom.Flag(bg, "hero")
	if err != nil {
		t.Fatal(err)
	}
	old, err := dom.Flag(bg, "old-banner")
	if err != nil {
		t.Fatal(err)
	}
	stg, err := dom.FlagSettings(bg, "staging", "hero")
	if err != nil {
		t.Fatal(err)
	}
	prd, err := dom.FlagSettings(bg, "production", "hero")
	if err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dom)
	fv, sv, pv := fmt.Sprint(hero.Version), fmt.Sprint(stg.Version), fmt.Sprint(prd.Version)
	for _, f := range []struct {
		path string
		form map[string]string
	}{
		{"/environments", map[string]string{"name": "qa"}},
		{"/accounts", map[string]string{"email": "mallory@example.com", "password": "a long enough password", "role": "admin"}},
		{"/flags/new?env=staging", map[string]string{"env": "staging", "key": "sneaky", "var_key_0": "a", "var_value_0": "a", "var_weight_0": "100"}},
		{"/flags/hero/edit?env=staging", map[string]string{"env": "staging", "flag_version": fv, "description": "changed by a viewer", "var_key_0": "v1"}},
		{"/flags/hero/allocations/hero/edit?env=staging", map[string]string{"env": "staging", "version": sv, "traffic": "100"}},
		{"/flags/hero/allocations/new?env=staging", map[string]string{"env": "staging", "version": sv, "kind": "rollout", "key": "sneaky", "variation": "v1", "percent": "100"}},
		{"/flags/hero/allocations/beta-testers/move?env=production", map[string]string{"env": "production", "version": pv, "direction": "down"}},
		{"/flags/hero/allocations/ramp/remove?env=production", map[string]string{"env": "production", "version": pv}},
		{"/flags/hero/rollouts?env=production", map[string]string{"env": "production", "version": pv, "variation": "v1", "percent": "100"}},
		{"/flags/hero/copy?env=production", map[string]string{"env": "production", "to": "staging"}},
		{"/flags/hero/enabled?env=production", map[string]string{"env": "production", "version": pv, "enabled": "false"}},
		{"/flags/hero/allocations/hero/status?env=production", map[string]string{"env": "production", "version": pv, "status": "STOPPED"}},
		{"/flags/hero/allocations/hero/traffic?env=production", map[string]string{"env": "production", "version": pv, "traffic": "100"}},
		{"/flags/hero/allocations/hero/weights?env=production", map[string]string{"env": "production", "version": pv, "weight_v1": "100"}},
		{"/flags/hero/archive?env=production", map[string]string{"env": "production", "flag_version": fv}},
		{"/flags/old-banner/restore?env=production", map[string]string{"env": "production", "flag_version": fmt.Sprint(old.Version)}},
		{"/flags/old-banner/delete?env=production", map[string]string{"env": "production", "flag_version": fmt.Sprint(old.Version), "confirm": "old-banner"}},
	} {
		if got := w.fetch("POST", f.path, f.form); got != "403" {
			t.Errorf("a viewer's POST %s: %s, want 403", f.path, got)
		}
	}
	if after := snapshot(t, dom); after != before {
		t.Fatalf("the viewer's POSTs changed something:\nbefore %s\nafter  %s", before, after)
	}

	// The audit log, as the viewer reads it, names each account.
	w.do("audit", chromedp.Navigate(w.base+"/audit?env=production"), visible("#audit"), viewShot("week-audit"))
	log := w.text("#audit")
	for _, want := range []string{
		"root@example.com\tcreate environment staging",
		"root@example.com\tcreate user eddie@example.com",
		"root@example.com\tcreate user vera@example.com",
		"eddie@example.com\tupdate flag hero",
		"eddie@example.com\tupdate flag_settings hero in staging",
		"eddie@example.com\tupdate flag_settings hero in production",
		"eddie@example.com\tarchive flag old-banner",
	} {
		contains(t, "audit log", log, want)
	}
	for _, line := range strings.Split(log, "\n") { // When, Who, What, Change
		if cols := strings.Split(line, "\t"); len(cols) > 1 && cols[1] == "vera@example.com" {
			t.Fatalf("the audit log has a change by the viewer: %s", line)
		}
	}
}

// walker drives one browser through the UI of the server at base.
type walker struct {
	t    *testing.T
	ctx  context.Context
	base string
}

// do runs steps, failing the test with the page's main content on error.
func (w *walker) do(what string, steps ...step) {
	w.t.Helper()
	if err := chromedp.Do(w.ctx, steps...); err != nil {
		dctx, dcancel := context.WithTimeout(w.ctx, 2*time.Second)
		html, _ := chromedp.Run(dctx, chromedp.OuterHTML(chromedp.CSS("body")))
		dcancel()
		w.t.Fatalf("%s: %v\npage:\n%s", what, err, html)
	}
}

// text is the visible text of the first element sel matches.
func (w *walker) text(sel string) string {
	w.t.Helper()
	s, err := chromedp.Run(w.ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		w.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// eval is a JavaScript expression's string value (promises awaited).
func (w *walker) eval(expr string) string {
	w.t.Helper()
	s, err := chromedp.Run(w.ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		w.t.Fatalf("%s: %v", expr, err)
	}
	return s
}

func (w *walker) signIn(email, password string) {
	w.t.Helper()
	w.do("sign in as "+email, chromedp.Navigate(w.base+"/flags"), visible("#email"),
		sendKeys("#email", email), sendKeys("#password", password), submit("#signin"), visible("#signout"))
}

func (w *walker) signOut() { w.t.Helper(); w.do("sign out", submit("#signout"), visible("#email")) }

// noChangingForms fails unless every form of the page that posts goes to
// /signout or to ownPassword (the one change a viewer may make).
func (w *walker) noChangingForms(page, ownPassword string) {
	w.t.Helper()
	posts := w.eval(`Array.from(document.querySelectorAll("form[method=post]")).map(f => f.getAttribute("action")).join(" ")`)
	for _, action := range strings.Fields(posts) {
		if action != "/signout" && !strings.HasPrefix(action, ownPassword+"?") && action != ownPassword {
			w.t.Fatalf("the viewer's %s has a form posting to %s (all: %s)", page, action, posts)
		}
	}
	if !strings.Contains(posts, "/signout") {
		w.t.Fatalf("the viewer's %s has no sign-out form: %q", page, posts)
	}
}

// fetch sends a request from the page with the session's cookie and, for
// a POST, the session's CSRF token (read from the sign-out form) and
// form; it returns the response's status.
func (w *walker) fetch(method, path string, form map[string]string) string {
	w.t.Helper()
	body, err := json.Marshal(form)
	if err != nil {
		w.t.Fatal(err)
	}
	return w.eval(fmt.Sprintf(`(async () => {
		const init = {method: %q, redirect: "manual"};
		if (init.method === "POST") {
			const csrf = document.querySelector('form[action="/signout"] input[name=csrf]').value;
			init.body = new URLSearchParams({csrf, ...%s});
		}
		const r = await fetch(%q, init);
		return String(r.status);
	})()`, method, body, path))
}

// snapshot is what a change would touch: the newest audit entry and both
// environments' published settings.
func snapshot(t *testing.T, dom *core.Core) string {
	t.Helper()
	page, err := dom.Audit(context.Background(), 1, 0)
	if err != nil || len(page.Entries) == 0 {
		t.Fatalf("audit: %+v %v", page, err)
	}
	users, err := dom.Users(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	flags, err := dom.Flags(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	fj, _ := json.Marshal(flags)
	return fmt.Sprintf("audit #%d, %d accounts, flags %s, staging %s, production %s", page.Entries[0].ID, len(users), fj,
		publishedJSON(t, dom, "staging"), publishedJSON(t, dom, "production"))
}

func publishedJSON(t *testing.T, dom *core.Core, env string) string {
	t.Helper()
	cfg, err := dom.EnvironmentConfig(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(cfg.Flags)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func userID(t *testing.T, dom *core.Core, email string) int64 {
	t.Helper()
	users, err := dom.Users(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if u.Email == email {
			return u.ID
		}
	}
	t.Fatalf("no account %s among %+v", email, users)
	return 0
}
