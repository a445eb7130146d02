package sqlstore

import (
	"context"
	"io/fs"
	"os"
	"time"

	"github.com/pressly/goose/v3"
)

// ExecForTest runs a statement on the write pool, so tests can play the
// attacker who edits the database behind Custos's back.
func (db *DB) ExecForTest(ctx context.Context, q string, args ...any) error {
	_, err := db.wr().ExecContext(ctx, q, args...)
	return err
}

// DisableCachesForTest makes every settings cache miss, so a store that
// reads settings inside a transaction is caught at once.
func (db *DB) DisableCachesForTest() { db.uncached.Store(true) }

// QueryStringForTest runs a one-value query on the read pool.
func (db *DB) QueryStringForTest(ctx context.Context, q string) (string, error) {
	var s string
	err := db.r.QueryRowContext(ctx, q).Scan(&s)
	return s, err
}

// SetLogSyncForTest replaces the fsync of SQLite's write-ahead log (nil
// restores it) and returns how many fsyncs ran before.
func (db *DB) SetLogSyncForTest(fn func(*os.File) error) uint64 {
	if fn == nil {
		fn = (*os.File).Sync
	}
	db.wal.mu.Lock()
	defer db.wal.mu.Unlock()
	db.wal.syncFile = fn
	return db.wal.count
}

// SetHookForTest makes every Apply transaction run fn at its stages
// "owners read" and "locked" (nil: nothing).
func (s *Profiles) SetHookForTest(fn func(ctx context.Context, stage string)) { s.hook = fn }

// MigrateDownToForTest undoes migrations down to version, so a test can
// write rows as an older version did and then migrate them up.
func (db *DB) MigrateDownToForTest(ctx context.Context, version int64) error {
	fsys, err := fs.Sub(migrations, "migrations/"+db.dialect.name())
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(db.dialect.gooseDialect(), db.w, fsys)
	if err != nil {
		return err
	}
	_, err = p.DownTo(ctx, version)
	db.legacyIDs.Store(legacyUnknown)
	return err
}

// AssumeAutovacuumForTest makes Analyze act as if the server's autovacuum
// setting were v ("on" or "off").
func (db *DB) AssumeAutovacuumForTest(v string) { db.autovacuumForTest.Store(&v) }

// SetAnalyzeEveryForTest replaces the minute Analyze leaves a large table
// it analyzed where autovacuum is off.
func (db *DB) SetAnalyzeEveryForTest(d time.Duration) { db.analyzeEveryForTest.Store(&d) }
