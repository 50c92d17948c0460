// Package httpapi holds the handlers of the SDK endpoints
// (/api/flag-config/v1/...) and of the management API (/api/v1/..., admin
// bearer tokens). It does not serve on its own: Register adds its routes to
// the server's root mux (internal/server), which applies the middleware.
package httpapi

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/export"
	"github.com/allot-dev/allot/cmd/allot/internal/httpx"
	"github.com/allot-dev/allot/cmd/allot/internal/publish"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
)

// Server holds the dependencies of the handlers.
type Server struct {
	db      *store.DB
	core    *core.Core
	cache   *publish.Cache
	log     *slog.Logger
	now     func() time.Time
	exports *export.Exporter // assignment exports, bounded with the web UI's downloads
	streams streams          // configuration streams (stream.go)
	// streamLimit bounds the open streams (0: StreamLimit).
	streamLimit int
	// precomputedLimit rate-limits POST /assignments per key (nil: off).
	precomputedLimit *keyLimiter
}

// Option configures a Server.
type Option func(*Server)

// WithCore makes the server call c, rather than a core of its own over db,
// so that every front end of a process shares one.
func WithCore(c *core.Core) Option { return func(s *Server) { s.core = c } }

// WithExporter makes the server stream exports through e, shared with the
// other front ends of a process, rather than through one of its own.
func WithExporter(e *export.Exporter) Option { return func(s *Server) { s.exports = e } }

// New returns the API over db and cache.
func New(db *store.DB, cache *publish.Cache, log *slog.Logger, opts ...Option) *Server {
	if log == nil {
		log = discardLogger()
	}
	s := &Server{db: db, cache: cache, log: log, now: time.Now,
		precomputedLimit: newKeyLimiter(PrecomputedRate, PrecomputedBurst)}
	// Every management operation goes through the domain core, which
	// republishes through the cache after each commit.
	s.core = core.New(db, core.Options{Listener: cache, Log: log})
	s.exports = export.New(db, log, export.DefaultSlots)
	for _, o := range opts {
		o(s)
	}
	return s
}

// Register adds the SDK and management routes to mux.
func (s *Server) Register(m httpx.Mux) {
	m.HandleFunc("GET /api/flag-config/v1/config", s.config)
	m.HandleFunc("GET /api/flag-config/v1/bandits", s.bandits)
	m.HandleFunc("GET /api/flag-config/v1/stream", s.stream)
	// Precomputed assignments: Eppo's SDKs use both paths.
	m.HandleFunc("POST /assignments", s.precomputed)
	m.HandleFunc("POST /api/assignments", s.precomputed)

	a := func(pattern string, h func(http.ResponseWriter, *http.Request) error) {
		m.Handle(pattern, s.admin(access(pattern), h))
	}
	a("GET /api/v1/environments", s.listEnvironments)
	a("POST /api/v1/environments", s.createEnvironment)
	a("GET /api/v1/environments/{env}", s.getEnvironment)

	a("GET /api/v1/flags", s.listFlags)
	a("POST /api/v1/flags", s.createFlag)
	a("GET /api/v1/flags/{flag}", s.getFlag)
	a("PUT /api/v1/flags/{flag}", s.updateFlag)
	a("DELETE /api/v1/flags/{flag}", s.deleteFlag)

	a("GET /api/v1/environments/{env}/flags/{flag}", s.getSettings)
	a("PUT /api/v1/environments/{env}/flags/{flag}", s.putSettings)
	a("POST /api/v1/environments/{env}/flags/{flag}/allocations", s.addAllocation)
	a("PATCH /api/v1/environments/{env}/flags/{flag}/allocations/{alloc}", s.patchAllocation)
	a("DELETE /api/v1/environments/{env}/flags/{flag}/allocations/{alloc}", s.deleteAllocation)
	a("POST /api/v1/environments/{env}/evaluate", s.evaluate)
	a("GET /api/v1/environments/{env}/config", s.environmentConfig)
	a("POST /api/v1/environments/{env}/import", s.importDocument)

	a("GET /api/v1/sdk-keys", s.listSDKKeys)
	a("POST /api/v1/sdk-keys", s.createSDKKey)
	a("DELETE /api/v1/sdk-keys/{id}", s.revokeSDKKey)
	a("PUT /api/v1/sdk-keys/{id}/origins", s.setKeyOrigins)
	a("GET /api/v1/admin-tokens", s.listAdminTokens)
	a("POST /api/v1/admin-tokens", s.createAdminToken)
	a("DELETE /api/v1/admin-tokens/{id}", s.revokeAdminToken)
	a("GET /api/v1/audit", s.audit)
	s.registerUsers(a)
	a("GET /api/v1/assignments", s.exportAssignments)
	a("GET /api/v1/environments/{env}/flags/{flag}/allocations/{alloc}/summary", s.assignmentSummary)
	a("GET /api/v1/environments/{env}/flags/{flag}/allocations/{alloc}/history", s.allocationHistory)
	s.registerLayers(a)
	s.registerLife(a)
}

// Admin authenticates the request's bearer token (the scheme in any case)
// and returns its principal, or an EUNAUTHORIZED error. The server's
// /metrics uses it too.
func (s *Server) Admin(r *http.Request) (core.Principal, error) {
	secret, ok := httpx.BearerToken(r)
	if !ok {
		return core.Principal{}, core.Errorf(core.EUNAUTHORIZED, "an API token is required: Authorization: Bearer <token>")
	}
	return s.core.Authenticate(r.Context(), secret)
}

// admin authenticates the bearer token, checks that its principal may do
// act (core.Allowed; in the path's environment, else in some environment:
// the operation checks the one it touches), records who acts, and turns
// the handler's error into a response.
func (s *Server) admin(act core.Action, h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.Admin(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		httpx.SetActor(r.Context(), p.Actor())
		env := r.PathValue("env")
		if env == "" {
			env = core.AnyEnvironment
		}
		if !core.Allowed(&p, act, env) {
			s.writeError(w, r, core.Errorf(core.EFORBIDDEN, "%s has the %s role; this needs the %s role", p.Actor(), p.RoleIn(env), act.Needs()))
			return
		}
		r = r.WithContext(core.WithPrincipal(r.Context(), p))
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}
