package sqlstore_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/sqlstore"
	"github.com/custos-cdp/custos/internal/testenv"
)

// TestNoPoolUseInsideTransactions runs the write paths on a pool of one
// connection with every settings cache cold. A store that took a second
// connection inside a transaction (to read identity rules, the consent
// vocabulary or the destinations) would wait for itself forever; with
// several processor workers and a full pool that is a deadlock in
// production, and it hung CI once.
func TestNoPoolUseInsideTransactions(t *testing.T) {
	run := func(t *testing.T, db *sqlstore.DB) {
		db.DisableCachesForTest()
		p := newProfiles(t, db)
		addPurpose(t, p, "marketing", cdp.OptIn)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		dest := cdp.Destination{ID: "d1", WorkspaceID: ws, Name: "hook", Type: cdp.DestinationWebhook, Enabled: true,
			Endpoint: "https://hooks.example.com/in", ConsentPurposes: []cdp.PurposeKey{"marketing"}, ConsentMode: cdp.AllOf,
			CreatedAt: t0, UpdatedAt: t0}
		if err := p.Destinations().Create(ctx, dest); err != nil {
			t.Fatal(err)
		}
		batch := []cdp.Event{
			ev("a1", cdp.Track, ids("anonymous_id", "anon-1")),
			ev("u1", cdp.Identify, ids("user_id", "user-1"), traits(`{"plan":"pro"}`), withConsent(signal("marketing", true, 0))),
			// Links both profiles: a merge, a ledger carry-over and fan-out.
			ev("l1", cdp.Identify, ids("anonymous_id", "anon-1", "user_id", "user-1"), at(time.Minute)),
			ev("g1", cdp.Track, ids("user_id", "user-1"), gpc(), at(2*time.Minute)),
		}
		if _, err := p.Apply(ctx, batch); err != nil {
			t.Fatalf("apply: %v", err)
		}
		res, err := p.Deliveries().ReplayFrom(ctx, ws, dest.ID, t0.Add(-time.Hour), "r1")
		if err != nil {
			t.Fatalf("replay: %v", err)
		}
		if res.Queued == 0 {
			t.Errorf("replay queued nothing: %+v", res)
		}
	}
	t.Run("sqlite", func(t *testing.T) {
		run(t, openDB(t, sqlstore.Config{Path: filepath.Join(t.TempDir(), "custos.db"), MaxConns: 1}))
	})
	t.Run("postgres", func(t *testing.T) {
		run(t, openDB(t, sqlstore.Config{URL: testenv.PostgresURL(t), MaxConns: 1}))
	})
}
