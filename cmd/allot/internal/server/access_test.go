package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/httpapi"
	"github.com/allot-dev/allot/cmd/allot/internal/httpx"
	"github.com/allot-dev/allot/cmd/allot/internal/server"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
	"github.com/allot-dev/allot/cmd/allot/internal/web"
)

// account is one role's identity in the route-by-role test.
type account struct {
	role   core.Role // "" for anonymous
	user   core.User
	secret string // an API token of the account, with its role
	spare  int64  // a token of the account's own that a request may revoke
}

// TestEveryRouteForEveryRole walks every route the server registers (the
// root mux's and the web UI's, as registered, not a hand-kept list) for
// each role, anonymous, viewer, editor and admin, and checks the answer
// against the route's permission decision: refused (401, or the sign-in page
// for the UI) without an account, 403 below the role the decision needs,
// neither at or above it; the same answer for everyone on a public route. A
// route without a decision fails the test.
func TestEveryRouteForEveryRole(t *testing.T) {
	s := start(t, server.Config{DB: storetest.DSN(t, "sqlite"), AdminToken: adminToken})
	ctx := context.Background()
	c := s.Core()

	// Things for the paths to name.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := c.CreateFlag(ctx, core.Flag{Key: "color", VariationType: "STRING",
		Variations: []core.Variation{{Key: "a", Value: []byte(`"a"`)}, {Key: "b", Value: []byte(`"b"`)}}})
	must(err)
	_, err = c.AddAllocation(ctx, "production", "color", 0, core.Allocation{Key: "exp", Type: core.Experiment,
		Status: core.Draft, Traffic: 1000, Weights: []core.Weight{{Variation: "a", Weight: 5000}, {Variation: "b", Weight: 5000}}}, -1)
	must(err)
	_, err = c.CreateLayer(ctx, "production", "l1")
	must(err)
	_, err = c.CreateHoldout(ctx, "production", "h1", 500, false)
	must(err)
	key, err := c.CreateSDKKey(ctx, "production", "k")
	must(err)
	target, err := c.CreateUser(ctx, "target@example.com", "a target password", core.RoleViewer)
	must(err)

	accounts := []*account{{}}
	for _, r := range core.Roles {
		email := string(r) + "@example.com"
		u, err := c.CreateUser(ctx, email, "the password of "+email, r)
		must(err)
		p, err := c.AuthenticatePassword(ctx, email, "the password of "+email, "127.0.0.1")
		must(err)
		pctx := core.WithPrincipal(ctx, p)
		tok, err := c.CreateToken(pctx, "main", "")
		must(err)
		spare, err := c.CreateToken(pctx, "spare", "")
		must(err)
		accounts = append(accounts, &account{role: r, user: u, secret: tok.Secret, spare: spare.ID})
	}

	// A value for each path parameter, some depending on who asks: a token
	// or password of one's own, which any account may change.
	fill := func(pattern string, a *account) string {
		method, path, ok := strings.Cut(pattern, " ")
		if !ok {
			method, path = "GET", pattern
		}
		id := strconv.FormatInt(target.ID, 10)
		switch {
		case strings.Contains(path, "/admin-tokens/"), strings.HasPrefix(path, "/tokens/"):
			id = strconv.FormatInt(a.spare, 10)
		case strings.HasSuffix(path, "/password") && a.role != "":
			id = strconv.FormatInt(a.user.ID, 10)
		case strings.Contains(path, "keys/"):
			id = strconv.FormatInt(key.ID, 10)
		}
		r := strings.NewReplacer("{env}", "production", "{flag}", "color", "{alloc}", "exp", "{layer}", "l1",
			"{holdout}", "h1", "{key}", "color", "{id}", id, "{$}", "")
		path = r.Replace(path)
		switch {
		case path == "/static/":
			path = "/static/style.css"
		case strings.HasSuffix(path, "/") && path != "/":
			path += "nope"
		case path == "/" && !strings.HasSuffix(pattern, "{$}"):
			path = "/nope"
		}
		return method + " " + path
	}

	decision := func(pattern string) (core.Action, bool) {
		if ui, ok := strings.CutPrefix(pattern, "ui:"); ok {
			a, ok := web.Access[ui]
			return a, ok
		}
		if a, ok := httpapi.Access[pattern]; ok {
			return a, true
		}
		a, ok := server.Access[pattern]
		return a, ok
	}

	routes := s.Routes()
	if len(routes) < 60 {
		t.Fatalf("only %d routes: %v", len(routes), routes)
	}
	for _, pattern := range routes {
		act, ok := decision(pattern)
		if !ok {
			if ui, isUI := strings.CutPrefix(pattern, "ui:"); isUI {
				t.Errorf("UI route %q has no permission decision: add `%q: core.ActRead,` (or ActEdit, ActAdmin, httpx.Public) to web.Access in internal/web/permissions.go", ui, ui)
			} else {
				t.Errorf("route %q has no permission decision: add `%q: core.ActRead,` (or ActEdit, ActAdmin, httpx.Public) to httpapi.Access in internal/httpapi/permissions.go (an API route) or server.Access in internal/server/routes.go (the server's own)", pattern, pattern)
			}
			continue
		}
		ui := strings.HasPrefix(pattern, "ui:")
		publicStatus := 0
		for _, a := range accounts {
			req := fill(strings.TrimPrefix(pattern, "ui:"), a)
			status, loc := send(t, s, req, ui, a)
			who := string(a.role)
			if who == "" {
				who = "anonymous"
			}
			signin := status == http.StatusSeeOther && strings.HasPrefix(loc, "/signin?next=")
			switch {
			case act == httpx.Public:
				// No account changes the answer.
				if a.role == "" {
					publicStatus = status
				} else if status != publicStatus {
					t.Errorf("%s (public) as %s: %d, but %d anonymous", req, who, status, publicStatus)
				}
			case a.role == "":
				if ui && !signin || !ui && status != http.StatusUnauthorized {
					t.Errorf("%s (needs %s) as anonymous: %d %s, want the sign-in page or 401", req, act.Needs(), status, loc)
				}
			case core.Allowed(&core.Principal{Role: a.role}, act, ""):
				if status == http.StatusUnauthorized || status == http.StatusForbidden || signin {
					t.Errorf("%s (needs %s) as %s: %d, want it allowed", req, act.Needs(), who, status)
				}
			default:
				if status != http.StatusForbidden {
					t.Errorf("%s (needs %s) as %s: %d, want 403", req, act.Needs(), who, status)
				}
			}
		}
	}
}

// send makes one request as account a: a bearer token for the API, a new
// session (and its CSRF token in the form of a POST) for the UI.
func send(t *testing.T, s *server.Server, req string, ui bool, a *account) (int, string) {
	t.Helper()
	method, path, _ := strings.Cut(req, " ")
	var cookie *http.Cookie
	body, ctype := "", ""
	switch {
	case ui:
		form := url.Values{}
		if a.role != "" {
			sess, err := s.DB().CreateSession(context.Background(), a.user.ID, 0, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			cookie = &http.Cookie{Name: "allot_session", Value: sess.Secret}
			form.Set("csrf", sess.CSRF)
		}
		if method == http.MethodPost {
			body, ctype = form.Encode(), "application/x-www-form-urlencoded"
		}
	case method != http.MethodGet && method != http.MethodDelete:
		body, ctype = "{}", "application/json"
	}
	hreq, err := http.NewRequest(method, s.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		hreq.Header.Set("Content-Type", ctype)
	}
	if cookie != nil {
		hreq.AddCookie(cookie)
	}
	if !ui && a.role != "" {
		hreq.Header.Set("Authorization", "Bearer "+a.secret)
	}
	resp, err := noRedirect.Do(hreq)
	if err != nil {
		t.Fatal(fmt.Errorf("%s: %w", req, err))
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location")
}
