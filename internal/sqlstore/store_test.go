package sqlstore_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

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
