package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
)

// Secret prefixes make leaked secrets recognisable (and greppable by secret
// scanners).
const (
	SDKKeyPrefix     = "allot_sdk_"
	AdminTokenPrefix = "allot_admin_"
)

// newSecret returns a random secret with prefix, the part of it shown in
// listings, and its hash.
func newSecret(prefix string) (secret, display, hash string) {
	var b [24]byte
	rand.Read(b[:]) // never fails (crypto/rand panics rather than return an error)
	secret = prefix + hex.EncodeToString(b[:])
	return secret, secret[:len(prefix)+6], HashSecretHex(secret)
}

// HashSecret is the SHA-256 of a secret, which is all the database keeps.
func HashSecret(secret string) [32]byte { return sha256.Sum256([]byte(secret)) }

// HashSecretHex is HashSecret in hex, as stored.
func HashSecretHex(secret string) string {
	h := HashSecret(secret)
	return hex.EncodeToString(h[:])
}

func randomSalt(kind string) string {
	var b [12]byte
	rand.Read(b[:])
	return kind + "-" + hex.EncodeToString(b[:])
}

type actorKey struct{}

// WithActor names who makes the changes done with ctx, for the audit log.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// Actor returns the actor WithActor stored in ctx, or "system".
func Actor(ctx context.Context) string {
	if a, ok := ctx.Value(actorKey{}).(string); ok && a != "" {
		return a
	}
	return "system"
}
