package vault

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// Root is the key that encrypts every workspace's keys. It lives only in
// its file (or a secret store that provides the file).
type Root struct {
	aead tink.AEAD
}

// LoadRoot reads the root keyset from path, creating it (mode 0600) when
// create is true and the file does not exist.
func LoadRoot(path string, create bool) (*Root, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && create {
		return createRoot(path)
	}
	if err != nil {
		return nil, fmt.Errorf("master key file: %w", err)
	}
	h, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(bytes.NewReader(b)))
	if err != nil {
		return nil, fmt.Errorf("master key file %s: not a Tink keyset: %w", path, err)
	}
	return rootFromHandle(h)
}

func createRoot(path string) (*Root, error) {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(&buf)); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("master key file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("master key file: %w", err)
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Close()
		return nil, fmt.Errorf("master key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("master key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return rootFromHandle(h)
}

func rootFromHandle(h *keyset.Handle) (*Root, error) {
	a, err := aead.New(h)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	return &Root{aead: a}, nil
}
