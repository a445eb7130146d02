package bus

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
)

// entryCipher seals log entries before they leave the process, so that the
// log holds no readable personal data in any deployment: the embedded store
// is encrypted as well, but an external cluster's disks are not ours to
// configure.
type entryCipher struct{ gcm cipher.AEAD }

var entryAD = []byte("custos/log-entry/v1")

func newEntryCipher(key []byte) (*entryCipher, error) {
	if len(key) != 32 {
		return nil, errors.New("event log: entry key must be 32 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &entryCipher{gcm: gcm}, nil
}

func (c *entryCipher) seal(plain []byte) []byte {
	out := make([]byte, c.gcm.NonceSize(), c.gcm.NonceSize()+len(plain)+c.gcm.Overhead())
	_, _ = rand.Read(out)
	return c.gcm.Seal(out, out, plain, entryAD)
}

func (c *entryCipher) open(sealed []byte) ([]byte, error) {
	ns := c.gcm.NonceSize()
	if len(sealed) < ns+c.gcm.Overhead() {
		return nil, errors.New("event log: entry too short")
	}
	return c.gcm.Open(nil, sealed[:ns], sealed[ns:], entryAD)
}
