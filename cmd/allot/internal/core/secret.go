package core

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
)

// Secret prefixes make leaked secrets recognisable (and greppable by secret
// scanners).
const (
	SDKKeyPrefix     = "allot_sdk_"
	ClientKeyPrefix  = "allot_client_"
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
func HashSecret(secret string) [32]byte {
	// Copied to the stack: the config endpoint hashes the apiKey of every
	// request, and a conversion would allocate for any key past 32 bytes.
	var buf [128]byte
	if len(secret) <= len(buf) {
		return sha256.Sum256(append(buf[:0], secret...))
	}
	return sha256.Sum256([]byte(secret))
}

// HashSecretHex is HashSecret in hex, as stored.
func HashSecretHex(secret string) string {
	h := HashSecret(secret)
	return hex.EncodeToString(h[:])
}

// randomSalt returns a new shard salt: 16 hex characters (64 random bits).
// Salts are short on purpose: an SDK hashes salt + "-" + subject key with
// MD5, and an input of up to 55 bytes takes one MD5 block where a longer one
// takes two, doubling the hashing cost of every assignment. With 16
// characters, subject keys up to 38 bytes (UUIDs included) stay in one block.
func randomSalt() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
