package core_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
)

// The one permission check, as a table: each role, per-environment
// overrides both ways, tokens narrowing an account, and nobody.
func TestAllowed(t *testing.T) {
	staging := map[string]core.Role{"staging": core.RoleEditor, "production": core.RoleViewer}
	for _, c := range []struct {
		name string
		p    *core.Principal
		act  core.Action
		env  string
		want bool
	}{
		{"nobody reads", nil, core.ActRead, "", false},
		{"viewer reads", &core.Principal{Role: core.RoleViewer}, core.ActRead, "production", true},
		{"viewer edits", &core.Principal{Role: core.RoleViewer}, core.ActEdit, "production", false},
		{"editor edits", &core.Principal{Role: core.RoleEditor}, core.ActEdit, "production", true},
		{"editor edits a flag definition", &core.Principal{Role: core.RoleEditor}, core.ActEdit, "", true},
		{"editor administers", &core.Principal{Role: core.RoleEditor}, core.ActAdmin, "", false},
		{"admin administers", &core.Principal{Role: core.RoleAdmin}, core.ActAdmin, "", true},
		{"admin edits", &core.Principal{Role: core.RoleAdmin}, core.ActEdit, "staging", true},
		{"viewer who edits staging, in staging", &core.Principal{Role: core.RoleViewer, EnvRoles: staging}, core.ActEdit, "staging", true},
		{"viewer who edits staging, elsewhere", &core.Principal{Role: core.RoleViewer, EnvRoles: staging}, core.ActEdit, "qa", false},
		{"viewer who edits staging, a definition", &core.Principal{Role: core.RoleViewer, EnvRoles: staging}, core.ActEdit, "", false},
		{"viewer who edits staging, somewhere", &core.Principal{Role: core.RoleViewer, EnvRoles: staging}, core.ActEdit, core.AnyEnvironment, true},
		{"editor who views production, in production", &core.Principal{Role: core.RoleEditor, EnvRoles: staging}, core.ActEdit, "production", false},
		{"editor who views production, in staging", &core.Principal{Role: core.RoleEditor, EnvRoles: staging}, core.ActEdit, "staging", true},
		{"admin with a viewer token", &core.Principal{Role: core.RoleAdmin, TokenRole: core.RoleViewer}, core.ActEdit, "production", false},
		{"admin with a viewer token reads", &core.Principal{Role: core.RoleAdmin, TokenRole: core.RoleViewer}, core.ActRead, "production", true},
		{"editor with an admin token (demoted since)", &core.Principal{Role: core.RoleEditor, TokenRole: core.RoleAdmin}, core.ActAdmin, "", false},
		{"token caps an environment's override", &core.Principal{Role: core.RoleViewer, EnvRoles: staging, TokenRole: core.RoleViewer}, core.ActEdit, "staging", false},
		{"an unknown action needs admin", &core.Principal{Role: core.RoleEditor}, core.Action("delete-everything"), "", false},
		{"an unknown role may do nothing", &core.Principal{Role: core.Role("owner")}, core.ActRead, "", false},
	} {
		if got := core.Allowed(c.p, c.act, c.env); got != c.want {
			t.Errorf("%s: Allowed = %v, want %v", c.name, got, c.want)
		}
	}
}

// Every changing operation refuses a principal without the role, whatever
// the front end: the check is at the top of the core's operations.
func TestOperationsCheckRoles(t *testing.T) {
	forEachDB(t, func(t *testing.T, c *core.Core, db *store.DB) {
		if _, err := c.CreateEnvironment(ctx, "staging"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateFlag(ctx, abcFlag("f")); err != nil {
			t.Fatal(err)
		}
		as := func(role core.Role, env map[string]core.Role) context.Context {
			return core.WithPrincipal(context.Background(), core.Principal{UserID: 1, Email: string(role) + "@x", Role: role, EnvRoles: env})
		}
		viewer, editor := as(core.RoleViewer, nil), as(core.RoleEditor, nil)
		stagingEditor := as(core.RoleViewer, map[string]core.Role{"staging": core.RoleEditor})
		forbidden := func(what string, err error) {
			t.Helper()
			if core.ErrorCode(err) != core.EFORBIDDEN {
				t.Errorf("%s: %v, want forbidden", what, err)
			}
		}
		_, err := c.CreateFlag(viewer, abcFlag("g"))
		forbidden("viewer creates a flag", err)
		_, err = c.SetEnabled(viewer, "production", "f", 0, true)
		forbidden("viewer enables", err)
		_, err = c.AddAllocation(stagingEditor, "production", "f", 0, experiment("e", core.Draft), -1)
		forbidden("staging editor in production", err)
		if _, err := c.AddAllocation(stagingEditor, "staging", "f", 0, experiment("e", core.Draft), -1); err != nil {
			t.Errorf("staging editor in staging: %v", err)
		}
		_, err = c.CreateLayer(viewer, "production", "l")
		forbidden("viewer creates a layer", err)
		_, err = c.CreateHoldout(viewer, "production", "h", 100, false)
		forbidden("viewer creates a holdout", err)
		_, err = c.CreateEnvironment(editor, "qa")
		forbidden("editor creates an environment", err)
		_, err = c.CreateSDKKey(editor, "production", "k")
		forbidden("editor creates an SDK key", err)
		_, err = c.CreateUser(editor, "x@example.com", "long enough password", core.RoleAdmin)
		forbidden("editor creates an account", err)
		_, err = c.CreateToken(editor, "t", core.RoleAdmin)
		forbidden("editor mints an admin token", err)
		// The operations of issues 13, 15 and 17 that arrived with accounts.
		_, err = c.ArchiveFlag(viewer, "f", 1)
		forbidden("viewer archives a flag", err)
		_, err = c.ArchiveFlag(stagingEditor, "f", 1)
		forbidden("staging editor archives a flag of every environment", err)
		_, err = c.CopyFlagSettings(stagingEditor, "f", "staging", "production", 0)
		forbidden("staging editor copies into production", err)
		_, err = c.Import(viewer, core.ImportRequest{Environment: "production", Document: []byte(`{"flags":{}}`)})
		forbidden("viewer imports", err)
		_, err = c.Import(stagingEditor, core.ImportRequest{Environment: "production", Document: []byte(`{"flags":{}}`)})
		forbidden("staging editor imports into production", err)
		ck, err := c.CreateClientKey(ctx, "production", "web", nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.SetKeyOrigins(editor, ck.ID, []string{"https://example.com"})
		forbidden("editor sets a client key's origins", err)
		if _, err := c.Flags(viewer); err != nil {
			t.Errorf("viewer reads: %v", err)
		}
		if err := c.SetPassword(editor, 999, "long enough password"); core.ErrorCode(err) != core.EFORBIDDEN {
			t.Errorf("editor sets another's password: %v", err)
		}
		// Nothing changed.
		if fs, _ := c.FlagSettings(ctx, "production", "f"); fs.Version != 0 {
			t.Errorf("production settings written: %+v", fs)
		}
	})
}

func TestAccounts(t *testing.T) {
	forEachDB(t, func(t *testing.T, c *core.Core, db *store.DB) {
		u, err := c.CreateUser(ctx, "  Grace@Example.COM ", "twelve chars", core.RoleEditor)
		if err != nil || u.Email != "grace@example.com" || u.Role != core.RoleEditor || !u.HasPassword {
			t.Fatalf("create: %+v %v", u, err)
		}
		_, err = c.CreateUser(ctx, "grace@example.com", "twelve chars", core.RoleViewer)
		if core.ErrorCode(err) != core.ECONFLICT {
			t.Fatalf("duplicate email: %v", err)
		}
		_, err = c.CreateUser(ctx, "h@example.com", "eleven char", core.RoleViewer)
		wantInvalid(t, err, "password", "the minimum is 12")
		_, err = c.CreateUser(ctx, "h@example.com", strings.Repeat("é", 257), core.RoleViewer)
		wantInvalid(t, err, "password", "the limit is 256")
		_, err = c.CreateUser(ctx, "no-at-sign", "twelve chars", core.RoleViewer)
		wantInvalid(t, err, "email", "must be an address")
		_, err = c.CreateUser(ctx, strings.Repeat("a", 250)+"@b.co", "twelve chars", core.RoleViewer)
		wantInvalid(t, err, "email", "the limit is 254")
		_, err = c.CreateUser(ctx, "h@example.com", "twelve chars", core.Role("owner"))
		wantInvalid(t, err, "role", "viewer, editor or admin")

		p, err := c.AuthenticatePassword(ctx, "GRACE@example.com", "twelve chars", "10.0.0.1")
		if err != nil || p.UserID != u.ID || p.Actor() != "grace@example.com" {
			t.Fatalf("sign in: %+v %v", p, err)
		}
		_, err = c.AuthenticatePassword(ctx, "grace@example.com", "twelve chars!", "10.0.0.1")
		if core.ErrorCode(err) != core.EUNAUTHORIZED {
			t.Fatalf("wrong password: %v", err)
		}
		_, err2 := c.AuthenticatePassword(ctx, "nobody@example.com", "twelve chars", "10.0.0.1")
		if core.ErrorCode(err2) != core.EUNAUTHORIZED || err.Error() != err2.Error() {
			t.Fatalf("unknown account: %v (a wrong password: %v)", err2, err)
		}

		// Per-environment role, then the last admin.
		if u, err = c.SetEnvironmentRole(ctx, u.ID, "production", core.RoleViewer); err != nil || u.EnvironmentRoles["production"] != core.RoleViewer {
			t.Fatalf("env role: %+v %v", u, err)
		}
		if u, err = c.SetEnvironmentRole(ctx, u.ID, "production", ""); err != nil || len(u.EnvironmentRoles) != 0 {
			t.Fatalf("env role removed: %+v %v", u, err)
		}
		_, err = c.SetEnvironmentRole(ctx, u.ID, "nowhere", core.RoleViewer)
		if core.ErrorCode(err) != core.ENOTFOUND {
			t.Fatalf("env role in an unknown environment: %v", err)
		}
		admins, _ := c.Users(ctx)
		var first core.User
		for _, a := range admins {
			if a.Role == core.RoleAdmin {
				first = a
			}
		}
		if _, err := c.SetUserRole(ctx, first.ID, core.RoleEditor); core.ErrorCode(err) != core.ECONFLICT {
			t.Fatalf("demoting the last admin: %v", err)
		}
		if _, err := c.DisableUser(ctx, first.ID); core.ErrorCode(err) != core.ECONFLICT {
			t.Fatalf("disabling the last admin: %v", err)
		}
		if _, err := c.SetUserRole(ctx, u.ID, core.RoleAdmin); err != nil {
			t.Fatal(err)
		}
		if _, err := c.DisableUser(ctx, first.ID); err != nil {
			t.Fatalf("disabling an admin while another is left: %v", err)
		}

		// A disabled account: no sign-in, no tokens.
		gp, _ := c.AuthenticatePassword(ctx, "grace@example.com", "twelve chars", "10.0.0.2")
		tok, err := c.CreateToken(core.WithPrincipal(ctx, gp), "g", core.RoleViewer)
		if err != nil || tok.Role != core.RoleViewer || tok.UserID != u.ID {
			t.Fatalf("token: %+v %v", tok, err)
		}
		if tp, err := c.Authenticate(ctx, tok.Secret); err != nil || tp.RoleIn("") != core.RoleViewer || !strings.Contains(tp.Actor(), "grace@example.com (token g, ") {
			t.Fatalf("token principal: %+v %v", tp, err)
		}
		if _, err := c.DisableUser(core.WithPrincipal(ctx, core.Principal{UserID: first.ID, Email: "x", Role: core.RoleAdmin}), u.ID); core.ErrorCode(err) != core.ECONFLICT {
			t.Fatalf("disabling the last enabled admin: %v", err)
		}
		if _, err := c.EnableUser(ctx, first.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := c.DisableUser(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Authenticate(ctx, tok.Secret); core.ErrorCode(err) != core.EUNAUTHORIZED {
			t.Fatalf("a disabled account's token: %v", err)
		}
		if _, err := c.AuthenticatePassword(ctx, "grace@example.com", "twelve chars", "10.0.0.3"); core.ErrorCode(err) != core.EUNAUTHORIZED {
			t.Fatalf("a disabled account signs in: %v", err)
		}

		// The audit log names the account, never the password.
		page, _ := c.Audit(ctx, 100, 0)
		var sawRole bool
		for _, e := range page.Entries {
			if strings.Contains(string(e.Before)+string(e.After), "argon2") || strings.Contains(string(e.After), "twelve chars") {
				t.Fatalf("a password hash or password in the audit log: %+v", e)
			}
			sawRole = sawRole || e.Entity == "user" && e.Key == "grace@example.com" && strings.Contains(string(e.After), `"role"`)
		}
		if !sawRole {
			t.Fatalf("no audit entry of grace's role change: %+v", page.Entries)
		}
	})
}

// Five failures a minute for an account or an address, then 429 with when
// to retry; the right password is refused meanwhile too.
func TestSignInRateLimit(t *testing.T) {
	forEachDB(t, func(t *testing.T, c *core.Core, db *store.DB) {
		if _, err := c.CreateUser(ctx, "lin@example.com", "the right password", core.RoleViewer); err != nil {
			t.Fatal(err)
		}
		for i := range core.SigninFailures {
			_, err := c.AuthenticatePassword(ctx, "lin@example.com", "wrong", "10.0.0."+string(rune('1'+i)))
			if core.ErrorCode(err) != core.EUNAUTHORIZED {
				t.Fatalf("failure %d: %v", i, err)
			}
		}
		// The account is limited, from any address.
		_, err := c.AuthenticatePassword(ctx, "lin@example.com", "the right password", "10.9.9.9")
		var e *core.Error
		if core.ErrorCode(err) != core.ERATELIMITED || !asError(err, &e) || e.RetryAfter <= 0 || e.RetryAfter > time.Minute {
			t.Fatalf("after %d failures: %v", core.SigninFailures, err)
		}
		// One address is limited for every account.
		if _, err := c.CreateUser(ctx, "max@example.com", "the right password", core.RoleViewer); err != nil {
			t.Fatal(err)
		}
		for i := range core.SigninFailures {
			c.AuthenticatePassword(ctx, "nobody"+string(rune('a'+i))+"@example.com", "wrong", "10.1.1.1")
		}
		if _, err := c.AuthenticatePassword(ctx, "max@example.com", "the right password", "10.1.1.1"); core.ErrorCode(err) != core.ERATELIMITED {
			t.Fatalf("address after failures: %v", err)
		}
		if _, err := c.AuthenticatePassword(ctx, "max@example.com", "the right password", "10.2.2.2"); err != nil {
			t.Fatalf("another address: %v", err)
		}
	})
}

// The password hash is argon2id in a PHC string that carries its
// parameters, salted per password; tampered or absurd strings never match.
func TestPasswordHash(t *testing.T) {
	h1, h2 := core.HashPassword("correct horse"), core.HashPassword("correct horse")
	if !strings.HasPrefix(h1, "$argon2id$v=19$m=19456,t=2,p=1$") || h1 == h2 {
		t.Fatalf("hashes %q %q", h1, h2)
	}
	if !core.VerifyPassword(h1, "correct horse") || core.VerifyPassword(h1, "correct horse ") {
		t.Fatal("verify")
	}
	parts := strings.Split(h1, "$")
	for _, bad := range []string{"", "plain", strings.Replace(h1, "argon2id", "argon2i", 1),
		strings.Replace(h1, "m=19456", "m=4194304", 1), strings.Replace(h1, "t=2", "t=0", 1),
		strings.Join(append(parts[:5:5], ""), "$")} {
		if core.VerifyPassword(bad, "correct horse") {
			t.Errorf("%q verified", bad)
		}
	}
}
