package forward

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
)

// fakeQueue hands out items in order, like a JetStream consumer with
// explicit acks: an item not acked stays at the head.
type fakeQueue struct {
	mu    sync.Mutex
	items []*fakeItem
}

type fakeItem struct {
	q       *fakeQueue
	profile cdp.ProfileID
	key     string
	acked   bool
	beats   int
}

func (i *fakeItem) Workspace() cdp.WorkspaceID { return "ws" }
func (i *fakeItem) Profile() cdp.ProfileID     { return i.profile }
func (i *fakeItem) Sealed() []byte             { return []byte(i.key) }
func (i *fakeItem) InProgress() error          { i.q.mu.Lock(); i.beats++; i.q.mu.Unlock(); return nil }
func (i *fakeItem) Ack(context.Context) error {
	i.q.mu.Lock()
	defer i.q.mu.Unlock()
	i.acked = true
	return nil
}

func (q *fakeQueue) Fetch(ctx context.Context, max int, _ time.Duration) ([]Item, error) {
	q.mu.Lock()
	var out []Item
	for _, it := range q.items {
		if !it.acked && len(out) < max {
			out = append(out, it)
		}
	}
	q.mu.Unlock()
	if len(out) == 0 {
		select {
		case <-ctx.Done():
		case <-time.After(time.Millisecond):
		}
	}
	return out, nil
}

func (q *fakeQueue) pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, it := range q.items {
		if !it.acked {
			n++
		}
	}
	return n
}

// fakeStore opens items whose key says "erased" as gone.
type fakeStore struct {
	mu        sync.Mutex
	delivered map[string]int
	retrying  map[string]int
	dead      []cdp.DeadLetter
	erased    int
}

func (s *fakeStore) Open(_ context.Context, _ cdp.WorkspaceID, p cdp.ProfileID, _ cdp.DestinationID, sealed []byte) (cdp.Delivery, error) {
	if string(sealed) == "erased" {
		return cdp.Delivery{}, cdp.Errorf(cdp.NotFound, "gone")
	}
	return cdp.Delivery{Key: string(sealed), Profile: p, Kind: cdp.DeliverEvent, MessageID: string(sealed)}, nil
}

func (s *fakeStore) MarkDelivered(_ context.Context, _ cdp.DestinationID, keys []string, _ int, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		s.delivered[k]++
	}
	return nil
}

func (s *fakeStore) MarkRetrying(_ context.Context, _ cdp.DestinationID, keys []string, attempts int, _ string, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		s.retrying[k] = attempts
	}
	return nil
}

func (s *fakeStore) MarkErased(context.Context, cdp.DestinationID, []string, time.Time) error {
	s.mu.Lock()
	s.erased++
	s.mu.Unlock()
	return nil
}

func (s *fakeStore) AddDeadLetters(_ context.Context, dls []cdp.DeadLetter) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dead = append(s.dead, dls...)
	return nil
}

// fakeSender fails as told and records what it received, in order.
type fakeSender struct {
	mu       sync.Mutex
	received []string
	fail     func(batch []cdp.Delivery) error
}

func (s *fakeSender) Send(_ context.Context, batch []cdp.Delivery) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		if err := s.fail(batch); err != nil {
			return err
		}
	}
	for _, d := range batch {
		s.received = append(s.received, d.Key)
	}
	return nil
}

func (s *fakeSender) Close() error { return nil }

// clock is a shortened clock: Sleep advances it at once.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Sleep(ctx context.Context, d time.Duration) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	return nil
}

func newRouter(q *fakeQueue, st *fakeStore, snd *fakeSender, c *clock, p Policy) *Router {
	return &Router{Dest: cdp.Destination{ID: "d1"}, Queue: q, Store: st, Sender: snd, Policy: p, Now: c.Now, Sleep: c.Sleep}
}

func queueOf(keys ...string) *fakeQueue {
	q := &fakeQueue{}
	for i, k := range keys {
		q.items = append(q.items, &fakeItem{q: q, key: k, profile: cdp.ProfileID(fmt.Sprint("p", i%2))})
	}
	return q
}

func runUntil(t *testing.T, r *Router, done func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan struct{})
	go func() { r.Run(ctx); close(finished) }()
	deadline := time.Now().Add(10 * time.Second)
	for !done() {
		if time.Now().After(deadline) {
			cancel()
			<-finished
			t.Fatal("router did not finish in time")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-finished
}

// TestRouterDownForAnHour keeps the destination failing for an hour of a
// shortened clock: once it is back it receives every delivery exactly once
// and in order, and nothing was dead-lettered.
func TestRouterDownForAnHour(t *testing.T) {
	c := &clock{now: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
	back := c.Now().Add(time.Hour)
	keys := []string{"k1", "k2", "k3", "k4", "k5", "k6", "k7"}
	q, st := queueOf(keys...), &fakeStore{delivered: map[string]int{}, retrying: map[string]int{}}
	snd := &fakeSender{fail: func([]cdp.Delivery) error {
		if c.Now().Before(back) {
			return &SendError{Retryable: true, Status: 503, Message: "destination answered 503"}
		}
		return nil
	}}
	r := newRouter(q, st, snd, c, Policy{BatchSize: 3, MaxAttempts: 1000, MaxAge: 24 * time.Hour, BaseDelay: time.Second, MaxDelay: time.Minute})
	runUntil(t, r, func() bool { return q.pending() == 0 })
	if fmt.Sprint(snd.received) != fmt.Sprint(keys) {
		t.Errorf("received %v, want each once in order %v", snd.received, keys)
	}
	if len(st.dead) != 0 {
		t.Errorf("dead-lettered %d, want 0", len(st.dead))
	}
	if st.retrying["k1"] < 10 {
		t.Errorf("k1 retried %d times over the hour, want many", st.retrying["k1"])
	}
	if q.items[0].beats == 0 {
		t.Error("the held batch was never marked in progress")
	}
}

func TestRouterDeadLetters(t *testing.T) {
	tests := []struct {
		name     string
		fail     func(batch []cdp.Delivery) error
		policy   Policy
		wantDead []string
		wantSent []string
	}{
		{
			name: "permanent failure of one item spares its neighbours",
			fail: func(b []cdp.Delivery) error {
				for _, d := range b {
					if d.Key == "bad" {
						return &SendError{Status: 400, Message: "destination answered 400"}
					}
				}
				return nil
			},
			policy:   Policy{BatchSize: 10},
			wantDead: []string{"bad"},
			wantSent: []string{"a", "b"},
		},
		{
			name:     "gives up after max attempts",
			fail:     func([]cdp.Delivery) error { return Retry("destination answered 500", errors.New("boom")) },
			policy:   Policy{BatchSize: 10, MaxAttempts: 3, BaseDelay: time.Millisecond},
			wantDead: []string{"a", "bad", "b"},
		},
		{
			name:     "gives up after max age",
			fail:     func([]cdp.Delivery) error { return Retry("destination answered 500", nil) },
			policy:   Policy{BatchSize: 10, MaxAttempts: 1 << 20, MaxAge: time.Hour, BaseDelay: time.Minute, MaxDelay: time.Minute},
			wantDead: []string{"a", "bad", "b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &clock{now: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
			q, st := queueOf("a", "bad", "b"), &fakeStore{delivered: map[string]int{}, retrying: map[string]int{}}
			snd := &fakeSender{fail: tt.fail}
			r := newRouter(q, st, snd, c, tt.policy)
			runUntil(t, r, func() bool { return q.pending() == 0 })
			var dead []string
			for _, d := range st.dead {
				dead = append(dead, d.Key)
			}
			if fmt.Sprint(dead) != fmt.Sprint(tt.wantDead) || fmt.Sprint(snd.received) != fmt.Sprint(tt.wantSent) {
				t.Errorf("dead %v sent %v, want dead %v sent %v", dead, snd.received, tt.wantDead, tt.wantSent)
			}
			for _, d := range st.dead {
				if len(d.Sealed) == 0 || d.LastError == "" {
					t.Errorf("dead letter %+v lacks its payload or reason", d)
				}
			}
		})
	}
}

func TestRouterHonoursRetryAfter(t *testing.T) {
	c := &clock{now: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
	start := c.Now()
	calls := 0
	q, st := queueOf("a"), &fakeStore{delivered: map[string]int{}, retrying: map[string]int{}}
	snd := &fakeSender{fail: func([]cdp.Delivery) error {
		calls++
		if calls == 1 {
			return &SendError{Retryable: true, Status: 429, RetryAfter: 90 * time.Second, Message: "destination answered 429"}
		}
		return nil
	}}
	r := newRouter(q, st, snd, c, Policy{BaseDelay: time.Millisecond})
	runUntil(t, r, func() bool { return q.pending() == 0 })
	if waited := c.Now().Sub(start); waited < 90*time.Second {
		t.Errorf("waited %v before the retry, want at least the 90s Retry-After", waited)
	}
}

func TestRouterDropsErasedPeople(t *testing.T) {
	c := &clock{now: time.Now()}
	q, st := queueOf("a", "erased", "b"), &fakeStore{delivered: map[string]int{}, retrying: map[string]int{}}
	snd := &fakeSender{}
	r := newRouter(q, st, snd, c, Policy{})
	runUntil(t, r, func() bool { return q.pending() == 0 })
	if fmt.Sprint(snd.received) != "[a b]" || st.erased == 0 {
		t.Errorf("sent %v, erased marked %d times; want [a b] and the erased one dropped", snd.received, st.erased)
	}
}
