package sqlstore_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/sqlstore"
	"github.com/custos-cdp/custos/internal/testenv"
)

// eachDB runs the same test against SQLite and PostgreSQL: the conformance
// suite. PostgreSQL needs CUSTOS_TEST_POSTGRES_URL.
func eachDB(t *testing.T, test func(t *testing.T, db *sqlstore.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		test(t, openDB(t, sqlstore.Config{Path: filepath.Join(t.TempDir(), "custos.db")}))
	})
	t.Run("postgres", func(t *testing.T) {
		test(t, openDB(t, sqlstore.Config{URL: testenv.PostgresURL(t)}))
	})
}

func openDB(t testing.TB, cfg sqlstore.Config) *sqlstore.DB {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db
}

// TestSQLiteFilesOwnerOnly: the database, its write-ahead log and its
// shared memory are readable by their owner only, whatever the umask.
func TestSQLiteFilesOwnerOnly(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, sqlstore.Config{Path: filepath.Join(dir, "custos.db")})
	if _, err := db.Workspaces().Bootstrap(context.Background(), testBootstrap("ws_mode")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"custos.db", "custos.db-wal", "custos.db-shm"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if mode := st.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, mode)
		}
	}
}

// TestSQLiteWritesWaitForLogSync: the SQLite writer commits without
// waiting for the disk, so every write path must wait for an fsync of the
// log before it returns: an event log entry is acked on that return. A
// failing fsync fails the write, whichever path it took, and every write
// after it until the database is opened again: the redelivered entry finds
// its events already claimed, and must not be acked on that basis.
func TestSQLiteWritesWaitForLogSync(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// Through a symbolic link to the file: SQLite writes its log beside
	// the real file, and that is the one to sync.
	if err := os.Mkdir(filepath.Join(dir, "real"), 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "custos.db")
	if err := os.Symlink(filepath.Join(dir, "real", "custos.db"), path); err != nil {
		t.Fatal(err)
	}
	db := openDB(t, sqlstore.Config{Path: path})
	p := newProfiles(t, db) // a transaction
	before := db.SetLogSyncForTest(nil)
	if before == 0 {
		t.Fatal("bootstrapping a workspace returned before any fsync of the log")
	}
	apply(t, p, ev("m1", cdp.Identify, ids("user_id", "u1")))
	if n := db.SetLogSyncForTest(nil); n <= before {
		t.Fatalf("Apply returned without an fsync of the log (%d fsyncs before, %d after)", before, n)
	}

	injected := errors.New("injected fsync failure")
	db.SetLogSyncForTest(func(*os.File) error { return injected })
	m2 := []cdp.Event{ev("m2", cdp.Track, ids("user_id", "u1"))}
	if _, err := p.Apply(ctx, m2); !errors.Is(err, injected) {
		t.Errorf("Apply with a failing fsync: %v, want the fsync's error", err)
	}
	db.SetLogSyncForTest(nil)
	if _, err := p.Apply(ctx, m2); err == nil {
		t.Error("the entry handed out again was accepted after a failed fsync")
	}
	if err := db.ExecForTest(ctx, `UPDATE sources SET name = name`); err == nil {
		t.Error("a single statement succeeded after a failed fsync")
	}
	db.Close()

	db = openDB(t, sqlstore.Config{Path: path})
	if err := db.ExecForTest(ctx, `UPDATE sources SET name = name`); err != nil {
		t.Errorf("after reopening: %v", err)
	}
}
