// Package server wires Allot's server together and runs it: the store, the
// published-configuration cache and its poller, the HTTP API, and graceful
// shutdown. It is the only package that knows all the others.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/export"
	"github.com/allot-dev/allot/cmd/allot/internal/httpapi"
	"github.com/allot-dev/allot/cmd/allot/internal/ingest"
	"github.com/allot-dev/allot/cmd/allot/internal/ofrep"
	"github.com/allot-dev/allot/cmd/allot/internal/publish"
	"github.com/allot-dev/allot/cmd/allot/internal/sink"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/web"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a server. The zero value of every field but DB has a
// working default.
type Config struct {
	Addr string // listen address; default ":8080"
	DB   string // a SQLite file path or a postgres:// URL; default "allot.db"
	// AdminToken, if set, is accepted as an admin token (ALLOT_ADMIN_TOKEN).
	AdminToken string
	// AdminEmail and AdminPassword name the first admin account and its
	// password (ALLOT_ADMIN_EMAIL, ALLOT_ADMIN_PASSWORD). Used only while
	// no account has a password: by default the account is
	// admin@localhost and a random password is printed once.
	AdminEmail, AdminPassword string
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
	// Sink, if set, is a directory or an s3:// URL the assignment table is
	// sealed into as Parquet files (see package sink), every SinkInterval or as soon as
	// SinkRows rows wait; zero values take the sink's defaults.
	Sink         string
	SinkInterval time.Duration
	SinkRows     int
	// PrecomputedRate and PrecomputedBurst are the per-key token bucket of
	// POST /assignments (requests a second, the most held): zero takes
	// httpapi's defaults, a negative rate turns the limit off.
	PrecomputedRate  float64
	PrecomputedBurst int
	// ShutdownTimeout bounds the graceful shutdown; default 10s.
	ShutdownTimeout time.Duration
	// TLSCert and TLSKey, both or neither, are PEM files: with them the
	// server speaks HTTPS only.
	TLSCert, TLSKey string
	// TrustedProxies are the addresses whose X-Forwarded-Proto: https is
	// believed (a TLS-terminating proxy in front); from anyone else the
	// header is ignored. Cookies are Secure when the client used HTTPS.
	TrustedProxies []netip.Prefix
	// Metrics is who may read /metrics: MetricsToken (the default: an admin
	// token or MetricsToken), MetricsPublic, or MetricsOff.
	Metrics string
	// MetricsToken is a bearer token for /metrics only (ALLOT_METRICS_TOKEN).
	MetricsToken string
	// NoFastConfig serves the SDK config endpoint through net/http only,
	// without httpapi.FastListener's fast path (comparisons, benchmarks).
	NoFastConfig bool
	// MinFreeDisk is the free space (bytes) below which a SQLite server is
	// not ready; default 64 MiB, negative turns the check off.
	MinFreeDisk int64
	Log         *slog.Logger
	// Announce receives the one-time display of a generated admin token.
	Announce io.Writer
	// NewSalt, if set, draws allocation salts (tests comparing runs make
	// it deterministic); the default is random.
	NewSalt func() string
}

// Server is a running server.
type Server struct {
	cfg     Config
	db      *store.DB
	core    *core.Core
	cache   *publish.Cache
	metrics *httpapi.Metrics
	ingest  *ingest.Writer
	mux     *http.ServeMux // the routes, without the middleware (benchmarks)
	ui      *web.UI
	routed  []string // the patterns of mux (Routes)
	api     *httpapi.Server
	fast    *httpapi.FastListener // nil with TLS or NoFastConfig
	http    *http.Server
	ln      net.Listener
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	errc    chan error
	once    sync.Once
	// ofrep logs OFREP evaluations to the assignment table; Close drains
	// it before the ingest writer.
	ofrep *ofrep.Recorder
}

// Start listens first (so a busy port fails before anything is created or
// printed), then opens the database (migrating it), creates the first admin
// token if the database is new, compiles every environment, starts serving
// and polling, and returns. Close stops it.
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
	if cfg.MinFreeDisk == 0 {
		cfg.MinFreeDisk = 64 << 20
	}
	switch cfg.Metrics {
	case "":
		cfg.Metrics = MetricsToken
	case MetricsToken, MetricsPublic, MetricsOff:
	default:
		return nil, fmt.Errorf("metrics: %q is not off, public or token", cfg.Metrics)
	}
	var tlsConfig *tls.Config
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		if cfg.TLSCert == "" || cfg.TLSKey == "" {
			return nil, errors.New("tls: both a certificate and a key are needed")
		}
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	log := cfg.Log
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	s, err := start(ctx, cfg, ln)
	if err != nil {
		ln.Close()
		return nil, err
	}
	s.http.TLSConfig = tlsConfig
	if tlsConfig == nil && !cfg.NoFastConfig {
		s.fast = httpapi.NewFastListener(ln, s.api, httpapi.FastOptions{
			Observe:       s.metrics.RouteObserver(httpapi.ConfigRoute),
			HeaderTimeout: s.http.ReadHeaderTimeout,
			IdleTimeout:   s.http.IdleTimeout,
			WriteTimeout:  s.http.WriteTimeout,
			Log:           log,
		})
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		var err error
		if tlsConfig != nil {
			err = s.http.ServeTLS(ln, "", "") // the certificate is in TLSConfig; HTTP/2 on
		} else if s.fast != nil {
			err = s.http.Serve(s.fast) // the config endpoint's fast path
		} else {
			err = s.http.Serve(httpapi.Listener(ln)) // one write per config response
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.errc <- err
		}
	}()
	log.Info("allot serving", "addr", ln.Addr().String(), "tls", tlsConfig != nil, "db", s.db.Dialect(), "poll", cfg.PollInterval)
	return s, nil
}

// start does the rest of Start once the port is ours: the database, the
// admin token, the handlers and the background work.
func start(ctx context.Context, cfg Config, ln net.Listener) (*Server, error) {
	log := cfg.Log
	db, err := store.Open(ctx, cfg.DB, log)
	if err != nil {
		return nil, err
	}
	// The sink's directory is made (or its URL refused) before anything starts.
	var sk *sink.Sink
	if cfg.Sink != "" {
		if sk, err = sink.New(db, sink.Config{Dir: cfg.Sink, Interval: cfg.SinkInterval, Rows: cfg.SinkRows, Log: log}); err != nil {
			db.Close()
			return nil, err
		}
	}
	metrics := httpapi.NewMetrics()
	cache := publish.NewCache(db, log)
	cache.OnBuild = metrics.ObserveBuild
	cache.OnRefused = metrics.ObserveRefused
	cache.MaxAge = cfg.StaleAfter
	metrics.WatchConfigAge(cache.Age)
	// One domain core for every front end of this process; it republishes
	// through the cache after each commit.
	dom := core.New(db, core.Options{Listener: cache, Log: log, NewSalt: cfg.NewSalt})
	token, err := dom.Bootstrap(ctx, cfg.AdminToken)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	if token != "" {
		fmt.Fprintf(cfg.Announce, "\nAdmin token (shown once; keep it safe, or set ALLOT_ADMIN_TOKEN next time):\n\n    %s\n\n", token)
	}
	if cfg.AdminToken != "" {
		warnRevoked(ctx, dom, cfg.AdminToken, log)
	}
	email, password, err := dom.BootstrapAccount(ctx, cfg.AdminEmail, cfg.AdminPassword)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	if password != "" {
		fmt.Fprintf(cfg.Announce, "\nSign in to the web UI as %s with this password (shown once; change it with allot users passwd):\n\n    %s\n\n", email, password)
	}
	if err := cache.Refresh(ctx); err != nil {
		// Serve what compiled; /readyz reports the rest.
		log.Error("initial configuration build failed", "err", err)
	}
	writer := ingest.NewWriter(db, ingest.Options{})
	s := &Server{cfg: cfg, db: db, core: dom, cache: cache, metrics: metrics, ingest: writer, ln: ln, errc: make(chan error, 1)}
	s.ofrep = ofrep.NewRecorder(writer, ofrep.RecorderOptions{Log: log})
	registerOFREPMetrics(metrics, s.ofrep)
	// One exporter: the API's exports and the UI's downloads share its bound.
	exporter := export.New(db, log, export.DefaultSlots)
	apiOpts := []httpapi.Option{httpapi.WithCore(dom), httpapi.WithExporter(exporter)}
	if cfg.PrecomputedRate != 0 || cfg.PrecomputedBurst != 0 {
		rate, burst := cfg.PrecomputedRate, cfg.PrecomputedBurst
		if rate == 0 {
			rate = httpapi.PrecomputedRate
		}
		if burst == 0 {
			burst = httpapi.PrecomputedBurst
		}
		apiOpts = append(apiOpts, httpapi.WithPrecomputedRate(max(rate, 0), burst))
	}
	api := httpapi.New(db, cache, log, apiOpts...)
	metrics.Registry().MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "allot_config_streams", Help: "Configuration streams (server-sent events) open on this replica.",
	}, func() float64 { return float64(api.OpenStreams()) }))
	s.ui = web.New(db, cache, log, web.WithCore(dom), web.WithExporter(exporter))
	mux := s.routes(api, s.ingestHandler(writer), s.ui)
	s.mux = mux
	s.api = api
	s.http = &http.Server{
		Handler:           s.handler(mux),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ConnContext:       httpapi.ConnContext, // with httpapi.Listener: one write per config response
	}
	// Configuration streams never go idle: Shutdown would wait for them.
	s.http.RegisterOnShutdown(api.CloseStreams)
	pollCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		cache.Run(pollCtx, cfg.PollInterval)
	}()
	// On PostgreSQL, changes made through another replica arrive at once
	// by LISTEN/NOTIFY; the poll above stays as the fallback.
	s.wg.Go(func() {
		db.Listen(pollCtx, func(string) {
			if err := cache.Refresh(pollCtx); err != nil && pollCtx.Err() == nil {
				log.Warn("configuration refresh after a change notification failed", "err", err)
			}
		})
	})
	if sk != nil {
		s.wg.Go(func() { sk.Run(pollCtx) })
	}
	if cfg.Retention > 0 {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			ingest.Retain(pollCtx, db, cfg.Retention, 5*time.Minute, log)
		}()
	}
	return s, nil
}

// warnRevoked logs why ALLOT_ADMIN_TOKEN does not work when it names a
// revoked token: Bootstrap adds a token it does not know, but never brings
// a revoked one back, and a silent 401 leaves an operator guessing.
func warnRevoked(ctx context.Context, dom *core.Core, token string, log *slog.Logger) {
	// Bootstrap has just made sure the database knows the token, so the
	// only reason it fails to authenticate is that it was revoked.
	_, err := dom.Authenticate(ctx, token)
	switch {
	case core.ErrorCode(err) == core.EUNAUTHORIZED:
		log.Warn("ALLOT_ADMIN_TOKEN was revoked and is refused; a revoked token never comes back. "+
			"Use another admin token, or mint one offline with: allot admin recover --db DATABASE", "prefix", core.HashSecretHex(token)[:8])
	case err != nil:
		log.Warn("could not check ALLOT_ADMIN_TOKEN", "err", err)
	}
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the server's base URL on loopback.
func (s *Server) URL() string {
	_, port, _ := net.SplitHostPort(s.Addr())
	return "http://127.0.0.1:" + port
}

// Core returns the server's domain core (tests and tools).
func (s *Server) Core() *core.Core { return s.core }

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
		if s.fast != nil {
			s.fast.Wait(ctx) // the connections net/http never saw
		}
		s.cancel()
		s.wg.Wait()
		// Requests are done: write what they queued before the database
		// goes; OFREP's recorder writes through the ingest writer, so first.
		if rerr := s.ofrep.Close(ctx); err == nil {
			err = rerr
		}
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

// FastStats reports what the config endpoint's fast path did (zero
// without one: TLS or NoFastConfig).
func (s *Server) FastStats() httpapi.FastStats {
	if s.fast == nil {
		return httpapi.FastStats{}
	}
	return s.fast.Stats()
}
