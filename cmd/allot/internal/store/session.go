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

// Session is a browser signed in to the web UI: an account, signed in with
// its password or with one of its tokens. It ends when it expires, when it
// is deleted (sign out), when its account is disabled or its password
// changed (a password session), or when its token is revoked.
type Session struct {
	UserID    int64
	TokenID   int64  // the token that signed in; 0 for a password
	CSRF      string // the synchronizer token every form must carry
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

// CreateSession starts a session for an enabled account (and the live
// token it signed in with, if tokenID is not 0), valid for ttl, and removes
// expired sessions.
func (d *DB) CreateSession(ctx context.Context, userID, tokenID int64, ttl time.Duration) (Session, error) {
	s := Session{UserID: userID, TokenID: tokenID, Secret: randomHex(32), CSRF: randomHex(32)}
	err := d.tx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, d.q(`SELECT 1 FROM users WHERE id = ? AND disabled_at IS NULL`), userID).Scan(&one)
		if err == nil && tokenID != 0 {
			err = tx.QueryRowContext(ctx, d.q(`SELECT 1 FROM admin_tokens WHERE id = ? AND user_id = ? AND revoked_at IS NULL`), tokenID, userID).Scan(&one)
		}
		if errors.Is(err, sql.ErrNoRows) {
			return core.Errorf(core.EUNAUTHORIZED, "the account is disabled or the token revoked")
		}
		if err != nil {
			return err
		}
		now := fromMicros(micros(d.now()))
		s.CreatedAt, s.ExpiresAt = now, fromMicros(micros(now.Add(ttl)))
		if _, err := tx.ExecContext(ctx, d.q(`DELETE FROM sessions WHERE expires_at <= ?`), micros(now)); err != nil {
			return err
		}
		var tok any
		if tokenID != 0 {
			tok = tokenID
		}
		_, err = tx.ExecContext(ctx, d.q(`INSERT INTO sessions (id, user_id, token_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`),
			core.HashSecretHex(s.Secret), userID, tok, s.CSRF, micros(s.CreatedAt), micros(s.ExpiresAt))
		return err
	})
	if err != nil {
		return Session{}, err
	}
	return s, nil
}

// Session returns the live session whose cookie secret is given, or an
// EUNAUTHORIZED error if it is unknown, expired, its account disabled or
// its token revoked.
func (d *DB) Session(ctx context.Context, secret string) (Session, error) {
	var s Session
	var tok sql.NullInt64
	var created, expires int64
	err := d.db.QueryRowContext(ctx, d.q(`SELECT s.user_id, s.token_id, s.csrf, s.created_at, s.expires_at
		FROM sessions s JOIN users u ON u.id = s.user_id LEFT JOIN admin_tokens t ON t.id = s.token_id
		WHERE s.id = ? AND s.expires_at > ? AND u.disabled_at IS NULL AND (s.token_id IS NULL OR t.revoked_at IS NULL)`), core.HashSecretHex(secret), micros(d.now())).
		Scan(&s.UserID, &tok, &s.CSRF, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, core.Errorf(core.EUNAUTHORIZED, "not signed in, or the session has ended")
	}
	if err != nil {
		return Session{}, err
	}
	s.TokenID = tok.Int64
	s.CreatedAt, s.ExpiresAt = fromMicros(created), fromMicros(expires)
	return s, nil
}

// DeleteSession ends a session (sign out). Ending an unknown session is not
// an error.
func (d *DB) DeleteSession(ctx context.Context, secret string) error {
	_, err := d.db.ExecContext(ctx, d.q(`DELETE FROM sessions WHERE id = ?`), core.HashSecretHex(secret))
	return err
}
