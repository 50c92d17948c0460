package web

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
)

// API tokens of accounts (issue 17 item 2): every account lists, creates
// and revokes its own, an admin everyone's, through the same core
// operations as the API (/api/v1/admin-tokens) and the CLI (allot keys
// admin-create). The core decides what is allowed; the page only offers
// what it would accept.
func (u *UI) registerTokens(a func(string, func(http.ResponseWriter, *http.Request, *page) error)) {
	a("GET /tokens", u.listTokens)
	a("POST /tokens", u.createToken)
	a("POST /tokens/{id}/revoke", u.revokeToken)
}

type tokensData struct {
	Tokens  []core.AdminToken
	Roles   []core.Role      // the roles this account may give a token
	Created *core.AdminToken // the token just created, with its secret: shown in this response only
	Name    string           // the create form's, kept when it is shown again
	Role    core.Role        // idem
	All     bool             // the list holds every account's tokens (an admin's view)
	Me      int64            // the signed-in account
	BaseURL string           // for the example request
}

// tokenRoles is what p may give a token of its own: core.Roles (narrowest
// first) up to p's role outside any one environment, the one CreateToken
// compares against; the core refuses anything wider anyway.
func tokenRoles(p *core.Principal) []core.Role {
	own := p.RoleIn("")
	i := slices.Index(core.Roles, own)
	if i < 0 {
		return nil
	}
	return core.Roles[:i+1]
}

func (u *UI) renderTokens(w http.ResponseWriter, r *http.Request, p *page, d *tokensData) error {
	toks, err := u.core.AdminTokens(r.Context())
	if err != nil {
		return err
	}
	slices.Reverse(toks) // newest first
	d.Tokens, d.Roles = toks, tokenRoles(p.Principal)
	d.All = core.Allowed(p.Principal, core.ActAdmin, "")
	d.Me, d.BaseURL = p.Principal.UserID, baseURL(r)
	if d.Role == "" || !slices.Contains(d.Roles, d.Role) {
		d.Role = p.Principal.RoleIn("") // the core's default: the account's own
	}
	p.Path = "/tokens"
	p.Title, p.Nav, p.Data = "API tokens", "tokens", d
	u.render(w, r, "tokens", p)
	return nil
}

func (u *UI) listTokens(w http.ResponseWriter, r *http.Request, p *page) error {
	return u.renderTokens(w, r, p, &tokensData{})
}

// createToken creates a token of the signed-in account and shows its
// secret in this response, once: never in a URL, a cookie or a log, and
// the page is sent with Cache-Control: no-store (authed).
func (u *UI) createToken(w http.ResponseWriter, r *http.Request, p *page) error {
	name := strings.TrimSpace(r.PostFormValue("name"))
	role := core.Role(r.PostFormValue("role"))
	t, err := u.core.CreateToken(r.Context(), name, role)
	if err != nil {
		if statusOf(err) == http.StatusInternalServerError {
			return err
		}
		p.fail(err, labelled(map[string]string{"name": "Name", "role": "Role"}))
		return u.renderTokens(w, r, p, &tokensData{Name: name, Role: role})
	}
	p.Flash = fmt.Sprintf("Created the %s token %s. Copy the secret now: it is shown only once.", t.Role, t.Name)
	return u.renderTokens(w, r, p, &tokensData{Created: &t})
}

// revokeToken revokes a token: one's own, or any for an admin. The core's
// refusals (another account's token, the last live token) are shown on
// the page with their status, and nothing changes.
func (u *UI) revokeToken(w http.ResponseWriter, r *http.Request, p *page) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return core.Errorf(core.ENOTFOUND, "no API token %q", r.PathValue("id"))
	}
	if err := u.core.RevokeAdminToken(r.Context(), id); err != nil {
		if statusOf(err) == http.StatusInternalServerError {
			return err
		}
		p.fail(err, nil)
		return u.renderTokens(w, r, p, &tokensData{})
	}
	u.done(w, r, "/tokens"+envQuery(p.Env), "Revoked the token: requests carrying it are refused, and the sessions signed in with it have ended.")
	return nil
}
