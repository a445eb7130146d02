// Package processor applies events from the log to the store. It is the
// stage between the gateway's durable log and everything Custos keeps: each
// log entry is applied in one transaction, and each event once per message
// id, so an entry handed over again after a crash changes nothing twice.
package processor

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/custos-cdp/custos/internal/cdp"
)

// Store applies events, skipping message ids it has already applied, and
// says how many it applied.
type Store interface {
	Apply(ctx context.Context, events []cdp.Event) (int, error)
}

// Processor applies logged events.
type Processor struct {
	store  Store
	log    *slog.Logger
	events *prometheus.CounterVec
}

// New returns a processor writing to store. reg may be nil.
func New(store Store, log *slog.Logger, reg prometheus.Registerer) *Processor {
	p := &Processor{
		store: store,
		log:   log,
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custos_processor_events_total",
			Help: "Events taken from the log, by result (applied, duplicate).",
		}, []string{"result"}),
	}
	if reg != nil {
		reg.MustRegister(p.events)
	}
	return p
}

// Handle applies the events of one log entry. Its signature fits
// bus.EventHandler.
func (p *Processor) Handle(ctx context.Context, events []cdp.Event) error {
	applied, err := p.store.Apply(ctx, events)
	if err != nil {
		return err
	}
	p.events.WithLabelValues("applied").Add(float64(applied))
	p.events.WithLabelValues("duplicate").Add(float64(len(events) - applied))
	return nil
}
