package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/server"
)

// startServer runs `allot serve` in-process on loopback and closes it when
// the test ends. The database is a SQLite file in t.TempDir unless cfg.DB
// names one; the rest of cfg (AdminToken above all) is the caller's.
func startServer(t *testing.T, cfg server.Config) *server.Server {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	if cfg.DB == "" {
		cfg.DB = filepath.Join(t.TempDir(), "a.db")
	}
	s, err := server.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Close(ctx)
	})
	return s
}

// runWith runs allot in-process with the given environment and no stdin
// and returns the exit code, stdout and stderr.
func runWith(vars map[string]string, args ...string) (int, string, string) {
	return runIn(vars, "", args...)
}

// runIn is runWith with stdin.
func runIn(vars map[string]string, stdin string, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	e := &env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut, getenv: func(k string) string { return vars[k] }}
	code := Main(context.Background(), e, args)
	return code, out.String(), errOut.String()
}

// cli runs allot commands against one server (ALLOT_SERVER), as the given
// token (ALLOT_TOKEN) unless a call names another.
type cli struct {
	t     *testing.T
	url   string
	token string
}

// startCLI starts a server with the admin token and returns a CLI pointed
// at it, as that token.
func startCLI(t *testing.T, token string) (*server.Server, *cli) {
	t.Helper()
	s := startServer(t, server.Config{AdminToken: token})
	return s, newCLI(t, s, token)
}

func newCLI(t *testing.T, s *server.Server, token string) *cli {
	return &cli{t: t, url: s.URL(), token: token}
}

// tryAs runs `allot args...` as tok with stdin and returns the exit code,
// stdout and stderr, whatever the code.
func (c *cli) tryAs(tok, stdin string, args ...string) (int, string, string) {
	return runIn(map[string]string{"ALLOT_SERVER": c.url, "ALLOT_TOKEN": tok}, stdin, args...)
}

// try is tryAs with the CLI's token and no stdin.
func (c *cli) try(args ...string) (int, string, string) { return c.tryAs(c.token, "", args...) }

// runAs runs `allot args...` as tok with stdin, fails the test unless it
// exits with want, and returns stdout and stderr.
func (c *cli) runAs(tok, stdin string, want int, args ...string) (string, string) {
	c.t.Helper()
	code, out, errOut := c.tryAs(tok, stdin, args...)
	if code != want {
		c.t.Fatalf("allot %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, out, errOut)
	}
	return out, errOut
}

// run is runAs with the CLI's token, no stdin and exit 0.
func (c *cli) run(args ...string) (string, string) {
	c.t.Helper()
	return c.runAs(c.token, "", 0, args...)
}

// out is run's stdout.
func (c *cli) out(args ...string) string {
	c.t.Helper()
	out, _ := c.run(args...)
	return out
}
