package bus

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Leases elect one holder per name among the processes of a deployment,
// through a JetStream key-value bucket whose entries expire: a holder
// renews its leases well within the expiry; a process that dies loses them
// after it.
type Leases struct {
	kv     jetstream.KeyValue
	holder string
	mu     sync.Mutex
	revs   map[string]uint64
}

// LeaseTTL is how long a lease lasts without renewal.
const LeaseTTL = 15 * time.Second

// Leases returns this process's leases; holder names the process.
func (b *Bus) Leases(ctx context.Context, holder string) (*Leases, error) {
	kv, err := b.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      streamName(b.cfg.Prefix, "LEASES"),
		Description: "Custos leases: which process runs which singleton job",
		TTL:         LeaseTTL,
		Replicas:    b.cfg.Replicas,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, err
	}
	return &Leases{kv: kv, holder: holder, revs: map[string]uint64{}}, nil
}

// Hold acquires the named lease or renews it, and reports whether this
// process holds it now.
func (l *Leases) Hold(ctx context.Context, name string) (bool, error) {
	l.mu.Lock()
	rev, mine := l.revs[name]
	l.mu.Unlock()
	if mine {
		next, err := l.kv.Update(ctx, name, []byte(l.holder), rev)
		if err == nil {
			l.set(name, next)
			return true, nil
		}
		l.forget(name)
	}
	next, err := l.kv.Create(ctx, name, []byte(l.holder))
	if err == nil {
		l.set(name, next)
		return true, nil
	}
	if errors.Is(err, jetstream.ErrKeyExists) {
		return false, nil
	}
	return false, err
}

func (l *Leases) set(name string, rev uint64) {
	l.mu.Lock()
	l.revs[name] = rev
	l.mu.Unlock()
}

func (l *Leases) forget(name string) {
	l.mu.Lock()
	delete(l.revs, name)
	l.mu.Unlock()
}
