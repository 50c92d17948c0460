package server

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/httpx"
	"github.com/allot-dev/allot/cmd/allot/internal/ingest"
)

// MaxRequestBytes bounds every request body at the door; each endpoint has
// its own, lower limit (management bodies 4 MiB, ingestion 16 MiB after
// decompression), so this only stops what no endpoint would read.
const MaxRequestBytes = ingest.MaxBodyBytes + 1<<20

// handler applies the middleware, once, around the root mux: recovery from
// panics, the request facts (httpx.Info, including HTTPS behind a trusted
// proxy), the body limit, CORS on the SDK endpoints, metrics by route
// pattern, and the request log.
func (s *Server) handler(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		// One allocation for the recorder and the request facts.
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		info := &rec.info
		// The SDK endpoints, the hot path, use none of the request facts (no
		// actor, no cookie, no JSON error): they skip the request copy that
		// carrying them costs (two allocations, about 300 bytes).
		if !strings.HasPrefix(r.URL.Path, "/api/flag-config/") {
			info.Secure = r.TLS == nil && s.forwardedHTTPS(r)
			info.ClientIP = s.clientIP(r)
			r = r.WithContext(httpx.WithInfo(r.Context(), info))
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(rec, r.Body, MaxRequestBytes)
		}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v) // net/http's way to abort a response: not a bug
				}
				s.cfg.Log.Error("panic serving a request", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if !rec.wrote {
					err := core.Errorf(core.EINTERNAL, "internal error")
					if strings.HasPrefix(r.URL.Path, "/api/") {
						httpx.WriteError(rec, r, err)
					} else {
						http.Error(rec, "internal error", http.StatusInternalServerError)
					}
				}
				rec.status = http.StatusInternalServerError
			}
			s.observe(r, rec, info, time.Since(start))
		}()
		if s.cors(rec, r) {
			return // a preflight, or an origin its client key refuses (cors.go)
		}
		mux.ServeHTTP(rec, r)
	})
}

// observe counts every request by route pattern and logs management calls
// (path only: a query may hold an apiKey) and every internal error. SDK and
// health calls are only counted.
func (s *Server) observe(r *http.Request, rec *statusRecorder, info *httpx.Info, took time.Duration) {
	route := r.Pattern
	if route == "" {
		route = "unmatched"
	}
	s.metrics.Observe(route, rec.status, took)
	internal := info.Err != nil && httpx.Code(info.Err) == core.EINTERNAL
	if !internal && !strings.HasPrefix(r.URL.Path, "/api/v1/") {
		return
	}
	attrs := []any{"method", r.Method, "path", r.URL.Path, "status", rec.status, "took", took, "actor", info.Actor}
	if info.Err != nil {
		attrs = append(attrs, "err", info.Err)
	}
	s.cfg.Log.Log(r.Context(), httpx.LogLevel(rec.status), "request", attrs...)
}

// clientIP is the peer's address, or the last address of X-Forwarded-For
// when the peer is a trusted proxy (the one the proxy appended: earlier
// ones the client could have sent). The sign-in rate limit counts by it.
func (s *Server) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || len(s.cfg.TrustedProxies) == 0 {
		return host
	}
	trusted := false
	for _, p := range s.cfg.TrustedProxies {
		trusted = trusted || p.Contains(ip.Unmap())
	}
	xff := r.Header.Values("X-Forwarded-For")
	if !trusted || len(xff) == 0 {
		return host
	}
	hops := strings.Split(xff[len(xff)-1], ",")
	if last, err := netip.ParseAddr(strings.TrimSpace(hops[len(hops)-1])); err == nil {
		return last.Unmap().String()
	}
	return host
}

// forwardedHTTPS reports whether r came from a trusted proxy that says the
// client used HTTPS. X-Forwarded-Proto from anyone else is ignored: a
// client could send it.
func (s *Server) forwardedHTTPS(r *http.Request) bool {
	if len(s.cfg.TrustedProxies) == 0 || !strings.EqualFold(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto")), "https") {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
	info   httpx.Info
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
