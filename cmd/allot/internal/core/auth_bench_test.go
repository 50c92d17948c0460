package core_test

import (
	"context"
	"crypto/sha256"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
)

// BenchmarkAuthenticate measures, side by side on one SQLite database, what
// each request pays to learn its principal: an API token (the token, its
// account and that account's environment roles: three indexed reads), a
// web session's principal, and, for scale, a password sign-in (one argon2id
// hash, paid once per sign-in, never per request). The floors are the
// SHA-256 of the token alone, and the token's row alone (all that a token
// cost before accounts).
func BenchmarkAuthenticate(b *testing.B) {
	db := storetest.Open(b, "sqlite")
	c := core.New(db, core.Options{})
	ctx := context.Background()
	if _, err := c.CreateEnvironment(ctx, "staging"); err != nil {
		b.Fatal(err)
	}
	u, err := c.CreateUser(ctx, "bench@example.com", "a benchmark password", core.RoleEditor)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.SetEnvironmentRole(ctx, u.ID, "staging", core.RoleViewer); err != nil {
		b.Fatal(err)
	}
	p, err := c.AuthenticatePassword(ctx, "bench@example.com", "a benchmark password", "bench")
	if err != nil {
		b.Fatal(err)
	}
	tok, err := c.CreateToken(core.WithPrincipal(ctx, p), "bench", "")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("floor-sha256", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sha256.Sum256([]byte(tok.Secret))
		}
	})
	// What a token cost before accounts: its row alone, in one read.
	hash := core.HashSecretHex(tok.Secret)
	b.Run("token-row-only", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := db.Read(ctx, func(tx core.Tx) error { _, _, err := tx.AdminTokenByHash(hash); return err }); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("token", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Authenticate(ctx, tok.Secret); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("session", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.SessionPrincipal(ctx, u.ID, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("password", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.AuthenticatePassword(ctx, "bench@example.com", "a benchmark password", "bench"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
