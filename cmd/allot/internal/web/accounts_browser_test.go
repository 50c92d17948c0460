package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/server"
)

// TestBrowserAccounts: in headless Chromium, the first admin signs in with
// the email and password the server was started with, creates an editor
// and a viewer on the Accounts page; the editor turns a flag on; the viewer
// sees the flag page without any control that changes something, and a
// forged POST from the viewer's signed-in browser (with a valid CSRF token)
// is refused with 403 and changes nothing; the audit log names each account.
// TestBrowserTeamWeek walks the whole week with these roles; this test
// keeps what the walk does not check: a wrong password, the account form
// hidden from an editor, a viewer changing its own password (signed out by
// it), and the screenshots docs/accounts.md shows.
func TestBrowserAccounts(t *testing.T) {
	ctx, cancel := browserWithin(t, 60*time.Second) // three sign-ins, each an argon2id hash
	defer cancel()
	srv, err := server.Start(context.Background(), server.Config{
		Addr: "127.0.0.1:0", DB: filepath.Join(t.TempDir(), "allot.db"), PollInterval: 200 * time.Millisecond,
		AdminEmail: "Root@Example.com", AdminPassword: "the first admin's password",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	base := srv.URL()
	if _, err := srv.Core().CreateFlag(context.Background(), core.Flag{Key: "banner", VariationType: "STRING",
		Variations: []core.Variation{{Key: "on", Value: json.RawMessage(`"on"`)}, {Key: "off", Value: json.RawMessage(`"off"`)}}}); err != nil {
		t.Fatal(err)
	}

	w := &walker{t: t, ctx: ctx, base: base}
	do, eval, signIn, signOut := w.do, w.eval, w.signIn, w.signOut

	// A wrong password: refused, next to the field.
	do("wrong password", chromedp.Navigate(base+"/signin"), visible("#email"),
		sendKeys("#email", "root@example.com"), sendKeys("#password", "not the password"), submit("#signin"), visible("#password-error"))

	signIn("root@example.com", "the first admin's password")
	for _, u := range []struct{ email, role string }{{"eddie@example.com", "editor"}, {"vera@example.com", "viewer"}} {
		do("create "+u.email, submit(`nav a[href^="/accounts"]`), visible("#create-account"),
			sendKeys("#email", u.email), sendKeys("#password", "password of "+u.email),
			chromedp.SetValue(chromedp.CSS("#role"), u.role), submit("#create-account"), visible("#flash"))
	}
	do("accounts screenshot", shot("accounts"))
	table := eval(`document.querySelector("#accounts").innerText`)
	for _, want := range []string{"eddie@example.com\teditor", "vera@example.com\tviewer", "root@example.com\tadmin"} {
		contains(t, "accounts", table, want)
	}
	signOut()

	signIn("eddie@example.com", "password of eddie@example.com")
	do("editor turns the flag on", chromedp.Navigate(base+"/flags/banner"), visible("#turn-on"), submit("#turn-on"), visible("#turn-off"))
	if n := eval(`String(document.querySelectorAll("#create-account").length)`); n != "0" {
		t.Fatalf("an editor sees the account form")
	}
	signOut()

	signIn("vera@example.com", "password of vera@example.com")
	var vera core.User
	users, err := srv.Core().Users(context.Background())
	for _, u := range users {
		if u.Email == "vera@example.com" {
			vera = u
		}
	}
	if err != nil || vera.ID == 0 {
		t.Fatalf("no account vera: %+v %v", users, err)
	}
	do("viewer opens the flag", chromedp.Navigate(base+"/flags/banner"), visible("#status"), shot("flag-viewer"))
	// No form that changes something: only sign-out posts.
	posts := eval(`Array.from(document.querySelectorAll("form[method=post]")).map(f => f.getAttribute("action")).join(" ")`)
	if posts != "/signout" {
		t.Fatalf("a viewer's flag page has forms posting to %q", posts)
	}
	if n := eval(`String(document.querySelectorAll('a[href^="/flags/new"]').length)`); n != "0" {
		t.Fatalf("a viewer sees %s links to create a flag", n)
	}
	for _, page := range []string{"/keys", "/accounts", "/flags"} {
		do("viewer opens "+page, chromedp.Navigate(base+page), visible("#signout"))
		want := "/signout"
		if page == "/accounts" { // one's own password, the one change a viewer may make
			want = fmt.Sprintf("/signout /accounts/%d/password?env=production", vera.ID)
		}
		if posts := eval(`Array.from(document.querySelectorAll("form[method=post]")).map(f => f.getAttribute("action")).join(" ")`); posts != want {
			t.Fatalf("a viewer's %s has forms posting to %q, want %q", page, posts, want)
		}
	}
	// A forged POST with the session's own CSRF token: refused by the server.
	status := eval(`(async () => {
		const csrf = document.querySelector('form[action="/signout"] input[name=csrf]').value;
		const body = new URLSearchParams({csrf, env: "production", version: "1", enabled: "false"});
		const r = await fetch("/flags/banner/enabled", {method: "POST", body, redirect: "manual"});
		return String(r.status);
	})()`)
	if status != "403" {
		t.Fatalf("a viewer's forged POST: %s, want 403", status)
	}
	fs, err := srv.Core().FlagSettings(context.Background(), "production", "banner")
	if err != nil || !fs.Enabled {
		t.Fatalf("the viewer's POST changed the flag: %+v %v", fs, err)
	}

	// The one change a viewer may make: its own password.
	pid := fmt.Sprintf("#password-%d", vera.ID)
	do("viewer changes its password", chromedp.Navigate(base+"/accounts"), visible(pid),
		sendKeys(pid, "vera's new password"), submit("#set-"+pid[1:]), visible("#email")) // signed out by the change
	signIn("vera@example.com", "vera's new password")

	// Her own API token, from the nav: the form offers only her role, the
	// secret is shown once and is gone from the list afterwards.
	do("viewer creates a token", submit(`nav a[href^="/tokens"]`), visible("#create-token"))
	if roles := eval(`Array.from(document.querySelectorAll("#role option")).map(o => o.value).join(" ")`); roles != "viewer" {
		t.Fatalf("a viewer is offered the token roles %q", roles)
	}
	do("create the token", sendKeys("#name", "dashboard"), submit("#create-token"), visible("#secret"), shot("tokens"))
	secret := eval(`document.querySelector("#secret").value`)
	if !strings.HasPrefix(secret, core.AdminTokenPrefix) {
		t.Fatalf("secret %q", secret)
	}
	if p, err := srv.Core().Authenticate(context.Background(), secret); err != nil || p.UserID != vera.ID || p.RoleIn("") != core.RoleViewer {
		t.Fatalf("the page's token authenticates as %+v, %v", p, err)
	}
	do("the list again", chromedp.Navigate(base+"/tokens"), visible("#tokens"))
	if n := eval(`String(document.querySelectorAll("#secret").length)`); n != "0" || strings.Contains(eval(`document.body.innerHTML`), secret) {
		t.Fatal("the secret is shown again")
	}

	// The audit log, as the viewer sees it, names each account.
	do("audit", chromedp.Navigate(base+"/audit"), visible("#audit"))
	log := eval(`document.querySelector("#audit").innerText`)
	for _, want := range []string{"root@example.com\tcreate user eddie@example.com", "root@example.com\tcreate user vera@example.com", "eddie@example.com\tupdate flag_settings banner", "vera@example.com\tset_password user vera@example.com"} {
		contains(t, "audit log", log, want)
	}
	if strings.Contains(log, "vera@example.com\tupdate") {
		t.Fatalf("the viewer changed something: %s", log)
	}
}
