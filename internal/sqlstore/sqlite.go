package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/custos-cdp/custos/internal/cdp"
)

type sqliteDialect struct{}

func (sqliteDialect) name() string                { return "sqlite" }
func (sqliteDialect) gooseDialect() goose.Dialect { return goose.DialectSQLite3 }
func (sqliteDialect) lockUpdate() string          { return "" }

func (sqliteDialect) lockKeys(context.Context, querier, []int32) error { return nil }

func (sqliteDialect) lockGraph(context.Context, querier, []cdp.WorkspaceID, bool) error { return nil }

func (sqliteDialect) turn(context.Context, querier, job) (bool, error) { return true, nil }

func (d sqliteDialect) lockProfiles(ctx context.Context, q querier, ids []cdp.ProfileID, _ []bool) (map[cdp.ProfileID]profileState, error) {
	out := make(map[cdp.ProfileID]profileState, len(ids))
	for start := 0; start < len(ids); start += rowsPerStatement {
		chunk := ids[start:min(start+rowsPerStatement, len(ids))]
		// Liveness is checked here, not in the WHERE clause: given
		// "merged_into IS NULL", SQLite walked the merged_into index,
		// which nearly every profile matches, instead of the primary key.
		cond, args := inSet(d, "id", 1, "text", chunk)
		rows, err := q.QueryContext(ctx, `SELECT id, merged_into IS NULL AND data_key IS NOT NULL, merged_into FROM profiles WHERE `+cond, args...)
		if err != nil {
			return nil, d.translate(err)
		}
		if err := scanProfileStates(rows, out); err != nil {
			return nil, d.translate(err)
		}
	}
	return out, nil
}

// rebind turns $N placeholders into plain ?, passing args in the order the
// placeholders appear. SQLite resolves numbered and named parameters by
// scanning a list per parameter, which made the stores' multi-row
// statements quadratic; plain ? costs nothing.
func (sqliteDialect) rebind(q string, args []any) (string, []any) {
	if strings.IndexByte(q, '$') < 0 {
		return q, args
	}
	var (
		b       strings.Builder
		out     = make([]any, 0, len(args))
		inOrder = true
	)
	b.Grow(len(q))
	for i := 0; i < len(q); i++ {
		c := q[i]
		if c != '$' || i+1 >= len(q) || q[i+1] < '0' || q[i+1] > '9' {
			b.WriteByte(c)
			continue
		}
		j := i + 1
		n := 0
		for j < len(q) && q[j] >= '0' && q[j] <= '9' {
			n = n*10 + int(q[j]-'0')
			j++
		}
		b.WriteByte('?')
		if n < 1 || n > len(args) {
			// Leave it to SQLite to report the missing argument.
			out = append(out, nil)
		} else {
			inOrder = inOrder && n == len(out)+1
			out = append(out, args[n-1])
		}
		i = j - 1
	}
	if inOrder && len(out) == len(args) {
		return b.String(), args
	}
	return b.String(), out
}

// translate maps SQLite result codes to error kinds.
func (sqliteDialect) translate(err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return cdp.Wrap(cdp.Conflict, "conflict", err, "already exists")
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return cdp.Wrap(cdp.Invalid, "invalid_reference", err, "refers to something that does not exist")
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_BUSY_SNAPSHOT:
			return cdp.Wrap(cdp.Unavailable, "database_busy", err, "database busy")
		}
	}
	return err
}

// openSQLite opens the file with one writer connection and a pool of
// readers. WAL lets readers run beside the writer. The writer commits with
// synchronous=NORMAL and every write path then waits for a group fsync of
// the log (walSync), so a write returns, and an event log entry is acked,
// only once what it produced is on disk; the writer does not sit idle
// through each fsync.
func openSQLite(cfg Config) (*DB, error) {
	if cfg.Path == "" {
		return nil, errors.New("sqlite: no path")
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	// Create the file owner-only before SQLite opens it: SQLite gives its
	// write-ahead log and shared-memory files the database file's mode.
	f, err := os.OpenFile(cfg.Path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	f.Close()
	pragmas := url.Values{}
	for _, p := range []string{
		"journal_mode(WAL)", "synchronous(NORMAL)", "busy_timeout(10000)",
		"foreign_keys(1)", "secure_delete(1)", "cache_size(-131072)", "temp_store(memory)", "wal_autocheckpoint(65536)", "journal_size_limit(67108864)",
	} {
		pragmas.Add("_pragma", p)
	}
	dsn := "file:" + cfg.Path + "?" + pragmas.Encode()
	w, err := sql.Open("sqlite", dsn+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	r, err := sql.Open("sqlite", dsn+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	r.SetMaxOpenConns(cfg.MaxConns)
	r.SetMaxIdleConns(cfg.MaxConns)
	if err := os.Chmod(cfg.Path, 0o600); err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	ckpt, err := sql.Open("sqlite", dsn)
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	ckpt.SetMaxOpenConns(1)
	// The file SQLite really writes (links resolved, the URI decoded),
	// whose write-ahead log the group fsync must sync.
	var file string
	err = w.QueryRow(`SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&file)
	if err == nil && file == "" {
		err = errors.New("SQLite names no file")
	}
	if err != nil {
		w.Close()
		r.Close()
		ckpt.Close()
		return nil, fmt.Errorf("sqlite: database file name: %w", err)
	}
	db := &DB{w: w, r: r, dialect: sqliteDialect{}, ckpt: ckpt, wal: newWALSync(file), stopCkpt: make(chan struct{}), ckptDone: make(chan struct{})}
	go db.checkpoints()
	return db, nil
}

// checkpoints copies the write-ahead log into the database file in the
// background (PASSIVE: beside the writer, never blocking it), twice a
// second. Left to the writer, a checkpoint ran inside a commit every 16k
// pages and held up event processing for its whole length. The writer's
// own autocheckpoint (256 MiB of log) stays as a backstop.
func (db *DB) checkpoints() {
	defer close(db.ckptDone)
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-db.stopCkpt:
			return
		case <-t.C:
			_, _ = db.ckpt.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
		}
	}
}
