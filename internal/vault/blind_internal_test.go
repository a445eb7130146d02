package vault

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"testing"

	"github.com/custos-cdp/custos/internal/cdp"
)

// TestBlindIndexFormat pins what a blind index is, HMAC-SHA256 under the
// index key of type, a zero byte and the value: every stored identity is
// found by it, so a change here would silently lose them all. Reused
// HMACs must give the same answer however calls interleave.
func TestBlindIndexFormat(t *testing.T) {
	k := &Keys{indexKey: bytes.Repeat([]byte{7}, 32)}
	want := func(id cdp.Identity) []byte {
		m := hmac.New(sha256.New, k.indexKey)
		m.Write([]byte(string(id.Type) + "\x00" + id.Value))
		return m.Sum(nil)
	}
	ids := []cdp.Identity{
		{Type: cdp.Email, Value: "ada@example.com"},
		{Type: cdp.UserID, Value: "ada@example.com"},
		{Type: cdp.AnonymousID, Value: "a"},
	}
	for round := range 3 {
		for _, id := range ids {
			if got := k.BlindIndex(id); !bytes.Equal(got, want(id)) {
				t.Fatalf("round %d, %s: blind index %x, want %x", round, id.Type, got, want(id))
			}
		}
	}
}
