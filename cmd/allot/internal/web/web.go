// Package web is Allot's web UI: server-rendered html/template pages, one
// CSS file and a little JavaScript, all embedded in the binary, over the
// same store and published configuration as the REST API.
//
// A browser signs in with an admin token and gets a session cookie
// (HttpOnly, SameSite=Lax, Secure over TLS). Every POST carries the
// session's CSRF token, and cross-origin POSTs are refused outright.
package web

import (
	"bytes"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/export"
	"github.com/allot-dev/allot/cmd/allot/internal/httpx"
	"github.com/allot-dev/allot/cmd/allot/internal/publish"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
)

//go:embed templates static
var assets embed.FS

// Cookie names.
const (
	sessionCookie = "allot_session"
	signinCookie  = "allot_signin" // the CSRF token of the sign-in form
	flashCookie   = "allot_flash"
)

// SessionTTL is how long a sign-in lasts.
const SessionTTL = 12 * time.Hour

// UI serves the web UI. It is an http.Handler meant to be mounted at "/".
type UI struct {
	db    *store.DB // sessions and the assignment table
	core  *core.Core
	cache *publish.Cache
	log   *slog.Logger
	now   func() time.Time
	pages map[string]*template.Template
	h     http.Handler
	mux   *httpx.Routes

	// exporter streams the downloads, shared with the API's exports.
	exporter *export.Exporter
}

// Route returns the pattern that serves method and path, "" for none but
// the catch-all: the test that every core operation has a front end
// (cmd/allot) asks it.
func (u *UI) Route(method, path string) string {
	r, err := http.NewRequest(method, path, nil)
	if err != nil {
		return ""
	}
	_, pattern := u.mux.Handler(r)
	if pattern == "/" {
		return ""
	}
	return pattern
}

// Option configures a UI.
type Option func(*UI)

// WithCore makes the UI call c, rather than a core of its own over db, so
// that every front end of a process shares one.
func WithCore(c *core.Core) Option { return func(u *UI) { u.core = c } }

// WithExporter makes the UI stream downloads through e, the exporter the
// API streams through, so that one bound holds for both.
func WithExporter(e *export.Exporter) Option { return func(u *UI) { u.exporter = e } }

// New returns the UI over db and cache.
func New(db *store.DB, cache *publish.Cache, log *slog.Logger, opts ...Option) *UI {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	u := &UI{db: db, cache: cache, log: log, now: time.Now, pages: parsePages()}
	// Every change goes through the domain core, as the API's do; it
	// republishes through the cache after each commit.
	u.core = core.New(db, core.Options{Listener: cache, Log: log})
	u.exporter = export.New(db, log, export.DefaultSlots)
	for _, o := range opts {
		o(u)
	}
	mux := httpx.NewRoutes()
	u.mux = mux
	static, _ := fs.Sub(assets, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", staticHandler(static)))
	mux.HandleFunc("GET /favicon.ico", http.NotFound)
	// A wrong API path is an API client's mistake: no sign-in page for it.
	// (Under the server's root mux, /api/ never reaches the UI.)
	mux.HandleFunc("/api/", http.NotFound)
	mux.HandleFunc("GET /signin", u.signinForm)
	mux.HandleFunc("POST /signin", u.signin)

	a := func(pattern string, h func(http.ResponseWriter, *http.Request, *page) error) {
		mux.Handle(pattern, u.authed(access(pattern), h))
	}
	a("POST /signout", u.signout)
	a("GET /{$}", func(w http.ResponseWriter, r *http.Request, p *page) error {
		http.Redirect(w, r, "/flags", http.StatusSeeOther)
		return nil
	})
	a("GET /flags", u.listFlags)
	a("GET /flags/new", u.newFlagForm)
	a("POST /flags/new", u.createFlag)
	a("GET /flags/{flag}", u.flagDetail)
	a("POST /flags/{flag}/enabled", u.setEnabled)
	a("POST /flags/{flag}/allocations/{alloc}/status", u.setStatus)
	a("POST /flags/{flag}/allocations/{alloc}/traffic", u.setTraffic)
	a("POST /flags/{flag}/allocations/{alloc}/weights", u.setWeights)
	a("POST /flags/{flag}/rollouts", u.addRollout)
	// The flag's whole life (editor.go).
	a("GET /flags/{flag}/edit", u.editFlagForm)
	a("POST /flags/{flag}/edit", u.editFlag)
	a("POST /flags/{flag}/archive", u.archiveFlag)
	a("POST /flags/{flag}/restore", u.restoreFlag)
	a("POST /flags/{flag}/delete", u.deleteFlag)
	a("GET /flags/{flag}/allocations/new", u.newAllocationForm)
	a("POST /flags/{flag}/allocations/new", u.saveAllocation)
	a("GET /flags/{flag}/allocations/{alloc}/edit", u.editAllocationForm)
	a("POST /flags/{flag}/allocations/{alloc}/edit", u.saveAllocation)
	a("POST /flags/{flag}/allocations/{alloc}/move", u.moveAllocation)
	a("POST /flags/{flag}/allocations/{alloc}/remove", u.removeAllocation)
	a("GET /flags/{flag}/copy", u.copyForm)
	a("POST /flags/{flag}/copy", u.copySettings)
	a("GET /environments", u.environmentsPage)
	a("POST /environments", u.createEnvironment)
	a("GET /flags/{flag}/experiments/{alloc}", u.experimentPage)
	a("GET /flags/{flag}/experiments/{alloc}/export", u.experimentExport)
	a("GET /keys", u.listKeys)
	a("POST /keys", u.createKey)
	a("POST /keys/{id}/revoke", u.revokeKey)
	a("POST /keys/{id}/origins", u.setKeyOrigins)
	a("GET /audit", u.auditLog)
	u.registerLayers(a)
	u.registerAccounts(a)
	u.registerTokens(a)
	u.registerImport(mux, a)
	a("/", func(w http.ResponseWriter, r *http.Request, p *page) error {
		return core.Errorf(core.ENOTFOUND, "there is no page at %s", r.URL.Path)
	})
	u.mux = mux
	u.h = http.NewCrossOriginProtection().Handler(mux)
	return u
}

// Routes lists the patterns of every route of the UI (the route-by-role
// test of internal/server walks them).
func (u *UI) Routes() []string { return u.mux.Patterns() }

// ServeHTTP serves the UI.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	u.h.ServeHTTP(w, r)
}

func staticHandler(fsys fs.FS) http.Handler {
	fsrv := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no directory listings
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=300")
		fsrv.ServeHTTP(w, r)
	})
}

// page is what every template gets.
type page struct {
	Title   string
	Nav     string // the active navigation entry
	Session *store.Session
	CSRF    string
	Env     string
	Envs    []core.Environment
	Path    string // where the environment switcher leads
	Flash   string
	Error   string            // an error for the whole page
	Errors  map[string]string // errors by form field id
	Data    any
	status  int

	// Principal is who is signed in; templates ask Can to decide which
	// controls to show (the core refuses the rest anyway).
	Principal *core.Principal
}

// Can reports whether the signed-in principal may do action ("read",
// "edit", "admin") in the page's environment: core.Allowed, for templates
// ({{if $.Can "edit"}}).
func (p *page) Can(action string) bool {
	return core.Allowed(p.Principal, core.Action(action), p.Env)
}

// fail records a form error: a store *Error goes next to the field its
// Field names (through fields, from store field names to form field ids),
// anything else to the top of the page.
func (p *page) fail(err error, fields func(string) (id, label string)) {
	p.status = statusOf(err)
	var e *core.Error
	if !errors.As(err, &e) {
		p.Error = "Something went wrong on the server; the change was not saved."
		if p.status == http.StatusServiceUnavailable {
			p.Error = "The database is busy or unreachable, so the change was not saved. Try again in a few seconds."
		}
		return
	}
	if e.Field != "" && fields != nil {
		if id, label := fields(e.Field); id != "" {
			if p.Errors == nil {
				p.Errors = map[string]string{}
			}
			p.Errors[id] = label + ": " + e.Message
			p.Error = "Please correct the field marked below: " + label + " " + e.Message + "."
			return
		}
	}
	p.Error = e.Error()
}

// labelled is fail's fields for a form whose controls have the core's
// field names as ids: labels maps each such field to its label; a field
// not in it goes to the top of the page.
func labelled(labels map[string]string) func(string) (string, string) {
	return func(f string) (string, string) {
		if l, ok := labels[f]; ok {
			return f, l
		}
		return "", ""
	}
}

// statusOf is the server's one error-to-status function: a page answers an
// error with the status the API would (400 for a form error, 503 with
// Retry-After for a busy or unreachable database).
func statusOf(err error) int { return httpx.Status(err) }

// authed requires a session, checks the CSRF token of every POST, checks
// that the session's principal may do act (core.Allowed, in some
// environment: the operation checks the one it touches), makes it the
// principal of the request, and renders errors.
func (u *UI) authed(act core.Action, h func(http.ResponseWriter, *http.Request, *page) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		var sess store.Session
		var pr core.Principal
		c, err := r.Cookie(sessionCookie)
		if err == nil && c.Value != "" {
			sess, err = u.db.Session(r.Context(), c.Value)
			if err == nil {
				pr, err = u.core.SessionPrincipal(r.Context(), sess.UserID, sess.TokenID)
			}
		} else {
			err = core.Errorf(core.EUNAUTHORIZED, "not signed in")
		}
		if err != nil {
			if core.ErrorCode(err) != core.EUNAUTHORIZED {
				u.internal(w, r, err)
				return
			}
			next := "/flags"
			if r.Method == http.MethodGet {
				next = r.URL.RequestURI()
			}
			http.Redirect(w, r, "/signin?next="+url.QueryEscape(next), http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(sess.CSRF)) != 1 {
				u.render(w, r, "error", &page{Title: "Form expired", Session: &sess, CSRF: sess.CSRF, status: http.StatusForbidden,
					Error: "This form has expired or was sent from another site, so nothing was changed. Go back, reload the page and try again."})
				return
			}
		}
		httpx.SetActor(r.Context(), pr.Actor())
		r = r.WithContext(core.WithPrincipal(r.Context(), pr))
		p := &page{Session: &sess, Principal: &pr, CSRF: sess.CSRF, Path: "/flags"}
		// The switcher first: a refusal is a page of the UI like any other.
		if err := u.environments(r, p); err != nil {
			u.internal(w, r, err)
			return
		}
		if !core.Allowed(&pr, act, core.AnyEnvironment) {
			p.Title, p.status = "Not allowed", http.StatusForbidden
			p.Error = fmt.Sprintf("You are signed in as %s, whose role is %s; this needs the %s role. Nothing was changed.", pr.Email, pr.RoleIn(core.AnyEnvironment), act.Needs())
			u.render(w, r, "error", p)
			return
		}
		if r.Method == http.MethodGet {
			p.Path = r.URL.Path
		}
		if c, err := r.Cookie(flashCookie); err == nil && r.Method == http.MethodGet {
			p.Flash, _ = url.QueryUnescape(c.Value)
			http.SetCookie(w, &http.Cookie{Name: flashCookie, Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: httpx.Secure(r)})
		}
		if err := h(w, r, p); err != nil {
			if s := statusOf(err); s == http.StatusInternalServerError || s == http.StatusServiceUnavailable {
				u.internal(w, r, err)
				return
			}
			p.status = statusOf(err)
			p.Title = "Not found"
			if p.status != http.StatusNotFound {
				p.Title = "Error"
			}
			p.Error = core.ErrorMessage(err)
			u.render(w, r, "error", p)
		}
	})
}

// environments fills the environment switcher: the env query or form
// value, else the default environment.
func (u *UI) environments(r *http.Request, p *page) error {
	envs, err := u.core.Environments(r.Context())
	if err != nil {
		return err
	}
	p.Envs = envs
	want := r.FormValue("env")
	for _, e := range envs {
		if e.Name == want {
			p.Env = want
			return nil
		}
	}
	p.Env = core.DefaultEnvironment
	if len(envs) > 0 && !hasEnv(envs, p.Env) {
		p.Env = envs[0].Name
	}
	return nil
}

func hasEnv(envs []core.Environment, name string) bool {
	for _, e := range envs {
		if e.Name == name {
			return true
		}
	}
	return false
}

// internal answers an error that is no fault of the request: 503 when the
// database is busy or unreachable (retrying will work), else 500.
func (u *UI) internal(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	if status == http.StatusServiceUnavailable {
		u.log.Warn("web UI: database unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		u.render(w, r, "error", &page{Title: "Unavailable", status: status,
			Error: "The database is busy or unreachable. Try again in a few seconds."})
		return
	}
	u.log.Error("web UI: internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	u.render(w, r, "error", &page{Title: "Server error", status: http.StatusInternalServerError,
		Error: "Something went wrong on the server. The details are in the server's log."})
}

// render writes a page, buffered so a template error never sends half a
// page.
func (u *UI) render(w http.ResponseWriter, r *http.Request, name string, p *page) {
	t := u.pages[name]
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		u.log.Error("web UI: template", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	status := p.status
	if status == 0 {
		status = http.StatusOK
	}
	if status == http.StatusServiceUnavailable {
		httpx.SetErrorHeaders(w, status) // Retry-After, as the API sends
	}
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// done redirects after a successful change, with a message for the next
// page.
func (u *UI) done(w http.ResponseWriter, r *http.Request, to, msg string) {
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: url.QueryEscape(msg), Path: "/", MaxAge: 60,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: httpx.Secure(r)})
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// localPath accepts only a path on this site as a redirect target.
// localPath returns next if it is a path on this site, else /flags. It
// refuses anything a browser could read as another host: "//host",
// "/\\host", and control characters ("/\t/host", which browsers clean to
// "//host").
func localPath(next string) string {
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil ||
		!strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") ||
		strings.ContainsFunc(next, func(r rune) bool { return r == '\\' || r < 0x20 || r == 0x7f }) {
		return "/flags"
	}
	return next
}

func envQuery(env string) string { return "?env=" + url.QueryEscape(env) }
