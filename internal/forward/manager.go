package forward

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
)

// Registry maps each destination type to the factory of its senders.
type Registry map[cdp.DestinationType]Factory

// Destinations lists every destination of every workspace.
type Destinations interface {
	All(ctx context.Context) ([]cdp.Destination, error)
}

// Queues opens each destination's durable queue.
type Queues interface {
	DestinationQueue(ctx context.Context, id cdp.DestinationID) (Queue, error)
}

// Leases elect one router per destination among the processes of a
// deployment: Hold acquires or renews the named lease for this process and
// reports whether it holds it.
type Leases interface {
	Hold(ctx context.Context, name string) (bool, error)
}

// Manager keeps one router running per destination whose lease this
// process holds, restarting it when the destination changes and stopping
// it when the destination goes away or the lease is lost.
type Manager struct {
	Destinations Destinations
	Queues       Queues
	Leases       Leases
	Store        Store
	Registry     Registry
	// Configure opens a destination's credentials and builds its guarded
	// HTTP client.
	Configure func(ctx context.Context, d cdp.Destination) (SenderConfig, error)
	Policy    Policy
	Log       *slog.Logger
	Metrics   *Metrics
	Interval  time.Duration // how often to look for changes; default 2s

	mu      sync.Mutex
	running map[cdp.DestinationID]*running
}

type running struct {
	updated time.Time
	cancel  context.CancelFunc
	done    chan struct{}
}

// Run manages routers until ctx ends, then stops them all.
func (m *Manager) Run(ctx context.Context) {
	if m.Interval <= 0 {
		m.Interval = 2 * time.Second
	}
	m.running = map[cdp.DestinationID]*running{}
	t := time.NewTicker(m.Interval)
	defer t.Stop()
	for {
		m.sync(ctx)
		select {
		case <-ctx.Done():
			m.stopAll()
			return
		case <-t.C:
		}
	}
}

// Running reports whether a router runs for a destination here.
func (m *Manager) Running(id cdp.DestinationID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.running[id]
	return ok
}

func (m *Manager) sync(ctx context.Context) {
	dests, err := m.Destinations.All(ctx)
	if err != nil {
		if ctx.Err() == nil {
			m.Log.Warn("listing destinations failed", "err", err)
		}
		return
	}
	seen := map[cdp.DestinationID]bool{}
	for _, d := range dests {
		seen[d.ID] = true
		held, err := m.Leases.Hold(ctx, "router."+string(d.ID))
		if err != nil {
			m.Log.Warn("destination lease", "destination", d.ID, "err", err)
			held = false
		}
		m.mu.Lock()
		r, ok := m.running[d.ID]
		m.mu.Unlock()
		switch {
		case !held && ok:
			m.stop(d.ID)
		case held && ok && !r.updated.Equal(d.UpdatedAt):
			m.stop(d.ID)
			m.start(ctx, d)
		case held && !ok:
			m.start(ctx, d)
		}
	}
	m.mu.Lock()
	var gone []cdp.DestinationID
	for id := range m.running {
		if !seen[id] {
			gone = append(gone, id)
		}
	}
	m.mu.Unlock()
	for _, id := range gone {
		m.stop(id)
	}
}

func (m *Manager) start(ctx context.Context, d cdp.Destination) {
	factory, ok := m.Registry[d.Type]
	if !ok {
		m.Log.Error("no sender for destination type", "destination", d.ID, "type", d.Type)
		return
	}
	cfg, err := m.Configure(ctx, d)
	if err != nil {
		m.Log.Error("configuring destination failed", "destination", d.ID, "err", err)
		return
	}
	sender, err := factory(cfg)
	if err != nil {
		m.Log.Error("destination sender refused its settings", "destination", d.ID, "err", err)
		return
	}
	q, err := m.Queues.DestinationQueue(ctx, d.ID)
	if err != nil {
		sender.Close()
		m.Log.Error("opening destination queue failed", "destination", d.ID, "err", err)
		return
	}
	rctx, cancel := context.WithCancel(ctx)
	r := &running{updated: d.UpdatedAt, cancel: cancel, done: make(chan struct{})}
	router := &Router{Dest: d, Queue: q, Store: m.Store, Sender: sender, Policy: m.Policy, Log: m.Log, Metrics: m.Metrics}
	go func() {
		defer close(r.done)
		defer sender.Close()
		router.Run(rctx)
	}()
	m.mu.Lock()
	m.running[d.ID] = r
	m.mu.Unlock()
}

func (m *Manager) stop(id cdp.DestinationID) {
	m.mu.Lock()
	r, ok := m.running[id]
	delete(m.running, id)
	m.mu.Unlock()
	if ok {
		r.cancel()
		<-r.done
	}
}

func (m *Manager) stopAll() {
	m.mu.Lock()
	ids := make([]cdp.DestinationID, 0, len(m.running))
	for id := range m.running {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	for _, id := range ids {
		m.stop(id)
	}
}
