package core

import (
	"net/url"
	"strings"
)

// Limits of a client key's allowed origins (docs/limits.md).
const (
	MaxOrigins      = 50  // allowed origins per client key
	MaxOriginLength = 300 // bytes in one origin
)

// CheckOrigins validates and normalizes a client key's allowed origins:
// each is scheme://host[:port] with scheme http or https and nothing after
// the host (a browser's Origin header never has a path). Scheme and host are
// lowercased, a trailing slash dropped, duplicates removed. An empty list
// means any origin.
func CheckOrigins(in []string) ([]string, error) {
	if len(in) > MaxOrigins {
		return nil, tooMany("origins", len(in), MaxOrigins)
	}
	out := make([]string, 0, len(in))
	seen := make(map[string]bool, len(in))
	for _, o := range in {
		n, err := normalizeOrigin(o)
		if err != nil {
			return nil, err
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func normalizeOrigin(o string) (string, error) {
	o = strings.TrimSuffix(strings.TrimSpace(o), "/")
	if len(o) > MaxOriginLength {
		return "", Invalid("origins", "origin is %d bytes; the limit is %d", len(o), MaxOriginLength)
	}
	u, err := url.Parse(o)
	bad := func() (string, error) {
		return "", Invalid("origins", "%q is not an origin: want scheme://host[:port] with scheme http or https, no path, such as https://www.example.com", o)
	}
	if err != nil || u.Host == "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return bad()
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return bad()
	}
	return scheme + "://" + strings.ToLower(u.Host), nil
}

// OriginAllowed reports whether a request's Origin header value is one of
// allowed (empty allowed: any origin). The comparison is exact after
// lowercasing, as browsers send origins in canonical form.
func OriginAllowed(allowed []string, origin string) bool {
	if origin == "" {
		return false
	}
	if len(allowed) == 0 {
		return true
	}
	origin = strings.ToLower(origin)
	for _, a := range allowed {
		if a == origin {
			return true
		}
	}
	return false
}
