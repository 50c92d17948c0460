// Package httpx holds what every HTTP front end of the server shares: the
// one mapping from errors to HTTP statuses, the JSON error body, the bearer
// token parser, and the per-request facts the root middleware records
// (who acted, what failed, whether the client's connection is HTTPS).
//
// The API, ingestion and the web UI all take their statuses from Status, so
// the same error gets the same status everywhere: a busy or unreachable
// database is 503 with Retry-After, never 500.
package httpx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
)

// CodeTooLarge is the error code of a request body over its limit (413). It
// is not a domain code: only the HTTP layer reads bodies.
const CodeTooLarge = "too_large"

// CodeUnsupported is the error code of a body in a content coding or media
// type the endpoint does not read (415).
const CodeUnsupported = "unsupported_media_type"

// UnsupportedError is a body the endpoint cannot read (415).
type UnsupportedError struct{ Message string }

func (e *UnsupportedError) Error() string { return e.Message }

// RetryAfter is the Retry-After (seconds) sent with every 503.
const RetryAfter = "5"

// TooLargeError is a request body over its limit.
type TooLargeError struct {
	Limit  int64  // bytes
	Detail string // other limits, appended to the message ("and 10000 events")
}

func (e *TooLargeError) Error() string {
	msg := fmt.Sprintf("the request body is larger than the limit of %s", byteSize(e.Limit))
	if e.Detail != "" {
		msg = fmt.Sprintf("the request is larger than the limit of %s %s", byteSize(e.Limit), e.Detail)
	}
	return msg
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB (%d bytes)", n>>20, n)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB (%d bytes)", n>>10, n)
	}
	return fmt.Sprintf("%d bytes", n)
}

// Code returns the error code a client sees for err: a domain code
// (core.EINVALID...), CodeTooLarge, or core.EUNAVAILABLE for a database
// that is busy, full or unreachable.
func Code(err error) string {
	if err == nil {
		return ""
	}
	var tl *TooLargeError
	var mb *http.MaxBytesError
	if errors.As(err, &tl) || errors.As(err, &mb) {
		return CodeTooLarge
	}
	var ue *UnsupportedError
	if errors.As(err, &ue) {
		return CodeUnsupported
	}
	code := core.ErrorCode(err)
	if code == core.EINTERNAL && store.IsUnavailable(err) {
		return core.EUNAVAILABLE
	}
	return code
}

// statusOf is the one table from error codes to HTTP statuses.
var statusOf = map[string]int{
	core.EINVALID:      http.StatusBadRequest,
	core.ENOTFOUND:     http.StatusNotFound,
	core.ECONFLICT:     http.StatusConflict,
	core.EUNAUTHORIZED: http.StatusUnauthorized,
	core.EFORBIDDEN:    http.StatusForbidden,
	core.ERATELIMITED:  http.StatusTooManyRequests,
	core.EUNAVAILABLE:  http.StatusServiceUnavailable,
	core.EINTERNAL:     http.StatusInternalServerError,
	CodeTooLarge:       http.StatusRequestEntityTooLarge,
	CodeUnsupported:    http.StatusUnsupportedMediaType,
}

// Status returns the HTTP status for err (200 for nil).
func Status(err error) int {
	if err == nil {
		return http.StatusOK
	}
	if s, ok := statusOf[Code(err)]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Message returns the text a client may see for err. Internal errors get a
// generic text; their details go to the log only.
func Message(err error) string {
	var tl *TooLargeError
	var mb *http.MaxBytesError
	var ue *UnsupportedError
	switch {
	case errors.As(err, &ue):
		return ue.Error()
	case errors.As(err, &tl):
		return tl.Error()
	case errors.As(err, &mb):
		return (&TooLargeError{Limit: mb.Limit}).Error()
	}
	if Code(err) == core.EUNAVAILABLE && core.ErrorCode(err) == core.EINTERNAL {
		return "the database is unavailable; retry later"
	}
	return core.ErrorMessage(err)
}

// ErrorBody is the JSON body of every error under /api/.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail describes an error: a code from a fixed set (invalid,
// not_found, conflict, unauthorized, unavailable, too_large,
// unsupported_media_type, internal), the
// field at fault for invalid requests, and a message.
type ErrorDetail struct {
	Code    string `json:"code"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// Detail returns the client-visible description of err.
func Detail(err error) ErrorDetail {
	d := ErrorDetail{Code: Code(err), Message: Message(err)}
	var e *core.Error
	if errors.As(err, &e) {
		d.Field = e.Field
	}
	return d
}

// SetErrorHeaders sets the headers a status calls for: Retry-After on 503,
// WWW-Authenticate on 401. The web UI uses it for its HTML error pages.
func SetErrorHeaders(w http.ResponseWriter, status int) {
	switch status {
	case http.StatusServiceUnavailable:
		if w.Header().Get("Retry-After") == "" { // a handler may know better
			w.Header().Set("Retry-After", RetryAfter)
		}
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="allot"`)
	}
}

// SetRetryAfter sets Retry-After for an error that says when to retry
// (a rate-limited sign-in).
func SetRetryAfter(w http.ResponseWriter, err error) {
	var e *core.Error
	if errors.As(err, &e) && e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
}

// WriteError answers with err's status and a JSON ErrorBody, and records
// err for the request log (Noted). Internal errors are never shown.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	status := Status(err)
	Note(r.Context(), err)
	SetRetryAfter(w, err)
	SetErrorHeaders(w, status)
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	WriteJSON(w, status, ErrorBody{Error: Detail(err)})
}

// WriteJSON writes v as indented JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// BearerToken returns the credentials of an "Authorization: Bearer X"
// header. The scheme is case-insensitive (RFC 9110 section 11.1), and space
// around the token is ignored.
func BearerToken(r *http.Request) (string, bool) {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok := strings.TrimSpace(rest)
	return tok, tok != ""
}

// Info is what the root middleware learns about a request while handlers
// run: who acted and which error was answered. Handlers fill it through
// SetActor and Note; the middleware logs it.
type Info struct {
	Actor  string
	Err    error
	Secure bool // the client's connection is HTTPS (directly or through a trusted proxy)
	// ClientIP is the client's address: the connection's peer, or the
	// address a trusted proxy appended to X-Forwarded-For.
	ClientIP string
}

type infoKey struct{}

// WithInfo returns ctx carrying info.
func WithInfo(ctx context.Context, info *Info) context.Context {
	return context.WithValue(ctx, infoKey{}, info)
}

// InfoFrom returns the Info of ctx, or nil outside the root middleware.
func InfoFrom(ctx context.Context) *Info {
	i, _ := ctx.Value(infoKey{}).(*Info)
	return i
}

// SetActor records who acts in this request, for the request log.
func SetActor(ctx context.Context, actor string) {
	if i := InfoFrom(ctx); i != nil {
		i.Actor = actor
	}
}

// Note records the error a request was answered with, for the request log.
func Note(ctx context.Context, err error) {
	if i := InfoFrom(ctx); i != nil && err != nil {
		i.Err = err
	}
}

// ClientIP returns the client's address as the root middleware decided
// (see Info.ClientIP), else the connection's peer.
func ClientIP(r *http.Request) string {
	if i := InfoFrom(r.Context()); i != nil && i.ClientIP != "" {
		return i.ClientIP
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Secure reports whether the client reached the server over HTTPS: TLS on
// this connection, or X-Forwarded-Proto: https from a trusted proxy (as the
// root middleware decided). Cookies are Secure exactly when this holds.
func Secure(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	i := InfoFrom(r.Context())
	return i != nil && i.Secure
}

// LogLevel is the level at which a request answered with status is logged:
// errors for 5xx other than 503, so internal errors are seen.
func LogLevel(status int) slog.Level {
	if status >= 500 && status != http.StatusServiceUnavailable {
		return slog.LevelError
	}
	return slog.LevelInfo
}
