// Package server wires Allot's server together and runs it: the store, the
// published-configuration cache and its poller, the HTTP API, and graceful
// shutdown. It is the only package that knows all the others.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/allot-dev/allot/internal/httpapi"
	"github.com/allot-dev/allot/internal/ingest"
	"github.com/allot-dev/allot/internal/publish"
	"github.com/allot-dev/allot/internal/store"
	"github.com/allot-dev/allot/internal/web"
)

// Config configures a server. The zero value of every field but DB has a
// working default.
type Config struct {
	Addr string // listen address; default ":8080"
	DB   string // a SQLite file path or a postgres:// URL; default "allot.db"
	// AdminToken, if set, is accepted as an admin token (ALLOT_ADMIN_TOKEN).
	AdminToken string
	// PollInterval is how often the server checks the database for changes
	// made through other replicas; default 1s.
	PollInterval time.Duration
	// StaleAfter is how old the published configuration may grow (since a
	// refresh last confirmed it against the database) before /readyz
	// reports the replica not ready; default publish.DefaultMaxAge.
	StaleAfter time.Duration
	// Retention is the maximum age of stored assignment events; older ones
	// are deleted in small batches every few minutes. Zero keeps them all.
	Retention time.Duration
	// ShutdownTimeout bounds the graceful shutdown; default 10s.
	ShutdownTimeout time.Duration
	Log             *slog.Logger
	// Announce receives the one-time display of a generated admin token.
	Announce io.Writer
}

// Server is a running server.
type Server struct {
	cfg    Config
	db     *store.DB
	cache  *publish.Cache
	ingest *ingest.Writer
	http   *http.Server
	ln     net.Listener
	cancel context.CancelFunc
	wg     sync.WaitGroup
	errc   chan error
	once   sync.Once
}

// Start opens the database (migrating it), creates the first admin token if
// the database is new, compiles every environment, starts listening and
// polling, and returns. Close stops it.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = ":8080"
	}
	if cfg.DB == "" {
		cfg.DB = "allot.db"
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Announce == nil {
		cfg.Announce = io.Discard
	}
	log := cfg.Log
	db, err := store.Open(ctx, cfg.DB, log)
	if err != nil {
		return nil, err
	}
	token, err := db.Bootstrap(ctx, cfg.AdminToken)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	if token != "" {
		fmt.Fprintf(cfg.Announce, "\nAdmin token (shown once; keep it safe, or set ALLOT_ADMIN_TOKEN next time):\n\n    %s\n\n", token)
	}
	metrics := httpapi.NewMetrics()
	cache := publish.NewCache(db, log)
	cache.OnBuild = metrics.ObserveBuild
	cache.OnRefused = metrics.ObserveRefused
	cache.MaxAge = cfg.StaleAfter
	metrics.WatchConfigAge(cache.Age)
	if err := cache.Refresh(ctx); err != nil {
		// Serve what compiled; /readyz reports the rest.
		log.Error("initial configuration build failed", "err", err)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		db.Close()
		return nil, err
	}
	api := httpapi.New(db, cache, metrics, log)
	writer := ingest.NewWriter(db, ingest.Options{})
	api.Handle("POST /api/v1/assignments", &ingest.Handler{
		Environment: func(key string) (string, bool) {
			if p := cache.ForKey(key); p != nil {
				return p.Environment, true
			}
			return "", false
		},
		Writer: writer,
		Log:    log,
		Now:    time.Now,
	})
	api.Handle("/", web.New(db, cache, log))
	s := &Server{
		cfg: cfg, db: db, cache: cache, ingest: writer, ln: ln, errc: make(chan error, 1),
		http: &http.Server{
			Handler:           api,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      60 * time.Second,
			IdleTimeout:       120 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
			ConnContext:       httpapi.ConnContext, // with httpapi.Listener: one write per config
		},
	}
	pollCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		cache.Run(pollCtx, cfg.PollInterval)
	}()
	if cfg.Retention > 0 {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			ingest.Retain(pollCtx, db, cfg.Retention, 5*time.Minute, log)
		}()
	}
	go func() {
		defer s.wg.Done()
		if err := s.http.Serve(httpapi.Listener(ln)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.errc <- err
		}
	}()
	log.Info("allot serving", "addr", ln.Addr().String(), "db", db.Dialect(), "poll", cfg.PollInterval)
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the server's base URL on loopback.
func (s *Server) URL() string {
	_, port, _ := net.SplitHostPort(s.Addr())
	return "http://127.0.0.1:" + port
}

// DB returns the server's store (tests and tools).
func (s *Server) DB() *store.DB { return s.db }

// Err delivers an error if the HTTP server fails.
func (s *Server) Err() <-chan error { return s.errc }

// Close shuts down gracefully: it stops accepting connections, lets requests
// in flight finish (until ctx ends), stops polling, and closes the database.
func (s *Server) Close(ctx context.Context) error {
	var err error
	s.once.Do(func() {
		err = s.http.Shutdown(ctx)
		s.cancel()
		s.wg.Wait()
		// Requests are done: write what they queued before the database goes.
		if ierr := s.ingest.Close(ctx); err == nil {
			err = ierr
		}
		if cerr := s.db.Close(); err == nil {
			err = cerr
		}
		s.cfg.Log.Info("allot stopped")
	})
	return err
}

// Run starts a server and serves until ctx ends (SIGINT or SIGTERM in the
// CLI), then shuts down gracefully.
func Run(ctx context.Context, cfg Config) error {
	s, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-s.errc:
	}
	s.cfg.Log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	return errors.Join(serveErr, s.Close(sctx))
}
