package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/httpapi"
	"github.com/allot-dev/allot/cmd/allot/internal/publish"
	"github.com/allot-dev/allot/cmd/allot/internal/server"
	"github.com/allot-dev/allot/cmd/allot/internal/sink"
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
and prints it once, unless ALLOT_ADMIN_TOKEN provides one, and gives the
first admin account (admin@localhost, or --admin-email) a password printed
once, unless ALLOT_ADMIN_PASSWORD provides one. SDKs use the base URL
http://HOST:PORT/api. A lost admin token: allot admin recover --db ...

Every flag may be set by the environment variable named after it (a flag
given on the command line wins); ALLOT_TRUSTED_PROXY takes a comma-separated
list. Secrets are read from the environment only, and never printed:
  ALLOT_ADMIN_TOKEN     the first admin token, instead of a generated one
  ALLOT_ADMIN_PASSWORD  the first admin account's password, instead of a
                        generated one (used while no account has a password)
  ALLOT_METRICS_TOKEN   a bearer token that may read /metrics

flags:`)
		printFlagsWithEnv(e.stderr, fs)
	}
	// No default below comes from the environment: -h prints defaults, and
	// ALLOT_DB may be a postgres:// URL with a password. applyEnv reads the
	// environment after parsing.
	addr := fs.String("addr", ":8080", "listen address")
	db := fs.String("db", "allot.db", "SQLite file, or a postgres:// URL")
	poll := fs.Duration("poll", time.Second, "how often to look for changes made by other replicas")
	staleAfter := fs.Duration("stale-after", publish.DefaultMaxAge, "report not ready (/readyz) when the configuration was last confirmed against the database longer ago than this")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	format := fs.String("log-format", "text", "log format: text or json")
	retention := fs.String("retention", "0", "maximum age of stored assignment events, e.g. 90d or 2160h (0 keeps them all)")
	sinkDir := fs.String("sink", "", "directory, or s3://BUCKET/PREFIX?endpoint=URL&region=R (credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), to seal the assignment table into, as Parquet files partitioned by environment and day (docs/warehouse.md)")
	sinkInterval := fs.Duration("sink-interval", sink.DefaultInterval, "how often --sink seals the rows waiting")
	sinkRows := fs.Int("sink-rows", sink.DefaultRows, fmt.Sprintf("--sink seals as soon as this many rows wait; the most rows one seal writes (at most %d)", sink.MaxRows))
	tlsCert := fs.String("tls-cert", "", "PEM certificate file: serve HTTPS (with --tls-key)")
	tlsKey := fs.String("tls-key", "", "PEM private key file of --tls-cert")
	var proxies []netip.Prefix
	fs.Func("trusted-proxy", "`CIDR` or address of a TLS-terminating proxy whose X-Forwarded-Proto is believed (repeatable)", func(v string) error {
		p, err := parsePrefix(v)
		if err == nil {
			proxies = append(proxies, p)
		}
		return err
	})
	preRate := fs.Float64("precomputed-rate", httpapi.PrecomputedRate, "requests a second each SDK key may make to POST /assignments (precomputed assignments); 0 turns the limit off")
	preBurst := fs.Int("precomputed-burst", httpapi.PrecomputedBurst, "the most requests to POST /assignments a key may make at once, after a quiet spell")
	adminEmail := fs.String("admin-email", "", "email of the first admin account, set while no account has a password (default admin@localhost)")
	metrics := fs.String("metrics", server.MetricsToken, "who may read /metrics: token (an admin token or ALLOT_METRICS_TOKEN), public, or off")
	fastConfig := fs.Bool("fast-config", true, "answer the SDK config endpoint's plain HTTP/1.1 requests on a fast path beside net/http (false: net/http only; always off with TLS)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return &exitError{code: 2}
	}
	if err := applyEnv(e, fs, map[string]bool{"trusted-proxy": true}); err != nil {
		return err
	}
	maxAge, err := parseAge(*retention)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--retention: %v", err)}
	}
	if *sinkInterval <= 0 || *sinkRows <= 0 || *sinkRows > sink.MaxRows {
		return &exitError{code: 2, err: fmt.Errorf("--sink-interval must be positive and --sink-rows between 1 and %d", sink.MaxRows)}
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return &exitError{code: 2, err: errors.New("--tls-cert and --tls-key go together")}
	}
	if *preRate < 0 || *preBurst < 1 {
		return &exitError{code: 2, err: errors.New("--precomputed-rate must be 0 (no limit) or more, --precomputed-burst at least 1")}
	}
	if *preRate == 0 {
		*preRate = -1 // server.Config: negative is no limit
	}
	switch *metrics {
	case server.MetricsToken, server.MetricsPublic, server.MetricsOff:
	default:
		return &exitError{code: 2, err: fmt.Errorf("--metrics: %q is not token, public or off", *metrics)}
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
		Addr:           *addr,
		DB:             *db,
		AdminToken:     envOr(e, "ALLOT_ADMIN_TOKEN", ""),
		AdminEmail:     *adminEmail,
		AdminPassword:  envOr(e, "ALLOT_ADMIN_PASSWORD", ""),
		PollInterval:   *poll,
		StaleAfter:     *staleAfter,
		Retention:      maxAge,
		Sink:           *sinkDir,
		SinkInterval:   *sinkInterval,
		SinkRows:       *sinkRows,
		TLSCert:        *tlsCert,
		TLSKey:         *tlsKey,
		TrustedProxies: proxies,
		Metrics:        *metrics,
		NoFastConfig:   !*fastConfig,
		MetricsToken:   envOr(e, "ALLOT_METRICS_TOKEN", ""),
		Log:            slog.New(h),
		Announce:       e.stderr,
		// The precomputed endpoint's per-key limit (docs/limits.md).
		PrecomputedRate:  *preRate,
		PrecomputedBurst: *preBurst,
	})
}

// parsePrefix reads a CIDR ("10.0.0.0/8") or a single address.
func parsePrefix(v string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(v); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither a CIDR nor an IP address", v)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// envName is the environment variable of a flag: --log-level is
// ALLOT_LOG_LEVEL.
func envName(flagName string) string {
	return "ALLOT_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// applyEnv sets each flag that the command line did not set from its
// environment variable, if that is set. The flags named in lists take a
// comma-separated list (each item set in turn, as a repeated flag).
func applyEnv(e *env, fs *flag.FlagSet, lists map[string]bool) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || given[f.Name] {
			return
		}
		name := envName(f.Name)
		v := envOr(e, name, "")
		if v == "" {
			return
		}
		vals := []string{v}
		if lists[f.Name] {
			vals = strings.Split(v, ",")
		}
		for _, item := range vals {
			if serr := fs.Set(f.Name, strings.TrimSpace(item)); serr != nil {
				// Not the value itself: no string flag can fail to parse, so
				// a URL with a password never reaches this message.
				err = &exitError{code: 2, err: fmt.Errorf("%s (for --%s): %v", name, f.Name, serr)}
				return
			}
		}
	})
	return err
}

// printFlagsWithEnv prints a flag set's flags as PrintDefaults does, each
// with the environment variable that may set it.
func printFlagsWithEnv(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		head := "  --" + f.Name
		if arg != "" {
			head += " " + arg
		}
		fmt.Fprintf(w, "%s\n    \t%s\n    \tenv %s", head, usage, envName(f.Name))
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "[]" {
			fmt.Fprintf(w, ", default %s", f.DefValue)
		}
		fmt.Fprintln(w)
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
