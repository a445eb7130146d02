// Package outbox relays records from the database's transactional outbox
// to the bus: consent changes and deliveries are written in the same
// transaction as the change that caused them, and reach their consumers
// afterwards, at least once, in order.
package outbox

import (
	"context"
	"log/slog"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
)

// Store hands out and removes outbox records.
type Store interface {
	Relay(ctx context.Context, limit int, publish func(context.Context, []cdp.OutboxRecord) error) (int, error)
}

// Publisher puts records on the bus and returns once they are durable.
type Publisher interface {
	PublishOutbox(ctx context.Context, recs []cdp.OutboxRecord) error
}

// Relay moves records from the store to the bus: at once when woken (the
// processor wakes it after each commit), and every Interval in any case,
// which also covers records other processes wrote.
type Relay struct {
	store    Store
	pub      Publisher
	log      *slog.Logger
	interval time.Duration
	wake     chan struct{}
}

// New returns a relay. interval defaults to 250ms.
func New(store Store, pub Publisher, log *slog.Logger, interval time.Duration) *Relay {
	if interval <= 0 {
		interval = 250 * time.Millisecond
	}
	return &Relay{store: store, pub: pub, log: log, interval: interval, wake: make(chan struct{}, 1)}
}

// Wake asks the relay to look now.
func (r *Relay) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run relays until ctx ends.
func (r *Relay) Run(ctx context.Context) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	backoff := r.interval
	for {
		n, err := r.store.Relay(ctx, 500, r.pub.PublishOutbox)
		switch {
		case err != nil && ctx.Err() == nil:
			r.log.Warn("outbox relay failed; will retry", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 10*time.Second)
			continue
		case n == 500:
			continue // more are waiting
		}
		backoff = r.interval
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.wake:
		}
	}
}
