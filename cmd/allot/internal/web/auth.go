package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/httpx"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
)

type signinData struct {
	Next  string
	Email string // kept when the form is shown again
}

// signinForm shows the sign-in form. Before a session exists, the form is
// protected by a double-submit token: a random value in a cookie and in the
// form, which another site can neither read nor set.
func (u *UI) signinForm(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	u.renderSignin(w, r, &page{}, localPath(r.URL.Query().Get("next")))
}

func (u *UI) renderSignin(w http.ResponseWriter, r *http.Request, p *page, next string) {
	// One token per browser, kept across loads of the form (other tabs,
	// redirects), so that only a form this browser got can be sent.
	var tok string
	if c, err := r.Cookie(signinCookie); err == nil && len(c.Value) == 48 {
		tok = c.Value
	} else {
		var b [24]byte
		rand.Read(b[:])
		tok = hex.EncodeToString(b[:])
	}
	http.SetCookie(w, &http.Cookie{Name: signinCookie, Value: tok, Path: "/signin", MaxAge: 3600,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: httpx.Secure(r)})
	email := ""
	if d, ok := p.Data.(signinData); ok {
		email = d.Email
	}
	p.Title, p.CSRF, p.Data = "Sign in", tok, signinData{Next: next, Email: email}
	u.render(w, r, "signin", p)
}

func (u *UI) signin(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	next := localPath(r.PostFormValue("next"))
	p := &page{}
	c, err := r.Cookie(signinCookie)
	if err != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue("csrf"))) != 1 {
		p.status = http.StatusForbidden
		p.Error = "The sign-in form expired. Please sign in again."
		u.renderSignin(w, r, p, next)
		return
	}
	// Email and password; or an API token, which signs in as its account
	// with the token's role.
	email, password := strings.TrimSpace(r.PostFormValue("email")), r.PostFormValue("password")
	secret := strings.TrimSpace(r.PostFormValue("token"))
	if secret == "" && (email == "" || password == "") {
		p.status = statusOf(core.Invalid("email", "is required"))
		p.Errors = map[string]string{}
		if email == "" {
			p.Errors["email"] = "Email: is required"
		}
		if password == "" {
			p.Errors["password"] = "Password: is required"
		}
		p.Error = "Enter your email and password."
		u.renderSignin(w, r, p, next)
		return
	}
	var pr core.Principal
	if secret != "" {
		pr, err = u.core.Authenticate(r.Context(), secret)
	} else {
		pr, err = u.core.AuthenticatePassword(r.Context(), email, password, httpx.ClientIP(r))
	}
	if err == nil {
		var sess store.Session
		sess, err = u.db.CreateSession(r.Context(), pr.UserID, pr.TokenID, SessionTTL)
		if err == nil {
			http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: sess.Secret, Path: "/", Expires: sess.ExpiresAt,
				HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: httpx.Secure(r)})
			http.SetCookie(w, &http.Cookie{Name: signinCookie, Path: "/signin", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: httpx.Secure(r)})
			u.log.Info("web UI: signed in", "account", pr.Email, "token", pr.TokenPrefix)
			http.Redirect(w, r, next, http.StatusSeeOther)
			return
		}
	}
	switch core.ErrorCode(err) {
	case core.EUNAUTHORIZED:
		p.status = http.StatusUnauthorized
		if secret != "" {
			p.Errors = map[string]string{"token": "API token: this token is unknown or has been revoked"}
			p.Error = "That token is unknown or has been revoked."
		} else {
			p.Errors = map[string]string{"password": "Password: wrong email or password"}
			p.Error = "Wrong email or password, or the account is disabled."
		}
	case core.ERATELIMITED:
		p.status = http.StatusTooManyRequests
		httpx.SetRetryAfter(w, err)
		p.Error = core.ErrorMessage(err)
	default:
		u.internal(w, r, err)
		return
	}
	p.Data = signinData{Next: next, Email: email}
	u.renderSignin(w, r, p, next)
}

func (u *UI) signout(w http.ResponseWriter, r *http.Request, p *page) error {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if err := u.db.DeleteSession(r.Context(), c.Value); err != nil {
			return err
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: httpx.Secure(r)})
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
	return nil
}
