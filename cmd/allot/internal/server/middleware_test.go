package server

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/httpapi"
)

// A panic in a handler is logged with its stack and answered 500 (JSON
// under /api/); the server goes on serving.
func TestRecoverFromPanic(t *testing.T) {
	var logs bytes.Buffer
	s := &Server{cfg: Config{Log: slog.New(slog.NewTextHandler(&logs, nil))}, metrics: httpapi.NewMetrics()}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/boom", func(http.ResponseWriter, *http.Request) { panic("boom") })
	mux.HandleFunc("/boom", func(http.ResponseWriter, *http.Request) { panic("boom") })
	mux.HandleFunc("/fine", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "fine") })
	h := s.handler(mux)
	for path, ctype := range map[string]string{"/api/v1/boom": "application/json", "/boom": "text/plain"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code != 500 || !strings.HasPrefix(w.Header().Get("Content-Type"), ctype) || strings.Contains(w.Body.String(), "boom") {
			t.Errorf("%s: %d %s %q", path, w.Code, w.Header().Get("Content-Type"), w.Body.String())
		}
	}
	if !strings.Contains(logs.String(), "panic=boom") || !strings.Contains(logs.String(), "middleware_test.go") {
		t.Errorf("log: %s", logs.String())
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/fine", nil))
	if w.Code != 200 || w.Body.String() != "fine" {
		t.Errorf("after a panic: %d %q", w.Code, w.Body.String())
	}
}
