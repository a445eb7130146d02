package vault

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
)

// DataKey is one person's AES-256-GCM key. Sealed values are
// nonce || ciphertext || tag.
type DataKey struct {
	gcm cipher.AEAD
}

// NewDataKey makes a DataKey of 32 raw bytes, for keys kept outside the
// per-person hierarchy (a request's erasure key).
func NewDataKey(raw []byte) (*DataKey, error) { return newDataKey(raw) }

func newDataKey(raw []byte) (*DataKey, error) {
	if len(raw) != 32 {
		return nil, errors.New("data key: want 32 bytes")
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &DataKey{gcm: gcm}, nil
}

// Seal appends the encryption of plaintext, bound to ad, to dst. ad names
// what the value is (a table, a column, a row), so a ciphertext moved to
// another place does not open there.
func (k *DataKey) Seal(dst, plaintext, ad []byte) []byte {
	ns := k.gcm.NonceSize()
	dst = append(dst, make([]byte, ns)...)
	nonce := dst[len(dst)-ns:]
	_, _ = rand.Read(nonce)
	return k.gcm.Seal(dst, nonce, plaintext, ad)
}

// ErrUnreadable is returned when a value cannot be opened: it was sealed
// under another key (one that was destroyed, say) or altered.
var ErrUnreadable = errors.New("vault: value cannot be decrypted")

// Open returns the plaintext of a value sealed by Seal with the same ad.
func (k *DataKey) Open(sealed, ad []byte) ([]byte, error) {
	ns := k.gcm.NonceSize()
	if len(sealed) < ns+k.gcm.Overhead() {
		return nil, ErrUnreadable
	}
	pt, err := k.gcm.Open(nil, sealed[:ns], sealed[ns:], ad)
	if err != nil {
		return nil, ErrUnreadable
	}
	return pt, nil
}
