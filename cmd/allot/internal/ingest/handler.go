package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/allot-dev/allot"
	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/httpx"
	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

// Limits of one request, and of all of them: at most MaxInFlight requests
// are read and held at once (each up to table.MaxRequestBytes), so that a
// burst of large requests cannot exhaust the server's memory; a request
// beyond that waits up to SlotWait for a slot (unread, so it holds no body
// in memory), then gets 503 with Retry-After. The limits of an event are
// table's.
const (
	MaxInFlight = 32
	// SlotWait is how long a request waits for one of the MaxInFlight
	// slots. The Go SDK sends up to 16 requests at once, so two busy SDK
	// processes fill every slot; a 503 makes an SDK hold back all its
	// batches for a backoff, so a slot freed within a moment is worth
	// waiting for.
	SlotWait = time.Second
	// MaxCompressionRatio bounds how much a gzip body may inflate (beyond
	// its first MiB): event batches compress 5 to 20 times; a body made to
	// inflate a thousand times (16 KB of gzip into 16 MiB of whitespace) is
	// refused after a few MiB of work instead of being read in full.
	MaxCompressionRatio = 100
	ratioFreeBytes      = 1 << 20
)

// MaxBodyBytes and MaxEvents are table's limits under their former names,
// for code written against them (internal/server's body limit on main).
//
// Deprecated: use table.MaxRequestBytes and table.MaxEventsPerRequest.
const (
	MaxBodyBytes = table.MaxRequestBytes
	MaxEvents    = table.MaxEventsPerRequest
)

// wireEvent is an event as SDKs send it: the Go SDK's allot.AssignmentEvent
// (the fields of an assignment logger's event, spec section 5, plus an
// eventId that makes retries safe), decoded through that type so that the
// SDK's HTTP logger and this handler share one wire form. Three fields are
// read differently from the SDK's own Go types, on purpose: the attributes
// stay JSON text (the table stores them as text, and decoding them into
// values only to encode them again would cost most of the handler's time);
// metaData is read by its documented keys whatever Go type the SDK gives
// it; of extraLogging only the holdout's two keys are kept, whatever else
// it holds. Eppo's JavaScript SDKs spread extraLogging into the event
// itself, so the holdout's keys are read at the top level too. Other fields
// (evaluationDetails...) are accepted and ignored.
type wireEvent struct {
	allot.AssignmentEvent
	SubjectAttributes json.RawMessage `json:"subjectAttributes"`
	MetaData          struct {
		SDKName     string `json:"sdkName"`
		SDKLanguage string `json:"sdkLanguage"`
		SDKVersion  string `json:"sdkVersion"`
	} `json:"metaData"`
	ExtraLogging     holdoutFields `json:"extraLogging"`
	HoldoutKey       looseString   `json:"holdoutKey"`
	HoldoutVariation looseString   `json:"holdoutVariation"`
}

// holdoutFields are the holdout's keys of an extraLogging object. Anything
// else in it, or an extraLogging that is not an object, or a key whose
// value is not a string, is ignored: extraLogging is free-form, and an
// event is never refused for it.
type holdoutFields struct {
	Key       string
	Variation string
}

func (h *holdoutFields) UnmarshalJSON(b []byte) error {
	*h = holdoutFields{}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	var k, v looseString
	k.UnmarshalJSON(m["holdoutKey"])
	v.UnmarshalJSON(m["holdoutVariation"])
	h.Key, h.Variation = string(k), string(v)
	return nil
}

// looseString decodes a JSON string and ignores any other value (leaving
// what it held), for fields an event may carry but need not.
type looseString string

func (s *looseString) UnmarshalJSON(b []byte) error {
	var v string
	if len(b) > 0 && b[0] == '"' && json.Unmarshal(b, &v) == nil {
		*s = looseString(v)
	}
	return nil
}

// Rejected is an event that was not stored, and why.
type Rejected struct {
	Index   int    `json:"index"`
	EventID string `json:"eventId,omitempty"`
	Error   string `json:"error"`
}

// Response is the answer to a batch.
type Response struct {
	// Accepted events are stored (durably, once this response is sent).
	Accepted int `json:"accepted"`
	// Duplicates among the accepted were already stored: a retried batch.
	Duplicates int        `json:"duplicates"`
	Rejected   []Rejected `json:"rejected"`
}

// Handler serves POST /api/v1/assignments.
type Handler struct {
	// Environment returns the environment an SDK key writes to, or false.
	Environment func(key string) (string, bool)
	Writer      *Writer
	Log         *slog.Logger
	Now         func() time.Time
	// Stored, if set, is told how many events each request accepted.
	Stored func(env string, accepted, duplicates, rejected int)

	inFlight chan struct{} // made on first use; MaxInFlight slots
	once     sync.Once
}

// sdkKey takes the key from "Authorization: Bearer KEY" or ?apiKey=KEY.
func sdkKey(r *http.Request) string {
	if k, ok := httpx.BearerToken(r); ok {
		return k
	}
	return r.URL.Query().Get("apiKey")
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	env, ok := h.Environment(sdkKey(r))
	if !ok {
		httpx.WriteError(w, r, core.Errorf(core.EUNAUTHORIZED, "missing, invalid or revoked SDK key"))
		return
	}
	h.once.Do(func() { h.inFlight = make(chan struct{}, MaxInFlight) })
	if !h.acquire(r.Context()) {
		w.Header().Set("Retry-After", "1")
		httpx.WriteError(w, r, core.Errorf(core.EUNAVAILABLE, "busy: retry later"))
		return
	}
	defer func() { <-h.inFlight }()
	body, err := readBody(w, r)
	var raws [][]byte
	lines := false
	if err == nil {
		raws, lines, err = splitEvents(body)
	}
	if err != nil {
		var tooLarge *http.MaxBytesError
		var unsupported unsupportedEncoding
		switch {
		case errors.As(err, &unsupported):
			httpx.WriteError(w, r, &httpx.UnsupportedError{Message: fmt.Sprintf("unsupported Content-Encoding %q: send identity or gzip", string(unsupported))})
		case errors.As(err, &tooLarge) || errors.Is(err, errTooLarge):
			httpx.WriteError(w, r, &httpx.TooLargeError{Limit: table.MaxRequestBytes, Detail: fmt.Sprintf("(after decompression) and %d events", table.MaxEventsPerRequest)})
		case errors.Is(err, errRatio):
			httpx.WriteError(w, r, &httpx.TooLargeError{Limit: table.MaxRequestBytes, Detail: fmt.Sprintf("(after decompression), and gzip that inflates more than %d times", MaxCompressionRatio)})
		default:
			httpx.WriteError(w, r, core.Invalid("body", "%s", err))
		}
		return
	}
	now := h.Now()
	resp := Response{Rejected: []Rejected{}}
	rows := make([]table.Row, 0, len(raws))
	seen := make(map[string]struct{}, len(raws))
	for i, raw := range raws {
		row, err := toRow(raw, env, now)
		if err != nil && !lines && isSyntax(err) {
			// A JSON array whose element is not JSON: the body is broken.
			httpx.WriteError(w, r, core.Invalid("body", "event %d: %v", i, err))
			return
		}
		if err == nil {
			if _, dup := seen[row.EventID]; dup {
				err = errors.New("eventId repeated within the batch")
			}
		}
		if err != nil {
			resp.Rejected = append(resp.Rejected, Rejected{Index: i, EventID: row.EventID, Error: err.Error()})
			continue
		}
		seen[row.EventID] = struct{}{}
		rows = append(rows, row)
	}
	inserted, err := h.Writer.Write(r.Context(), rows)
	switch {
	case errors.Is(err, ErrBusy), errors.Is(err, ErrClosed):
		w.Header().Set("Retry-After", "1")
		httpx.WriteError(w, r, core.Errorf(core.EUNAVAILABLE, "busy: retry later"))
		return
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return // the client went away; it will retry
	case err != nil:
		h.Log.Error("storing assignment events", "environment", env, "events", len(rows), "err", err)
		w.Header().Set("Retry-After", "5")
		httpx.WriteError(w, r, core.Errorf(core.EUNAVAILABLE, "could not store the events: retry later"))
		return
	}
	resp.Accepted = len(rows)
	resp.Duplicates = len(rows) - inserted
	if h.Stored != nil {
		h.Stored(env, resp.Accepted, resp.Duplicates, len(resp.Rejected))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	json.NewEncoder(w).Encode(resp)
}

// acquire takes one of the MaxInFlight slots, waiting up to SlotWait (or
// until the client goes), and reports whether it got one.
func (h *Handler) acquire(ctx context.Context) bool {
	select {
	case h.inFlight <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(SlotWait)
	defer t.Stop()
	select {
	case h.inFlight <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

var (
	errTooLarge = errors.New("too large")
	errRatio    = errors.New("compression ratio too high")
)

type unsupportedEncoding string

func (u unsupportedEncoding) Error() string { return "unsupported Content-Encoding " + string(u) }

// readBody reads the whole body, decompressed, within the limits: at most
// table.MaxRequestBytes before and after decompression, and a bounded
// compression ratio. Reading it whole first keeps the parsing below a
// single linear pass over memory. The bytes are never written again once
// read: the rows' strings point into them (no copy per field).
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	in := &countingReader{r: http.MaxBytesReader(w, r.Body, table.MaxRequestBytes)}
	var body io.Reader = in
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(in)
		if err != nil {
			return nil, errors.New("body is not gzip")
		}
		defer zr.Close()
		body = &inflateLimit{r: zr, in: in}
	default:
		return nil, unsupportedEncoding(enc)
	}
	buf := new(bytes.Buffer)
	if n := r.ContentLength; n > 0 && n <= table.MaxRequestBytes && body == io.Reader(in) {
		buf.Grow(int(n) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(body); err != nil {
		if errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("body is not valid gzip: %w", err)
		}
		return nil, err
	}
	return buf.Bytes(), nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// inflateLimit fails once more than table.MaxRequestBytes were inflated,
// or once the output passes MaxCompressionRatio times the input.
type inflateLimit struct {
	r   io.Reader
	in  *countingReader
	out int64
}

func (l *inflateLimit) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.out += int64(n)
	switch {
	case l.out > table.MaxRequestBytes:
		return n, errTooLarge
	case l.out > ratioFreeBytes && l.out > MaxCompressionRatio*l.in.n:
		return n, errRatio
	}
	return n, err
}

// splitEvents splits a body into raw events: a JSON array of values, or JSON
// lines (one value per line, reported as lines). It is one pass over the
// bytes, linear in the body whatever its whitespace. Only a body that is not
// an array or lines at all is an error; a malformed event is rejected on its
// own later (or, inside an array, fails the body then).
func splitEvents(body []byte) ([][]byte, bool, error) {
	i := skipSpace(body, 0)
	if i == len(body) {
		return nil, false, errors.New("empty body: send a JSON array of events or JSON lines")
	}
	switch body[i] {
	case '[':
		raws, err := splitArray(body, i+1)
		return raws, false, err
	case '{':
		raws, err := splitLines(body)
		return raws, true, err
	}
	return nil, false, errors.New("body is neither a JSON array nor JSON lines of objects")
}

func splitLines(body []byte) ([][]byte, error) {
	var raws [][]byte
	for len(body) > 0 {
		line := body
		if j := bytes.IndexByte(body, '\n'); j >= 0 {
			line, body = body[:j], body[j+1:]
		} else {
			body = nil
		}
		if line = bytes.TrimSpace(line); len(line) == 0 {
			continue
		}
		if raws = append(raws, line); len(raws) > table.MaxEventsPerRequest {
			return nil, errTooLarge
		}
	}
	return raws, nil
}

// splitArray splits the elements of the array whose '[' is at body[i-1].
// Each element ends where its brackets balance outside strings; its own
// syntax is checked when it is decoded. Nothing but whitespace may follow
// the closing ']'.
func splitArray(body []byte, i int) ([][]byte, error) {
	var raws [][]byte
	i = skipSpace(body, i)
	if i < len(body) && body[i] == ']' {
		return raws, trailing(body, i+1)
	}
	for {
		start := i
		end, err := valueEnd(body, i)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", len(raws), err)
		}
		if raws = append(raws, body[start:end]); len(raws) > table.MaxEventsPerRequest {
			return nil, errTooLarge
		}
		i = skipSpace(body, end)
		if i == len(body) {
			return nil, errors.New("unexpected end of the array")
		}
		switch body[i] {
		case ',':
			i = skipSpace(body, i+1)
		case ']':
			return raws, trailing(body, i+1)
		default:
			return nil, fmt.Errorf("event %d: want ',' or ']' after it, found %q", len(raws)-1, body[i])
		}
	}
}

func trailing(body []byte, i int) error {
	if skipSpace(body, i) != len(body) {
		return errors.New("data after the array")
	}
	return nil
}

// valueEnd returns the end of the JSON value starting at body[i].
func valueEnd(body []byte, i int) (int, error) {
	depth := 0
	for ; i < len(body); i++ {
		switch c := body[i]; c {
		case '"':
			j, err := stringEnd(body, i+1)
			if err != nil {
				return 0, err
			}
			i = j - 1
			if depth == 0 {
				return j, nil
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i, nil // a scalar ended by the array's ']'
			}
			if depth--; depth == 0 {
				return i + 1, nil
			}
		case ',', ' ', '\t', '\r', '\n':
			if depth == 0 {
				return i, nil // a scalar
			}
		}
	}
	if depth > 0 {
		return 0, errors.New("unexpected end of the body inside the event")
	}
	return i, nil
}

// stringEnd returns the index after the quote closing a string whose
// content starts at body[i].
func stringEnd(body []byte, i int) (int, error) {
	for i < len(body) {
		j := bytes.IndexAny(body[i:], `"\`)
		if j < 0 {
			break
		}
		i += j
		if body[i] == '"' {
			return i + 1, nil
		}
		i += 2 // a backslash and the character it escapes
	}
	return 0, errors.New("unterminated string")
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\r', '\n':
			i++
			continue
		}
		return i
	}
	return i
}

func isSyntax(err error) bool {
	var se *json.SyntaxError
	return errors.As(err, &se)
}

// toRow validates one event and converts it to a row. It returns the row
// even on error (with the event id, if it could be read), so that the
// rejection can name it.
func toRow(raw []byte, env string, now time.Time) (table.Row, error) {
	var e wireEvent
	if err := decodeEvent(raw, &e); err != nil {
		var pe *time.ParseError
		if errors.As(err, &pe) {
			return table.Row{EventID: e.EventID}, fmt.Errorf("timestamp is not an RFC 3339 time: %v", pe)
		}
		if isSyntax(err) {
			return table.Row{}, err
		}
		return table.Row{EventID: e.EventID}, fmt.Errorf("not an event object: %v", err)
	}
	row := table.Row{EventID: e.EventID}
	// JSON decoding turns invalid UTF-8 (and lone surrogate escapes) into
	// U+FFFD, so that different invalid subjects would become the same one.
	// Refuse the event instead.
	validText := utf8.Valid(raw)
	// Without escapes the decoded strings are the raw bytes: a U+FFFD in
	// them was sent as such, and no NUL can hide in them.
	escaped := !validText || bytes.IndexByte(raw, '\\') >= 0
	// The holdout, nested in extraLogging (Go, Node) or spread at the top
	// level (Eppo's JavaScript SDKs); nested wins if both are sent.
	holdout, holdoutVariation := e.ExtraLogging.Key, e.ExtraLogging.Variation
	if holdout == "" {
		holdout = string(e.HoldoutKey)
	}
	if holdoutVariation == "" {
		holdoutVariation = string(e.HoldoutVariation)
	}
	for _, c := range []struct {
		name, v  string
		max      int
		optional bool
	}{
		{"eventId", e.EventID, table.MaxEventIDBytes, false}, {"featureFlag", e.FeatureFlag, table.MaxKeyBytes, false},
		{"allocation", e.Allocation, table.MaxKeyBytes, false}, {"variation", e.Variation, table.MaxKeyBytes, false},
		{"subject", e.Subject, table.MaxKeyBytes, false},
		{"holdoutKey", holdout, table.MaxKeyBytes, true}, {"holdoutVariation", holdoutVariation, table.MaxKeyBytes, true},
	} {
		switch {
		case c.v == "" && c.optional:
		case c.v == "":
			return row, fmt.Errorf("%s is required", c.name)
		case len(c.v) > c.max:
			return row, fmt.Errorf("%s is longer than %d bytes", c.name, c.max)
		case escaped && strings.ContainsRune(c.v, utf8.RuneError) && (!validText || !mentionsReplacement(raw)):
			return row, fmt.Errorf("%s is not valid UTF-8", c.name)
		case escaped && strings.IndexByte(c.v, 0) >= 0:
			// PostgreSQL cannot store it, and the batch it is in would fail.
			return row, fmt.Errorf("%s contains a NUL character", c.name)
		}
	}
	if !validText {
		return row, errors.New("the event is not valid UTF-8")
	}
	experiment := e.FeatureFlag + "-" + e.Allocation
	if e.Experiment != "" && e.Experiment != experiment {
		return row, fmt.Errorf("experiment %q is not featureFlag-allocation (%q)", e.Experiment, experiment)
	}
	ts := e.Timestamp
	if ts.IsZero() {
		return row, errors.New("timestamp is required")
	}
	// A clock far off would put the event out of reach of retention (in the
	// future) or delete it at once (in the past), and skew daily counts.
	if ts.After(now.Add(maxClockSkew)) || ts.Before(minTimestamp) {
		return row, fmt.Errorf("timestamp %s is out of range (after 2000, and at most a day ahead of the server)", ts.Format(time.RFC3339Nano))
	}
	attrs := bytes.TrimSpace(e.SubjectAttributes)
	switch {
	case len(attrs) == 0 || string(attrs) == "null":
		attrs = []byte("{}")
	case attrs[0] != '{':
		return row, errors.New("subjectAttributes must be an object")
	case len(attrs) > table.MaxAttributesBytes:
		return row, fmt.Errorf("subjectAttributes is larger than %d bytes", table.MaxAttributesBytes)
	case hasSpace(attrs):
		var buf bytes.Buffer
		if err := json.Compact(&buf, attrs); err == nil {
			attrs = buf.Bytes()
		}
	}
	sdk := e.MetaData.SDKName
	if sdk == "" {
		sdk = e.MetaData.SDKLanguage
	}
	row.Environment = env
	row.Experiment = experiment
	row.FeatureFlag = e.FeatureFlag
	row.Allocation = e.Allocation
	row.Variation = e.Variation
	row.Subject = e.Subject
	row.SubjectAttributes = attrs
	row.Timestamp = table.Micro(ts)
	row.SDKName = truncate(sdk, table.MaxSDKBytes)
	row.SDKVersion = truncate(e.MetaData.SDKVersion, table.MaxSDKBytes)
	row.ReceivedAt = table.Micro(now)
	row.Holdout = holdout
	row.HoldoutVariation = table.HoldoutVariation(holdoutVariation)
	return row, nil
}

// hasSpace reports whether JSON text may hold insignificant whitespace
// (or a space inside a string: compacting it then changes nothing).
func hasSpace(b []byte) bool {
	return bytes.IndexAny(b, " \t\r\n") >= 0
}

// mentionsReplacement reports whether an event's text holds U+FFFD itself,
// raw or escaped: then a decoded U+FFFD is what the sender meant.
func mentionsReplacement(raw []byte) bool {
	return bytes.Contains(raw, []byte("\uFFFD")) || bytes.Contains(raw, []byte("\\ufffd")) || bytes.Contains(raw, []byte("\\uFFFD"))
}

// Bounds of an event's timestamp.
var minTimestamp = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

const maxClockSkew = 24 * time.Hour

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
