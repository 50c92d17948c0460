package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/httpapi"
	"github.com/allot-dev/allot/cmd/allot/internal/httpx"
	"github.com/allot-dev/allot/cmd/allot/internal/ingest"
	"github.com/allot-dev/allot/cmd/allot/internal/ofrep"
	"github.com/allot-dev/allot/cmd/allot/internal/publish"
)

// Metrics access modes (--metrics).
const (
	MetricsOff    = "off"    // no /metrics
	MetricsPublic = "public" // anyone who reaches the port
	MetricsToken  = "token"  // an admin token or the metrics token (the default)
)

// routes builds the root mux: every URL the server answers is registered
// here or by a front end's Register, and the middleware wraps the whole mux
// once (in handler).
func (s *Server) routes(api *httpapi.Server, ingestion http.Handler, ui http.Handler) *http.ServeMux {
	m := httpx.NewRoutes()
	defer func() { s.routed = m.Patterns() }()
	m.HandleFunc("GET /healthz", s.healthz)
	m.HandleFunc("GET /readyz", s.readyz)
	if s.cfg.Metrics != MetricsOff {
		m.Handle("GET /metrics", s.metricsAccess(api, s.metrics.Handler()))
	} else {
		m.HandleFunc("GET /metrics", http.NotFound) // not the UI's sign-in page
	}

	// The SDK endpoints and the management API.
	api.Register(m)
	m.Handle("POST /api/v1/assignments", ingestion)
	// OpenFeature remote evaluation, on the published snapshots.
	// Server and client keys both evaluate (a browser's OFREP provider holds
	// a client key; cors checks its origins before the handler runs).
	sdkKey := func(k string) *publish.Published { p, _, _ := s.cache.Lookup(k); return p }
	(&ofrep.Handler{ForKey: sdkKey, Recorder: s.ofrep}).Register(m)
	// Anything else under /api/ is an API client's mistake: a JSON 404, never
	// the UI's sign-in page.
	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteError(w, r, core.Errorf(core.ENOTFOUND, "no such endpoint: %s %s", r.Method, r.URL.Path))
	})

	// The web UI: everything else.
	m.Handle("/", ui)
	return m.ServeMux
}

// Access is the permission decision of the routes registered here (see
// httpapi.Access): /metrics is read with an API token unless public.
var Access = map[string]core.Action{
	"GET /healthz":                        httpx.Public,
	"GET /readyz":                         httpx.Public,
	"GET /metrics":                        core.ActRead,
	"POST /api/v1/assignments":            httpx.Public, // an SDK key
	"POST /ofrep/v1/evaluate/flags/{key}": httpx.Public,
	"POST /ofrep/v1/evaluate/flags":       httpx.Public,
	"GET /ofrep/v1/configuration":         httpx.Public,
	"/ofrep/":                             httpx.Public,
	"/api/":                               httpx.Public, // a JSON 404
	"/":                                   httpx.Public, // the web UI: web.Access decides
}

// Routes lists the patterns of every route the server answers: its root
// mux's and, under "/", the web UI's (prefixed "ui:"). The route-by-role
// test walks them.
func (s *Server) Routes() []string {
	out := append([]string(nil), s.routed...)
	for _, p := range s.ui.Routes() {
		out = append(out, "ui:"+p)
	}
	return out
}

// metricsAccess lets through a request with the metrics token
// (ALLOT_METRICS_TOKEN) or an admin token, unless metrics are public.
func (s *Server) metricsAccess(api *httpapi.Server, h http.Handler) http.Handler {
	if s.cfg.Metrics == MetricsPublic {
		return h
	}
	var want [32]byte
	if s.cfg.MetricsToken != "" {
		want = sha256.Sum256([]byte(s.cfg.MetricsToken))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok, ok := httpx.BearerToken(r); ok && s.cfg.MetricsToken != "" {
			got := sha256.Sum256([]byte(tok))
			if subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
				h.ServeHTTP(w, r)
				return
			}
		}
		p, err := api.Admin(r)
		if err != nil {
			if core.ErrorCode(err) == core.EUNAUTHORIZED {
				err = core.Errorf(core.EUNAUTHORIZED, "metrics need a metrics token (ALLOT_METRICS_TOKEN) or an admin token: Authorization: Bearer <token>")
			}
			httpx.WriteError(w, r, err)
			return
		}
		if !core.Allowed(&p, Access["GET /metrics"], core.AnyEnvironment) {
			httpx.WriteError(w, r, core.Errorf(core.EFORBIDDEN, "metrics need the %s role", Access["GET /metrics"].Needs()))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// ingestHandler is assignment ingestion, writing through w.
func (s *Server) ingestHandler(w *ingest.Writer) http.Handler {
	return &ingest.Handler{
		Environment: func(key string) (string, bool) {
			// Either kind: client keys post assignment events too.
			if p, _, _ := s.cache.Lookup(key); p != nil {
				return p.Environment, true
			}
			return "", false
		},
		Writer: w,
		Log:    s.cfg.Log,
		Now:    time.Now,
	}
}

// registerOFREPMetrics exposes what happened to the assignments OFREP
// evaluations logged, so that a loss is visible, never silent.
func registerOFREPMetrics(m *httpapi.Metrics, r *ofrep.Recorder) {
	for _, c := range []struct {
		name, help string
		get        func(ofrep.RecorderStats) uint64
	}{
		{"allot_ofrep_assignments_written_total", "Assignments from OFREP evaluations written to the assignment table.", func(s ofrep.RecorderStats) uint64 { return s.Written }},
		{"allot_ofrep_assignments_deduped_total", "OFREP assignments not logged again because unchanged for the subject.", func(s ofrep.RecorderStats) uint64 { return s.Deduped }},
		{"allot_ofrep_assignments_dropped_total", "OFREP assignments dropped because the queue was full.", func(s ofrep.RecorderStats) uint64 { return s.Dropped }},
		{"allot_ofrep_assignments_failed_total", "OFREP assignments lost because the write failed.", func(s ofrep.RecorderStats) uint64 { return s.Failed }},
	} {
		m.Registry().MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help}, func() float64 { return float64(c.get(r.Stats())) }))
	}
}
