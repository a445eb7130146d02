package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/sqlstore"
	"github.com/custos-cdp/custos/internal/testenv"
)

// TestAnalyzeTablesThatChanged: tables that changed much get fresh
// statistics from Custos, whether or not the server's autovacuum is on
// (its worker looks only once a minute), and only once.
func TestAnalyzeTablesThatChanged(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		addPeople(t, db, 300)
		n, err := db.Analyze(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if db.Dialect() != "postgres" {
			return
		}
		if waitAnalyzed(t, db, n) == 0 {
			t.Fatal("nothing was analyzed after 300 new profiles")
		}
		if n, err = db.Analyze(ctx); err != nil || n != 0 {
			t.Fatalf("analyzed %d tables again (err %v) with nothing changed since", n, err)
		}
	})
}

// TestOneNodeAnalyzesAtATime: on PostgreSQL, while another node's analysis
// is under way, this node's round analyzes nothing and fails nothing; once
// that is done, it analyzes.
func TestOneNodeAnalyzesAtATime(t *testing.T) {
	ctx := context.Background()
	url := testenv.PostgresURL(t)
	db := openDB(t, sqlstore.Config{URL: url})
	addPeople(t, db, 300)
	other, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1::int, 1)`, 0x43555350); err != nil {
		t.Fatal(err)
	}
	// Once the server knows the tables changed, a round finds the turn
	// taken.
	for deadline := time.Now().Add(45 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		due, err := db.QueryStringForTest(ctx, `SELECT count(*) FROM pg_stat_user_tables
			WHERE schemaname = current_schema() AND n_mod_since_analyze > 50 + n_live_tup / 10`)
		if err != nil {
			t.Fatal(err)
		}
		if due != "0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server never counted the new rows")
		}
	}
	if n, err := db.Analyze(ctx); err != nil || n != 0 {
		t.Fatalf("analyzed %d tables (err %v) while another node was analyzing", n, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if n, err := db.Analyze(ctx); err != nil || n == 0 {
		t.Fatalf("analyzed %d tables (err %v) once the other node was done", n, err)
	}
}

func addPeople(t *testing.T, db *sqlstore.DB, n int) {
	t.Helper()
	p := newProfiles(t, db)
	var batch []cdp.Event
	for i := range n {
		batch = append(batch, ev(fmt.Sprintf("m%d", i), cdp.Identify, ids("user_id", fmt.Sprintf("u%d", i)), traits(`{"plan":"pro"}`)))
	}
	if _, err := p.Apply(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
}

// waitAnalyzed runs analysis rounds until one analyzes something (n, what
// the last round analyzed, already counts) and returns how many tables it
// analyzed. Backends report their table counters when idle, within about
// ten seconds.
func waitAnalyzed(t *testing.T, db *sqlstore.DB, n int) int {
	t.Helper()
	for deadline := time.Now().Add(45 * time.Second); n == 0 && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		var err error
		if n, err = db.Analyze(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return n
}
