package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/eventcodec"
)

// ConsumeConfig tunes a consumer of the event log.
type ConsumeConfig struct {
	// Durable names the consumer; its position survives restarts.
	// Default "processor".
	Durable string
	// Workers is the number of handler calls at once. Default 2.
	Workers int
	// MaxEvents bounds the events of the log entries a worker combines
	// into one handler call (entries waiting when it starts; an entry
	// larger than this goes alone). Default 1000.
	MaxEvents int
	// CatchUpEvents replaces MaxEvents while the processor is behind: when
	// the entry a worker takes has been in the log longer than
	// CatchUpAfter, it combines up to this many events, waiting briefly
	// for more entries to arrive. A transaction of 4000 events costs less
	// per event than four of 1000 (the pages they share are written once),
	// which is how a backlog drains; below it, smaller transactions keep
	// the delay to visibility short. Defaults 4*MaxEvents and 1s. An
	// entry's age is read from the log server's clock, so on an external
	// cluster the servers' and processors' clocks must agree (NTP) to well
	// under CatchUpAfter.
	CatchUpEvents int
	CatchUpAfter  time.Duration
	// MaxBatchBytes bounds the log entries (as stored) a worker combines,
	// so that large events make smaller batches: 4000 events of 32 KiB
	// would hold hundreds of MiB. An entry larger than this goes alone.
	// Default 16 MiB.
	MaxBatchBytes int
	// AckWait is how long after a crash JetStream waits before it hands
	// the entries the crashed process held to another worker (or to the
	// restarted process). A live process keeps the entries it holds in
	// progress, however long they wait or take (all but those the client
	// library has fetched and not yet passed on). Default 30s.
	AckWait time.Duration
	// RetryDelay is the first delay before an entry whose handler failed is
	// tried again; it doubles per attempt up to MaxRetryDelay. Defaults
	// 500ms and 1m.
	RetryDelay, MaxRetryDelay time.Duration
}

func (c *ConsumeConfig) setDefaults() {
	if c.Durable == "" {
		c.Durable = "processor"
	}
	if c.Workers <= 0 {
		c.Workers = 2
	}
	if c.MaxEvents <= 0 {
		c.MaxEvents = 1000
	}
	if c.CatchUpEvents < c.MaxEvents {
		c.CatchUpEvents = 4 * c.MaxEvents
	}
	if c.CatchUpAfter <= 0 {
		c.CatchUpAfter = time.Second
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = 16 << 20
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.RetryDelay <= 0 {
		c.RetryDelay = 500 * time.Millisecond
	}
	if c.MaxRetryDelay <= 0 {
		c.MaxRetryDelay = time.Minute
	}
}

// EventHandler applies the events of one or more log entries (entries
// waiting together are combined, so that one store transaction serves
// them all). It must be idempotent: after a crash an entry is handed over
// again, possibly partly applied. Returning an error leaves the entries in
// the log to be retried later. It must return, in time, when ctx ends:
// while it runs, its entries are kept from every other worker.
type EventHandler func(ctx context.Context, events []cdp.Event) error

// Consumer reads the event log with explicit acks: an entry leaves the log
// only after its handler returned nil and the ack was confirmed.
type Consumer struct {
	b       *Bus
	cfg     ConsumeConfig
	cons    jetstream.Consumer
	cc      jetstream.ConsumeContext
	queue   chan jetstream.Msg
	mu      sync.Mutex
	stopped bool
	wg      sync.WaitGroup             // entries taken and not yet acked or handed back
	held    map[jetstream.Msg]struct{} // the same entries, kept in progress by keepAlive
	ctx     context.Context
	stop    context.CancelFunc
}

// ConsumeEvents starts cfg.Workers workers that hand each log entry to h.
func (b *Bus) ConsumeEvents(ctx context.Context, cfg ConsumeConfig, h EventHandler) (*Consumer, error) {
	cfg.setDefaults()
	cons, err := b.js.CreateOrUpdateConsumer(ctx, b.EventsStream(), jetstream.ConsumerConfig{
		Durable:     cfg.Durable,
		Description: "applies logged events to the store",
		AckPolicy:   jetstream.AckExplicitPolicy,
		AckWait:     cfg.AckWait,
		MaxDeliver:  -1,
		// Entries applied but whose ack the server has not yet processed
		// count here too. On the embedded log an ack is a synced removal,
		// and when acks fell behind for a moment a limit of 64 per worker
		// stopped delivery: entries reached the idle processor seconds
		// late. What waits in this process stays bounded by PullMaxBytes;
		// acked entries are not kept.
		MaxAckPending: 1024 * cfg.Workers,
		FilterSubject: b.eventsSubject(),
	})
	if err != nil {
		return nil, cdp.Wrap(cdp.Unavailable, "log_unavailable", err, "create log consumer")
	}
	runCtx, stop := context.WithCancel(context.Background())
	c := &Consumer{b: b, cfg: cfg, cons: cons, ctx: runCtx, stop: stop, queue: make(chan jetstream.Msg, 32*cfg.Workers), held: map[jetstream.Msg]struct{}{}}
	// One pull subscription fills the queue; the workers take what is
	// waiting in it and apply it together.
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		c.mu.Lock()
		if c.stopped {
			c.mu.Unlock()
			_ = msg.Nak() // hand it straight back rather than after AckWait
			return
		}
		c.wg.Add(1)
		c.held[msg] = struct{}{}
		c.mu.Unlock()
		select {
		case c.queue <- msg:
		case <-runCtx.Done():
			c.settle(msg, func() { _ = msg.Nak() })
		}
	}, jetstream.PullMaxBytes(8<<20)) // a bounded amount of work waits here, however large the entries
	if err != nil {
		stop()
		return nil, cdp.Wrap(cdp.Unavailable, "log_unavailable", err, "consume event log")
	}
	c.cc = cc
	go c.keepAlive()
	for range cfg.Workers {
		go c.work(h)
	}
	return c, nil
}

// entry is a log entry taken from the queue, decoded.
type entry struct {
	msg    jetstream.Msg
	events []cdp.Event
}

// work takes the entries waiting in the queue, up to MaxEvents events (or
// CatchUpEvents when behind), and applies them in one handler call.
func (c *Consumer) work(h EventHandler) {
	for {
		var msg jetstream.Msg
		select {
		case msg = <-c.queue:
		case <-c.ctx.Done():
			return
		}
		// A worker that is behind may wait for more entries, but for at
		// most catchUpLinger in all, and only while the entries it takes
		// are still behind: once the backlog is gone, what it holds is
		// applied at once.
		limit, until := c.cfg.MaxEvents, time.Time{}
		if c.behind(msg) {
			limit, until = c.cfg.CatchUpEvents, time.Now().Add(catchUpLinger)
		}
		batch := c.decode(nil, msg)
		n, size := 0, len(msg.Data())
		for _, e := range batch {
			n += len(e.events)
		}
		for n < limit && size < c.cfg.MaxBatchBytes {
			msg = c.next(until)
			if msg == nil {
				break
			}
			if !until.IsZero() && !c.behind(msg) {
				until = time.Time{}
			}
			size += len(msg.Data())
			before := len(batch)
			if batch = c.decode(batch, msg); len(batch) > before {
				n += len(batch[before].events)
			}
		}
		c.apply(batch, h)
	}
}

// catchUpLinger bounds how long a worker that is behind waits for further
// entries before applying what it holds: the local queue refills from the
// pull buffer in bursts, and without the wait a catching-up worker would
// often find it empty for a moment and apply a small batch.
const catchUpLinger = 20 * time.Millisecond

// next returns the next waiting entry, waiting for one until the time
// given (zero: not at all); nil when none came.
func (c *Consumer) next(until time.Time) jetstream.Msg {
	select {
	case msg := <-c.queue:
		return msg
	default:
	}
	wait := time.Until(until)
	if until.IsZero() || wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case msg := <-c.queue:
		return msg
	case <-t.C:
		return nil
	case <-c.ctx.Done():
		return nil
	}
}

// behind reports whether msg has been in the log longer than CatchUpAfter.
func (c *Consumer) behind(msg jetstream.Msg) bool {
	md, err := msg.Metadata()
	return err == nil && time.Since(md.Timestamp) > c.cfg.CatchUpAfter
}

// decode opens and decodes an entry and appends it to batch; an entry it
// cannot read is handed back at once (and not appended).
func (c *Consumer) decode(batch []entry, msg jetstream.Msg) []entry {
	if v := msg.Headers().Get(formatHeader); v != eventcodec.Version {
		// Written by a newer version: leave it for a process that can read it.
		c.b.log.Error("event log entry in an unknown format; leaving it in the log", "format", v)
		c.settle(msg, func() { _ = msg.NakWithDelay(c.cfg.MaxRetryDelay) })
		return batch
	}
	plain, err := c.b.cipher.open(msg.Data())
	var events []cdp.Event
	if err == nil {
		events, err = eventcodec.Decode(plain)
	}
	if err != nil {
		c.settle(msg, func() { c.retry(msg, err) })
		return batch
	}
	return append(batch, entry{msg: msg, events: events})
}

// apply hands the batch's events to h in one call and acks every entry,
// or, if that fails and the batch holds several entries, tries each entry
// alone, so that one entry that cannot be applied holds up no other.
func (c *Consumer) apply(batch []entry, h EventHandler) {
	if len(batch) == 0 {
		return
	}
	c.mu.Lock()
	stopped := c.stopped
	c.mu.Unlock()
	if stopped {
		for _, e := range batch {
			c.settle(e.msg, func() { _ = e.msg.Nak() })
		}
		return
	}
	var all []cdp.Event
	if len(batch) == 1 {
		all = batch[0].events
	} else {
		for _, e := range batch {
			all = append(all, e.events...)
		}
	}
	began := time.Now()
	err := h(c.ctx, all)
	if took := time.Since(began); took > 3*c.cfg.AckWait {
		// Its entries were kept from other workers all this time.
		c.b.log.Warn("applying a batch of the event log took long", "took", took, "events", len(all), "entries", len(batch))
	}
	if err != nil {
		if len(batch) > 1 && c.ctx.Err() == nil {
			for _, e := range batch {
				c.apply([]entry{e}, h)
			}
			return
		}
		for _, e := range batch {
			c.settle(e.msg, func() { c.retry(e.msg, err) })
		}
		return
	}
	// The acks go out without waiting for the server's answer: on the
	// embedded log each one is a synced removal, and a combined batch
	// acks dozens of entries, which took longer than applying them. An
	// ack that is lost hands the entry out again, and it is deduplicated
	// then. Nothing of the entry is kept meanwhile.
	for _, e := range batch {
		c.settle(e.msg, func() {
			if err := e.msg.Ack(); err != nil {
				c.b.log.Warn("event log ack not sent", "err", err)
			}
		})
	}
}

// settle acks or hands back an entry with send, after keepAlive has
// forgotten it: an in-progress notice that reached the server after a
// delayed nak would cancel the delay.
func (c *Consumer) settle(msg jetstream.Msg, send func()) {
	c.mu.Lock()
	delete(c.held, msg)
	c.mu.Unlock()
	send()
	c.wg.Done()
}

// keepAlive restarts the ack deadline of every entry this consumer holds,
// waiting in the queue or being applied, every third of AckWait. Without
// it, entries that waited behind a slow transaction (locks, a slow
// database, a large catch-up batch) longer than AckWait were handed out
// again and applied twice (harmlessly, they are deduplicated, but the work
// doubled just when the store was slowest). An entry held by a process
// that died is still handed out again after AckWait. Entries the client
// library fetched but has not yet passed on (at most PullMaxBytes) are not
// covered: after AckWait they may be delivered a second time.
func (c *Consumer) keepAlive() {
	t := time.NewTicker(c.cfg.AckWait / 3)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		// Under the lock, so that no notice goes out after settle sent
		// the entry's ack or nak (publishing only queues the notice on the
		// connection, in order).
		c.mu.Lock()
		for m := range c.held {
			_ = m.InProgress()
		}
		c.mu.Unlock()
	}
}

// retry hands an entry back to be tried again after a backoff.
func (c *Consumer) retry(msg jetstream.Msg, err error) {
	attempt := 1
	if md, mdErr := msg.Metadata(); mdErr == nil {
		attempt = int(md.NumDelivered)
	}
	delay := min(c.cfg.RetryDelay<<min(attempt-1, 16), c.cfg.MaxRetryDelay)
	if c.ctx.Err() == nil {
		c.b.log.Error("applying event log entry failed; will retry", "attempt", attempt, "retry_in", delay, "err", err)
	}
	_ = msg.NakWithDelay(delay)
}

// Stop stops fetching, lets the handlers finish the entries they hold (and
// ack them), and returns, or returns ctx's error when it ends first.
// Entries fetched but not started are handed over again later.
func (c *Consumer) Stop(ctx context.Context) error {
	c.mu.Lock()
	c.stopped = true
	c.mu.Unlock()
	c.cc.Stop()
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
		c.stop()
		return nil
	case <-ctx.Done():
		c.stop()
		return errors.Join(ctx.Err(), errors.New("log consumer: handlers still running"))
	}
}

// EventsBacklog is the number of event-log entries not yet applied: the
// log is a work queue, so every entry in it is waiting or being applied.
func (b *Bus) EventsBacklog(ctx context.Context) (uint64, error) {
	s, err := b.js.Stream(ctx, b.EventsStream())
	if err != nil {
		return 0, fmt.Errorf("event log info: %w", err)
	}
	return s.CachedInfo().State.Msgs, nil
}
