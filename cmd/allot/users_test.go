package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
)

// allot users manages accounts over the API; a viewer's token is refused
// any change, and a token narrower than its account stays narrow.
func TestUsersCommands(t *testing.T) {
	const token = "allot_admin_cli-users-token-0123456789"
	s, c := startCLI(t, token)
	runAs, run := c.runAs, c.out

	run("environments", "create", "staging")
	out, _ := runAs(token, "a password of ada's\n", 0, "users", "create", "Ada@Example.com", "--role", "editor", "--password-stdin")
	if !strings.Contains(out, "created ada@example.com (editor)") {
		t.Fatalf("create: %s", out)
	}
	out, errOut := runAs(token, "", 0, "users", "create", "vic@example.com")
	pw := strings.TrimSpace(strings.TrimPrefix(out, strings.SplitN(out, "\n", 2)[0]))
	if !strings.Contains(errOut, "shown once") || len(pw) < core.MinPasswordLength {
		t.Fatalf("generated password: %q %q", out, errOut)
	}
	if _, err := s.Core().AuthenticatePassword(context.Background(), "vic@example.com", pw, "t"); err != nil {
		t.Fatalf("the printed password does not sign in: %v", err)
	}
	run("users", "role", "ada@example.com", "viewer", "--env", "production")
	if out := run("users", "list"); !strings.Contains(out, "ada@example.com") || !strings.Contains(out, "production=viewer") || !strings.Contains(out, "vic@example.com  viewer") {
		t.Fatalf("list: %s", out)
	}
	var users []core.User
	if err := json.Unmarshal([]byte(run("users", "list", "--json")), &users); err != nil || len(users) != 3 {
		t.Fatalf("list --json: %v %+v", err, users)
	}

	// A viewer's token: reads, no changes (403 → exit 1 with the reason).
	p, err := s.Core().AuthenticatePassword(context.Background(), "vic@example.com", pw, "t")
	if err != nil {
		t.Fatal(err)
	}
	vt, err := s.Core().CreateToken(core.WithPrincipal(context.Background(), p), "cli", "")
	if err != nil {
		t.Fatal(err)
	}
	runAs(vt.Secret, "", 0, "flags", "list")
	if _, errOut := runAs(vt.Secret, "", 1, "environments", "create", "qa"); !strings.Contains(errOut, "admin role") {
		t.Fatalf("viewer creating an environment: %q", errOut)
	}
	if _, errOut := runAs(vt.Secret, "", 1, "keys", "admin-create", "wide", "--role", "admin"); !strings.Contains(errOut, "wider role") {
		t.Fatalf("viewer minting an admin token: %q", errOut)
	}
	if out, _ := runAs(vt.Secret, "", 0, "users", "me"); !strings.Contains(out, "vic@example.com, viewer, with token cli") {
		t.Fatalf("me: %q", out)
	}

	// An admin's viewer token is a viewer.
	narrow := strings.TrimSpace(run("keys", "admin-create", "read-only", "--role", "viewer"))
	if _, errOut := runAs(narrow, "", 1, "users", "disable", "ada@example.com"); !strings.Contains(errOut, "admin role") {
		t.Fatalf("a viewer token of an admin disabling: %q", errOut)
	}
	if out := run("keys", "admin-list"); !strings.Contains(out, "read-only") || !strings.Contains(out, "viewer") {
		t.Fatalf("admin-list: %s", out)
	}

	run("users", "disable", "ada@example.com")
	if _, err := s.Core().AuthenticatePassword(context.Background(), "ada@example.com", "a password of ada's", "t"); core.ErrorCode(err) != core.EUNAUTHORIZED {
		t.Fatalf("a disabled account signs in: %v", err)
	}
	run("users", "enable", "ada@example.com")
	runAs(token, "another password of ada's\n", 0, "users", "passwd", "ada@example.com", "--password-stdin")
	if _, err := s.Core().AuthenticatePassword(context.Background(), "ada@example.com", "another password of ada's", "t"); err != nil {
		t.Fatalf("new password: %v", err)
	}
	// The audit log names the account and the token.
	if out := run("audit", "--limit", "50"); !strings.Contains(out, "admin@localhost (token ALLOT_ADMIN_TOKEN") || !strings.Contains(out, "set_password user ada@example.com") {
		t.Fatalf("audit: %s", out)
	}
}
