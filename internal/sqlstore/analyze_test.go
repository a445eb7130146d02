package sqlstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/sqlstore"
)

// TestAnalyzeWhenAutovacuumIsOff: on a PostgreSQL server whose autovacuum
// is off (as on the build machine), tables that changed much get fresh
// statistics from Custos; with autovacuum on Custos leaves it to the
// server.
func TestAnalyzeWhenAutovacuumIsOff(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		p := newProfiles(t, db)
		var batch []cdp.Event
		for i := range 300 {
			batch = append(batch, ev(fmt.Sprintf("m%d", i), cdp.Identify, ids("user_id", fmt.Sprintf("u%d", i)), traits(`{"plan":"pro"}`)))
		}
		if _, err := p.Apply(ctx, batch); err != nil {
			t.Fatal(err)
		}
		n, err := db.Analyze(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if db.Dialect() != "postgres" {
			return
		}
		av, err := db.QueryStringForTest(ctx, `SELECT current_setting('autovacuum')`)
		if err != nil {
			t.Fatal(err)
		}
		if av == "on" {
			if n != 0 {
				t.Errorf("analyzed %d tables although autovacuum is on", n)
			}
			return
		}
		// Backends report their table counters when idle, within about
		// ten seconds.
		for deadline := time.Now().Add(45 * time.Second); n == 0 && time.Now().Before(deadline); {
			time.Sleep(200 * time.Millisecond)
			if n, err = db.Analyze(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if n == 0 {
			t.Fatal("autovacuum is off and nothing was analyzed after 300 new profiles")
		}
	})
}
