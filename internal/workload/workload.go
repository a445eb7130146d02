// Package workload generates realistic event streams for benchmarks: many
// people with a skewed (Zipf) share of the traffic, anonymous visits that
// later log in and merge, identifies that change traits, ~500-byte
// payloads. It is deterministic for a given seed.
package workload

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
)

// Config shapes a workload.
type Config struct {
	People   int     // distinct people (default 100,000)
	Events   int     // events in all (default 1,000,000)
	Journeys float64 // share of people on anonymous-then-identified journeys (default 0.2)
	ZipfS    float64 // Zipf exponent of traffic per person, > 1 (default 1.1)
	Seed     uint64
	Start    time.Time
	// Workspace and Source stamp every event.
	Workspace cdp.WorkspaceID
	Source    cdp.SourceID
}

func (c *Config) setDefaults() {
	if c.People <= 0 {
		c.People = 100_000
	}
	if c.Events <= 0 {
		c.Events = 1_000_000
	}
	if c.Journeys == 0 {
		c.Journeys = 0.2
	}
	if c.ZipfS <= 1 {
		c.ZipfS = 1.1
	}
	if c.Start.IsZero() {
		c.Start = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	}
	if c.Workspace == "" {
		c.Workspace = "ws"
	}
	if c.Source == "" {
		c.Source = "src"
	}
}

// Generator yields events one at a time.
type Generator struct {
	cfg  Config
	rng  *rand.Rand
	zipf *rand.Zipf
	// clock draws how far each client's clock is behind its event's
	// receipt; a stream of its own, so the people and events drawn stay
	// the same whatever it draws.
	clock *rand.Rand
	n     int
	// per person: the anonymous id of the current visit, whether they are
	// in an anonymous visit that will end in a login, events left in it,
	// whether they were seen, and whether they came back on a new device.
	anon     []uint32
	inVisit  []bool
	visitLen []uint8
	seen     []bool
	returned []bool
}

// New returns a generator for cfg.
func New(cfg Config) *Generator {
	cfg.setDefaults()
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	return &Generator{
		cfg:      cfg,
		rng:      rng,
		zipf:     rand.NewZipf(rng, cfg.ZipfS, 1, uint64(cfg.People-1)),
		clock:    rand.New(rand.NewPCG(cfg.Seed^0x5bd1e995, cfg.Seed)),
		anon:     make([]uint32, cfg.People),
		inVisit:  make([]bool, cfg.People),
		visitLen: make([]uint8, cfg.People),
		seen:     make([]bool, cfg.People),
		returned: make([]bool, cfg.People),
	}
}

// Len is the number of events the generator yields in all.
func (g *Generator) Len() int { return g.cfg.Events }

// Next returns the next event, or false when the workload is done.
func (g *Generator) Next() (cdp.Event, bool) {
	if g.n >= g.cfg.Events {
		return cdp.Event{}, false
	}
	// Spread people over the id space so that the busiest are not all
	// neighbours in every index.
	p := int((g.zipf.Uint64() * 2654435761) % uint64(g.cfg.People))
	at := g.cfg.Start.Add(time.Duration(g.n) * 10 * time.Millisecond)
	ev := cdp.Event{
		MessageID:   "wl-" + strconv.FormatUint(g.cfg.Seed, 36) + "-" + strconv.Itoa(g.n),
		WorkspaceID: g.cfg.Workspace, SourceID: g.cfg.Source, Format: cdp.FormatSegment,
		ReceivedAt: at, IP: fmt.Sprintf("203.0.%d.%d", p%250, p%200),
		Context: json.RawMessage(`{"library":{"name":"analytics.js","version":"5.2.0"},"userAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Safari/605.1.15"}`),
	}
	g.n++
	// Clients send their own time for each event, a few seconds before it
	// arrives; one event in fifty comes from a device that was offline for
	// one to 48 hours.
	lag := time.Duration(g.clock.IntN(5000)) * time.Millisecond
	if g.clock.IntN(50) == 0 {
		lag = time.Hour + time.Duration(g.clock.Int64N(int64(47*time.Hour)))
	}
	ev.OriginalTimestamp, ev.SentAt, ev.ClientTime, ev.Timestamp = at.Add(-lag), at, at.Add(-lag), at.Add(-lag)
	user := cdp.Identity{Type: cdp.UserID, Value: "user-" + strconv.Itoa(p)}
	anon := cdp.Identity{Type: cdp.AnonymousID, Value: fmt.Sprintf("anon-%d-%d", p, g.anon[p])}

	journey := float64((uint64(p)*0x9e3779b97f4a7c15)>>11)/float64(1<<53) < g.cfg.Journeys
	if journey && !g.seen[p] && !g.inVisit[p] {
		// A journey starts anonymous: a few events before the first login.
		g.inVisit[p], g.visitLen[p], g.seen[p] = true, uint8(1+g.rng.IntN(4)), true
	} else if journey && g.seen[p] && !g.inVisit[p] && !g.returned[p] && g.rng.IntN(10) == 0 {
		// Later they come back once on a new device, anonymous again; the
		// login merges that device's profile into theirs.
		g.returned[p] = true
		g.anon[p]++
		g.inVisit[p], g.visitLen[p] = true, uint8(1+g.rng.IntN(4))
		anon.Value = fmt.Sprintf("anon-%d-%d", p, g.anon[p])
	}
	switch {
	case g.inVisit[p] && g.visitLen[p] > 0:
		// An anonymous visit: only the visit's anonymous id.
		g.visitLen[p]--
		g.fill(&ev, []cdp.Identity{anon}, p)
	case g.inVisit[p]:
		// The login that ends it: links the visit to the person, merging
		// the visit's profile into theirs if they were known.
		g.inVisit[p] = false
		ev.Type = cdp.Identify
		ev.Identities = []cdp.Identity{user, anon}
		ev.Traits = json.RawMessage(fmt.Sprintf(`{"email":"user-%d@example.com","plan":%q,"logins":%d}`, p, []string{"free", "pro", "team"}[g.rng.IntN(3)], g.rng.IntN(100)))
	default:
		g.seen[p] = true
		g.fill(&ev, []cdp.Identity{user, anon}, p)
	}
	return ev, true
}

// fill makes ev an ordinary event of person p: mostly tracks, some pages,
// screens and identifies.
func (g *Generator) fill(ev *cdp.Event, ids []cdp.Identity, p int) {
	ev.Identities = ids
	r := g.rng.IntN(100)
	switch {
	case r < 70:
		ev.Type, ev.Name = cdp.Track, []string{"Order Completed", "Product Viewed", "Product Added", "Checkout Started"}[g.rng.IntN(4)]
		ev.Properties = json.RawMessage(fmt.Sprintf(`{"order_id":"o-%d","revenue":%d.%02d,"currency":"EUR","products":[{"product_id":"p-%d","sku":"SKU-%d","price":19.99,"quantity":1},{"product_id":"p-%d","sku":"SKU-%d","price":5.5,"quantity":2}]}`,
			g.n, g.rng.IntN(300), g.rng.IntN(100), g.rng.IntN(5000), g.rng.IntN(5000), g.rng.IntN(5000), g.rng.IntN(5000)))
	case r < 85:
		ev.Type, ev.Name = cdp.Page, "Pricing"
		ev.Properties = json.RawMessage(`{"path":"/pricing","referrer":"https://www.example.com/","title":"Pricing"}`)
	case r < 90:
		ev.Type, ev.Name = cdp.Screen, "Home"
		ev.Properties = json.RawMessage(`{"variant":"b"}`)
	default:
		ev.Type = cdp.Identify
		ev.Traits = json.RawMessage(fmt.Sprintf(`{"last_seen_page":"/p/%d","visits":%d}`, g.rng.IntN(1000), g.rng.IntN(500)))
	}
	_ = p
}
