package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
)

// Session is a browser signed in to the web UI with an admin token. It ends
// when it expires, when it is deleted (sign out), or when its admin token is
// revoked.
type Session struct {
	Token     core.AdminToken // the admin token that signed in (no secret)
	CSRF      string          // the synchronizer token every form must carry
	CreatedAt time.Time
	ExpiresAt time.Time
	// Secret is the cookie value; set only by CreateSession. The database
	// keeps its SHA-256.
	Secret string
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// CreateSession starts a session for a live admin token, valid for ttl, and
// removes expired sessions.
func (d *DB) CreateSession(ctx context.Context, tokenID int64, ttl time.Duration) (Session, error) {
	s := Session{Secret: randomHex(32), CSRF: randomHex(32)}
	err := d.tx(ctx, func(tx *sql.Tx) error {
		var created int64
		err := tx.QueryRowContext(ctx, d.q(`SELECT id, name, prefix, created_at FROM admin_tokens WHERE id = ? AND revoked_at IS NULL`), tokenID).
			Scan(&s.Token.ID, &s.Token.Name, &s.Token.Prefix, &created)
		if errors.Is(err, sql.ErrNoRows) {
			return core.Errorf(core.EUNAUTHORIZED, "invalid or revoked admin token")
		}
		if err != nil {
			return err
		}
		s.Token.CreatedAt = fromMicros(created)
		now := fromMicros(micros(d.now()))
		s.CreatedAt, s.ExpiresAt = now, fromMicros(micros(now.Add(ttl)))
		if _, err := tx.ExecContext(ctx, d.q(`DELETE FROM sessions WHERE expires_at <= ?`), micros(now)); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, d.q(`INSERT INTO sessions (id, token_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`),
			core.HashSecretHex(s.Secret), tokenID, s.CSRF, micros(s.CreatedAt), micros(s.ExpiresAt))
		return err
	})
	if err != nil {
		return Session{}, err
	}
	return s, nil
}

// Session returns the live session whose cookie secret is given, or an
// EUNAUTHORIZED error if it is unknown, expired, or its token was revoked.
func (d *DB) Session(ctx context.Context, secret string) (Session, error) {
	var s Session
	var tokCreated, created, expires int64
	err := d.db.QueryRowContext(ctx, d.q(`SELECT t.id, t.name, t.prefix, t.created_at, s.csrf, s.created_at, s.expires_at
		FROM sessions s JOIN admin_tokens t ON t.id = s.token_id
		WHERE s.id = ? AND s.expires_at > ? AND t.revoked_at IS NULL`), core.HashSecretHex(secret), micros(d.now())).
		Scan(&s.Token.ID, &s.Token.Name, &s.Token.Prefix, &tokCreated, &s.CSRF, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, core.Errorf(core.EUNAUTHORIZED, "not signed in, or the session has ended")
	}
	if err != nil {
		return Session{}, err
	}
	s.Token.CreatedAt, s.CreatedAt, s.ExpiresAt = fromMicros(tokCreated), fromMicros(created), fromMicros(expires)
	return s, nil
}

// DeleteSession ends a session (sign out). Ending an unknown session is not
// an error.
func (d *DB) DeleteSession(ctx context.Context, secret string) error {
	_, err := d.db.ExecContext(ctx, d.q(`DELETE FROM sessions WHERE id = ?`), core.HashSecretHex(secret))
	return err
}
