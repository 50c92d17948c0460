package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
)

func (u *UI) registerAccounts(a func(string, func(http.ResponseWriter, *http.Request, *page) error)) {
	a("GET /accounts", u.listAccounts)
	a("POST /accounts", u.createAccount)
	a("POST /accounts/{id}/role", u.setAccountRole)
	a("POST /accounts/{id}/disable", u.disableAccount)
	a("POST /accounts/{id}/enable", u.enableAccount)
	a("POST /accounts/{id}/password", u.setAccountPassword)
}

type accountsData struct {
	Users []core.User
	Roles []core.Role
	Email string    // the create form's, kept when it is shown again
	Role  core.Role // idem
}

func (u *UI) renderAccounts(w http.ResponseWriter, r *http.Request, p *page, d *accountsData) error {
	users, err := u.core.Users(r.Context())
	if err != nil {
		return err
	}
	d.Users, d.Roles = users, core.Roles
	if d.Role == "" {
		d.Role = core.RoleViewer
	}
	p.Path = "/accounts"
	p.Title, p.Nav, p.Data = "Accounts", "accounts", d
	u.render(w, r, "accounts", p)
	return nil
}

func (u *UI) listAccounts(w http.ResponseWriter, r *http.Request, p *page) error {
	return u.renderAccounts(w, r, p, &accountsData{})
}

func (u *UI) createAccount(w http.ResponseWriter, r *http.Request, p *page) error {
	email := strings.TrimSpace(r.PostFormValue("email"))
	role := core.Role(r.PostFormValue("role"))
	usr, err := u.core.CreateUser(r.Context(), email, r.PostFormValue("password"), role)
	if err != nil {
		if statusOf(err) == http.StatusInternalServerError {
			return err
		}
		p.fail(err, labelled(map[string]string{"email": "Email", "password": "Password", "role": "Role"}))
		return u.renderAccounts(w, r, p, &accountsData{Email: email, Role: role})
	}
	u.done(w, r, "/accounts"+envQuery(p.Env), fmt.Sprintf("Created the account %s (%s). Tell them their password through a safe channel.", usr.Email, usr.Role))
	return nil
}

func accountID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return 0, core.Errorf(core.ENOTFOUND, "no account %q", r.PathValue("id"))
	}
	return id, nil
}

// setAccountRole sets the account's role, or with an environment its role
// there ("default" removing the override).
func (u *UI) setAccountRole(w http.ResponseWriter, r *http.Request, p *page) error {
	id, err := accountID(r)
	if err != nil {
		return err
	}
	role, env := core.Role(r.PostFormValue("role")), r.PostFormValue("role_env")
	var usr core.User
	var msg string
	if env != "" {
		if role == "default" {
			role = ""
		}
		usr, err = u.core.SetEnvironmentRole(r.Context(), id, env, role)
		msg = fmt.Sprintf("%s is now %s in %s.", usr.Email, orDefault(role, "as everywhere else"), env)
	} else {
		usr, err = u.core.SetUserRole(r.Context(), id, role)
		msg = fmt.Sprintf("%s is now %s.", usr.Email, role)
	}
	if err != nil {
		if statusOf(err) == http.StatusInternalServerError {
			return err
		}
		p.fail(err, nil)
		return u.renderAccounts(w, r, p, &accountsData{})
	}
	u.done(w, r, "/accounts"+envQuery(p.Env), msg)
	return nil
}

func orDefault(r core.Role, def string) string {
	if r == "" {
		return def
	}
	return string(r)
}

func (u *UI) disableAccount(w http.ResponseWriter, r *http.Request, p *page) error {
	return u.accountOp(w, r, p, u.core.DisableUser, "Disabled %s: its sessions ended and its tokens no longer work.")
}

func (u *UI) enableAccount(w http.ResponseWriter, r *http.Request, p *page) error {
	return u.accountOp(w, r, p, u.core.EnableUser, "Enabled %s again.")
}

func (u *UI) accountOp(w http.ResponseWriter, r *http.Request, p *page, op func(ctx context.Context, id int64) (core.User, error), msg string) error {
	id, err := accountID(r)
	if err != nil {
		return err
	}
	usr, err := op(r.Context(), id)
	if err != nil {
		if statusOf(err) == http.StatusInternalServerError {
			return err
		}
		p.fail(err, nil)
		return u.renderAccounts(w, r, p, &accountsData{})
	}
	u.done(w, r, "/accounts"+envQuery(p.Env), fmt.Sprintf(msg, usr.Email))
	return nil
}

// setAccountPassword sets a password: one's own, or anyone's for an admin
// (the core decides).
func (u *UI) setAccountPassword(w http.ResponseWriter, r *http.Request, p *page) error {
	id, err := accountID(r)
	if err != nil {
		return err
	}
	if err := u.core.SetPassword(r.Context(), id, r.PostFormValue("password")); err != nil {
		if statusOf(err) == http.StatusInternalServerError {
			return err
		}
		p.fail(err, func(f string) (string, string) {
			if f == "password" {
				return fmt.Sprintf("password-%d", id), "New password"
			}
			return "", ""
		})
		return u.renderAccounts(w, r, p, &accountsData{})
	}
	if p.Principal.UserID == id && p.Principal.TokenID == 0 {
		// A new password ends the account's password sessions, this one
		// included: sign in again with it.
		http.Redirect(w, r, "/signin?next="+url.QueryEscape("/accounts"), http.StatusSeeOther)
		return nil
	}
	u.done(w, r, "/accounts"+envQuery(p.Env), "Password changed.")
	return nil
}
