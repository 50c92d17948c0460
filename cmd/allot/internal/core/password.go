package core

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Passwords are hashed with argon2id (RFC 9106), memory-hard, with a random
// 16-byte salt per password, and stored as a PHC string:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt, base64>$<hash, base64>
//
// The parameters are OWASP's first recommendation for argon2id (19 MiB, two
// passes, one lane): about 30 ms on one core of a 2026 laptop. They are kept
// in each stored string, so raising them later leaves old passwords valid.
const (
	argonMemory  = 19 * 1024 // KiB
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// Password limits: long enough to resist guessing, short enough that
// hashing one is bounded work.
const (
	MinPasswordLength = 12  // characters
	MaxPasswordLength = 256 // characters
	MaxEmailLength    = 254 // bytes (RFC 5321's path limit)
)

// CheckPassword checks a new password against the limits.
func CheckPassword(pw string) error {
	if !utf8.ValidString(pw) {
		return Invalid("password", "is not valid UTF-8")
	}
	n := utf8.RuneCountInString(pw)
	if n < MinPasswordLength {
		return Invalid("password", "is %d characters; the minimum is %d", n, MinPasswordLength)
	}
	if n > MaxPasswordLength {
		return Invalid("password", "is %d characters; the limit is %d", n, MaxPasswordLength)
	}
	return nil
}

// HashPassword returns the PHC string of pw with a new random salt.
func HashPassword(pw string) string {
	salt := make([]byte, argonSaltLen)
	rand.Read(salt)
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// VerifyPassword reports whether pw matches the PHC string stored, in
// constant time over the derived key. A malformed string, or one whose
// parameters are out of bounds (which a tampered database could use to make
// every sign-in cost gigabytes), never matches.
func VerifyPassword(stored, pw string) bool {
	parts := strings.Split(stored, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return false
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false
	}
	if m < 8 || m > 1<<20 || t < 1 || t > 16 || p < 1 || p > 16 {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(want) < 16 || len(want) > 64 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// dummyHash is verified against when an email is unknown, so that a
// sign-in takes as long whether or not the account exists.
// It is made on first use: every CLI command need not pay for it.
var dummyHash = sync.OnceValue(func() string { return HashPassword("not the password of anyone at all") })

// NormalizeEmail trims and lower-cases an email and checks its form: one
// "@" with something on both sides, no spaces or control characters, at most
// MaxEmailLength bytes.
func NormalizeEmail(email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	if err := checkText("email", e, MaxEmailLength, true); err != nil {
		return "", err
	}
	at := strings.IndexByte(e, '@')
	if at <= 0 || at != strings.LastIndexByte(e, '@') || at == len(e)-1 ||
		strings.ContainsFunc(e, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '<' || r == '>' || r == ',' }) {
		return "", Invalid("email", "must be an address such as ada@example.com")
	}
	return e, nil
}
