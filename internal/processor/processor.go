// Package processor applies events from the log to the store. It is the
// stage between the gateway's durable log and everything Custos keeps:
// each log entry is applied in one transaction (identity resolution,
// traits, timeline), and each event once per message id, so an entry
// handed over again after a crash changes nothing twice.
package processor

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/custos-cdp/custos/internal/cdp"
)

// Store applies events, skipping message ids it has already applied.
type Store interface {
	Apply(ctx context.Context, events []cdp.Event) (cdp.ApplyResult, error)
}

// Processor applies logged events.
type Processor struct {
	store   Store
	log     *slog.Logger
	now     func() time.Time
	events  *prometheus.CounterVec
	graph   *prometheus.CounterVec
	consent *prometheus.CounterVec
	forward *prometheus.CounterVec
	visible prometheus.Histogram
	txSize  prometheus.Histogram
	txTime  prometheus.Histogram
	retries prometheus.Counter
	applied []func()
}

// OnApplied registers f to be called after each log entry is applied (the
// outbox relay uses it to publish what the entry produced at once).
func (p *Processor) OnApplied(f func()) { p.applied = append(p.applied, f) }

// New returns a processor writing to store. reg may be nil.
func New(store Store, log *slog.Logger, reg prometheus.Registerer) *Processor {
	p := &Processor{
		store: store,
		log:   log,
		now:   time.Now,
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custos_processor_events_total",
			Help: "Events taken from the log, by result (applied, duplicate, suppressed: they named an erased person).",
		}, []string{"result"}),
		graph: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custos_identity_changes_total",
			Help: "Identity graph changes: profiles created, merges, identities dropped by the rules.",
		}, []string{"change"}),
		consent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custos_consent_ledger_total",
			Help: "Consent ledger entries appended, and changes of a person's current state they made.",
		}, []string{"kind"}),
		forward: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custos_forward_decisions_total",
			Help: "Per destination, events forwarded and not forwarded, by reason (forwarded, paused, event_type_excluded, consent:<reason>, ...).",
		}, []string{"destination", "reason"}),
		visible: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "custos_processor_visible_seconds",
			Help:    "Time from an event's arrival at the gateway to its visibility in the profile store.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		txSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "custos_processor_transaction_events",
			Help:    "Events per batch the processor applies in one store transaction (the log entries a worker combined), applied or failed.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14),
		}),
		txTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "custos_processor_transaction_seconds",
			Help:    "Time to apply one batch: encoding, the store transaction and its retries; failed batches included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "custos_processor_retries_total",
			Help: "Store transactions started over: a concurrent batch, merge, split or erasure changed the people they name, or the database was busy (a deadlock broken, a failover).",
		}),
	}
	if reg != nil {
		reg.MustRegister(p.events, p.graph, p.consent, p.forward, p.visible, p.txSize, p.txTime, p.retries)
	}
	return p
}

// Handle applies the events of one log entry. Its signature fits
// bus.EventHandler.
func (p *Processor) Handle(ctx context.Context, events []cdp.Event) error {
	start := p.now()
	res, err := p.store.Apply(ctx, events)
	now := p.now()
	p.txSize.Observe(float64(len(events)))
	p.txTime.Observe(now.Sub(start).Seconds())
	p.retries.Add(float64(res.Retries))
	if err != nil {
		return err
	}
	for i := range events {
		p.visible.Observe(now.Sub(events[i].ReceivedAt).Seconds())
	}
	p.events.WithLabelValues("applied").Add(float64(res.Applied))
	p.events.WithLabelValues("duplicate").Add(float64(res.Duplicates))
	p.events.WithLabelValues("suppressed").Add(float64(res.Suppressed))
	p.graph.WithLabelValues("profile_created").Add(float64(res.ProfilesCreated))
	p.graph.WithLabelValues("merge").Add(float64(res.Merges))
	p.graph.WithLabelValues("identity_dropped").Add(float64(res.DroppedIdentities))
	for dest, reasons := range res.Forwarding {
		for reason, n := range reasons {
			p.forward.WithLabelValues(string(dest), reason).Add(float64(n))
		}
	}
	p.consent.WithLabelValues("entry").Add(float64(res.ConsentEntries))
	p.consent.WithLabelValues("change").Add(float64(res.ConsentChanges))
	for _, f := range p.applied {
		f()
	}
	return nil
}
