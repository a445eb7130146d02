package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

// secretEncoding is unpadded lower-case base32: safe in URLs, headers and
// Basic auth user names (no ':'), and easy to read aloud.
var secretEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewSecret returns prefix followed by 160 random bits. The prefix makes a
// leaked credential recognisable by secret scanners ("cwk_" write key,
// "cws_" write secret, "cat_" admin token).
func NewSecret(prefix string) string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	return prefix + secretEncoding.EncodeToString(b[:])
}

// NewID returns prefix followed by 80 random bits, for identifiers that are
// not secret but must not collide.
func NewID(prefix string) string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return prefix + secretEncoding.EncodeToString(b[:])
}

// Hash is how credentials are stored. Generated credentials carry 160
// random bits, so a fast hash is enough; it keeps per-request checks cheap
// at ingestion rates where a password hash would not be.
func Hash(secret string) []byte {
	h := sha256.Sum256([]byte(strings.TrimSpace(secret)))
	return h[:]
}
