package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/allot-dev/allot/internal/publish"
	"github.com/allot-dev/allot/internal/server"
)

func init() {
	register("serve", "run the server: management API and SDK configuration endpoint", runServe)
}

func runServe(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, `usage: allot serve [--addr :8080] [--db allot.db | --db postgres://...]

Runs Allot's server. SQLite (a file) by default; a postgres:// URL lets
several replicas share one database. The first start creates an admin token
and prints it once, unless ALLOT_ADMIN_TOKEN provides one. SDKs use the base
URL http://HOST:PORT/api.

Environment: ALLOT_ADMIN_TOKEN, ALLOT_DB, ALLOT_ADDR.

flags:`)
		fs.PrintDefaults()
	}
	addr := fs.String("addr", envOr(e, "ALLOT_ADDR", ":8080"), "listen address")
	db := fs.String("db", envOr(e, "ALLOT_DB", "allot.db"), "SQLite file, or a postgres:// URL")
	poll := fs.Duration("poll", time.Second, "how often to look for changes made by other replicas")
	staleAfter := fs.Duration("stale-after", publish.DefaultMaxAge, "report not ready (/readyz) when the configuration was last confirmed against the database longer ago than this")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	format := fs.String("log-format", "text", "log format: text or json")
	retention := fs.String("retention", envOr(e, "ALLOT_RETENTION", "0"), "maximum age of stored assignment events, e.g. 90d or 2160h (0 keeps them all)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return &exitError{code: 2}
	}
	maxAge, err := parseAge(*retention)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--retention: %v", err)}
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--log-level: %v", err)}
	}
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler = slog.NewTextHandler(e.stderr, opts)
	if strings.EqualFold(*format, "json") {
		h = slog.NewJSONHandler(e.stderr, opts)
	}
	return server.Run(ctx, server.Config{
		Addr:         *addr,
		DB:           *db,
		AdminToken:   e.getenv("ALLOT_ADMIN_TOKEN"),
		PollInterval: *poll,
		StaleAfter:   *staleAfter,
		Retention:    maxAge,
		Log:          slog.New(h),
		Announce:     e.stderr,
	})
}

func envOr(e *env, name, def string) string {
	if e.getenv != nil {
		if v := e.getenv(name); v != "" {
			return v
		}
	}
	return def
}

// parseAge reads a duration that may also be a number of days ("90d").
func parseAge(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q is not a number of days", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration such as 90d or 2160h", s)
	}
	return d, nil
}
