package vault

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"hash"
	"sync"
	"time"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/custos-cdp/custos/internal/cdp"
)

// WorkspaceKeyRecord is a workspace's keys as stored: both encrypted under
// the root key.
type WorkspaceKeyRecord struct {
	MasterKeyset []byte // Tink keyset, encrypted
	IndexKey     []byte // blind-index key, encrypted
}

// KeyStore keeps workspace key records.
type KeyStore interface {
	// WorkspaceKeys returns the record; NotFound if the workspace has none.
	WorkspaceKeys(ctx context.Context, ws cdp.WorkspaceID) (WorkspaceKeyRecord, error)
	// CreateWorkspaceKeys stores rec unless the workspace already has keys,
	// and returns the record that is stored now (rec, or the earlier one).
	CreateWorkspaceKeys(ctx context.Context, ws cdp.WorkspaceID, rec WorkspaceKeyRecord) (WorkspaceKeyRecord, error)
	// UpdateMasterKeyset replaces the encrypted master keyset.
	UpdateMasterKeyset(ctx context.Context, ws cdp.WorkspaceID, masterKeyset []byte) error
	// SystemKey returns a sealed process-wide key by name; NotFound if none.
	SystemKey(ctx context.Context, name string) ([]byte, error)
	// CreateSystemKey stores a sealed key unless one of that name exists,
	// and returns the one stored now.
	CreateSystemKey(ctx context.Context, name string, sealed []byte) ([]byte, error)
}

// Vault hands out each workspace's keys, creating them on first use.
type Vault struct {
	root  *Root
	store KeyStore

	mu   sync.Mutex
	keys map[cdp.WorkspaceID]*Keys
	now  func() time.Time
	ttl  time.Duration
}

// SystemKey returns a 32-byte key shared by every process of a deployment
// (they share the database and the root key), creating it on first use.
// Use DeriveKey to get keys for separate purposes from it.
func (v *Vault) SystemKey(ctx context.Context, name string) ([]byte, error) {
	ad := []byte("custos/system-key/" + name)
	sealed, err := v.store.SystemKey(ctx, name)
	if cdp.IsKind(err, cdp.NotFound) {
		raw := make([]byte, 32)
		_, _ = rand.Read(raw)
		if sealed, err = v.root.aead.Encrypt(raw, ad); err != nil {
			return nil, err
		}
		sealed, err = v.store.CreateSystemKey(ctx, name, sealed)
	}
	if err != nil {
		return nil, fmt.Errorf("system key %s: %w", name, err)
	}
	raw, err := v.root.aead.Decrypt(sealed, ad)
	if err != nil {
		return nil, fmt.Errorf("open system key %s (wrong master key file?): %w", name, err)
	}
	return raw, nil
}

// DeriveKey returns a 32-byte key for one purpose from a secret, so one
// system key can serve several uses without reusing key material.
func DeriveKey(secret []byte, purpose string) []byte {
	k, err := hkdf.Key(sha256.New, secret, nil, "custos/"+purpose, 32)
	if err != nil {
		panic("vault: hkdf: " + err.Error()) // only for lengths hkdf refuses, never 32
	}
	return k
}

// New returns a vault over store, with keys encrypted under root.
func New(root *Root, store KeyStore) *Vault {
	return &Vault{root: root, store: store, keys: map[cdp.WorkspaceID]*Keys{}, now: time.Now, ttl: 30 * time.Second}
}

// Keys returns the workspace's keys. They are cached; a master keyset
// rotated by another process is picked up when a data key does not open
// under the cached one, or after 30 seconds.
func (v *Vault) Keys(ctx context.Context, ws cdp.WorkspaceID) (*Keys, error) {
	v.mu.Lock()
	k := v.keys[ws]
	v.mu.Unlock()
	if k != nil && v.now().Before(k.loadedAt.Add(v.ttl)) {
		return k, nil
	}
	return v.load(ctx, ws)
}

func (v *Vault) load(ctx context.Context, ws cdp.WorkspaceID) (*Keys, error) {
	rec, err := v.store.WorkspaceKeys(ctx, ws)
	if cdp.IsKind(err, cdp.NotFound) {
		rec, err = v.create(ctx, ws)
	}
	if err != nil {
		return nil, fmt.Errorf("workspace keys: %w", err)
	}
	k, err := v.open(ws, rec)
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	v.keys[ws] = k
	v.mu.Unlock()
	return k, nil
}

func masterAD(ws cdp.WorkspaceID) []byte { return []byte("custos/master-keyset/" + ws) }
func indexAD(ws cdp.WorkspaceID) []byte  { return []byte("custos/index-key/" + ws) }

func (v *Vault) create(ctx context.Context, ws cdp.WorkspaceID) (WorkspaceKeyRecord, error) {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return WorkspaceKeyRecord{}, err
	}
	master, err := v.sealKeyset(ws, h)
	if err != nil {
		return WorkspaceKeyRecord{}, err
	}
	idx := make([]byte, 32)
	_, _ = rand.Read(idx)
	sealedIdx, err := v.root.aead.Encrypt(idx, indexAD(ws))
	if err != nil {
		return WorkspaceKeyRecord{}, err
	}
	return v.store.CreateWorkspaceKeys(ctx, ws, WorkspaceKeyRecord{MasterKeyset: master, IndexKey: sealedIdx})
}

func (v *Vault) sealKeyset(ws cdp.WorkspaceID, h *keyset.Handle) ([]byte, error) {
	var buf bytes.Buffer
	if err := h.WriteWithAssociatedData(keyset.NewBinaryWriter(&buf), v.root.aead, masterAD(ws)); err != nil {
		return nil, fmt.Errorf("seal master keyset: %w", err)
	}
	return buf.Bytes(), nil
}

func (v *Vault) open(ws cdp.WorkspaceID, rec WorkspaceKeyRecord) (*Keys, error) {
	h, err := keyset.ReadWithAssociatedData(keyset.NewBinaryReader(bytes.NewReader(rec.MasterKeyset)), v.root.aead, masterAD(ws))
	if err != nil {
		return nil, fmt.Errorf("open master keyset of workspace (wrong master key file?): %w", err)
	}
	master, err := aead.New(h)
	if err != nil {
		return nil, err
	}
	idx, err := v.root.aead.Decrypt(rec.IndexKey, indexAD(ws))
	if err != nil {
		return nil, fmt.Errorf("open blind-index key (wrong master key file?): %w", err)
	}
	return &Keys{vault: v, ws: ws, handle: h, master: master, indexKey: idx, loadedAt: v.now()}, nil
}

// Rotate adds a new master key version to the workspace, makes it the one
// that wraps new data keys, and stores the keyset. Data keys wrapped by
// older versions stay readable; RewrapDataKey moves them to the new one.
func (v *Vault) Rotate(ctx context.Context, ws cdp.WorkspaceID) (*Keys, error) {
	k, err := v.load(ctx, ws)
	if err != nil {
		return nil, err
	}
	mgr := keyset.NewManagerFromHandle(k.handle)
	id, err := mgr.Add(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, err
	}
	if err := mgr.SetPrimary(id); err != nil {
		return nil, err
	}
	h, err := mgr.Handle()
	if err != nil {
		return nil, err
	}
	sealed, err := v.sealKeyset(ws, h)
	if err != nil {
		return nil, err
	}
	if err := v.store.UpdateMasterKeyset(ctx, ws, sealed); err != nil {
		return nil, fmt.Errorf("store rotated master keyset: %w", err)
	}
	return v.load(ctx, ws)
}

// Keys are one workspace's keys.
type Keys struct {
	vault    *Vault
	ws       cdp.WorkspaceID
	handle   *keyset.Handle
	master   tink.AEAD
	indexKey []byte
	loadedAt time.Time
	// macs holds HMACs keyed with indexKey: keying one costs more than
	// hashing a short identity, and the processor hashes several per event.
	macs sync.Pool
}

// MasterVersions is the number of master key versions in the keyset.
func (k *Keys) MasterVersions() int { return k.handle.Len() }

// BlindIndex returns the keyed hash under which an identity is looked up.
// Equal identities (after normalisation) give equal indexes; the index
// reveals nothing about the value without the workspace's index key.
func (k *Keys) BlindIndex(id cdp.Identity) []byte {
	m, _ := k.macs.Get().(hash.Hash)
	if m == nil {
		m = hmac.New(sha256.New, k.indexKey)
	}
	m.Reset()
	m.Write([]byte(id.Type))
	m.Write([]byte{0})
	m.Write([]byte(id.Value))
	sum := m.Sum(make([]byte, 0, sha256.Size))
	k.macs.Put(m)
	return sum
}

func dataKeyAD(ws cdp.WorkspaceID, owner string) []byte {
	return []byte("custos/data-key/" + string(ws) + "/" + owner)
}

// NewDataKey makes a data key for owner (a profile id) and returns it with
// its wrapped form, the only form that is stored.
func (k *Keys) NewDataKey(owner string) (*DataKey, []byte, error) {
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	wrapped, err := k.master.Encrypt(raw, dataKeyAD(k.ws, owner))
	if err != nil {
		return nil, nil, fmt.Errorf("wrap data key: %w", err)
	}
	dk, err := newDataKey(raw)
	clear(raw)
	return dk, wrapped, err
}

// OpenDataKey unwraps owner's data key. If the master key version that
// wrapped it is not in the cached keyset (another process rotated), the
// keyset is reloaded once.
func (k *Keys) OpenDataKey(ctx context.Context, owner string, wrapped []byte) (*DataKey, error) {
	raw, err := k.master.Decrypt(wrapped, dataKeyAD(k.ws, owner))
	if err != nil {
		fresh, lerr := k.vault.load(ctx, k.ws)
		if lerr != nil {
			return nil, lerr
		}
		if raw, err = fresh.master.Decrypt(wrapped, dataKeyAD(k.ws, owner)); err != nil {
			return nil, ErrUnreadable
		}
	}
	defer clear(raw)
	return newDataKey(raw)
}

// RewrapDataKey re-encrypts a wrapped data key under the current primary
// master key version.
func (k *Keys) RewrapDataKey(ctx context.Context, owner string, wrapped []byte) ([]byte, error) {
	raw, err := k.master.Decrypt(wrapped, dataKeyAD(k.ws, owner))
	if err != nil {
		return nil, ErrUnreadable
	}
	defer clear(raw)
	return k.master.Encrypt(raw, dataKeyAD(k.ws, owner))
}

// SealWithRoot encrypts a deployment secret (a feed's secret, a signing
// key) under the root key, bound to ad.
func (v *Vault) SealWithRoot(plaintext, ad []byte) ([]byte, error) {
	return v.root.aead.Encrypt(plaintext, ad)
}

// OpenWithRoot decrypts what SealWithRoot sealed with the same ad.
func (v *Vault) OpenWithRoot(sealed, ad []byte) ([]byte, error) {
	pt, err := v.root.aead.Decrypt(sealed, ad)
	if err != nil {
		return nil, ErrUnreadable
	}
	return pt, nil
}

// HashedIndex is the keyed hash under which an identity is found when a
// request names it by a hash of its value (format sha256, sha1 or md5;
// hexHash lower-case hex), as data subject requests may.
func (k *Keys) HashedIndex(t cdp.IdentityType, format, hexHash string) []byte {
	m := hmac.New(sha256.New, k.indexKey)
	m.Write([]byte("hashed\x00" + format + "\x00" + string(t) + "\x00" + hexHash))
	return m.Sum(nil)
}

// SystemSecret returns a deployment-wide secret of any size, stored sealed
// under the root key, creating it with make on first use. Every process of
// a deployment gets the same one (the OpenDSR signing key, say).
func (v *Vault) SystemSecret(ctx context.Context, name string, make func() ([]byte, error)) ([]byte, error) {
	ad := []byte("custos/system-secret/" + name)
	sealed, err := v.store.SystemKey(ctx, name)
	if cdp.IsKind(err, cdp.NotFound) {
		raw, err := make()
		if err != nil {
			return nil, err
		}
		if sealed, err = v.root.aead.Encrypt(raw, ad); err != nil {
			return nil, err
		}
		sealed, err = v.store.CreateSystemKey(ctx, name, sealed)
		if err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	raw, err := v.root.aead.Decrypt(sealed, ad)
	if err != nil {
		return nil, fmt.Errorf("open system secret %s (wrong master key file?): %w", name, err)
	}
	return raw, nil
}
