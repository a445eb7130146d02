package bus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/eventcodec"
)

// formatHeader carries the eventcodec version of a log entry.
const formatHeader = "Custos-Log-Format"

// LogConfig tunes the group committer.
type LogConfig struct {
	// MaxGroupBytes bounds one log write. Default 896 KiB, under NATS's
	// default 1 MiB payload limit.
	MaxGroupBytes int
	// MaxPendingBytes bounds the events waiting for a log write. Past it,
	// Append fails fast with Unavailable so the gateway answers 503 with
	// Retry-After instead of queueing without bound. Default 64 MiB.
	MaxPendingBytes int64
	// MaxInFlight is how many log writes may await their durable ack at
	// once. While they wait, new events gather into the next group.
	// Default 2.
	MaxInFlight int
	// WriteTimeout bounds one log write including retries. Default 10s.
	WriteTimeout time.Duration
}

func (c *LogConfig) setDefaults() {
	if c.MaxGroupBytes <= 0 {
		c.MaxGroupBytes = 896 << 10
	}
	if c.MaxPendingBytes <= 0 {
		c.MaxPendingBytes = 64 << 20
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 2
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
}

// Log appends events to the event log with group commit: the events of many
// concurrent callers go into one log write, and each caller returns once the
// write that holds its events is durable (fsynced by the embedded server,
// acknowledged by the cluster in external mode). Deduplication is per event,
// downstream; the log write itself carries a random id so that a retried
// write is not stored twice.
type Log struct {
	b       *Bus
	cfg     LogConfig
	in      chan *pendingWrite
	pending atomic.Int64
	slots   chan struct{}

	mu      sync.RWMutex // held for reading while sending to in; for writing by Close
	closed  bool
	stopped chan struct{}
	flights sync.WaitGroup

	logBytes atomic.Int64 // size of the event log, polled
	stopPoll chan struct{}

	groupEvents  prometheus.Histogram
	writeSeconds prometheus.Histogram
	writeErrors  prometheus.Counter
}

type pendingWrite struct {
	data   []byte
	events int
	done   chan error
}

// NewLog starts a group committer on the event log. reg may be nil.
func (b *Bus) NewLog(cfg LogConfig, reg prometheus.Registerer) *Log {
	cfg.setDefaults()
	if cfg.MaxGroupBytes > b.cfg.MaxPayload-4096 {
		cfg.MaxGroupBytes = b.cfg.MaxPayload - 4096 // room for headers and the seal
	}
	l := &Log{
		b:        b,
		cfg:      cfg,
		in:       make(chan *pendingWrite, 1<<14),
		slots:    make(chan struct{}, cfg.MaxInFlight),
		stopped:  make(chan struct{}),
		stopPoll: make(chan struct{}),
		groupEvents: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "custos_log_write_events",
			Help:    "Events per event-log write (group commit size).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14),
		}),
		writeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "custos_log_write_seconds",
			Help:    "Time from starting an event-log write to its durable ack.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "custos_log_write_errors_total",
			Help: "Event-log writes that failed after retries.",
		}),
	}
	if reg != nil {
		reg.MustRegister(l.groupEvents, l.writeSeconds, l.writeErrors,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "custos_log_pending_bytes",
				Help: "Bytes of accepted events waiting for a durable log write.",
			}, func() float64 { return float64(l.pending.Load()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "custos_log_bytes",
				Help: "Bytes held by the event log (accepted, not yet applied).",
			}, func() float64 { return float64(l.logBytes.Load()) }))
	}
	l.pollSize()
	go l.pollLoop()
	go l.run()
	return l
}

// pollSize reads the event log's size, which Append compares with
// MaxLogBytes.
func (l *Log) pollSize() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if s, err := l.b.js.Stream(ctx, l.b.EventsStream()); err == nil {
		l.logBytes.Store(int64(s.CachedInfo().State.Bytes))
	}
}

func (l *Log) pollLoop() {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-l.stopPoll:
			return
		case <-t.C:
			l.pollSize()
		}
	}
}

var errLogClosed = cdp.Reason(cdp.Unavailable, "shutting_down", "the server is shutting down")

// Append writes events to the log and returns once they are durable. It
// fails with Unavailable when the log is overloaded, down or closing; the
// caller should then answer with a retryable status. If ctx ends first the
// events may still be written: callers retry with the same message ids and
// the processor applies each once.
func (l *Log) Append(ctx context.Context, events []cdp.Event) error {
	if len(events) == 0 {
		return nil
	}
	writes, err := l.split(events)
	if err != nil {
		return err
	}
	var size int64
	for _, w := range writes {
		size += int64(len(w.data))
	}
	if l.logBytes.Load() >= l.b.cfg.MaxLogBytes {
		return cdp.Reason(cdp.Unavailable, "log_full", "the event log is full until stored events are processed; retry later")
	}
	if l.pending.Add(size) > l.cfg.MaxPendingBytes {
		l.pending.Add(-size)
		return cdp.Reason(cdp.Unavailable, "overloaded", "too many events waiting to be stored; retry later")
	}
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		l.pending.Add(-size)
		return errLogClosed
	}
	for i, w := range writes {
		select {
		case l.in <- w:
		case <-ctx.Done():
			l.mu.RUnlock()
			for _, rest := range writes[i:] {
				l.pending.Add(-int64(len(rest.data)))
			}
			return cdp.Wrap(cdp.Unavailable, "timeout", ctx.Err(), "request ended before its events were stored")
		}
	}
	l.mu.RUnlock()
	var first error
	for _, w := range writes {
		select {
		case err := <-w.done:
			if err != nil && first == nil {
				first = err
			}
		case <-ctx.Done():
			return cdp.Wrap(cdp.Unavailable, "timeout", ctx.Err(), "request ended before its events were stored")
		}
	}
	return first
}

// split encodes events into as few pending writes as the group limit allows.
// A request normally fits in one, so its events are durable together.
func (l *Log) split(events []cdp.Event) ([]*pendingWrite, error) {
	var writes []*pendingWrite
	cur := &pendingWrite{done: make(chan error, 1)}
	for i := range events {
		start := len(cur.data)
		var err error
		cur.data, err = eventcodec.Append(cur.data, &events[i])
		if err != nil {
			return nil, cdp.Wrap(cdp.Internal, "internal", err, "encode event")
		}
		if len(cur.data) > l.cfg.MaxGroupBytes {
			if start == 0 {
				return nil, cdp.Reason(cdp.TooLarge, "event_too_large", "event larger than the log's write limit")
			}
			line := append([]byte(nil), cur.data[start:]...)
			cur.data = cur.data[:start]
			writes = append(writes, cur)
			cur = &pendingWrite{data: line, done: make(chan error, 1)}
		}
		cur.events++
	}
	return append(writes, cur), nil
}

func (l *Log) run() {
	defer close(l.stopped)
	var carry *pendingWrite
	for {
		l.slots <- struct{}{}
		first := carry
		carry = nil
		if first == nil {
			var ok bool
			if first, ok = <-l.in; !ok {
				<-l.slots
				return
			}
		}
		group := []*pendingWrite{first}
		size := len(first.data)
	fill:
		for {
			select {
			case w, ok := <-l.in:
				if !ok {
					break fill
				}
				if size+len(w.data) > l.cfg.MaxGroupBytes {
					carry = w
					break fill
				}
				group = append(group, w)
				size += len(w.data)
			default:
				break fill
			}
		}
		l.flights.Add(1)
		go l.write(group, size)
	}
}

func (l *Log) write(group []*pendingWrite, size int) {
	defer func() { <-l.slots; l.flights.Done() }()
	data := make([]byte, 0, size)
	events := 0
	for _, w := range group {
		data = append(data, w.data...)
		events += w.events
	}
	start := time.Now()
	err := l.publish(l.b.cipher.seal(data))
	l.writeSeconds.Observe(time.Since(start).Seconds())
	l.groupEvents.Observe(float64(events))
	if err != nil {
		l.writeErrors.Inc()
		l.b.log.Error("event log write failed", "events", events, "err", err)
		err = cdp.Wrap(cdp.Unavailable, "log_unavailable", err, "the event log is unavailable; retry later")
	}
	l.pending.Add(-int64(size))
	for _, w := range group {
		w.done <- err
	}
}

// publish writes one log entry, retrying transient failures with the same
// message id so that JetStream stores it once.
func (l *Log) publish(data []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.WriteTimeout)
	defer cancel()
	msg := &nats.Msg{Subject: l.b.eventsSubject(), Data: data, Header: nats.Header{}}
	msg.Header.Set(formatHeader, eventcodec.Version)
	msg.Header.Set(nats.MsgIdHdr, newWriteID())
	backoff := 20 * time.Millisecond
	for {
		_, err := l.b.js.PublishMsg(ctx, msg)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || !retryablePublish(err) {
			return err
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return err
		}
		backoff = min(2*backoff, time.Second)
	}
}

// retryablePublish reports whether a failed write may succeed if sent again:
// lost connections, timeouts and a stream leader election are passing; an
// answer from the stream itself (full, too large) is final, so the client
// is told to come back later instead of holding the request open.
func retryablePublish(err error) bool {
	if _, ok := errors.AsType[*jetstream.APIError](err); ok {
		return false
	}
	return !errors.Is(err, nats.ErrConnectionClosed)
}

func newWriteID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Close stops taking events, writes every event already accepted, and waits
// for the writes in flight, or for ctx.
func (l *Log) Close(ctx context.Context) error {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.in)
		close(l.stopPoll)
	}
	l.mu.Unlock()
	select {
	case <-l.stopped:
	case <-ctx.Done():
		return ctx.Err()
	}
	done := make(chan struct{})
	go func() { l.flights.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
