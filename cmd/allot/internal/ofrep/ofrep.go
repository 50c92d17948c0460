// Package ofrep serves the OpenFeature Remote Evaluation Protocol (OFREP,
// open-feature/protocol service/openapi.yaml): single and bulk flag
// evaluation for OpenFeature providers that do not evaluate locally.
//
// It is a thin front end: the SDK key picks the environment's published
// snapshot from the publish cache (no database on the request path), the
// engine (internal/eval) computes every assignment, and the assignments are
// handed to a Recorder that logs them to the assignment table as an SDK
// would.
package ofrep

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/allot-dev/allot/cmd/allot/internal/httpx"
	"github.com/allot-dev/allot/cmd/allot/internal/publish"
	"github.com/allot-dev/allot/internal/eval"
	"github.com/allot-dev/allot/internal/ufc"
)

// Limits on a request (docs/limits.md).
const (
	MaxBodyBytes     = 64 << 10 // a request body
	MaxAttributes    = 256      // attributes in a context, targetingKey included
	MaxKeyBytes      = 1024     // the targeting key, an attribute name, a flag key
	MaxAttrTextBytes = 4096     // a string attribute value
)

// StreamPath is the server-sent events endpoint advertised in the bulk
// response's eventStreams (OFREP 0.3): it announces each new configuration
// of the key's environment.
const StreamPath = "/api/flag-config/v1/stream"

// OpenFeature reasons and error codes (openfeature.dev/specification/types).
const (
	ReasonTargetingMatch = "TARGETING_MATCH"
	ReasonSplit          = "SPLIT"
	ReasonStatic         = "STATIC"
	ReasonDefault        = "DEFAULT"
	ReasonDisabled       = "DISABLED"
	ReasonError          = "ERROR"

	ErrFlagNotFound       = "FLAG_NOT_FOUND"
	ErrParse              = "PARSE_ERROR"
	ErrInvalidContext     = "INVALID_CONTEXT"
	ErrTargetingKeyMissng = "TARGETING_KEY_MISSING"
	ErrTypeMismatch       = "TYPE_MISMATCH"
	ErrGeneral            = "GENERAL"
)

// Handler serves the OFREP endpoints. Register adds them to a mux.
type Handler struct {
	// ForKey returns the published configuration an SDK key reads, or nil
	// (publish.Cache.Lookup: server and client keys alike).
	ForKey func(key string) *publish.Published
	// Recorder, if set, logs the assignments handed out.
	Recorder *Recorder
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Register adds the OFREP routes to m.
func (h *Handler) Register(m httpx.Mux) {
	m.HandleFunc("POST /ofrep/v1/evaluate/flags/{key}", h.evaluateFlag)
	m.HandleFunc("POST /ofrep/v1/evaluate/flags", h.evaluateFlags)
	m.HandleFunc("GET /ofrep/v1/configuration", h.configuration)
	// Any other method or path under /ofrep/ is a client's mistake: a JSON
	// 404 (or 405 from the mux), never the UI's sign-in page.
	m.HandleFunc("/ofrep/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, failure{ErrorCode: ErrGeneral, ErrorDetails: "no such OFREP endpoint: " + r.Method + " " + r.URL.Path})
	})
}

// success is an evaluationSuccess. Value is left out (the code default,
// OFREP codeDefaultFlag) when the flag is disabled or no allocation applies:
// the server does not know the caller's default.
type success struct {
	Key      string          `json:"key"`
	Value    json.RawMessage `json:"value,omitempty"`
	Reason   string          `json:"reason"`
	Variant  string          `json:"variant,omitempty"`
	Metadata map[string]any  `json:"metadata,omitempty"`
}

// failure is an evaluationFailure, flagNotFound or bulkEvaluationFailure.
type failure struct {
	Key          string `json:"key,omitempty"`
	ErrorCode    string `json:"errorCode"`
	ErrorDetails string `json:"errorDetails,omitempty"`
}

type eventStream struct {
	Type string `json:"type"`
	URL  string `json:"url"`
}

type bulk struct {
	Flags        []any          `json:"flags"`
	EventStreams []eventStream  `json:"eventStreams,omitempty"`
	Metadata     map[string]any `json:"metadata,omitempty"`
}

// evalContext is a parsed evaluation context.
type evalContext struct {
	subject string
	attrs   map[string]any // without targetingKey
	raw     map[string]any // the context as sent, targetingKey included
}

// canonical is the context re-encoded with sorted keys (encoding/json sorts
// map keys): two requests with the same context have the same bytes,
// whatever their order. Only the bulk ETag needs it.
func (c *evalContext) canonical() []byte {
	if len(c.raw) == 0 {
		return []byte("{}")
	}
	b, _ := json.Marshal(c.raw)
	return b
}

// apiKey returns the SDK key of r: Authorization: Bearer, or X-API-Key
// (the two schemes OFREP names).
func apiKey(r *http.Request) string {
	if k, ok := httpx.BearerToken(r); ok {
		return k
	}
	return strings.TrimSpace(r.Header.Get("X-API-Key"))
}

func (h *Handler) auth(w http.ResponseWriter, r *http.Request) *publish.Published {
	var p *publish.Published
	if k := apiKey(r); k != "" {
		p = h.ForKey(k)
	}
	if p == nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="allot"`)
		writeJSON(w, http.StatusUnauthorized, failure{ErrorCode: ErrGeneral,
			ErrorDetails: "missing, invalid or revoked SDK key: send Authorization: Bearer <key> or X-API-Key: <key>"})
		return nil
	}
	httpx.SetActor(r.Context(), "sdk-key:"+p.Environment)
	return p
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// evaluateFlag serves POST /ofrep/v1/evaluate/flags/{key}.
func (h *Handler) evaluateFlag(w http.ResponseWriter, r *http.Request) {
	p := h.auth(w, r)
	if p == nil {
		return
	}
	key := r.PathValue("key")
	ctx, f := readContext(w, r)
	if f != nil {
		f.Key = key
		writeJSON(w, http.StatusBadRequest, f)
		return
	}
	flag := p.Snapshot.Flag(key)
	if flag == nil {
		writeJSON(w, http.StatusNotFound, failure{Key: key, ErrorCode: ErrFlagNotFound, ErrorDetails: fmt.Sprintf("no flag %q in environment %q", key, p.Environment)})
		return
	}
	out := h.evaluate(p, flag, ctx)
	if fl, ok := out.(failure); ok {
		writeJSON(w, http.StatusBadRequest, fl)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// evaluateFlags serves POST /ofrep/v1/evaluate/flags: every flag of the
// environment for one context. Its ETag is a hash of the configuration's
// ETag and the canonical context, so If-None-Match answers 304 only when
// both are unchanged.
func (h *Handler) evaluateFlags(w http.ResponseWriter, r *http.Request) {
	p := h.auth(w, r)
	if p == nil {
		return
	}
	ctx, f := readContext(w, r)
	if f != nil {
		writeJSON(w, http.StatusBadRequest, f)
		return
	}
	etag := bulkETag(p.ETag, ctx.canonical())
	hdr := w.Header()
	hdr.Set("ETag", etag)
	hdr.Set("Cache-Control", "private, no-cache")
	hdr.Set("Vary", "Authorization, X-API-Key")
	if matches(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	var flags []*eval.Flag
	p.Snapshot.Flags(func(f *eval.Flag) bool {
		flags = append(flags, f)
		return true
	})
	slices.SortFunc(flags, func(a, b *eval.Flag) int { return strings.Compare(a.Key, b.Key) })
	out := bulk{Flags: make([]any, 0, len(flags)), Metadata: map[string]any{"environment": p.Environment}}
	for _, f := range flags {
		out.Flags = append(out.Flags, h.evaluate(p, f, ctx))
	}
	out.EventStreams = []eventStream{{Type: "sse", URL: streamURL(r)}}
	writeJSON(w, http.StatusOK, out)
}

// configurationBody is the answer of GET /ofrep/v1/configuration (an OFREP
// extension providers may read): polling works (the bulk ETag makes it
// cheap), every OpenFeature type is served. It never changes.
var configurationBody = []byte(`{"name":"Allot","capabilities":{` +
	`"cacheInvalidation":{"polling":{"enabled":true,"minPollingIntervalMs":1000}},` +
	`"flagEvaluation":{"supportedTypes":["int","float","string","boolean","object"]}}}` + "\n")

var configurationETag = func() string {
	sum := sha256.Sum256(configurationBody)
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}()

// configuration serves GET /ofrep/v1/configuration.
func (h *Handler) configuration(w http.ResponseWriter, r *http.Request) {
	if h.auth(w, r) == nil {
		return
	}
	hdr := w.Header()
	hdr.Set("ETag", configurationETag)
	hdr.Set("Cache-Control", "private, no-cache")
	if matches(r.Header.Get("If-None-Match"), configurationETag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hdr.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(configurationBody)
}

// streamURL is the absolute URL of the configuration stream for the key
// the request used. The key rides in the query because a browser's
// EventSource cannot send headers.
func streamURL(r *http.Request) string {
	scheme := "http"
	if httpx.Secure(r) {
		scheme = "https"
	}
	return scheme + "://" + r.Host + StreamPath + "?apiKey=" + url.QueryEscape(apiKey(r))
}

// bulkETag is a strong ETag over the configuration and the context.
func bulkETag(configETag string, canonical []byte) string {
	h := sha256.New()
	h.Write([]byte(configETag))
	h.Write([]byte{0})
	h.Write(canonical)
	return `"` + hex.EncodeToString(h.Sum(nil)[:16]) + `"`
}

// matches reports whether an If-None-Match header lists etag (or is *).
func matches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		t = strings.TrimPrefix(t, "W/")
		if t == "*" || (t != "" && t == etag) {
			return true
		}
	}
	return false
}

// evaluate evaluates f for ctx and maps the engine's answer to OFREP: a
// success, or a failure (an evaluationFailure item).
func (h *Handler) evaluate(p *publish.Published, f *eval.Flag, ctx *evalContext) any {
	res := f.Evaluate(ctx.subject, ctx.attrs, "", h.now())
	meta := map[string]any{"environment": p.Environment, "flagType": string(f.Type)}
	switch res.Code {
	case eval.Match:
		reason := ReasonStatic
		switch {
		case res.Rule != nil:
			reason = ReasonTargetingMatch
		case res.Randomized():
			reason = ReasonSplit
		}
		meta["allocation"] = res.AllocationKey()
		meta["doLog"] = res.DoLog()
		if h.Recorder != nil && res.DoLog() {
			extra := res.ExtraLogging()
			h.Recorder.Record(Exposure{
				Environment: p.Environment, Flag: f.Key, Allocation: res.AllocationKey(),
				Variation: res.VariationKey(), Holdout: extra["holdoutKey"], HoldoutVariation: extra["holdoutVariation"],
				Subject: ctx.subject, Attributes: ctx.attrs, At: h.now(),
			})
		}
		return success{Key: f.Key, Value: value(res.Variation, f.Type), Reason: reason, Variant: res.VariationKey(), Metadata: meta}
	case eval.DefaultAllocationNull:
		return success{Key: f.Key, Reason: ReasonDefault, Metadata: meta}
	case eval.FlagUnrecognizedOrDisabled:
		return success{Key: f.Key, Reason: ReasonDisabled, Metadata: meta}
	case eval.AssignmentError:
		if ctx.subject == "" && f.Err == nil && (res.Variation == nil || res.Variation.Err == nil) && res.Split == nil {
			return failure{Key: f.Key, ErrorCode: ErrTargetingKeyMissng, ErrorDetails: res.Description(f.Key) + " Set the context's targetingKey."}
		}
		return failure{Key: f.Key, ErrorCode: ErrGeneral, ErrorDetails: res.Description(f.Key)}
	}
	return failure{Key: f.Key, ErrorCode: ErrGeneral, ErrorDetails: res.Description(f.Key)}
}

// value is a variation's value as OFREP carries it (JSON flags as the
// JSON value itself), encoded.
func value(v *eval.Variation, t ufc.VariationType) json.RawMessage {
	var x any
	switch t {
	case ufc.TypeJSON:
		x = json.RawMessage(v.JSON())
	case ufc.TypeString:
		x = v.String()
	case ufc.TypeInteger:
		x = v.Int()
	case ufc.TypeNumeric:
		x = v.Float()
	case ufc.TypeBoolean:
		x = v.Bool()
	default:
		return nil
	}
	b, err := json.Marshal(x)
	if err != nil {
		return nil
	}
	return b
}

// readContext parses the request body {"context": {...}}. An empty body or
// a missing context is the empty context. It returns a failure for a body
// that is not JSON (PARSE_ERROR) or a context Allot cannot evaluate
// (INVALID_CONTEXT).
func readContext(w http.ResponseWriter, r *http.Request) (*evalContext, *failure) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &failure{ErrorCode: ErrParse, ErrorDetails: fmt.Sprintf("request body is larger than %d bytes", MaxBodyBytes)}
		}
		return nil, &failure{ErrorCode: ErrParse, ErrorDetails: "reading the request body: " + err.Error()}
	}
	return parseContext(body)
}

func parseContext(body []byte) (*evalContext, *failure) {
	ctx := &evalContext{attrs: map[string]any{}}
	if len(bytes.TrimSpace(body)) == 0 {
		return ctx, nil
	}
	// encoding/json would replace invalid bytes by U+FFFD, making two
	// different subjects collide: refuse them (docs/limits.md).
	if !utf8.Valid(body) {
		return nil, &failure{ErrorCode: ErrParse, ErrorDetails: "request body is not valid UTF-8"}
	}
	var req struct {
		Context json.RawMessage `json:"context"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		return nil, &failure{ErrorCode: ErrParse, ErrorDetails: "request body is not a JSON object: " + err.Error()}
	}
	if dec.More() {
		return nil, &failure{ErrorCode: ErrParse, ErrorDetails: "request body has data after its JSON object"}
	}
	raw := bytes.TrimSpace(req.Context)
	if len(raw) == 0 || string(raw) == "null" {
		return ctx, nil
	}
	if raw[0] != '{' {
		return nil, &failure{ErrorCode: ErrInvalidContext, ErrorDetails: "context must be a JSON object"}
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, &failure{ErrorCode: ErrParse, ErrorDetails: "context: " + err.Error()}
	}
	if len(m) > MaxAttributes {
		return nil, &failure{ErrorCode: ErrInvalidContext, ErrorDetails: fmt.Sprintf("context has %d attributes; the limit is %d", len(m), MaxAttributes)}
	}
	for k, v := range m {
		if len(k) > MaxKeyBytes {
			return nil, &failure{ErrorCode: ErrInvalidContext, ErrorDetails: fmt.Sprintf("an attribute name is longer than %d bytes", MaxKeyBytes)}
		}
		if k == "targetingKey" {
			s, ok := v.(string)
			switch {
			case v == nil:
			case !ok:
				return nil, &failure{ErrorCode: ErrInvalidContext, ErrorDetails: "targetingKey must be a string"}
			case len(s) > MaxKeyBytes:
				return nil, &failure{ErrorCode: ErrInvalidContext, ErrorDetails: fmt.Sprintf("targetingKey is longer than %d bytes", MaxKeyBytes)}
			}
			ctx.subject = s
			continue
		}
		switch x := v.(type) {
		case nil, bool, float64:
		case string:
			if len(x) > MaxAttrTextBytes {
				return nil, &failure{ErrorCode: ErrInvalidContext, ErrorDetails: fmt.Sprintf("attribute %q is longer than %d bytes", k, MaxAttrTextBytes)}
			}
		default:
			// The engine compares strings, numbers and booleans; a nested
			// structure would silently fail every rule, so it is refused.
			return nil, &failure{ErrorCode: ErrInvalidContext, ErrorDetails: fmt.Sprintf("attribute %q is a list or an object; Allot evaluates strings, numbers, booleans and null only", k)}
		}
		ctx.attrs[k] = v
	}
	ctx.raw = m
	return ctx, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
