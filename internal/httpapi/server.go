// Package httpapi is Allot's HTTP surface on one http.ServeMux: the SDK
// endpoints (/api/flag-config/v1/...), the management API (/api/v1/...,
// admin bearer tokens), and /healthz, /readyz, /metrics.
package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/allot-dev/allot/internal/publish"
	"github.com/allot-dev/allot/internal/store"
)

// Server holds the dependencies of the handlers.
type Server struct {
	db      *store.DB
	cache   *publish.Cache
	log     *slog.Logger
	metrics *Metrics
	now     func() time.Time
	mux     *http.ServeMux
	exports chan struct{} // slots for concurrent assignment exports
}

// maxExports is how many assignment exports may stream at once.
const maxExports = 2

// New returns the API over db and cache. metrics may be nil.
func New(db *store.DB, cache *publish.Cache, metrics *Metrics, log *slog.Logger) *Server {
	if log == nil {
		log = discardLogger()
	}
	if metrics == nil {
		metrics = NewMetrics()
	}
	s := &Server{db: db, cache: cache, log: log, metrics: metrics, now: time.Now, mux: http.NewServeMux(), exports: make(chan struct{}, maxExports)}
	s.routes()
	return s
}

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /healthz", s.healthz)
	m.HandleFunc("GET /readyz", s.readyz)
	m.Handle("GET /metrics", s.metrics.handler())

	m.HandleFunc("GET /api/flag-config/v1/config", s.config)
	m.HandleFunc("GET /api/flag-config/v1/bandits", s.bandits)

	a := func(pattern string, h func(http.ResponseWriter, *http.Request) error) {
		m.Handle(pattern, s.admin(h))
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

	a("GET /api/v1/sdk-keys", s.listSDKKeys)
	a("POST /api/v1/sdk-keys", s.createSDKKey)
	a("DELETE /api/v1/sdk-keys/{id}", s.revokeSDKKey)
	a("GET /api/v1/admin-tokens", s.listAdminTokens)
	a("POST /api/v1/admin-tokens", s.createAdminToken)
	a("DELETE /api/v1/admin-tokens/{id}", s.revokeAdminToken)
	a("GET /api/v1/audit", s.audit)
	a("GET /api/v1/assignments", s.exportAssignments)
	a("GET /api/v1/environments/{env}/flags/{flag}/allocations/{alloc}/summary", s.assignmentSummary)

	m.Handle("/api/v1/", s.admin(func(w http.ResponseWriter, r *http.Request) error {
		return store.Errorf(store.ENOTFOUND, "no such endpoint: %s %s", r.Method, r.URL.Path)
	}))
}

// ServeHTTP serves every route, counting each request by route pattern.
// Management calls are logged (path only: a query may hold an apiKey);
// SDK and health calls are only counted.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	s.mux.ServeHTTP(rec, r)
	took := s.now().Sub(start)
	route := r.Pattern
	if route == "" {
		route = "unmatched"
	}
	s.metrics.observe(route, rec.status, took)
	if strings.HasPrefix(r.URL.Path, "/api/v1/") {
		s.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", rec.status, "took", took, "actor", rec.actor)
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	actor  string
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// admin authenticates the bearer token, records who acts, and turns the
// handler's error into a response.
func (s *Server) admin(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		secret, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok || secret == "" {
			s.writeError(w, r, store.Errorf(store.EUNAUTHORIZED, "an admin token is required: Authorization: Bearer <token>"))
			return
		}
		tok, err := s.db.AuthenticateAdmin(r.Context(), strings.TrimSpace(secret))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		actor := "admin:" + tok.Name + " (" + tok.Prefix + "…)"
		if rec, ok := w.(*statusRecorder); ok {
			rec.actor = actor
		}
		r = r.WithContext(store.WithActor(r.Context(), actor))
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// changed republishes after a write so this replica serves the change at
// once; other replicas pick it up on their next poll.
func (s *Server) changed(ctx context.Context) {
	if err := s.cache.Refresh(context.WithoutCancel(ctx)); err != nil {
		s.log.Error("republishing after a change failed", "err", err)
	}
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header()["Content-Type"] = hdrText
	w.Write([]byte("ok\n"))
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header()["Content-Type"] = hdrText
	w.Header()["Cache-Control"] = hdrNoStore
	if err := s.db.Ping(ctx); err != nil {
		s.log.Warn("not ready: database unreachable", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("database unreachable\n"))
		return
	}
	// Refused flags do not make the replica unready (every replica refuses
	// the same flags, so routing around one helps no one), but they are
	// named here, after the status line, and in the metrics.
	problems := s.cache.Problems()
	if err := s.cache.Ready(); err != nil {
		s.log.Warn("not ready: configuration", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "configuration not ready: %v\n", err)
	} else if len(problems) > 0 {
		w.Write([]byte("ready, with problems:\n"))
	} else {
		w.Write([]byte("ready\n"))
	}
	const maxLines = 50 // bounded, whatever the number of refused flags
	for i, p := range problems {
		if i == maxLines {
			fmt.Fprintf(w, "and %d more\n", len(problems)-maxLines)
			break
		}
		fmt.Fprintf(w, "%s\n", p)
	}
}
