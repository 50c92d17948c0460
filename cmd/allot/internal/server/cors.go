package server

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/httpx"
)

// CORSMaxAge is how long, in seconds, a browser may reuse a preflight
// answer (Chromium caps it at 7200).
const CORSMaxAge = 600

// corsRoute is what a browser may do cross-origin on one path.
type corsRoute struct {
	methods string // Access-Control-Allow-Methods
	allow   func(method string) bool
}

var (
	corsRead  = &corsRoute{methods: "GET, HEAD", allow: func(m string) bool { return m == http.MethodGet || m == http.MethodHead }}
	corsWrite = &corsRoute{methods: "POST", allow: func(m string) bool { return m == http.MethodPost }}
)

// corsFor returns the cross-origin rules of a path, or nil: CORS is only
// for what a page's SDK calls (the configuration and its stream, event
// ingestion, the precomputed assignments, OFREP evaluations), never the
// management API or the UI. The export shares ingestion's path but not its
// method, and stays same-origin.
func corsFor(path string) *corsRoute {
	switch {
	case strings.HasPrefix(path, "/api/flag-config/"):
		return corsRead
	case path == "/api/v1/assignments", path == "/assignments", path == "/api/assignments":
		return corsWrite
	case strings.HasPrefix(path, "/ofrep/"): // OpenFeature's web provider
		return corsWrite
	}
	return nil
}

var (
	hdrVaryOrigin   = []string{"Origin"}
	hdrAllowHeaders = []string{"Authorization, Content-Type, Content-Encoding, If-None-Match, X-API-Key"}
	// The page's code must read the ETag to send it back as If-None-Match
	// (OFREP's bulk evaluation); fetch hides it cross-origin unless exposed.
	hdrExposeHeaders = []string{"ETag"}
	hdrMaxAge        = []string{strconv.Itoa(CORSMaxAge)}
)

// cors applies the cross-origin rules of the SDK endpoints, once, for the
// whole mux. It reports whether it answered the request itself: a preflight,
// or a request refused because its client key does not allow its origin.
//
// Only client keys are for browsers: the request's origin is echoed (never
// "*", never with credentials) when its client key allows that origin. A
// server key gets no CORS headers, so a page that embeds one cannot read
// the answer. A preflight whose URL names no key (ingestion sends the key
// in Authorization, which a preflight does not carry) is allowed: the
// request that follows is checked, and refused before it is processed, so
// an origin a key does not allow never posts through it.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) bool {
	route := corsFor(r.URL.Path)
	if route == nil {
		return false
	}
	h := w.Header()
	h["Vary"] = hdrVaryOrigin
	origin := r.Header["Origin"]
	if len(origin) == 0 {
		return false // not a cross-origin browser request
	}
	preflight := r.Method == http.MethodOptions && len(r.Header["Access-Control-Request-Method"]) > 0
	// Every key the request presents is checked, in the URL and in
	// Authorization alike: endpoints differ in which one they read
	// (ingestion prefers Authorization, the configuration the URL), so a
	// check of one only would let a key that allows the origin carry
	// another that does not. Each must be a client key allowing it.
	var keys [3]string
	keys[0] = r.URL.Query().Get("apiKey")
	if !preflight {
		keys[1], _ = httpx.BearerToken(r)
		keys[2] = strings.TrimSpace(r.Header.Get("X-API-Key")) // OFREP's other scheme
	}
	allowed, named := true, false
	for _, key := range keys {
		if key == "" {
			continue
		}
		named = true
		ok, client := s.originAllowed(key, origin[0])
		if client && !ok {
			h["Content-Type"] = []string{"text/plain; charset=utf-8"}
			h["Cache-Control"] = []string{"no-store"}
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte("forbidden: this client key does not allow origin " + strconv.Quote(origin[0]) + "\n"))
			return true
		}
		allowed = allowed && ok
	}
	// With no key, a preflight is allowed: the request itself is checked
	// (see above). A request with no key gets no CORS headers.
	allowed = allowed && (named || preflight)
	if preflight {
		if !allowed || !route.allow(r.Header.Get("Access-Control-Request-Method")) {
			w.WriteHeader(http.StatusForbidden)
			return true
		}
		h["Access-Control-Allow-Origin"] = origin[:1:1]
		h["Access-Control-Allow-Methods"] = []string{route.methods}
		h["Access-Control-Allow-Headers"] = hdrAllowHeaders
		h["Access-Control-Max-Age"] = hdrMaxAge
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	if allowed && route.allow(r.Method) {
		h["Access-Control-Allow-Origin"] = origin[:1:1]
		h["Access-Control-Expose-Headers"] = hdrExposeHeaders
	}
	return false
}

// originAllowed reports whether key is a live client key (client) and, if
// so, whether it allows origin.
func (s *Server) originAllowed(key, origin string) (allowed, client bool) {
	if key == "" {
		return false, false
	}
	p, origins := s.cache.ForClientKey(key)
	if p == nil {
		return false, false
	}
	return core.OriginAllowed(origins, origin), true
}
