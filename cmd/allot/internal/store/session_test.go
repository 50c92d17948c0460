package store_test

import (
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
)

func TestSessions(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := ctxAs("t")
		now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		db.SetClock(func() time.Time { return now })
		tok, err := coreOf(db).CreateAdminToken(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		s, err := db.CreateSession(ctx, tok.UserID, tok.ID, time.Hour)
		if err != nil || s.Secret == "" || s.CSRF == "" || s.TokenID != tok.ID || tok.UserID == 0 || !s.ExpiresAt.Equal(now.Add(time.Hour)) {
			t.Fatalf("create: %+v %v", s, err)
		}
		got, err := db.Session(ctx, s.Secret)
		if err != nil || got.CSRF != s.CSRF || got.TokenID != tok.ID || got.UserID != tok.UserID || got.Secret != "" {
			t.Fatalf("lookup: %+v %v", got, err)
		}
		_, err = db.Session(ctx, s.Secret+"x")
		wantCode(t, err, core.EUNAUTHORIZED)

		// Expiry.
		now = now.Add(time.Hour)
		_, err = db.Session(ctx, s.Secret)
		wantCode(t, err, core.EUNAUTHORIZED)

		// Sign out.
		s2, err := db.CreateSession(ctx, tok.UserID, tok.ID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteSession(ctx, s2.Secret); err != nil {
			t.Fatal(err)
		}
		_, err = db.Session(ctx, s2.Secret)
		wantCode(t, err, core.EUNAUTHORIZED)

		// Revoking the token ends its sessions and refuses new ones.
		s3, _ := db.CreateSession(ctx, tok.UserID, tok.ID, time.Hour)
		if _, err := coreOf(db).CreateAdminToken(ctx, "spare"); err != nil { // the last one cannot be revoked
			t.Fatal(err)
		}
		if err := coreOf(db).RevokeAdminToken(ctx, tok.ID); err != nil {
			t.Fatal(err)
		}
		_, err = db.Session(ctx, s3.Secret)
		wantCode(t, err, core.EUNAUTHORIZED)
		_, err = db.CreateSession(ctx, tok.UserID, tok.ID, time.Hour)
		wantCode(t, err, core.EUNAUTHORIZED)

		// A password session; disabling the account ends it.
		u, err := coreOf(db).CreateUser(ctx, "Bob@Example.com ", "correct horse battery", core.RoleEditor)
		if err != nil || u.Email != "bob@example.com" {
			t.Fatalf("create user: %+v %v", u, err)
		}
		s4, err := db.CreateSession(ctx, u.ID, 0, time.Hour)
		if err != nil || s4.TokenID != 0 {
			t.Fatalf("password session: %+v %v", s4, err)
		}
		if got, err := db.Session(ctx, s4.Secret); err != nil || got.UserID != u.ID {
			t.Fatalf("lookup: %+v %v", got, err)
		}
		if _, err := coreOf(db).DisableUser(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		_, err = db.Session(ctx, s4.Secret)
		wantCode(t, err, core.EUNAUTHORIZED)
		_, err = db.CreateSession(ctx, u.ID, 0, time.Hour)
		wantCode(t, err, core.EUNAUTHORIZED)
	})
}

func TestSDKKeyLastUse(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := ctxAs("t")
		k, err := coreOf(db).CreateSDKKey(ctx, "production", "web")
		if err != nil {
			t.Fatal(err)
		}
		keys, _ := coreOf(db).SDKKeys(ctx)
		if keys[0].LastUsedAt != nil {
			t.Fatalf("new key used at %v", keys[0].LastUsedAt)
		}
		at := time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)
		h := core.HashSecret(k.Secret)
		if err := db.RecordSDKKeyUse(ctx, map[[32]byte]time.Time{h: at}); err != nil {
			t.Fatal(err)
		}
		// An older report does not move it back.
		if err := db.RecordSDKKeyUse(ctx, map[[32]byte]time.Time{h: at.Add(-time.Hour)}); err != nil {
			t.Fatal(err)
		}
		keys, _ = coreOf(db).SDKKeys(ctx)
		if keys[0].LastUsedAt == nil || !keys[0].LastUsedAt.Equal(at) {
			t.Fatalf("last used %v, want %v", keys[0].LastUsedAt, at)
		}
	})
}
