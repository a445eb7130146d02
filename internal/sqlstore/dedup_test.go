package sqlstore_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/sqlstore"
	"github.com/custos-cdp/custos/internal/testenv"
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
			// Within the hour of slack either way: pruned by client time.
			sent("slow-clock", t0.Add(-59*time.Minute), t0),
			sent("fast-clock", t0.Add(59*time.Minute), t0),
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
		// At most two hours past the window every first copy is forgotten,
		// and the late one is still remembered.
		if n := prune(t, db, t0.Add(window+2*time.Hour+time.Minute), window); n != int64(len(first)) {
			t.Errorf("pruned %d ids past the window, want %d", n, len(first))
		}
		if n := applied(t, p, sent("late", late.ClientTime, late.ReceivedAt.Add(2*time.Hour))); n != 0 {
			t.Fatal("late message forgotten inside its window")
		}
		if n := applied(t, p, retries(window+2*time.Hour+2*time.Minute)...); n != len(first) {
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
		// bulk is message i as first sent: the old ones 0 to 25 s after t0,
		// the recent ones three hours later, one in ten without a client
		// time; one in ten recent ones from a device offline for two days,
		// whose client time lies among the old ones.
		bulk := func(i int) cdp.Event {
			at := t0.Add(time.Duration(i) * time.Millisecond)
			if i >= old {
				at = t0.Add(3 * time.Hour)
			}
			e := sent("bulk-"+strconv.Itoa(i), at, at)
			switch {
			case i%10 == 0:
				e.ClientTime = time.Time{}
			case i%10 == 1 && i >= old:
				e.ClientTime = t0.Add(time.Duration(i-old) * time.Millisecond)
			}
			return e
		}
		batch := make([]cdp.Event, 0, 1000)
		for i := range old + recent {
			batch = append(batch, bulk(i))
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
		var resent []cdp.Event
		for i := old; i < old+recent; i++ {
			e := bulk(i)
			e.ReceivedAt = e.ReceivedAt.Add(time.Second)
			resent = append(resent, e)
		}
		if res := apply(t, p, resent...); res.Applied != 0 {
			t.Errorf("%d of %d newer messages applied again", res.Applied, recent)
		}
		if res := apply(t, p, bulk(0), bulk(1)); res.Applied != 2 {
			t.Errorf("applied %d of 2 forgotten messages", res.Applied)
		}
	})
}

// TestMessageIDsFromBeforeTimeKeys: ids recorded by the previous version
// (keyed by hash alone) still catch a retry, whatever client time the
// retry carries, until they leave the window; ids recorded by this version
// survive going back to the previous one and up again, remembered at
// least as long.
func TestMessageIDsFromBeforeTimeKeys(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		p := newProfiles(t, db)
		const window = 24 * time.Hour
		timed, none := sent("v7-timed", t0.Add(-time.Second), t0), sent("v7-none", time.Time{}, t0)
		if n := applied(t, p, timed, none); n != 2 {
			t.Fatal("messages not applied")
		}
		if err := db.MigrateDownToForTest(ctx, 6); err != nil {
			t.Fatalf("migrate down: %v", err)
		}
		// Down leaves the tables and indexes version 6 had, by their names.
		q := `SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master WHERE name LIKE 'message_ids%' ORDER BY name) AS n`
		want := "message_ids,message_ids_received_at"
		if db.Dialect() == "postgres" {
			q = `SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
				WHERE s.nspname = current_schema() AND c.relname LIKE 'message_ids%'`
			want = "message_ids,message_ids_pkey,message_ids_received_at"
		}
		if got, err := db.QueryStringForTest(ctx, q); err != nil || got != want {
			t.Errorf("after going down: %q (%v), want %q", got, err, want)
		}
		h := sha256.Sum256([]byte("legacy-1"))
		if err := db.ExecForTest(ctx, `INSERT INTO message_ids (source_id, message_hash, received_at) VALUES ('src1', $1, $2)`,
			h[:16], t0.UnixMicro()); err != nil {
			t.Fatal(err)
		}
		if err := db.Migrate(ctx, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
			t.Fatalf("migrate up: %v", err)
		}
		later := t0.Add(time.Hour)
		if n := applied(t, p, sent("legacy-1", t0.Add(-time.Second), later), sent("legacy-1", time.Time{}, later),
			sent("v7-timed", timed.ClientTime, later), sent("v7-none", time.Time{}, later)); n != 0 {
			t.Fatalf("%d retries of messages recorded before the migrations applied", n)
		}
		if n := applied(t, p, sent("new-1", later.Add(-time.Second), later)); n != 1 {
			t.Fatal("new message not applied")
		}
		// Received at t0: forgotten a window later. v7-timed went down
		// without its receipt and is kept an hour past its client time.
		if n := prune(t, db, t0.Add(window+time.Minute), window); n != 2 {
			t.Errorf("pruned %d, want legacy-1 and v7-none", n)
		}
		if n := applied(t, p, sent("v7-timed", timed.ClientTime, t0.Add(window+2*time.Minute))); n != 0 {
			t.Error("v7-timed forgotten inside its window after going down and up")
		}
		if n := applied(t, p, sent("legacy-1", t0.Add(-time.Second), t0.Add(window+2*time.Minute)), sent("v7-none", time.Time{}, t0.Add(window+2*time.Minute))); n != 2 {
			t.Fatalf("%d of 2 messages recorded before the migration applied again past the window", n)
		}
		if n := prune(t, db, t0.Add(window+time.Hour+time.Minute), window); n != 1 {
			t.Errorf("pruned %d, want v7-timed", n)
		}
	})
}

// TestOneNodePrunesAtATime: on PostgreSQL a pruning round finds another
// node's pruning transaction under way, prunes nothing and fails nothing;
// once that is done, it prunes.
func TestOneNodePrunesAtATime(t *testing.T) {
	url := testenv.PostgresURL(t)
	db := openDB(t, sqlstore.Config{URL: url})
	p := newProfiles(t, db)
	if n := applied(t, p, sent("old-1", t0, t0), sent("old-2", time.Time{}, t0)); n != 2 {
		t.Fatal("not applied")
	}
	done := holdTurn(t, url, 0)
	if n := prune(t, db, t0.Add(48*time.Hour), time.Hour); n != 0 {
		t.Errorf("pruned %d ids while another node was pruning", n)
	}
	done()
	if n := prune(t, db, t0.Add(48*time.Hour), time.Hour); n != 2 {
		t.Errorf("pruned %d ids, want 2", n)
	}
}

// holdTurn takes the turn of maintenance job key (0 pruning, 1 analyzing)
// in a transaction of another connection, as another node would, until
// the returned function ends it.
func holdTurn(t *testing.T, url string, key int) (done func()) {
	t.Helper()
	other, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := other.BeginTx(context.Background(), nil)
	if err != nil {
		other.Close()
		t.Fatal(err)
	}
	end := func() {
		_ = tx.Rollback()
		other.Close()
	}
	t.Cleanup(end)
	if _, err := tx.Exec(`SELECT pg_advisory_xact_lock($1::int, $2::int)`, 0x43555350, key); err != nil {
		t.Fatal(err)
	}
	return end
}
