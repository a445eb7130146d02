package forward

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/custos-cdp/custos/internal/cdp"
)

// Queue is one destination's durable queue.
type Queue interface {
	// Fetch returns up to max items, waiting up to wait for the first.
	Fetch(ctx context.Context, max int, wait time.Duration) ([]Item, error)
}

// Item is one queued delivery, sealed under its person's key.
type Item interface {
	Workspace() cdp.WorkspaceID
	Profile() cdp.ProfileID
	Sealed() []byte
	// Ack removes it from the queue for good.
	Ack(ctx context.Context) error
	// InProgress tells the queue the item is still being worked on, so it
	// is not handed to another router while a send is retried.
	InProgress() error
}

// Store is what the router records outcomes in.
type Store interface {
	Open(ctx context.Context, ws cdp.WorkspaceID, profile cdp.ProfileID, dest cdp.DestinationID, sealed []byte) (cdp.Delivery, error)
	MarkDelivered(ctx context.Context, dest cdp.DestinationID, keys []string, attempts int, at time.Time) error
	MarkRetrying(ctx context.Context, dest cdp.DestinationID, keys []string, attempts int, lastErr string, at time.Time) error
	MarkErased(ctx context.Context, dest cdp.DestinationID, keys []string, at time.Time) error
	AddDeadLetters(ctx context.Context, dls []cdp.DeadLetter) error
}

// Policy is when to retry and when to give up.
type Policy struct {
	BatchSize   int           // default 100
	MaxAttempts int           // default 20
	MaxAge      time.Duration // default 24h: from the first attempt
	BaseDelay   time.Duration // default 500ms, doubling per attempt with full jitter
	MaxDelay    time.Duration // default 5m
	Heartbeat   time.Duration // how often to tell the queue a held batch is in progress; default 10s
}

func (p *Policy) setDefaults(d *cdp.Destination) {
	if d.Settings.BatchSize > 0 {
		p.BatchSize = d.Settings.BatchSize
	}
	if d.Settings.MaxAttempts > 0 {
		p.MaxAttempts = d.Settings.MaxAttempts
	}
	if d.Settings.MaxAge > 0 {
		p.MaxAge = d.Settings.MaxAge
	}
	if p.BatchSize <= 0 {
		p.BatchSize = 100
	}
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 20
	}
	if p.MaxAge <= 0 {
		p.MaxAge = 24 * time.Hour
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = 500 * time.Millisecond
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = 5 * time.Minute
	}
	if p.Heartbeat <= 0 {
		p.Heartbeat = 10 * time.Second
	}
}

// Metrics of all routers.
type Metrics struct {
	deliveries *prometheus.CounterVec
	send       *prometheus.HistogramVec
}

// NewMetrics registers the routers' metrics on reg (nil: not registered).
// Labels are destination ids and fixed outcome names, never personal data.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custos_forward_deliveries_total",
			Help: "Deliveries finished or retried per destination, by outcome (delivered, retried, dead_lettered, erased).",
		}, []string{"destination", "outcome"}),
		send: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "custos_forward_send_seconds",
			Help:    "Time one batch send to a destination took.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"destination"}),
	}
	if reg != nil {
		reg.MustRegister(m.deliveries, m.send)
	}
	return m
}

// Router drains one destination's queue in order: a batch at a time, each
// sent until it succeeds, fails for good, or runs out of attempts or time.
// While a batch is retried nothing behind it is sent, which keeps each
// person's deliveries in order; other destinations have their own routers
// and are not held up.
type Router struct {
	Dest    cdp.Destination
	Queue   Queue
	Store   Store
	Sender  Sender
	Policy  Policy
	Log     *slog.Logger
	Metrics *Metrics
	// Now and Sleep are the clock; tests shorten it.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

func (r *Router) setDefaults() {
	r.Policy.setDefaults(&r.Dest)
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.Sleep == nil {
		r.Sleep = func(ctx context.Context, d time.Duration) error {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	if r.Log == nil {
		r.Log = slog.Default()
	}
	if r.Metrics == nil {
		r.Metrics = NewMetrics(nil)
	}
}

// Run routes until ctx ends. A batch in the middle of its retries when ctx
// ends stays in the queue and is sent again by the next router.
func (r *Router) Run(ctx context.Context) {
	r.setDefaults()
	for ctx.Err() == nil {
		items, err := r.Queue.Fetch(ctx, r.Policy.BatchSize, time.Second)
		if err != nil {
			if ctx.Err() == nil {
				r.Log.Warn("destination queue fetch failed", "destination", r.Dest.ID, "err", err)
				_ = r.Sleep(ctx, time.Second)
			}
			continue
		}
		if len(items) == 0 {
			continue
		}
		r.route(ctx, items)
	}
}

type pending struct {
	item Item
	del  cdp.Delivery
}

func (r *Router) route(ctx context.Context, items []Item) {
	var batch []pending
	var erased []string
	opened := make([]cdp.Delivery, len(items))
	errs := make([]error, len(items))
	parallel(len(items), func(i int) {
		it := items[i]
		opened[i], errs[i] = r.Store.Open(ctx, it.Workspace(), it.Profile(), r.Dest.ID, it.Sealed())
	})
	for i, it := range items {
		del, err := opened[i], errs[i]
		switch {
		case cdp.IsKind(err, cdp.NotFound):
			// The person was erased: their key is gone and the delivery
			// with it. It must not go out.
			erased = append(erased, del.Key)
			_ = it.Ack(ctx)
			r.Metrics.deliveries.WithLabelValues(string(r.Dest.ID), "erased").Inc()
		case err != nil:
			// Leave it: the queue hands it out again after its ack wait.
			r.Log.Warn("opening a queued delivery failed", "destination", r.Dest.ID, "err", err)
			return
		default:
			batch = append(batch, pending{item: it, del: del})
		}
	}
	if len(erased) > 0 {
		_ = r.Store.MarkErased(ctx, r.Dest.ID, nonEmpty(erased), r.Now())
	}
	if len(batch) > 0 {
		r.deliver(ctx, batch)
	}
}

func nonEmpty(keys []string) []string {
	out := keys[:0]
	for _, k := range keys {
		if k != "" {
			out = append(out, k)
		}
	}
	return out
}

// deliver sends a batch with retries. A permanent failure of a batch of
// several is narrowed down by sending its items one by one, so one bad item
// does not dead-letter its neighbours.
func (r *Router) deliver(ctx context.Context, batch []pending) {
	first := r.Now()
	keys := make([]string, len(batch))
	dels := make([]cdp.Delivery, len(batch))
	for i, p := range batch {
		keys[i], dels[i] = p.del.Key, p.del
	}
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := r.Sender.Send(ctx, dels)
		r.Metrics.send.WithLabelValues(string(r.Dest.ID)).Observe(time.Since(start).Seconds())
		if err == nil {
			r.record(ctx, r.Store.MarkDelivered(ctx, r.Dest.ID, keys, attempt, r.Now()))
			r.ack(ctx, batch)
			r.Metrics.deliveries.WithLabelValues(string(r.Dest.ID), "delivered").Add(float64(len(batch)))
			return
		}
		if ctx.Err() != nil {
			return
		}
		var se *SendError
		if !errors.As(err, &se) {
			se = Retry("send failed", err)
		}
		if !se.Retryable {
			if len(batch) > 1 {
				for _, p := range batch {
					r.deliver(ctx, []pending{p})
					if ctx.Err() != nil {
						return
					}
				}
				return
			}
			r.deadLetter(ctx, batch, se.Message, attempt, first)
			return
		}
		if attempt >= r.Policy.MaxAttempts || r.Now().Sub(first) >= r.Policy.MaxAge {
			r.deadLetter(ctx, batch, "gave up after retries: "+se.Message, attempt, first)
			return
		}
		r.record(ctx, r.Store.MarkRetrying(ctx, r.Dest.ID, keys, attempt, se.Message, r.Now()))
		r.Metrics.deliveries.WithLabelValues(string(r.Dest.ID), "retried").Add(float64(len(batch)))
		if err := r.wait(ctx, batch, r.backoff(attempt, se.RetryAfter)); err != nil {
			return
		}
	}
}

// backoff is exponential with full jitter, never shorter than the
// receiver's Retry-After.
func (r *Router) backoff(attempt int, retryAfter time.Duration) time.Duration {
	ceiling := r.Policy.BaseDelay << min(attempt-1, 20)
	if ceiling > r.Policy.MaxDelay || ceiling <= 0 {
		ceiling = r.Policy.MaxDelay
	}
	d := time.Duration(rand.Int64N(int64(ceiling)/2+1)) + ceiling/2
	return max(d, retryAfter)
}

// wait sleeps d, telling the queue in between that the batch is still
// being worked on.
func (r *Router) wait(ctx context.Context, batch []pending, d time.Duration) error {
	for d > 0 {
		step := min(d, r.Policy.Heartbeat)
		if err := r.Sleep(ctx, step); err != nil {
			return err
		}
		d -= step
		for _, p := range batch {
			_ = p.item.InProgress()
		}
	}
	return nil
}

func (r *Router) deadLetter(ctx context.Context, batch []pending, reason string, attempts int, first time.Time) {
	now := r.Now()
	dls := make([]cdp.DeadLetter, len(batch))
	for i, p := range batch {
		dls[i] = cdp.DeadLetter{Destination: r.Dest.ID, WorkspaceID: p.item.Workspace(), Profile: p.item.Profile(), Key: p.del.Key,
			Kind: p.del.Kind, MessageID: p.del.MessageID, Sealed: p.item.Sealed(), LastError: reason, Attempts: attempts,
			FirstTry: first, CreatedAt: now}
	}
	if err := r.Store.AddDeadLetters(ctx, dls); err != nil {
		// Not acked: the queue hands the batch out again later.
		r.Log.Error("storing dead letters failed", "destination", r.Dest.ID, "err", err)
		return
	}
	r.ack(ctx, batch)
	r.Metrics.deliveries.WithLabelValues(string(r.Dest.ID), "dead_lettered").Add(float64(len(batch)))
	r.Log.Warn("deliveries dead-lettered", "destination", r.Dest.ID, "count", len(batch), "reason", reason)
}

// ack acknowledges a batch's items at once: each ack waits for the
// server's confirmation, and they do not depend on each other.
func (r *Router) ack(ctx context.Context, batch []pending) {
	parallel(len(batch), func(i int) {
		if err := batch[i].item.Ack(ctx); err != nil {
			r.Log.Warn("ack of a delivery failed; it may be sent again (same idempotency key)", "destination", r.Dest.ID, "err", err)
		}
	})
}

// parallel runs fn for 0..n-1 on up to 8 goroutines: opening deliveries
// and acknowledging them are round trips to the database and the queue
// that do not depend on each other. Order is kept by index.
func parallel(n int, fn func(i int)) {
	if n <= 1 {
		for i := range n {
			fn(i)
		}
		return
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(n, 8) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

func (r *Router) record(ctx context.Context, err error) {
	if err != nil && ctx.Err() == nil {
		r.Log.Warn("recording a delivery outcome failed", "destination", r.Dest.ID, "err", err)
	}
}
