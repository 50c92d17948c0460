package server

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/store"
)

// A check is one named condition of readiness. /readyz runs them all and is
// ready only when every one passes; its body names each with its result, so
// an operator sees why a replica is out of rotation.
type check struct {
	name string
	run  func(ctx context.Context) error
}

// checks are the readiness checks, in the order /readyz reports them.
func (s *Server) checks() []check {
	return []check{
		{"database", s.db.Ping},
		{"disk", s.diskReady},
		{"configuration", func(context.Context) error { return s.cache.Ready() }},
	}
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

// readyz answers 200 "ready" when every check passes, else 503 "not ready";
// then one line per check: "name: ok" or "name: the reason".
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	var b strings.Builder
	ready := true
	for _, c := range s.checks() {
		if err := c.run(ctx); err != nil {
			ready = false
			s.cfg.Log.Warn("not ready", "check", c.name, "err", err)
			fmt.Fprintf(&b, "%s: %v\n", c.name, err)
			continue
		}
		fmt.Fprintf(&b, "%s: ok\n", c.name)
	}
	// Refused flags do not make the replica unready (every replica refuses
	// the same flags, so routing around one helps no one), but they are
	// named after the checks, a bounded number of lines, and in the metrics.
	const maxProblems = 50
	problems := s.cache.Problems()
	for i, p := range problems {
		if i == maxProblems {
			fmt.Fprintf(&b, "and %d more refused flags\n", len(problems)-maxProblems)
			break
		}
		fmt.Fprintf(&b, "%s\n", p)
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	if !ready {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready\n%s", b.String())
		return
	}
	fmt.Fprintf(w, "ready\n%s", b.String())
}

// diskReady fails when the database cannot take writes: a write probe that
// the database refuses, or, for SQLite, less free space next to the
// database file than MinFreeDisk (SQLite reuses its WAL file, so a small
// write may still succeed on a full disk while the next checkpoint or
// batch of events fails).
func (s *Server) diskReady(ctx context.Context) error {
	// Waiting for the write lock (a long batch of events) is contention,
	// not a disk that refuses writes: that would take a busy replica out
	// of rotation for nothing.
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := s.db.ProbeWrite(pctx); err != nil && !store.IsBusy(err) {
		return fmt.Errorf("a test write failed: %w", err)
	}
	if s.db.Dialect() != "sqlite" || s.cfg.MinFreeDisk <= 0 {
		return nil
	}
	dir := filepath.Dir(sqlitePath(s.cfg.DB))
	free, err := freeBytes(dir)
	if err != nil {
		if err == errNoStatfs {
			return nil
		}
		return fmt.Errorf("free space of %s: %w", dir, err)
	}
	if free < uint64(s.cfg.MinFreeDisk) {
		return fmt.Errorf("%d MiB free in %s, below the minimum of %d MiB", free>>20, dir, s.cfg.MinFreeDisk>>20)
	}
	return nil
}

// sqlitePath returns the file path of a SQLite DSN (a path, or a file: URI).
func sqlitePath(dsn string) string {
	if store.IsPostgres(dsn) {
		return ""
	}
	p, ok := strings.CutPrefix(dsn, "file:")
	if ok {
		p, _, _ = strings.Cut(p, "?")
	}
	return p
}
