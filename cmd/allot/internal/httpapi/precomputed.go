package httpapi

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/httpx"
	"github.com/allot-dev/allot/internal/eval"
	"github.com/allot-dev/allot/internal/ufc"
)

// Limits on a precomputed-assignments request (docs/limits.md).
const (
	PrecomputedMaxBody       = 64 << 10 // the request body
	PrecomputedMaxAttributes = 256      // numeric and categorical attributes together
	PrecomputedMaxKeyBytes   = 1024     // the subject key, an attribute name
	PrecomputedMaxTextBytes  = 4096     // a string attribute value
)

// Default per-key rate of POST /assignments: a token bucket refilled at
// PrecomputedRate requests a second, holding at most PrecomputedBurst.
const (
	PrecomputedRate  = 1000
	PrecomputedBurst = 2000
)

// WithPrecomputedRate sets the per-key rate limit of the precomputed
// assignments endpoint: perSecond requests a second, bursts of burst.
// perSecond <= 0 turns the limit off (benchmarks).
func WithPrecomputedRate(perSecond float64, burst int) Option {
	return func(s *Server) { s.precomputedLimit = newKeyLimiter(perSecond, float64(burst)) }
}

// PrecomputedRequest is the body of POST /assignments, as Eppo's
// precomputed client sends it. bandit_actions is accepted and ignored:
// Allot has no bandits.
type PrecomputedRequest struct {
	SubjectKey        string `json:"subject_key"`
	SubjectAttributes struct {
		NumericAttributes     map[string]any `json:"numericAttributes"`
		CategoricalAttributes map[string]any `json:"categoricalAttributes"`
	} `json:"subject_attributes"`
}

// ParsePrecomputedRequest checks a request body against the limits and
// returns the subject and its attributes (numeric and categorical merged,
// as the engine sees them).
func ParsePrecomputedRequest(body []byte) (subject string, attrs map[string]any, err error) {
	if !utf8.Valid(body) {
		// encoding/json would turn invalid bytes into U+FFFD, making two
		// subjects collide.
		return "", nil, core.Errorf(core.EINVALID, "request body is not valid UTF-8")
	}
	var req PrecomputedRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		return "", nil, core.Errorf(core.EINVALID, "request body is not the expected JSON object {subject_key, subject_attributes: {numericAttributes, categoricalAttributes}}: %v", err)
	}
	if dec.More() {
		return "", nil, core.Errorf(core.EINVALID, "request body has data after its JSON object")
	}
	// Attributes anywhere else than the two maps would be ignored, and
	// every rule on them would silently fail: refuse them.
	var shape struct {
		SubjectAttributes map[string]json.RawMessage `json:"subject_attributes"`
	}
	if err := json.Unmarshal(body, &shape); err == nil {
		for k := range shape.SubjectAttributes {
			if k != "numericAttributes" && k != "categoricalAttributes" {
				return "", nil, invalidField("subject_attributes", fmt.Sprintf("unknown key %q: attributes go in numericAttributes or categoricalAttributes", k))
			}
		}
	}
	switch {
	case req.SubjectKey == "":
		return "", nil, invalidField("subject_key", "subject_key is required")
	case len(req.SubjectKey) > PrecomputedMaxKeyBytes:
		return "", nil, invalidField("subject_key", fmt.Sprintf("subject_key is longer than %d bytes", PrecomputedMaxKeyBytes))
	}
	num, cat := req.SubjectAttributes.NumericAttributes, req.SubjectAttributes.CategoricalAttributes
	if n := len(num) + len(cat); n > PrecomputedMaxAttributes {
		return "", nil, invalidField("subject_attributes", fmt.Sprintf("%d attributes; the limit is %d", n, PrecomputedMaxAttributes))
	}
	attrs = make(map[string]any, len(num)+len(cat))
	add := func(kind, k string, v any, numeric bool) error {
		field := "subject_attributes." + kind
		if len(k) > PrecomputedMaxKeyBytes {
			return invalidField(field, fmt.Sprintf("an attribute name is longer than %d bytes", PrecomputedMaxKeyBytes))
		}
		switch x := v.(type) {
		case nil:
		case json.Number:
			f, err := x.Float64()
			if err != nil || math.IsInf(f, 0) {
				return invalidField(field, fmt.Sprintf("attribute %q is not a finite number", k))
			}
			v = f
		case bool, string:
			if numeric {
				return invalidField(field, fmt.Sprintf("numeric attribute %q is not a number", k))
			}
			if s, ok := x.(string); ok && len(s) > PrecomputedMaxTextBytes {
				return invalidField(field, fmt.Sprintf("attribute %q is longer than %d bytes", k, PrecomputedMaxTextBytes))
			}
		default:
			// The engine compares strings, numbers and booleans; a list
			// or an object would silently fail every rule.
			return invalidField(field, fmt.Sprintf("attribute %q is a list or an object; Allot evaluates strings, numbers, booleans and null only", k))
		}
		if _, dup := attrs[k]; dup {
			return invalidField(field, fmt.Sprintf("attribute %q is both numeric and categorical", k))
		}
		attrs[k] = v
		return nil
	}
	for k, v := range num {
		if err := add("numericAttributes", k, v, true); err != nil {
			return "", nil, err
		}
	}
	for k, v := range cat {
		if err := add("categoricalAttributes", k, v, false); err != nil {
			return "", nil, err
		}
	}
	return req.SubjectKey, attrs, nil
}

// NewSalt returns a fresh random salt for a PRECOMPUTED document.
func NewSalt() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return base64.StdEncoding.EncodeToString(b[:])
}

// createdAtLayout is the createdAt of a PRECOMPUTED document (UTC, ms).
const createdAtLayout = "2006-01-02T15:04:05.000Z"

// PrecomputedDocument is the PRECOMPUTED document of subject on snap, with
// a fresh salt: what POST /assignments answers and `allot bootstrap
// --subject` writes.
func PrecomputedDocument(snap *eval.Snapshot, environment, subject string, attrs map[string]any, now time.Time) *ufc.Precomputed {
	return ufc.ObfuscatePrecomputed(now.UTC().Format(createdAtLayout), environment, NewSalt(),
		snap.Precompute(subject, attrs, now))
}

// precomputed serves POST /assignments and POST /api/assignments
// (?apiKey=...&sdkName=...&sdkVersion=...): the PRECOMPUTED document of
// the subject in the body, computed by the engine on the key's published
// snapshot, with no database on the way. Client keys and server keys may
// call it; CORS (client keys' origins) is checked by the root middleware
// before this runs.
func (s *Server) precomputed(w http.ResponseWriter, r *http.Request) {
	p, _ := s.sdkAuth(w, r)
	if p == nil {
		return
	}
	if s.precomputedLimit != nil {
		if ok, wait := s.precomputedLimit.allow(core.HashSecret(queryParam(r.URL.RawQuery, "apiKey")), s.now()); !ok {
			secs := int(math.Ceil(wait.Seconds()))
			w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
			w.Header().Set("Cache-Control", "no-store")
			httpx.WriteJSON(w, http.StatusTooManyRequests, httpx.ErrorBody{Error: httpx.ErrorDetail{
				Code: "rate_limited", Message: "too many precomputed-assignment requests for this key; retry after the Retry-After delay"}})
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, PrecomputedMaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httpx.WriteError(w, r, err)
			return
		}
		httpx.WriteError(w, r, core.Errorf(core.EINVALID, "reading the request body: %v", err))
		return
	}
	subject, attrs, err := ParsePrecomputedRequest(body)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if p.Body == nil || p.Snapshot == nil {
		// As for the configuration: never an empty answer in place of one
		// that cannot be computed.
		w.Header()["Retry-After"] = hdrRetryAfter
		httpx.WriteError(w, r, core.Errorf(core.EUNAVAILABLE, "no configuration can be published for this environment yet"))
		return
	}
	// Written directly (ufc.AppendPrecomputed), not through
	// PrecomputedDocument and encoding/json: a third of the cost.
	now := s.now()
	out := ufc.AppendPrecomputed(nil, now.UTC().Format(createdAtLayout), p.Environment, NewSalt(),
		p.Snapshot.Precompute(subject, attrs, now))
	h := w.Header()
	h["Content-Type"] = hdrJSON
	h["Cache-Control"] = hdrNoStore
	h["Content-Length"] = []string{strconv.Itoa(len(out))}
	w.WriteHeader(http.StatusOK)
	w.Write(out)
}

// keyLimiter is a token bucket per SDK key (by hash). Only keys that
// authenticated reach it, so it holds at most one bucket per live key; it is
// emptied if it ever grows past maxBuckets (revoked keys), which only
// forgives some requests.
type keyLimiter struct {
	rate, burst float64
	mu          sync.Mutex
	buckets     map[[32]byte]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

const maxBuckets = 100_000

func newKeyLimiter(rate, burst float64) *keyLimiter {
	if rate <= 0 {
		return nil
	}
	return &keyLimiter{rate: rate, burst: max(burst, 1), buckets: map[[32]byte]*bucket{}}
}

// allow takes a token from key's bucket, or says how long until one is
// there.
func (l *keyLimiter) allow(key [32]byte, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			clear(l.buckets)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(l.burst, b.tokens+dt*l.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

func invalidField(field, msg string) error { return core.Invalid(field, "%s", msg) }
