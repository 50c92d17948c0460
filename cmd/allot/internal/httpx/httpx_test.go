package httpx_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/httpx"
)

func TestStatus(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{nil, 200, ""},
		{core.Invalid("name", "is required"), 400, core.EINVALID},
		{fmt.Errorf("wrapped: %w", core.Errorf(core.ENOTFOUND, "no flag x")), 404, core.ENOTFOUND},
		{core.Errorf(core.ECONFLICT, "version"), 409, core.ECONFLICT},
		{core.Errorf(core.EUNAUTHORIZED, "who"), 401, core.EUNAUTHORIZED},
		{core.Errorf(core.EUNAVAILABLE, "busy"), 503, core.EUNAVAILABLE},
		{&httpx.TooLargeError{Limit: 4 << 20}, 413, httpx.CodeTooLarge},
		{&http.MaxBytesError{Limit: 100}, 413, httpx.CodeTooLarge},
		{&httpx.UnsupportedError{Message: "deflate"}, 415, httpx.CodeUnsupported},
		{fmt.Errorf("query: %w", context.DeadlineExceeded), 503, core.EUNAVAILABLE},
		{fmt.Errorf("scan: %w", errors.New("boom")), 500, core.EINTERNAL},
	} {
		if got := httpx.Status(c.err); got != c.status {
			t.Errorf("Status(%v) = %d, want %d", c.err, got, c.status)
		}
		if got := httpx.Code(c.err); got != c.code {
			t.Errorf("Code(%v) = %q, want %q", c.err, got, c.code)
		}
	}
}

func TestWriteError(t *testing.T) {
	for _, c := range []struct {
		err        error
		retryAfter string
		msg        string
	}{
		{errors.New("secret detail"), "", "internal error"},
		{context.DeadlineExceeded, httpx.RetryAfter, "the database is unavailable; retry later"},
		{&httpx.TooLargeError{Limit: 4 << 20}, "", "4 MiB"},
		{core.Invalid("key", "must be short"), "", "key: must be short"},
	} {
		w := httptest.NewRecorder()
		info := &httpx.Info{}
		r := httptest.NewRequest("GET", "/api/v1/x", nil)
		r = r.WithContext(httpx.WithInfo(r.Context(), info))
		httpx.WriteError(w, r, c.err)
		var eb httpx.ErrorBody
		if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil {
			t.Fatal(err)
		}
		if w.Code != httpx.Status(c.err) || !strings.Contains(eb.Error.Message, c.msg) || strings.Contains(w.Body.String(), "secret") {
			t.Errorf("%v: %d %s", c.err, w.Code, w.Body.String())
		}
		if got := w.Header().Get("Retry-After"); got != c.retryAfter {
			t.Errorf("%v: Retry-After %q", c.err, got)
		}
		if info.Err != c.err {
			t.Errorf("%v: not noted", c.err)
		}
	}
	// A handler's own Retry-After is kept.
	w := httptest.NewRecorder()
	w.Header().Set("Retry-After", "1")
	httpx.WriteError(w, httptest.NewRequest("GET", "/", nil), core.Errorf(core.EUNAVAILABLE, "busy"))
	if w.Header().Get("Retry-After") != "1" || w.Code != 503 {
		t.Errorf("%d %v", w.Code, w.Header())
	}
}

func TestBearerToken(t *testing.T) {
	for header, want := range map[string]string{
		"Bearer abc":     "abc",
		"bearer abc":     "abc",
		"BEARER  abc ":   "abc",
		" Bearer abc":    "abc",
		"Bearer":         "",
		"Bearer ":        "",
		"Basic abc":      "",
		"Bearerabc":      "",
		"":               "",
		"Token abc":      "",
		"bearer a b":     "a b",
		"Bearer\tabc":    "",
		"bEaReR abc-123": "abc-123",
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", header)
		got, ok := httpx.BearerToken(r)
		if got != want || ok != (want != "") {
			t.Errorf("%q: %q %v, want %q", header, got, ok, want)
		}
	}
}

func TestSecure(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	if httpx.Secure(r) {
		t.Error("plain request")
	}
	r.TLS = &tls.ConnectionState{}
	if !httpx.Secure(r) {
		t.Error("TLS")
	}
	r = httptest.NewRequest("GET", "/", nil)
	r = r.WithContext(httpx.WithInfo(r.Context(), &httpx.Info{Secure: true}))
	if !httpx.Secure(r) {
		t.Error("behind a trusted proxy")
	}
}
