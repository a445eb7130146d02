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
	// Workers is the number of log entries handled at once. Default 2.
	Workers int
	// AckWait is how long an entry may be in a handler before JetStream
	// hands it to another worker or, after a crash, to the restarted
	// process. Default 30s.
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

// EventHandler applies the events of one log entry. It must be idempotent:
// after a crash an entry is handed over again, possibly partly applied.
// Returning an error leaves the entry in the log to be retried later.
type EventHandler func(ctx context.Context, events []cdp.Event) error

// Consumer reads the event log with explicit acks: an entry leaves the log
// only after its handler returned nil and the ack was confirmed.
type Consumer struct {
	b       *Bus
	cfg     ConsumeConfig
	cons    jetstream.Consumer
	ccs     []jetstream.ConsumeContext
	mu      sync.Mutex
	stopped bool
	wg      sync.WaitGroup
	ctx     context.Context
	stop    context.CancelFunc
}

// ConsumeEvents starts cfg.Workers workers that hand each log entry to h.
func (b *Bus) ConsumeEvents(ctx context.Context, cfg ConsumeConfig, h EventHandler) (*Consumer, error) {
	cfg.setDefaults()
	cons, err := b.js.CreateOrUpdateConsumer(ctx, b.EventsStream(), jetstream.ConsumerConfig{
		Durable:       cfg.Durable,
		Description:   "applies logged events to the store",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: 64 * cfg.Workers,
		FilterSubject: b.eventsSubject(),
	})
	if err != nil {
		return nil, cdp.Wrap(cdp.Unavailable, "log_unavailable", err, "create log consumer")
	}
	runCtx, stop := context.WithCancel(context.Background())
	c := &Consumer{b: b, cfg: cfg, cons: cons, ctx: runCtx, stop: stop}
	for range cfg.Workers {
		cc, err := cons.Consume(func(msg jetstream.Msg) {
			c.mu.Lock()
			if c.stopped {
				c.mu.Unlock()
				_ = msg.Nak() // hand it straight back rather than after AckWait
				return
			}
			c.wg.Add(1)
			c.mu.Unlock()
			defer c.wg.Done()
			c.handle(msg, h)
		}, jetstream.PullMaxMessages(4))
		if err != nil {
			c.Stop(ctx)
			return nil, cdp.Wrap(cdp.Unavailable, "log_unavailable", err, "consume event log")
		}
		c.ccs = append(c.ccs, cc)
	}
	return c, nil
}

func (c *Consumer) handle(msg jetstream.Msg, h EventHandler) {
	if v := msg.Headers().Get(formatHeader); v != eventcodec.Version {
		// Written by a newer version: leave it for a process that can read it.
		c.b.log.Error("event log entry in an unknown format; leaving it in the log", "format", v)
		_ = msg.NakWithDelay(c.cfg.MaxRetryDelay)
		return
	}
	plain, err := c.b.cipher.open(msg.Data())
	var events []cdp.Event
	if err == nil {
		events, err = eventcodec.Decode(plain)
	}
	if err == nil {
		err = h(c.ctx, events)
	}
	if err != nil {
		attempt := 1
		if md, mdErr := msg.Metadata(); mdErr == nil {
			attempt = int(md.NumDelivered)
		}
		delay := min(c.cfg.RetryDelay<<min(attempt-1, 16), c.cfg.MaxRetryDelay)
		if c.ctx.Err() == nil {
			c.b.log.Error("applying event log entry failed; will retry", "attempt", attempt, "retry_in", delay, "err", err)
		}
		_ = msg.NakWithDelay(delay)
		return
	}
	ackCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := msg.DoubleAck(ackCtx); err != nil {
		// The entry will be handed over again and deduplicated then.
		c.b.log.Warn("event log ack not confirmed", "err", err)
	}
}

// Stop stops fetching, lets the handlers finish the entries they hold (and
// ack them), and returns, or returns ctx's error when it ends first.
// Entries fetched but not started are handed over again later.
func (c *Consumer) Stop(ctx context.Context) error {
	c.mu.Lock()
	c.stopped = true
	c.mu.Unlock()
	for _, cc := range c.ccs {
		cc.Stop()
	}
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
