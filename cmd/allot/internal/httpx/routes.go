package httpx

import (
	"net/http"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
)

// Mux is what a front end registers its routes on: an *http.ServeMux, or
// a Routes that also remembers them.
type Mux interface {
	Handle(pattern string, h http.Handler)
	HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request))
}

// Routes is a ServeMux that records every pattern registered on it, so
// that tests can walk every route (the route-by-role test of
// internal/server) rather than a hand-kept list.
type Routes struct {
	*http.ServeMux
	patterns []string
}

// NewRoutes returns an empty Routes.
func NewRoutes() *Routes { return &Routes{ServeMux: http.NewServeMux()} }

// Handle registers h for pattern.
func (r *Routes) Handle(pattern string, h http.Handler) {
	r.patterns = append(r.patterns, pattern)
	r.ServeMux.Handle(pattern, h)
}

// HandleFunc registers h for pattern.
func (r *Routes) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	r.patterns = append(r.patterns, pattern)
	r.ServeMux.HandleFunc(pattern, h)
}

// Patterns lists the patterns registered, in order.
func (r *Routes) Patterns() []string { return append([]string(nil), r.patterns...) }

// Public marks, in a front end's table of route permissions, a route that
// involves no account: open to anyone (health, sign-in) or authorized by an
// SDK key of its own.
const Public core.Action = "public"
