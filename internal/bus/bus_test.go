package bus_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/custos-cdp/custos/internal/bus"
	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/testenv"
)

var (
	quiet   = slog.New(slog.NewTextHandler(io.Discard, nil))
	testKey = func() []byte { k := make([]byte, 32); _, _ = rand.Read(k); return k }()
)

// eachBus runs the same test on the embedded server and on the external one
// named by CUSTOS_TEST_NATS_URL.
func eachBus(t *testing.T, test func(t *testing.T, cfg bus.Config)) {
	t.Helper()
	t.Run("embedded", func(t *testing.T) {
		test(t, bus.Config{StoreDir: t.TempDir(), StoreKey: testKey, EntryKey: testKey, Prefix: "t" + testenv.RandomName()})
	})
	t.Run("external", func(t *testing.T) {
		url := testenv.NATSURL(t)
		cfg := bus.Config{URL: url, EntryKey: testKey, Prefix: "t" + testenv.RandomName()}
		t.Cleanup(func() { deleteStreams(t, cfg) })
		test(t, cfg)
	})
}

func deleteStreams(t *testing.T, cfg bus.Config) {
	b, err := bus.Open(context.Background(), cfg, quiet)
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	defer b.Close()
	_ = b.JetStream().DeleteStream(context.Background(), b.EventsStream())
}

func openBus(t *testing.T, cfg bus.Config) *bus.Bus {
	t.Helper()
	b, err := bus.Open(context.Background(), cfg, quiet)
	if err != nil {
		t.Fatalf("open bus: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func event(i int) cdp.Event {
	at := time.Date(2026, 11, 28, 12, 0, 0, i, time.UTC)
	return cdp.Event{
		MessageID: fmt.Sprintf("m%06d", i), WorkspaceID: "ws", SourceID: "src", Format: cdp.FormatSegment,
		Type: cdp.Track, Name: "Clicked", Identities: []cdp.Identity{{Type: cdp.UserID, Value: fmt.Sprintf("u%d", i%50)}},
		Properties: []byte(`{"n":1}`), Timestamp: at, ReceivedAt: at,
	}
}

// collector is an EventHandler that remembers what it saw.
type collector struct {
	mu   sync.Mutex
	seen map[string]int
	fail int // fail this many calls first
}

func (c *collector) handle(_ context.Context, events []cdp.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail > 0 {
		c.fail--
		return fmt.Errorf("induced failure")
	}
	if c.seen == nil {
		c.seen = map[string]int{}
	}
	for _, ev := range events {
		c.seen[ev.MessageID]++
	}
	return nil
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestGroupCommitConcurrentAppends(t *testing.T) {
	eachBus(t, func(t *testing.T, cfg bus.Config) {
		b := openBus(t, cfg)
		log := b.NewLog(bus.LogConfig{}, nil)
		const callers, perCaller = 64, 20
		var wg sync.WaitGroup
		for c := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				batch := make([]cdp.Event, perCaller)
				for i := range batch {
					batch[i] = event(c*perCaller + i)
				}
				if err := log.Append(context.Background(), batch); err != nil {
					t.Errorf("append: %v", err)
				}
			}()
		}
		wg.Wait()
		if err := log.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		info, err := b.JetStream().Stream(context.Background(), b.EventsStream())
		if err != nil {
			t.Fatal(err)
		}
		msgs := info.CachedInfo().State.Msgs
		if msgs == 0 || msgs >= callers {
			t.Errorf("got %d log writes for %d concurrent appends, want fewer (group commit) and more than 0", msgs, callers)
		}
		c := &collector{}
		cons, err := b.ConsumeEvents(context.Background(), bus.ConsumeConfig{}, c.handle)
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Stop(context.Background())
		waitFor(t, "all events consumed", func() bool { return c.count() == callers*perCaller })
		for id, n := range c.seen {
			if n != 1 {
				t.Errorf("event %s handled %d times, want 1", id, n)
			}
		}
		waitFor(t, "log emptied", func() bool {
			s, err := b.JetStream().Stream(context.Background(), b.EventsStream())
			return err == nil && s.CachedInfo().State.Msgs == 0
		})
	})
}

func TestConsumerRetriesFailedEntries(t *testing.T) {
	eachBus(t, func(t *testing.T, cfg bus.Config) {
		b := openBus(t, cfg)
		log := b.NewLog(bus.LogConfig{}, nil)
		if err := log.Append(context.Background(), []cdp.Event{event(1), event(2)}); err != nil {
			t.Fatal(err)
		}
		c := &collector{fail: 2}
		cons, err := b.ConsumeEvents(context.Background(), bus.ConsumeConfig{RetryDelay: 10 * time.Millisecond}, c.handle)
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Stop(context.Background())
		waitFor(t, "entry applied after two failures", func() bool { return c.count() == 2 })
	})
}

func TestLogSurvivesReopen(t *testing.T) {
	eachBus(t, func(t *testing.T, cfg bus.Config) {
		b, err := bus.Open(context.Background(), cfg, quiet)
		if err != nil {
			t.Fatal(err)
		}
		log := b.NewLog(bus.LogConfig{}, nil)
		for i := range 10 {
			if err := log.Append(context.Background(), []cdp.Event{event(i)}); err != nil {
				t.Fatal(err)
			}
		}
		_ = log.Close(context.Background())
		b.Close()

		b2 := openBus(t, cfg)
		c := &collector{}
		cons, err := b2.ConsumeEvents(context.Background(), bus.ConsumeConfig{}, c.handle)
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Stop(context.Background())
		waitFor(t, "events written before the restart", func() bool { return c.count() == 10 })
	})
}

func TestAppendBackPressure(t *testing.T) {
	eachBus(t, func(t *testing.T, cfg bus.Config) {
		b := openBus(t, cfg)
		log := b.NewLog(bus.LogConfig{MaxPendingBytes: 10}, nil)
		err := log.Append(context.Background(), []cdp.Event{event(1)})
		if !cdp.IsKind(err, cdp.Unavailable) {
			t.Fatalf("got %v, want Unavailable when over the pending limit", err)
		}
	})
}

func TestAppendAfterCloseIsUnavailable(t *testing.T) {
	eachBus(t, func(t *testing.T, cfg bus.Config) {
		b := openBus(t, cfg)
		log := b.NewLog(bus.LogConfig{}, nil)
		if err := log.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := log.Append(context.Background(), []cdp.Event{event(1)}); !cdp.IsKind(err, cdp.Unavailable) {
			t.Fatalf("got %v, want Unavailable after Close", err)
		}
	})
}

// TestFullLogRefusesWrites fills the log with nobody consuming: appends
// must fail (back-pressure) and nothing written before may be dropped.
func TestFullLogRefusesWrites(t *testing.T) {
	eachBus(t, func(t *testing.T, cfg bus.Config) {
		cfg.MaxLogBytes = 4 << 10
		b := openBus(t, cfg)
		log := b.NewLog(bus.LogConfig{}, nil)
		var err error
		for i := range 200 {
			if err = log.Append(context.Background(), []cdp.Event{event(i)}); err != nil {
				break
			}
			time.Sleep(10 * time.Millisecond) // the log's size is polled
		}
		if !cdp.IsKind(err, cdp.Unavailable) {
			t.Fatalf("got %v, want Unavailable once the log is full", err)
		}
		s, serr := b.JetStream().Stream(context.Background(), b.EventsStream())
		if serr != nil {
			t.Fatal(serr)
		}
		if st := s.CachedInfo().State; st.FirstSeq != 1 {
			t.Errorf("the full log dropped entries: first sequence %d, want 1", st.FirstSeq)
		}
	})
}

// TestConsumerCombinesWaitingEntries: entries waiting in the log are
// applied together (one handler call, so one store transaction, serves
// many), each is acked, and an entry the handler refuses holds up none of
// the others it was combined with.
func TestConsumerCombinesWaitingEntries(t *testing.T) {
	eachBus(t, func(t *testing.T, cfg bus.Config) {
		b := openBus(t, cfg)
		log := b.NewLog(bus.LogConfig{}, nil)
		const entries = 40
		for i := range entries {
			if err := log.Append(context.Background(), []cdp.Event{event(i)}); err != nil {
				t.Fatal(err)
			}
		}
		var (
			mu       sync.Mutex
			calls    int
			largest  int
			poisoned = "m000007"
			seen     = map[string]int{}
		)
		h := func(_ context.Context, events []cdp.Event) error {
			mu.Lock()
			defer mu.Unlock()
			calls++
			largest = max(largest, len(events))
			for _, ev := range events {
				if ev.MessageID == poisoned {
					return fmt.Errorf("induced failure")
				}
			}
			for _, ev := range events {
				seen[ev.MessageID]++
			}
			return nil
		}
		cons, err := b.ConsumeEvents(context.Background(), bus.ConsumeConfig{Workers: 1, RetryDelay: time.Hour}, h)
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Stop(context.Background())
		waitFor(t, "every entry but the refused one applied", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(seen) == entries-1
		})
		mu.Lock()
		defer mu.Unlock()
		if largest < 2 {
			t.Errorf("no handler call combined entries (largest call: %d events)", largest)
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("%s applied %d times", id, n)
			}
		}
		if seen[poisoned] != 0 {
			t.Errorf("the refused entry was applied")
		}
	})
}

// TestConsumerLeavesUnreadableEntries: entries in a format this version
// cannot read (written by a newer one) are left in the log, however many
// wait together, and the readable ones around them are applied.
func TestConsumerLeavesUnreadableEntries(t *testing.T) {
	eachBus(t, func(t *testing.T, cfg bus.Config) {
		b := openBus(t, cfg)
		ctx := context.Background()
		for i := range 3 {
			msg := nats.NewMsg(b.Prefix() + ".events")
			msg.Header.Set("Custos-Log-Format", "99")
			msg.Data = []byte(fmt.Sprintf("from the future %d", i))
			if _, err := b.JetStream().PublishMsg(ctx, msg); err != nil {
				t.Fatal(err)
			}
		}
		log := b.NewLog(bus.LogConfig{}, nil)
		if err := log.Append(ctx, []cdp.Event{event(1)}); err != nil {
			t.Fatal(err)
		}
		c := &collector{}
		cons, err := b.ConsumeEvents(ctx, bus.ConsumeConfig{Workers: 1, MaxRetryDelay: time.Hour}, c.handle)
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Stop(ctx)
		waitFor(t, "the readable entry applied", func() bool { return c.count() == 1 })
		s, err := b.JetStream().Stream(ctx, b.EventsStream())
		if err != nil {
			t.Fatal(err)
		}
		if n := s.CachedInfo().State.Msgs; n < 3 {
			t.Errorf("%d entries left in the log, want the 3 unreadable ones", n)
		}
	})
}

// sizes is an EventHandler that remembers how many events each call held.
type sizes struct {
	mu      sync.Mutex
	largest int
	applied int
}

func (s *sizes) handle(_ context.Context, events []cdp.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.largest = max(s.largest, len(events))
	s.applied += len(events)
	return nil
}

// largestOnce waits until n events were applied and returns the most one
// call held.
func (s *sizes) largestOnce(t *testing.T, n int) int {
	t.Helper()
	waitFor(t, "every entry applied", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.applied == n
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.largest
}

// appendEach appends n log entries of one event each, made by mk, pausing
// for pause after each.
func appendEach(t *testing.T, log *bus.Log, n int, pause time.Duration, mk func(i int) cdp.Event) {
	t.Helper()
	for i := range n {
		if err := log.Append(context.Background(), []cdp.Event{mk(i)}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(pause)
	}
}

// consume starts a consumer on b with cfg and stops it when the test ends.
func consume(t *testing.T, b *bus.Bus, cfg bus.ConsumeConfig, h bus.EventHandler) {
	t.Helper()
	cons, err := b.ConsumeEvents(context.Background(), cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cons.Stop(context.Background()) })
}

// TestConsumerCatchesUpWithLargerTransactions: while the entries a worker
// takes are older than CatchUpAfter, it combines up to CatchUpEvents
// instead of MaxEvents; otherwise MaxEvents holds.
func TestConsumerCatchesUpWithLargerTransactions(t *testing.T) {
	for _, tc := range []struct {
		name        string
		after       time.Duration
		least, most int
	}{
		{"in step", time.Hour, 1, 5},
		{"behind", time.Nanosecond, 6, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eachBus(t, func(t *testing.T, cfg bus.Config) {
				b := openBus(t, cfg)
				const entries = 60
				appendEach(t, b.NewLog(bus.LogConfig{}, nil), entries, 0, event)
				var got sizes
				consume(t, b, bus.ConsumeConfig{Workers: 1, MaxEvents: 5, CatchUpEvents: 50, CatchUpAfter: tc.after}, got.handle)
				if largest := got.largestOnce(t, entries); largest < tc.least || largest > tc.most {
					t.Errorf("largest handler call: %d events, want %d to %d", largest, tc.least, tc.most)
				}
			})
		})
	}
}

// TestConsumerCatchUpLingersBoundedly: a worker that is behind waits for
// more entries only briefly in all, not for as long as entries keep
// trickling in, so what it holds is not kept from the store.
func TestConsumerCatchUpLingersBoundedly(t *testing.T) {
	eachBus(t, func(t *testing.T, cfg bus.Config) {
		b := openBus(t, cfg)
		var got sizes
		consume(t, b, bus.ConsumeConfig{Workers: 1, MaxEvents: 5, CatchUpEvents: 1000, CatchUpAfter: time.Nanosecond}, got.handle)
		// One entry every 5 ms for about half a second: each arrives well
		// within the linger of the one before.
		const entries = 100
		appendEach(t, b.NewLog(bus.LogConfig{}, nil), entries, 5*time.Millisecond, event)
		if largest := got.largestOnce(t, entries); largest > entries/2 {
			t.Errorf("largest handler call: %d events; the worker waited for entries for as long as they came", largest)
		}
	})
}

// TestConsumerKeepsSlowBatches: a batch whose handler runs longer than
// AckWait stays with its worker; JetStream does not hand its entries to
// another one meanwhile.
func TestConsumerKeepsSlowBatches(t *testing.T) {
	eachBus(t, func(t *testing.T, cfg bus.Config) {
		b := openBus(t, cfg)
		log := b.NewLog(bus.LogConfig{}, nil)
		const (
			entries = 4
			ackWait = time.Second
		)
		appendEach(t, log, entries, 0, event)
		var (
			mu   sync.Mutex
			seen = map[string]int{}
			done int
		)
		h := func(_ context.Context, events []cdp.Event) error {
			mu.Lock()
			for _, ev := range events {
				seen[ev.MessageID]++ // counted as it starts, so a late second delivery shows
			}
			mu.Unlock()
			time.Sleep(2 * ackWait)
			mu.Lock()
			done += len(events)
			mu.Unlock()
			return nil
		}
		consume(t, b, bus.ConsumeConfig{Workers: 2, MaxEvents: 1, AckWait: ackWait}, h)
		waitFor(t, "every entry applied", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return done >= entries
		})
		time.Sleep(ackWait + ackWait/2) // a second delivery of the last entries would have started now
		mu.Lock()
		defer mu.Unlock()
		for id, n := range seen {
			if n != 1 {
				t.Errorf("%s handed to a worker %d times", id, n)
			}
		}
	})
}

// TestConsumerBoundsBatchBytes: entries combine up to MaxBatchBytes of
// stored log data, however few events that is.
func TestConsumerBoundsBatchBytes(t *testing.T) {
	eachBus(t, func(t *testing.T, cfg bus.Config) {
		b := openBus(t, cfg)
		const entries = 30
		big := []byte(`{"blob":"` + strings.Repeat("x", 4000) + `"}`)
		appendEach(t, b.NewLog(bus.LogConfig{}, nil), entries, 0, func(i int) cdp.Event {
			ev := event(i)
			ev.Properties = big
			return ev
		})
		var got sizes
		// Each entry is a little over 4 KB stored: at most three fit.
		consume(t, b, bus.ConsumeConfig{Workers: 1, MaxEvents: 1000, MaxBatchBytes: 12 << 10}, got.handle)
		if largest := got.largestOnce(t, entries); largest > 3 || largest < 2 {
			t.Errorf("largest handler call: %d events of ~4 KB, want 2 or 3 under a 12 KiB bound", largest)
		}
	})
}
