package core

import (
	"errors"
	"fmt"
	"time"
)

// Error codes. The HTTP layer maps each to one status; anything that is not
// an *Error is internal and its text is never shown to a client.
const (
	EINVALID      = "invalid"      // the request is malformed; Message names the field
	ENOTFOUND     = "not_found"    // the named thing does not exist
	ECONFLICT     = "conflict"     // a version mismatch or a duplicate key
	EUNAUTHORIZED = "unauthorized" // missing, unknown or revoked credentials
	EFORBIDDEN    = "forbidden"    // signed in, but the role does not allow it
	ERATELIMITED  = "rate_limited" // too many attempts: retry later
	EUNAVAILABLE  = "unavailable"  // busy for now: retry later
	EINTERNAL     = "internal"     // everything else
)

// Error is an error a client may see.
type Error struct {
	Code    string
	Field   string // the offending field, for EINVALID
	Message string
	// RetryAfter, when set, says when retrying may work (ERATELIMITED).
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

// Errorf returns an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an EINVALID error naming field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err: the Code of an *Error in its chain, or
// EINTERNAL.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-visible message of err; internal errors
// get a generic text.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Error()
	}
	return "internal error"
}
