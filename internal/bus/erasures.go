package bus

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/custos-cdp/custos/internal/cdp"
)

// Erasures keeps the record of every completed erasure (the keyed hashes of
// the erased identities) on the bus, apart from the database, so that an
// erasure can be applied again after the database is restored from a
// backup that predates it.
type Erasures struct{ kv jetstream.KeyValue }

// ErasureRecord is one erasure.
type ErasureRecord struct {
	WorkspaceID cdp.WorkspaceID
	RequestID   string
	Blinds      [][]byte
	At          time.Time
}

type erasureJSON struct {
	Workspace string    `json:"ws"`
	Request   string    `json:"request"`
	Blinds    []string  `json:"blinds"`
	At        time.Time `json:"at"`
}

// Erasures opens the erasure record.
func (b *Bus) Erasures(ctx context.Context) (*Erasures, error) {
	kv, err := b.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      streamName(b.cfg.Prefix, "ERASURES"),
		Description: "Custos: keyed hashes of erased identities, to re-apply erasures after a database restore",
		Replicas:    b.cfg.Replicas,
		Storage:     jetstream.FileStorage,
		History:     1,
	})
	if err != nil {
		return nil, err
	}
	return &Erasures{kv: kv}, nil
}

func erasureKey(ws cdp.WorkspaceID, id string) string {
	return hex.EncodeToString([]byte(ws)) + "." + hex.EncodeToString([]byte(id))
}

// Record stores an erasure's suppressed identities.
func (e *Erasures) Record(ctx context.Context, ws cdp.WorkspaceID, requestID string, blinds [][]byte, at time.Time) error {
	rec := erasureJSON{Workspace: string(ws), Request: requestID, At: at.UTC()}
	for _, b := range blinds {
		rec.Blinds = append(rec.Blinds, hex.EncodeToString(b))
	}
	v, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	_, err = e.kv.Put(ctx, erasureKey(ws, requestID), v)
	return err
}

// All returns every recorded erasure.
func (e *Erasures) All(ctx context.Context) ([]ErasureRecord, error) {
	keys, err := e.kv.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []ErasureRecord
	for k := range keys.Keys() {
		entry, err := e.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var rec erasureJSON
		if err := json.Unmarshal(entry.Value(), &rec); err != nil {
			return nil, err
		}
		r := ErasureRecord{WorkspaceID: cdp.WorkspaceID(rec.Workspace), RequestID: rec.Request, At: rec.At}
		for _, h := range rec.Blinds {
			b, err := hex.DecodeString(h)
			if err != nil {
				return nil, err
			}
			r.Blinds = append(r.Blinds, b)
		}
		out = append(out, r)
	}
	return out, nil
}
