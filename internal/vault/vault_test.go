package vault_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/vault"
)

// memKeys is a KeyStore in memory, shared by vaults to play several
// processes.
type memKeys struct {
	mu   sync.Mutex
	recs map[cdp.WorkspaceID]vault.WorkspaceKeyRecord
	sys  map[string][]byte
}

func (m *memKeys) SystemKey(_ context.Context, name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k, ok := m.sys[name]; ok {
		return k, nil
	}
	return nil, cdp.Errorf(cdp.NotFound, "no key")
}

func (m *memKeys) CreateSystemKey(_ context.Context, name string, sealed []byte) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sys == nil {
		m.sys = map[string][]byte{}
	}
	if k, ok := m.sys[name]; ok {
		return k, nil
	}
	m.sys[name] = sealed
	return sealed, nil
}

func (m *memKeys) WorkspaceKeys(_ context.Context, ws cdp.WorkspaceID) (vault.WorkspaceKeyRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[ws]
	if !ok {
		return r, cdp.Errorf(cdp.NotFound, "no keys")
	}
	return r, nil
}

func (m *memKeys) CreateWorkspaceKeys(_ context.Context, ws cdp.WorkspaceID, rec vault.WorkspaceKeyRecord) (vault.WorkspaceKeyRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.recs == nil {
		m.recs = map[cdp.WorkspaceID]vault.WorkspaceKeyRecord{}
	}
	if r, ok := m.recs[ws]; ok {
		return r, nil
	}
	m.recs[ws] = rec
	return rec, nil
}

func (m *memKeys) UpdateMasterKeyset(_ context.Context, ws cdp.WorkspaceID, ks []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.recs[ws]
	r.MasterKeyset = ks
	m.recs[ws] = r
	return nil
}

func newVault(t *testing.T, rootPath string, store *memKeys) *vault.Vault {
	t.Helper()
	root, err := vault.LoadRoot(rootPath, true)
	if err != nil {
		t.Fatal(err)
	}
	return vault.New(root, store)
}

func TestBlindIndex(t *testing.T) {
	ctx := context.Background()
	v := newVault(t, filepath.Join(t.TempDir(), "master.key"), &memKeys{})
	a, _ := v.Keys(ctx, "ws-a")
	b, _ := v.Keys(ctx, "ws-b")
	email := cdp.Identity{Type: cdp.Email, Value: "ada@example.com"}
	tests := []struct {
		name  string
		x, y  []byte
		equal bool
	}{
		{"same identity same workspace", a.BlindIndex(email), a.BlindIndex(email), true},
		{"same identity other workspace", a.BlindIndex(email), b.BlindIndex(email), false},
		{"same value other type", a.BlindIndex(email), a.BlindIndex(cdp.Identity{Type: cdp.UserID, Value: "ada@example.com"}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := bytes.Equal(tt.x, tt.y); got != tt.equal {
				t.Errorf("equal = %v, want %v", got, tt.equal)
			}
		})
	}
	if bytes.Contains(a.BlindIndex(email), []byte("ada")) {
		t.Error("blind index holds the plaintext")
	}
}

func TestSealOpenAndShred(t *testing.T) {
	ctx := context.Background()
	v := newVault(t, filepath.Join(t.TempDir(), "master.key"), &memKeys{})
	k, err := v.Keys(ctx, "ws")
	if err != nil {
		t.Fatal(err)
	}
	dk, wrapped, err := k.NewDataKey("prof-1")
	if err != nil {
		t.Fatal(err)
	}
	sealed := dk.Seal(nil, []byte("canary@example.com"), []byte("traits"))
	if bytes.Contains(sealed, []byte("canary")) {
		t.Fatal("sealed value holds the plaintext")
	}
	again, err := k.OpenDataKey(ctx, "prof-1", wrapped)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := again.Open(sealed, []byte("traits")); err != nil || string(pt) != "canary@example.com" {
		t.Fatalf("open: %q, %v", pt, err)
	}
	if _, err := again.Open(sealed, []byte("events")); !errors.Is(err, vault.ErrUnreadable) {
		t.Errorf("open with another ad: %v, want ErrUnreadable", err)
	}
	if _, err := k.OpenDataKey(ctx, "prof-2", wrapped); err == nil {
		t.Error("a data key opened as another profile's")
	}
	// Shredding is forgetting the wrapped key: a new key cannot read old data.
	other, _, _ := k.NewDataKey("prof-1")
	if _, err := other.Open(sealed, []byte("traits")); !errors.Is(err, vault.ErrUnreadable) {
		t.Errorf("open under a new key: %v, want ErrUnreadable", err)
	}
}

func TestRotationKeepsOldDataReadableAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store := &memKeys{}
	p1 := newVault(t, filepath.Join(dir, "master.key"), store)
	p2 := newVault(t, filepath.Join(dir, "master.key"), store) // same root file, another process
	k1, _ := p1.Keys(ctx, "ws")
	oldKey, oldWrapped, _ := k1.NewDataKey("prof-1")
	sealed := oldKey.Seal(nil, []byte("trait value"), nil)
	// p2 has the keyset cached before the rotation.
	k2, err := p2.Keys(ctx, "ws")
	if err != nil {
		t.Fatal(err)
	}
	if k2.MasterVersions() != 1 {
		t.Fatalf("p2 caches %d master versions, want 1", k2.MasterVersions())
	}

	k1, err = p1.Rotate(ctx, "ws")
	if err != nil {
		t.Fatal(err)
	}
	if k1.MasterVersions() != 2 {
		t.Fatalf("got %d master versions, want 2", k1.MasterVersions())
	}
	rewrapped, err := k1.RewrapDataKey(ctx, "prof-1", oldWrapped)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(rewrapped, oldWrapped) {
		t.Fatal("rewrap returned the same bytes")
	}
	_, newWrapped, _ := k1.NewDataKey("prof-2")

	// p2, with the keyset it cached before the rotation, opens the key
	// wrapped before, rewrapped under the new version, and wrapped new
	// (the last two make it reload the keyset once).
	for name, w := range map[string][]byte{"old": oldWrapped, "rewrapped": rewrapped} {
		dk, err := k2.OpenDataKey(ctx, "prof-1", w)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if pt, err := dk.Open(sealed, nil); err != nil || string(pt) != "trait value" {
			t.Errorf("%s: open %q, %v", name, pt, err)
		}
	}
	if _, err := k2.OpenDataKey(ctx, "prof-2", newWrapped); err != nil {
		t.Errorf("key wrapped after rotation: %v", err)
	}
}

func TestWrongRootCannotOpenWorkspaceKeys(t *testing.T) {
	ctx := context.Background()
	store := &memKeys{}
	if _, err := newVault(t, filepath.Join(t.TempDir(), "a.key"), store).Keys(ctx, "ws"); err != nil {
		t.Fatal(err)
	}
	if _, err := newVault(t, filepath.Join(t.TempDir(), "b.key"), store).Keys(ctx, "ws"); err == nil {
		t.Fatal("another root key opened the workspace keys")
	}
}

func TestLoadRootMissingFile(t *testing.T) {
	if _, err := vault.LoadRoot(filepath.Join(t.TempDir(), "none.key"), false); err == nil {
		t.Fatal("loaded a root key from a missing file without create")
	}
}

func TestSystemKeySharedAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store := &memKeys{}
	a, err := newVault(t, filepath.Join(dir, "master.key"), store).SystemKey(ctx, "log")
	if err != nil {
		t.Fatal(err)
	}
	b, err := newVault(t, filepath.Join(dir, "master.key"), store).SystemKey(ctx, "log")
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 32 || !bytes.Equal(a, b) {
		t.Fatalf("two processes got different system keys (%d, %d bytes)", len(a), len(b))
	}
	if bytes.Equal(vault.DeriveKey(a, "x"), vault.DeriveKey(a, "y")) || bytes.Equal(vault.DeriveKey(a, "x"), a) {
		t.Error("derived keys for two purposes are not distinct")
	}
	if _, err := newVault(t, filepath.Join(t.TempDir(), "other.key"), store).SystemKey(ctx, "log"); err == nil {
		t.Error("another root key opened the system key")
	}
}
