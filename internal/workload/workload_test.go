package workload

import (
	"testing"

	"github.com/custos-cdp/custos/internal/cdp"
)

func TestGeneratorShape(t *testing.T) {
	g := New(Config{People: 1000, Events: 20000, Seed: 7})
	var (
		n, merges, anonOnly int
		ids                 = map[string]bool{}
		perUser             = map[string]int{}
	)
	for {
		ev, ok := g.Next()
		if !ok {
			break
		}
		n++
		if ids[ev.MessageID] {
			t.Fatalf("message id %s twice", ev.MessageID)
		}
		ids[ev.MessageID] = true
		if !ev.Type.Valid() || len(ev.Identities) == 0 {
			t.Fatalf("event %d: type %q, %d identities", n, ev.Type, len(ev.Identities))
		}
		u, hasUser := ev.Identity(cdp.UserID)
		if hasUser {
			perUser[u.Value]++
		} else {
			anonOnly++
		}
		if ev.Type == cdp.Identify && len(ev.Identities) == 2 && ev.Traits != nil && hasUser {
			merges++
		}
	}
	if n != 20000 {
		t.Fatalf("got %d events, want 20000", n)
	}
	if anonOnly == 0 || merges == 0 {
		t.Errorf("got %d anonymous-only events and %d linking identifies, want some of each", anonOnly, merges)
	}
	// Skew: the busiest person has far more than the average.
	busiest := 0
	for _, c := range perUser {
		busiest = max(busiest, c)
	}
	if avg := 20000 / len(perUser); busiest < 10*avg {
		t.Errorf("busiest person has %d events, average %d: not skewed", busiest, avg)
	}
	// Same seed, same stream.
	a, b := New(Config{People: 100, Events: 50, Seed: 3}), New(Config{People: 100, Events: 50, Seed: 3})
	for {
		x, ok1 := a.Next()
		y, ok2 := b.Next()
		if ok1 != ok2 || x.MessageID != y.MessageID || len(x.Identities) != len(y.Identities) {
			t.Fatal("same seed gave different streams")
		}
		if !ok1 {
			break
		}
	}
}
