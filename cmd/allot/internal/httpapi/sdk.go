package httpapi

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/allot-dev/allot/cmd/allot/internal/publish"
)

// Header values shared by every response; net/http never mutates them.
var (
	hdrJSON         = []string{"application/json; charset=utf-8"}
	hdrText         = []string{"text/plain; charset=utf-8"}
	hdrGzip         = []string{"gzip"}
	hdrVary         = []string{"Accept-Encoding, Origin"} // CORS answers depend on Origin
	hdrNoStore      = []string{"no-store"}
	hdrRetryAfter   = []string{"5"}
	hdrCacheControl = []string{"public, max-age=" + strconv.Itoa(ConfigMaxAge) + ", stale-while-revalidate=60, stale-if-error=86400"}
)

// ConfigMaxAge is how long, in seconds, a CDN or client may reuse a
// configuration without asking again. It bounds how long a change (or a
// revoked key) takes to reach SDKs behind a CDN.
const ConfigMaxAge = 5

// config serves GET /api/flag-config/v1/config?apiKey=...: the compiled
// document of the key's environment, from memory. Bad keys get a plain-text
// 401, never a JSON object (spec 8.2).
//
// A client key, or an Eppo client SDK (sdkName, see ClientSDK), gets the
// CLIENT (obfuscated) form of the same revision, with its own ETags.
func (s *Server) config(w http.ResponseWriter, r *http.Request) {
	p, client := s.sdkAuth(w, r)
	if p == nil {
		return
	}
	if p.Body == nil {
		// The environment has flags but publishing refused every one, and
		// this replica has no earlier document: never an empty one. Checked
		// before the CLIENT form, which has nothing to be built from either,
		// so that client keys get the same retryable answer.
		h := w.Header()
		h["Content-Type"] = hdrText
		h["Cache-Control"] = hdrNoStore
		h["Retry-After"] = hdrRetryAfter
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("unavailable: no configuration can be published for this environment yet\n"))
		return
	}
	rep, err := configRepresentation(p, client, r.URL.RawQuery)
	if err != nil {
		// Cannot happen with a document that compiled; say so rather
		// than serve SERVER to a client.
		h := w.Header()
		h["Content-Type"] = hdrText
		h["Cache-Control"] = hdrNoStore
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("the CLIENT configuration could not be built; see the server log\n"))
		return
	}
	body, etag, gz, notModified := chooseRepresentation(&rep, r.Header["Accept-Encoding"], r.Header["If-None-Match"])
	h := w.Header()
	h["Cache-Control"] = hdrCacheControl
	h["Vary"] = hdrVary
	h["Etag"] = []string{etag}
	if notModified {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if gz {
		h["Content-Encoding"] = hdrGzip
	}
	h["Content-Type"] = hdrJSON
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	writeOnce(w, r, http.StatusOK, body)
}

// configRepresentation is the form of p a request gets: the CLIENT
// (obfuscated) one for a client key or an Eppo client SDK (sdkName in the
// raw query), else the SERVER one. p.Body must not be nil.
func configRepresentation(p *publish.Published, client bool, rawQuery string) (publish.Representation, error) {
	if client || ClientSDK(queryParam(rawQuery, "sdkName")) {
		return p.Client()
	}
	return publish.Representation{Body: p.Body, Gzip: p.Gzip, ETag: p.ETag, GzipETag: p.GzipETag}, nil
}

// chooseRepresentation decides what the config endpoint sends of rep, for
// net/http's handler and the fast path alike (fastconfig.go): the gzip
// form if Accept-Encoding allows it, its ETag, and whether If-None-Match
// makes the answer a 304.
func chooseRepresentation(rep *publish.Representation, acceptEncoding, ifNoneMatch []string) (body []byte, etag string, gz, notModified bool) {
	gz = acceptsGzip(acceptEncoding)
	body, etag = rep.Body, rep.ETag
	if gz {
		body, etag = rep.Gzip, rep.GzipETag
	}
	notModified = len(ifNoneMatch) > 0 && etagMatches(ifNoneMatch, rep)
	return body, etag, gz, notModified
}

const emptyBandits = `{"bandits":{}}`

// bandits serves GET /api/flag-config/v1/bandits: Allot has no bandits.
func (s *Server) bandits(w http.ResponseWriter, r *http.Request) {
	if p, _ := s.sdkAuth(w, r); p == nil {
		return
	}
	h := w.Header()
	h["Cache-Control"] = hdrCacheControl
	h["Content-Type"] = hdrJSON
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(emptyBandits))
}

// ClientSDK reports whether sdkName is one of Eppo's client (browser or
// mobile) SDKs, which expect the CLIENT document whatever their key.
func ClientSDK(sdkName string) bool {
	switch sdkName {
	case "js-client-sdk", "javascript", "react-native", "react-native-sdk", "ios", "android":
		return true
	}
	return false
}

// sdkAuth finds the configuration the request's apiKey reads, and whether
// the key is a client key; with no live key it answers 401 and returns nil.
func (s *Server) sdkAuth(w http.ResponseWriter, r *http.Request) (p *publish.Published, client bool) {
	if key := queryParam(r.URL.RawQuery, "apiKey"); key != "" {
		p, client, _ = s.cache.Lookup(key)
	}
	if p == nil {
		h := w.Header()
		h["Content-Type"] = hdrText
		h["Cache-Control"] = hdrNoStore
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte("unauthorized: missing, invalid or revoked apiKey\n"))
		return nil, false
	}
	return p, client
}

// queryParam finds one query parameter without building a url.Values.
func queryParam(raw, name string) string {
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(kv, "=")
		if k != name {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			if u, err := url.QueryUnescape(v); err == nil {
				return u
			}
			return ""
		}
		return v
	}
	return ""
}

func acceptsGzip(values []string) bool {
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if !strings.EqualFold(strings.TrimSpace(name), "gzip") {
				continue
			}
			// "gzip;q=0" refuses it.
			params = strings.ReplaceAll(params, " ", "")
			if strings.HasPrefix(params, "q=0") && strings.Trim(strings.TrimPrefix(params, "q=0"), ".0") == "" {
				return false
			}
			return true
		}
	}
	return false
}

// etagMatches implements If-None-Match's weak comparison against either
// representation's tag.
func etagMatches(values []string, p *publish.Representation) bool {
	for _, v := range values {
		for tag := range strings.SplitSeq(v, ",") {
			tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
			if tag == "*" || tag == p.ETag || tag == p.GzipETag {
				return true
			}
		}
	}
	return false
}
