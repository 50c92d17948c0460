package ingest

import (
	"bufio"
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

	"github.com/allot-dev/allot/internal/httpx"
	"github.com/allot-dev/allot/internal/store"
)

// Limits of one request, and of all of them: at most MaxInFlight requests
// are read and held at once (each up to MaxBodyBytes), so that a burst of
// large requests cannot exhaust the server's memory; beyond that the
// handler answers 503 with Retry-After.
const (
	MaxInFlight       = 32
	MaxBodyBytes      = 16 << 20 // after decompression
	MaxEvents         = 10_000
	maxIDBytes        = 128
	maxFieldBytes     = 1024
	maxAttributeBytes = 64 << 10
)

// Event is an assignment event as SDKs send it: the fields of an assignment
// logger's event (spec section 5) plus an eventId that makes retries safe.
// Other fields (extraLogging, evaluationDetails...) are accepted and ignored.
type Event struct {
	EventID           string          `json:"eventId"`
	FeatureFlag       string          `json:"featureFlag"`
	Allocation        string          `json:"allocation"`
	Experiment        string          `json:"experiment"`
	Variation         string          `json:"variation"`
	Subject           string          `json:"subject"`
	SubjectAttributes json.RawMessage `json:"subjectAttributes"`
	Timestamp         string          `json:"timestamp"`
	MetaData          struct {
		SDKName     string `json:"sdkName"`
		SDKLanguage string `json:"sdkLanguage"`
		SDKVersion  string `json:"sdkVersion"`
	} `json:"metaData"`
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
		httpx.WriteError(w, r, store.Errorf(store.EUNAUTHORIZED, "missing, invalid or revoked SDK key"))
		return
	}
	h.once.Do(func() { h.inFlight = make(chan struct{}, MaxInFlight) })
	select {
	case h.inFlight <- struct{}{}:
		defer func() { <-h.inFlight }()
	default:
		w.Header().Set("Retry-After", "1")
		httpx.WriteError(w, r, store.Errorf(store.EUNAVAILABLE, "busy: retry later"))
		return
	}
	body := io.Reader(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			httpx.WriteError(w, r, store.Invalid("body", "is not gzip"))
			return
		}
		defer zr.Close()
		body = &limitedReader{r: zr, n: MaxBodyBytes}
	default:
		httpx.WriteError(w, r, &httpx.UnsupportedError{Message: "unsupported Content-Encoding " + enc + ": send identity or gzip"})
		return
	}
	raws, err := readEvents(body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) || errors.Is(err, errTooLarge) {
			httpx.WriteError(w, r, &httpx.TooLargeError{Limit: MaxBodyBytes, Detail: fmt.Sprintf("and %d events", MaxEvents)})
			return
		}
		httpx.WriteError(w, r, store.Invalid("body", "%s", err))
		return
	}
	now := h.Now()
	resp := Response{Rejected: []Rejected{}}
	rows := make([]store.Assignment, 0, len(raws))
	seen := make(map[string]bool, len(raws))
	for i, raw := range raws {
		row, err := toRow(raw, env, now)
		if err == nil && seen[row.EventID] {
			err = errors.New("eventId repeated within the batch")
		}
		if err != nil {
			rej := Rejected{Index: i, Error: err.Error()}
			if row != nil {
				rej.EventID = row.EventID
			}
			resp.Rejected = append(resp.Rejected, rej)
			continue
		}
		seen[row.EventID] = true
		rows = append(rows, *row)
	}
	inserted, err := h.Writer.Write(r.Context(), rows)
	switch {
	case errors.Is(err, ErrBusy), errors.Is(err, ErrClosed):
		w.Header().Set("Retry-After", "1")
		httpx.WriteError(w, r, store.Errorf(store.EUNAVAILABLE, "busy: retry later"))
		return
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return // the client went away; it will retry
	case err != nil:
		h.Log.Error("storing assignment events", "environment", env, "events", len(rows), "err", err)
		w.Header().Set("Retry-After", "5")
		httpx.WriteError(w, r, store.Errorf(store.EUNAVAILABLE, "could not store the events: retry later"))
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

var errTooLarge = errors.New("too large")

// limitedReader fails once more than n bytes were read (a gzip bomb).
type limitedReader struct {
	r io.Reader
	n int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if l.n < 0 {
		return n, errTooLarge
	}
	return n, err
}

// readEvents splits a body into raw events: a JSON array of objects, or
// JSON lines (one object per line). Only a body that is not JSON at all is
// an error; a malformed event is rejected on its own later.
func readEvents(body io.Reader) ([]json.RawMessage, error) {
	br := bufio.NewReaderSize(body, 64<<10)
	first, err := peekNonSpace(br)
	if err == io.EOF {
		return nil, errors.New("empty body: send a JSON array of events or JSON lines")
	}
	if err != nil {
		return nil, err
	}
	if first != '[' && first != '{' {
		return nil, errors.New("body is neither a JSON array nor JSON lines of objects")
	}
	var raws []json.RawMessage
	if first == '[' {
		dec := json.NewDecoder(br)
		if _, err := dec.Token(); err != nil {
			return nil, err
		}
		for dec.More() {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return nil, fmt.Errorf("event %d: %w", len(raws), err)
			}
			if raws = append(raws, raw); len(raws) > MaxEvents {
				return nil, errTooLarge
			}
		}
		if _, err := dec.Token(); err != nil {
			return nil, err
		}
		if _, err := peekNonSpace(br); err != io.EOF {
			if err == nil {
				err = errors.New("data after the array")
			}
			return nil, err
		}
		return raws, nil
	}
	for {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			raws = append(raws, json.RawMessage(bytes.TrimSpace(line)))
			if len(raws) > MaxEvents {
				return nil, errTooLarge
			}
		}
		if err == io.EOF {
			return raws, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func peekNonSpace(br *bufio.Reader) (byte, error) {
	for {
		c, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c, br.UnreadByte()
	}
}

// toRow validates one event. It returns the row even on error when the
// event id could be read, so the rejection can name it.
func toRow(raw json.RawMessage, env string, now time.Time) (*store.Assignment, error) {
	var e Event
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, fmt.Errorf("not an event object: %v", err)
	}
	row := &store.Assignment{EventID: e.EventID}
	check := func(name, v string, max int) error {
		switch {
		case v == "":
			return fmt.Errorf("%s is required", name)
		case len(v) > max:
			return fmt.Errorf("%s is longer than %d bytes", name, max)
		}
		return nil
	}
	for _, c := range []struct {
		name, v string
		max     int
	}{
		{"eventId", e.EventID, maxIDBytes}, {"featureFlag", e.FeatureFlag, maxFieldBytes}, {"allocation", e.Allocation, maxFieldBytes},
		{"variation", e.Variation, maxFieldBytes}, {"subject", e.Subject, maxFieldBytes}, {"timestamp", e.Timestamp, 64},
	} {
		if err := check(c.name, c.v, c.max); err != nil {
			return row, err
		}
	}
	experiment := e.FeatureFlag + "-" + e.Allocation
	if e.Experiment != "" && e.Experiment != experiment {
		return row, fmt.Errorf("experiment %q is not featureFlag-allocation (%q)", e.Experiment, experiment)
	}
	ts, err := time.Parse(time.RFC3339Nano, e.Timestamp)
	if err != nil {
		return row, fmt.Errorf("timestamp %q is not an RFC 3339 time", e.Timestamp)
	}
	// A clock far off would put the event out of reach of retention (in the
	// future) or delete it at once (in the past), and skew daily counts.
	if ts.After(now.Add(maxClockSkew)) || ts.Before(minTimestamp) {
		return row, fmt.Errorf("timestamp %s is out of range (after 2000, and at most a day ahead of the server)", e.Timestamp)
	}
	attrs := bytes.TrimSpace(e.SubjectAttributes)
	switch {
	case len(attrs) == 0 || string(attrs) == "null":
		attrs = []byte("{}")
	case attrs[0] != '{':
		return row, errors.New("subjectAttributes must be an object")
	case len(attrs) > maxAttributeBytes:
		return row, fmt.Errorf("subjectAttributes is larger than %d bytes", maxAttributeBytes)
	default:
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
	row.Timestamp = ts.UTC()
	row.SDKName = truncate(sdk, 64)
	row.SDKVersion = truncate(e.MetaData.SDKVersion, 64)
	row.ReceivedAt = now.UTC()
	return row, nil
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
