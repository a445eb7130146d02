package sqlstore_test

import (
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/sqlstore"
)

// sent is message mid as a client sends it: with its own time for the
// event (zero: none), received at received.
func sent(mid string, client, received time.Time) cdp.Event {
	e := ev(mid, cdp.Track, ids("user_id", "dedup-user"))
	e.ClientTime, e.ReceivedAt = client, received
	if !client.IsZero() {
		e.Timestamp = client
	}
	return e
}

// applied sends events one batch each and reports how many were applied.
func applied(t *testing.T, p *sqlstore.Profiles, events ...cdp.Event) int {
	t.Helper()
	n := 0
	for _, e := range events {
		n += apply(t, p, e).Applied
	}
	return n
}

func prune(t *testing.T, db *sqlstore.DB, now time.Time, window time.Duration) int64 {
	t.Helper()
	n, err := db.Events().PruneMessageIDs(context.Background(), now, window)
	if err != nil {
		t.Fatalf("prune: %v", err)
	}
	return n
}

// TestMessageIDsRememberedForTheWindow: a resent message is a duplicate
// for at least the deduplication window after it was received, whether
// its client sent a time close to its receipt, sent none, or sent one far
// off (a device that was offline); and it is forgotten within the window
// and an hour.
func TestMessageIDsRememberedForTheWindow(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqlstore.DB) {
		p := newProfiles(t, db)
		const window = 24 * time.Hour
		first := []cdp.Event{
			sent("on-time", t0.Add(-2*time.Second), t0),
			sent("no-time", time.Time{}, t0),
			sent("offline", t0.Add(-30*time.Hour), t0),
			sent("ahead", t0.Add(5*time.Hour), t0),
		}
		if n := applied(t, p, first...); n != len(first) {
			t.Fatalf("applied %d of %d new messages", n, len(first))
		}
		// Retries arrive later, with what the client sent the first time.
		retries := func(after time.Duration) []cdp.Event {
			out := make([]cdp.Event, len(first))
			for i, e := range first {
				out[i] = sent(e.MessageID, e.ClientTime, t0.Add(after))
			}
			return out
		}
		if n := applied(t, p, retries(10*time.Minute)...); n != 0 {
			t.Fatalf("%d retries applied again", n)
		}
		// Just inside the window nothing may be forgotten: not the
		// offline device's message, whose client time is long past.
		if n := prune(t, db, t0.Add(window-time.Minute), window); n != 0 {
			t.Errorf("pruned %d ids inside the window", n)
		}
		// A message from a device offline for two days arrives now, with a
		// client time before everything pruning has passed over already.
		late := sent("late", t0.Add(-48*time.Hour), t0.Add(window-time.Minute))
		if n := applied(t, p, late); n != 1 {
			t.Fatal("late message not applied")
		}
		if n := prune(t, db, t0.Add(window-time.Minute), window); n != 0 {
			t.Errorf("pruned %d ids inside the window", n)
		}
		if n := applied(t, p, retries(window-time.Minute)...); n != 0 {
			t.Fatalf("%d retries applied again inside the window", n)
		}
		if n := applied(t, p, sent("late", late.ClientTime, late.ReceivedAt.Add(time.Minute))); n != 0 {
			t.Fatal("late message's retry applied again")
		}
		// Past the window and the slack every first copy is forgotten, and
		// the late one is still remembered.
		if n := prune(t, db, t0.Add(window+time.Hour+time.Minute), window); n != int64(len(first)) {
			t.Errorf("pruned %d ids past the window, want %d", n, len(first))
		}
		if n := applied(t, p, sent("late", late.ClientTime, late.ReceivedAt.Add(2*time.Hour))); n != 0 {
			t.Fatal("late message forgotten inside its window")
		}
		if n := applied(t, p, retries(window+time.Hour+2*time.Minute)...); n != len(first) {
			t.Fatalf("%d of %d messages applied again past the window", n, len(first))
		}
	})
}

// TestManyMessageIDsPruned: pruning ids across several chunks forgets them
// all and keeps every newer one.
func TestManyMessageIDsPruned(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqlstore.DB) {
		p := newProfiles(t, db)
		const window, old, recent = time.Hour, 25000, 300
		batch := make([]cdp.Event, 0, 1000)
		for i := range old + recent {
			at := t0.Add(time.Duration(i) * time.Millisecond)
			if i >= old {
				at = t0.Add(3 * time.Hour)
			}
			e := sent("bulk-"+strconv.Itoa(i), at, at)
			if i%10 == 0 {
				e.ClientTime = time.Time{} // pruned by receipt
			}
			batch = append(batch, e)
			if len(batch) == cap(batch) || i == old+recent-1 {
				if res := apply(t, p, batch...); res.Applied != len(batch) {
					t.Fatalf("applied %d of %d", res.Applied, len(batch))
				}
				batch = batch[:0]
			}
		}
		if n := prune(t, db, t0.Add(3*time.Hour), window); n != old {
			t.Errorf("pruned %d ids, want %d", n, old)
		}
		resent := sent("bulk-"+strconv.Itoa(old+1), t0.Add(3*time.Hour), t0.Add(3*time.Hour+time.Second))
		if n := applied(t, p, resent, sent("bulk-0", time.Time{}, t0.Add(3*time.Hour))); n != 1 {
			t.Errorf("applied %d, want only the forgotten one", n)
		}
	})
}

// TestMessageIDsFromBeforeTimeKeys: ids recorded by the previous version
// (keyed by hash alone) are migrated and still catch a retry, whatever
// client time the retry carries, until they leave the window.
func TestMessageIDsFromBeforeTimeKeys(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		p := newProfiles(t, db)
		if err := db.MigrateDownToForTest(ctx, 6); err != nil {
			t.Fatalf("migrate down: %v", err)
		}
		h := sha256.Sum256([]byte("legacy-1"))
		if err := db.ExecForTest(ctx, `INSERT INTO message_ids (source_id, message_hash, received_at) VALUES ('src1', $1, $2)`,
			h[:16], t0.UnixMicro()); err != nil {
			t.Fatal(err)
		}
		if err := db.Migrate(ctx, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
			t.Fatalf("migrate up: %v", err)
		}
		if n := applied(t, p, sent("legacy-1", t0.Add(-time.Second), t0.Add(time.Hour)), sent("legacy-1", time.Time{}, t0.Add(time.Hour))); n != 0 {
			t.Fatalf("%d retries of a message recorded before the migration applied", n)
		}
		if n := applied(t, p, sent("legacy-2", t0.Add(-time.Second), t0.Add(time.Hour))); n != 1 {
			t.Fatal("new message not applied")
		}
		if n := prune(t, db, t0.Add(24*time.Hour+time.Minute), 24*time.Hour); n != 1 {
			t.Errorf("pruned %d, want the migrated id", n)
		}
		if n := applied(t, p, sent("legacy-1", t0.Add(-time.Second), t0.Add(25*time.Hour))); n != 1 {
			t.Fatal("a message recorded before the migration is remembered past the window")
		}
	})
}
