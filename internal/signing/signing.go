// Package signing makes and checks signed statements that outlive the
// moment: consent receipts and proofs of data subject requests. A statement
// is a JWS in compact serialisation (RFC 7515) signed with Ed25519 (EdDSA,
// RFC 8037), so anyone holding the published public key can verify it with
// any JOSE library, years later.
package signing

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
)

// Key is an Ed25519 signing key with its id.
type Key struct {
	ID      string
	Private ed25519.PrivateKey
}

// NewKey makes a key; its id is derived from the public key.
func NewKey() (Key, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Key{}, err
	}
	return Key{ID: KeyID(pub), Private: priv}, nil
}

// KeyID names a public key: the first 16 hex characters of its SHA-256.
func KeyID(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return hex.EncodeToString(h[:8])
}

// Public returns the public half.
func (k Key) Public() ed25519.PublicKey { return k.Private.Public().(ed25519.PublicKey) }

var b64 = base64.RawURLEncoding

type header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ,omitempty"`
}

// Sign returns payload signed as a compact JWS of type typ.
func Sign(k Key, typ string, payload []byte) (string, error) {
	h, err := json.Marshal(header{Alg: "EdDSA", Kid: k.ID, Typ: typ})
	if err != nil {
		return "", err
	}
	signingInput := b64.EncodeToString(h) + "." + b64.EncodeToString(payload)
	sig := ed25519.Sign(k.Private, []byte(signingInput))
	return signingInput + "." + b64.EncodeToString(sig), nil
}

// ErrBadSignature means a JWS is malformed, signed by another key, or
// altered.
var ErrBadSignature = errors.New("signing: bad signature")

// Verify checks a compact JWS against pub and returns its payload.
func Verify(pub ed25519.PublicKey, jws string) ([]byte, error) {
	parts := strings.Split(jws, ".")
	if len(parts) != 3 {
		return nil, ErrBadSignature
	}
	hb, err := b64.DecodeString(parts[0])
	if err != nil {
		return nil, ErrBadSignature
	}
	var h header
	if err := json.NewDecoder(bytes.NewReader(hb)).Decode(&h); err != nil || h.Alg != "EdDSA" {
		return nil, ErrBadSignature
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil || !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig) {
		return nil, ErrBadSignature
	}
	payload, err := b64.DecodeString(parts[1])
	if err != nil {
		return nil, ErrBadSignature
	}
	return payload, nil
}

// JWK is a public key in JSON Web Key form (RFC 8037).
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
}

// PublicJWK returns the JWK of a public key.
func PublicJWK(id string, pub ed25519.PublicKey) JWK {
	return JWK{Kty: "OKP", Crv: "Ed25519", X: b64.EncodeToString(pub), Kid: id, Use: "sig", Alg: "EdDSA"}
}
