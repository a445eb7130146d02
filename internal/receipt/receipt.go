// Package receipt issues signed consent receipts: a statement of one
// consent ledger entry (who, which purpose, which document, when, how
// collected) signed with the workspace's Ed25519 key, verifiable later by
// anyone with the published public key.
package receipt

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/signing"
)

// KeyStore keeps each workspace's signing key, the private half sealed.
type KeyStore interface {
	SigningKey(ctx context.Context, ws cdp.WorkspaceID) (id string, pub, sealed []byte, err error)
	CreateSigningKey(ctx context.Context, ws cdp.WorkspaceID, id string, pub, sealed []byte) (string, []byte, []byte, error)
	PublicKeys(ctx context.Context) (map[string][]byte, error)
}

// Sealer seals private keys under the deployment's root key.
type Sealer interface {
	SealWithRoot(plaintext, ad []byte) ([]byte, error)
	OpenWithRoot(sealed, ad []byte) ([]byte, error)
}

// Issuer signs receipts.
type Issuer struct {
	keys   KeyStore
	sealer Sealer
	name   string // the issuer named in receipts, e.g. the deployment's URL
	now    func() time.Time
}

// New returns an issuer that names itself issuer in receipts.
func New(keys KeyStore, sealer Sealer, issuer string) *Issuer {
	return &Issuer{keys: keys, sealer: sealer, name: issuer, now: time.Now}
}

func keyAD(ws cdp.WorkspaceID) []byte { return []byte("custos/signing-key/" + ws) }

// Key returns the workspace's signing key, creating it on first use.
func (i *Issuer) Key(ctx context.Context, ws cdp.WorkspaceID) (signing.Key, error) {
	id, pub, sealed, err := i.keys.SigningKey(ctx, ws)
	if cdp.IsKind(err, cdp.NotFound) {
		k, err := signing.NewKey()
		if err != nil {
			return signing.Key{}, err
		}
		s, err := i.sealer.SealWithRoot(k.Private.Seed(), keyAD(ws))
		if err != nil {
			return signing.Key{}, err
		}
		id, pub, sealed, err = i.keys.CreateSigningKey(ctx, ws, k.ID, k.Public(), s)
		if err != nil {
			return signing.Key{}, err
		}
	} else if err != nil {
		return signing.Key{}, err
	}
	seed, err := i.sealer.OpenWithRoot(sealed, keyAD(ws))
	if err != nil {
		return signing.Key{}, fmt.Errorf("open signing key: %w", err)
	}
	k := signing.Key{ID: id, Private: ed25519.NewKeyFromSeed(seed)}
	if !k.Public().Equal(ed25519.PublicKey(pub)) {
		return signing.Key{}, fmt.Errorf("signing key %s does not match its public key", id)
	}
	return k, nil
}

// Receipt is what a consent receipt states.
type Receipt struct {
	Type        string    `json:"type"` // "custos.consent-receipt"
	Version     int       `json:"version"`
	Issuer      string    `json:"iss"`
	IssuedAt    time.Time `json:"iat"`
	ReceiptID   string    `json:"receipt_id"` // the ledger entry id
	WorkspaceID string    `json:"workspace_id"`
	ProfileID   string    `json:"profile_id"` // the person, pseudonymously
	Purpose     struct {
		Key    string `json:"key"`
		Name   string `json:"name"`
		Regime string `json:"regime"`
	} `json:"purpose"`
	State       string    `json:"state"`
	Document    string    `json:"document,omitempty"`
	CollectedAt time.Time `json:"collected_at"`
	ReceivedAt  time.Time `json:"received_at"`
	Collection  struct {
		Source    string `json:"source"`        // sdk, server, feed, gpc, operator, merge
		Via       string `json:"via,omitempty"` // the vocabulary, feed or source
		MessageID string `json:"message_id,omitempty"`
		Location  string `json:"location,omitempty"`
	} `json:"collection"`
}

// Signed is a receipt and its compact JWS.
type Signed struct {
	Receipt Receipt
	JWS     string
	KeyID   string
}

// Issue signs a receipt for one ledger entry.
func (i *Issuer) Issue(ctx context.Context, e cdp.ConsentEntry, p cdp.Purpose) (Signed, error) {
	k, err := i.Key(ctx, e.WorkspaceID)
	if err != nil {
		return Signed{}, err
	}
	r := Receipt{Type: "custos.consent-receipt", Version: 1, Issuer: i.name, IssuedAt: i.now().UTC().Truncate(time.Second),
		ReceiptID: string(e.ID), WorkspaceID: string(e.WorkspaceID), ProfileID: string(e.Profile),
		State: string(e.State), Document: e.Document, CollectedAt: e.CollectedAt, ReceivedAt: e.ReceivedAt}
	r.Purpose.Key, r.Purpose.Name, r.Purpose.Regime = string(p.Key), p.Name, string(p.Regime)
	r.Collection.Source, r.Collection.Via, r.Collection.MessageID, r.Collection.Location = string(e.Source), e.SourceName, e.MessageID, e.Location
	payload, err := json.Marshal(r)
	if err != nil {
		return Signed{}, err
	}
	jws, err := signing.Sign(k, "custos-consent-receipt+jws", payload)
	if err != nil {
		return Signed{}, err
	}
	return Signed{Receipt: r, JWS: jws, KeyID: k.ID}, nil
}

// PublicKeys returns every workspace's public signing key as JWKs.
func (i *Issuer) PublicKeys(ctx context.Context) ([]signing.JWK, error) {
	keys, err := i.keys.PublicKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]signing.JWK, 0, len(keys))
	for id, pub := range keys {
		out = append(out, signing.PublicJWK(id, pub))
	}
	return out, nil
}
