package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/apiclient"
	"github.com/allot-dev/allot/cmd/allot/internal/server"
)

// No command's help prints a secret that a flag's default came from: the
// admin token (ALLOT_TOKEN) or a database URL with a password (ALLOT_DB).
func TestHelpPrintsNoSecret(t *testing.T) {
	vars := map[string]string{
		"ALLOT_TOKEN":         "allot_admin_help-secret-0123456789",
		"ALLOT_ADMIN_TOKEN":   "allot_admin_help-secret-admin-0123",
		"ALLOT_METRICS_TOKEN": "metrics-help-secret-0123456789",
		"ALLOT_DB":            "postgres://allot:db-help-secret@127.0.0.1:5432/allot",
	}
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		for _, args := range [][]string{{n, "-h"}, {n, "list", "-h"}, {n, "recover", "-h"}} {
			_, out, errOut := runWith(vars, args...)
			for _, secret := range []string{"help-secret"} {
				if strings.Contains(out+errOut, secret) {
					t.Errorf("allot %s printed a secret:\n%s%s", strings.Join(args, " "), out, errOut)
				}
			}
		}
	}
	if _, _, errOut := runWith(vars, "flags", "-h"); !strings.Contains(errOut, "from ALLOT_TOKEN") {
		t.Errorf("flags -h does not say where the token comes from:\n%s", errOut)
	}
}

// An exitError with only a code has an Error text (it used to dereference
// its nil error).
func TestExitErrorWithoutCause(t *testing.T) {
	e := &exitError{code: 2}
	if got := e.Error(); !strings.Contains(got, "2") {
		t.Errorf("Error() = %q", got)
	}
	if e.Unwrap() != nil {
		t.Error("Unwrap")
	}
}

// allot serve on a busy port fails without creating the database or
// printing an admin token.
func TestServeOnABusyPortCreatesNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	db := filepath.Join(t.TempDir(), "allot.db")
	code, out, errOut := runWith(nil, "serve", "--addr", ln.Addr().String(), "--db", db)
	if code == 0 {
		t.Fatal("serve succeeded on a busy port")
	}
	if strings.Contains(out+errOut, "allot_admin_") || strings.Contains(out+errOut, "Admin token") {
		t.Errorf("printed a token:\n%s%s", out, errOut)
	}
	if _, err := os.Stat(db); !os.IsNotExist(err) {
		t.Errorf("the database was created: %v", err)
	}
}

// allot admin recover mints a working admin token from the database when
// every other one is revoked, while the server runs.
func TestAdminRecover(t *testing.T) {
	const token = "allot_admin_recover-test-token-0123456789"
	db := filepath.Join(t.TempDir(), "a.db")
	s := startServer(t, server.Config{DB: db, AdminToken: token})
	ctx := context.Background()
	// The token is lost (the last live one cannot be revoked, so losing it
	// is how a team ends up locked out): recovery works offline.
	code, out, errOut := runWith(nil, "admin", "recover", "--db", db)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	secret := strings.TrimSpace(out)
	if !regexp.MustCompile(`^allot_admin_[0-9a-f]+$`).MatchString(secret) || strings.Contains(errOut, secret) {
		t.Fatalf("stdout %q stderr %q", out, errOut)
	}
	if _, err := apiclient.New(s.URL(), secret).Flags(ctx); err != nil {
		t.Fatalf("the recovered token does not work: %v", err)
	}
	entries, err := apiclient.New(s.URL(), secret).Audit(ctx, 1, 0)
	if err != nil || len(entries) == 0 || entries[0].Actor != "system:recover" {
		t.Errorf("audit: %+v %v", entries, err)
	}
	// A path with no database is refused, not created.
	missing := filepath.Join(t.TempDir(), "none.db")
	if code, _, _ := runWith(nil, "admin", "recover", "--db", missing); code == 0 {
		t.Error("recover created a new database")
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("%s exists: %v", missing, err)
	}
}

// Bad serve flags are refused before anything starts.
func TestServeFlagErrors(t *testing.T) {
	db := filepath.Join(t.TempDir(), "allot.db")
	for _, args := range [][]string{
		{"--trusted-proxy", "nonsense"},
		{"--metrics", "yes"},
		{"--tls-cert", "cert.pem"},
		{"--tls-key", "key.pem"},
	} {
		code, _, errOut := runWith(nil, append([]string{"serve", "--addr", "127.0.0.1:0", "--db", db}, args...)...)
		if code != 2 {
			t.Errorf("serve %s: exit %d, want 2\n%s", strings.Join(args, " "), code, errOut)
		}
	}
	if _, err := os.Stat(db); !os.IsNotExist(err) {
		t.Errorf("the database was created: %v", err)
	}
	for in, want := range map[string]string{"10.0.0.0/8": "10.0.0.0/8", "10.1.2.3/8": "10.0.0.0/8", "192.168.1.1": "192.168.1.1/32", "::1": "::1/128"} {
		if p, err := parsePrefix(in); err != nil || p.String() != want {
			t.Errorf("parsePrefix(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
}
