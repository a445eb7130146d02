package sqlstore_test

import (
	"context"
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
		// Tables growing from nothing are analyzed whatever the setting.
		if db.Dialect() == "postgres" {
			noAutovacuum(t, db)
		}
		db.AssumeAutovacuumForTest("on")
		addPeople(t, db, 1500)
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
	noAutovacuum(t, db)
	addPeople(t, db, 1500)
	done := holdTurn(t, url, 1)
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
	done()
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

// TestAnalyzeLeavesLargeTablesToAutovacuum: with autovacuum on, Custos
// analyzes a table that grew from nothing at once, but one already analyzed
// at a size where plans no longer change it leaves to autovacuum, and so a
// queue whose rows come and go; with autovacuum off it analyzes a large
// table as autovacuum would, at most once a minute.
func TestAnalyzeLeavesLargeTablesToAutovacuum(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, sqlstore.Config{URL: testenv.PostgresURL(t)})
	noAutovacuum(t, db)
	db.AssumeAutovacuumForTest("on")
	grow := func(from, to int) {
		t.Helper()
		if err := db.ExecForTest(ctx, `INSERT INTO message_ids (client_time, source_id, message_hash)
			SELECT g, 'src', int4send(g) FROM generate_series($1::int, $2::int) AS g`, from, to); err != nil {
			t.Fatal(err)
		}
	}
	// due waits until the server counts at least atLeast changes to
	// table, enough to pass autovacuum's threshold.
	due := func(table string, atLeast int) {
		t.Helper()
		for deadline := time.Now().Add(45 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			n, err := db.QueryStringForTest(ctx, fmt.Sprintf(`SELECT count(*) FROM pg_stat_user_tables
				WHERE relname = '%s' AND n_mod_since_analyze >= %d AND n_mod_since_analyze > 50 + n_live_tup / 10`, table, atLeast))
			if err != nil {
				t.Fatal(err)
			}
			if n == "1" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the server never counted the changes to %s", table)
			}
		}
	}
	grow(1, 20000)
	due("message_ids", 1)
	if n, err := db.Analyze(ctx); err != nil || n != 1 {
		t.Fatalf("a table never analyzed: analyzed %d (err %v), want 1", n, err)
	}
	grow(20001, 26000)
	due("message_ids", 1)
	if n, err := db.Analyze(ctx); err != nil || n != 0 {
		t.Fatalf("a table analyzed at 20,000 rows: analyzed %d (err %v) with autovacuum on, want 0", n, err)
	}
	// With autovacuum off, as autovacuum would: not within a minute of
	// the last analysis, and then again.
	db.AssumeAutovacuumForTest("off")
	if n, err := db.Analyze(ctx); err != nil || n != 0 {
		t.Fatalf("autovacuum off, analyzed seconds ago: analyzed %d (err %v), want 0", n, err)
	}
	db.SetAnalyzeEveryForTest(0)
	if n, err := db.Analyze(ctx); err != nil || n != 1 {
		t.Fatalf("autovacuum off, analyzed over the interval ago: analyzed %d (err %v), want 1", n, err)
	}

	db.AssumeAutovacuumForTest("on")
	// A queue (rows come and go) stays small: not analyzed however often
	// its rows change.
	for round := range 3 {
		if err := db.ExecForTest(ctx, `INSERT INTO message_ids_expiring (received_at, client_time, source_id, message_hash)
			SELECT g, g, 'src', int4send(g) FROM generate_series(1, 200) AS g`); err != nil {
			t.Fatal(err)
		}
		if err := db.ExecForTest(ctx, `DELETE FROM message_ids_expiring`); err != nil {
			t.Fatal(err)
		}
		due("message_ids_expiring", 400*(round+1))
		if n, err := db.Analyze(ctx); err != nil || n != 0 {
			t.Fatalf("a queue's churn: analyzed %d (err %v), want 0", n, err)
		}
	}
}

// noAutovacuum turns autovacuum off for every table of db's schema, so
// that on a server where it is on it cannot analyze a table before the
// test does.
func noAutovacuum(t *testing.T, db *sqlstore.DB) {
	t.Helper()
	if err := db.ExecForTest(context.Background(), `DO $$
		DECLARE r record;
		BEGIN
			FOR r IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema() LOOP
				EXECUTE format('ALTER TABLE %I SET (autovacuum_enabled = false)', r.tablename);
			END LOOP;
		END $$`); err != nil {
		t.Fatal(err)
	}
}
