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
	Next string
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
	p.Title, p.CSRF, p.Data = "Sign in", tok, signinData{Next: next}
	u.render(w, r, "signin", p)
}

func (u *UI) signin(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	next := localPath(r.PostFormValue("next"))
	p := &page{}
	c, err := r.Cookie(signinCookie)
	if err != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue("csrf"))) != 1 {
		p.status = http.StatusForbidden
		p.Error = "The sign-in form expired. Please enter the token again."
		u.renderSignin(w, r, p, next)
		return
	}
	secret := strings.TrimSpace(r.PostFormValue("token"))
	if secret == "" {
		p.status = statusOf(core.Invalid("token", "is required"))
		p.Errors = map[string]string{"token": "Admin token: is required"}
		p.Error = "Enter an admin token."
		u.renderSignin(w, r, p, next)
		return
	}
	tok, err := u.core.Authenticate(r.Context(), secret)
	if err == nil {
		var sess store.Session
		sess, err = u.db.CreateSession(r.Context(), tok.ID, SessionTTL)
		if err == nil {
			http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: sess.Secret, Path: "/", Expires: sess.ExpiresAt,
				HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: httpx.Secure(r)})
			http.SetCookie(w, &http.Cookie{Name: signinCookie, Path: "/signin", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: httpx.Secure(r)})
			u.log.Info("web UI: signed in", "token", tok.Name, "prefix", tok.Prefix)
			http.Redirect(w, r, next, http.StatusSeeOther)
			return
		}
	}
	if core.ErrorCode(err) != core.EUNAUTHORIZED {
		u.internal(w, r, err)
		return
	}
	p.status = http.StatusUnauthorized
	p.Errors = map[string]string{"token": "Admin token: this token is unknown or has been revoked"}
	p.Error = "That admin token is unknown or has been revoked."
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
