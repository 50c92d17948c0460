package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"unicode/utf8"

	"github.com/allot-dev/allot/internal/core"
	"github.com/allot-dev/allot/internal/store"
)

// statusOf is the one table from error codes to HTTP statuses.
var statusOf = map[string]int{
	store.EINVALID:      http.StatusBadRequest,
	store.ENOTFOUND:     http.StatusNotFound,
	store.ECONFLICT:     http.StatusConflict,
	store.EUNAUTHORIZED: http.StatusUnauthorized,
	store.EUNAVAILABLE:  http.StatusServiceUnavailable,
	store.EINTERNAL:     http.StatusInternalServerError,
}

// ErrorBody is the JSON body of every management API error.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail describes an error: a code from the fixed set (invalid,
// not_found, conflict, unauthorized, unavailable, internal), the field at fault for
// invalid requests, and a message.
type ErrorDetail struct {
	Code    string `json:"code"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// writeError answers with err's status and a JSON body. Internal errors are
// logged and shown only as "internal error".
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := store.ErrorCode(err)
	status := statusOf[code]
	if code == store.EINTERNAL {
		s.log.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	detail := ErrorDetail{Code: code, Message: store.ErrorMessage(err)}
	var e *store.Error
	if errors.As(err, &e) {
		detail.Field = e.Field
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="allot"`)
	}
	writeJSON(w, status, ErrorBody{Error: detail})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// decode reads a JSON request body into v, rejecting unknown fields; type
// errors name the field.
func decode(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		return core.Invalid("body", "could not be read: %v", err)
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
			return store.Invalid(te.Field, "must be a JSON %s", te.Type.Kind())
		}
		if errors.Is(err, io.EOF) {
			return store.Invalid("body", "is empty; a JSON object is required")
		}
		return store.Invalid("body", "%s", err)
	}
	return nil
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
