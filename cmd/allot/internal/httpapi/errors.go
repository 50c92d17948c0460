package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"unicode/utf8"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/httpx"
)

// ErrorBody and ErrorDetail are the JSON error of every /api/ endpoint;
// they live in httpx, with the one error-to-status table.
type (
	ErrorBody   = httpx.ErrorBody
	ErrorDetail = httpx.ErrorDetail
)

// MaxBodyBytes is the limit of a management request body; a larger body is
// refused with 413 naming it.
const MaxBodyBytes = 4 << 20

// writeError answers with err's status (httpx.Status) and a JSON body.
// Internal errors are logged by the root middleware and shown only as
// "internal error".
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if httpx.Code(err) == core.EINTERNAL && httpx.InfoFrom(r.Context()) == nil {
		// Outside the root middleware (tests that mount the API alone).
		s.log.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	httpx.WriteError(w, r, err)
}

func writeJSON(w http.ResponseWriter, status int, v any) { httpx.WriteJSON(w, status, v) }

// decode reads one JSON value from the request body into v, rejecting
// unknown fields, anything after the value but white space, and a body over
// MaxBodyBytes (413, naming the limit); type errors name the field.
func decode(r *http.Request, v any) error {
	// One byte over the limit tells a body at the limit from a larger one.
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return &httpx.TooLargeError{Limit: min(mb.Limit, MaxBodyBytes)}
		}
		return core.Invalid("body", "could not be read: %s", err)
	}
	if len(body) > MaxBodyBytes {
		return &httpx.TooLargeError{Limit: MaxBodyBytes}
	}
	// encoding/json would turn invalid UTF-8 into U+FFFD, so that
	// different invalid names collide: refuse it instead.
	if !utf8.Valid(body) {
		return core.Invalid("body", "is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return core.Invalid(te.Field, "must be a JSON %s", te.Type.Kind())
		}
		if errors.Is(err, io.EOF) {
			return core.Invalid("body", "is empty; a JSON object is required")
		}
		return core.Invalid("body", "%s", err)
	}
	// The value must be the whole body: `{"name":"x"} garbage` is refused,
	// not read as {"name":"x"}.
	if off := dec.InputOffset(); len(bytes.TrimLeft(body[off:], " \t\r\n")) != 0 {
		return core.Invalid("body", "has data after the JSON value at byte %d; send exactly one JSON value", off)
	}
	return nil
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
