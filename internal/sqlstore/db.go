package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/custos-cdp/custos/internal/cdp"
)

//go:embed migrations
var migrations embed.FS

// Config says which database to use.
type Config struct {
	// URL of a PostgreSQL database (postgres:// or postgresql://). Empty
	// means SQLite at Path.
	URL string
	// Path of the SQLite file, used when URL is empty.
	Path string
	// MaxConns bounds the connection pool (PostgreSQL) or the reader pool
	// (SQLite, which always has one writer). Default 8.
	MaxConns int
}

// DB is an open database with its dialect. Writes go through w; reads may
// use r, which on SQLite is a separate pool so readers never queue behind
// the single writer.
type DB struct {
	w, r    *sql.DB
	dialect dialect
	// uncached, set only by tests, makes every settings cache miss.
	uncached atomic.Bool
	closed   atomic.Bool
	// SQLite: the connection of the background checkpoints, and the
	// group fsync that makes the writer's commits durable.
	ckpt               *sql.DB
	wal                *walSync
	stopCkpt, ckptDone chan struct{}
	// Deduplication: whether ids recorded before keys had a time may be
	// left (legacyUnknown, legacyPresent, legacyGone), and the client time
	// up to which pruning by client time is done.
	legacyIDs  atomic.Int32
	pruneFloor atomic.Int64
	// stmts are the SQLite writer's statements kept prepared across
	// transactions.
	stmts stmtCache
	// autovacuumForTest, set, replaces the server's autovacuum setting;
	// analyzeEveryForTest, set, the minute between analyses of a large
	// table.
	autovacuumForTest   atomic.Pointer[string]
	analyzeEveryForTest atomic.Pointer[time.Duration]
}

// analyzeEvery is how long Analyze leaves a large table it analyzed where
// autovacuum is off: autovacuum's own interval.
func (db *DB) analyzeEvery() time.Duration {
	if d := db.analyzeEveryForTest.Load(); d != nil {
		return *d
	}
	return time.Minute
}

// cached reports whether a settings cache entry valid until until may be
// used now.
func (db *DB) cached(until time.Time) bool {
	return !db.uncached.Load() && time.Now().Before(until)
}

type dialect interface {
	name() string
	gooseDialect() goose.Dialect
	translate(err error) error
	// lockUpdate is the row-locking clause of a SELECT; SQLite has none
	// and needs none, as it runs one writer at a time.
	lockUpdate() string
	// rebind turns a statement written with $1..$N into the dialect's
	// placeholders, reordering args if it must.
	rebind(query string, args []any) (string, []any)
	// lockKeys takes transaction-scoped exclusive locks on identity keys,
	// which the caller sorted and deduplicated; SQLite needs none, as it
	// runs one writer at a time.
	lockKeys(ctx context.Context, q querier, keys []int32) error
	// lockGraph takes the transaction-scoped locks on workspaces' identity
	// graphs as a whole: Apply holds them shared, Split exclusively
	// (SQLite: nothing to take).
	lockGraph(ctx context.Context, q querier, wss []cdp.WorkspaceID, exclusive bool) error
	// turn reports whether this transaction may run a maintenance job,
	// which one transaction at a time does; SQLite has one writer anyway.
	turn(ctx context.Context, q querier, j job) (bool, error)
	// lockProfiles locks profiles, which the caller sorted, one after the
	// other in that order, each exclusively where exclusive says so and
	// shared otherwise, and reads their state. SQLite only reads.
	lockProfiles(ctx context.Context, q querier, ids []cdp.ProfileID, exclusive []bool) (map[cdp.ProfileID]profileState, error)
}

// profileState is what lockProfiles reads of a profile: whether it is live
// (neither merged away nor erased) and, if it was merged away, into which
// profile.
type profileState struct {
	live       bool
	mergedInto cdp.ProfileID
}

// scanProfileStates reads rows of (id, live, merged_into) into out and
// closes rows.
func scanProfileStates(rows *sql.Rows, out map[cdp.ProfileID]profileState) error {
	defer rows.Close()
	for rows.Next() {
		var (
			p  string
			st profileState
			to sql.NullString
		)
		if err := rows.Scan(&p, &st.live, &to); err != nil {
			return err
		}
		st.mergedInto = cdp.ProfileID(to.String)
		out[cdp.ProfileID(p)] = st
	}
	return rows.Err()
}

// Open opens the database. It does not migrate; call Migrate.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 8
	}
	var (
		db  *DB
		err error
	)
	if IsPostgresURL(cfg.URL) {
		db, err = openPostgres(cfg)
	} else if cfg.URL != "" {
		return nil, cdp.Reason(cdp.Invalid, "invalid_database_url", "database URL must start with postgres:// or postgresql://")
	} else {
		db, err = openSQLite(cfg)
	}
	if err != nil {
		return nil, err
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.Ping(pingCtx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// IsPostgresURL reports whether url names a PostgreSQL database.
func IsPostgresURL(url string) bool {
	return strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://")
}

// Dialect names the database: "sqlite" or "postgres".
func (db *DB) Dialect() string { return db.dialect.name() }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.w.PingContext(ctx); err != nil {
		return cdp.Wrap(cdp.Unavailable, "database_unavailable", err, "database unreachable")
	}
	return nil
}

// Close closes every pool. Closing again does nothing.
func (db *DB) Close() error {
	if !db.closed.CompareAndSwap(false, true) {
		return nil
	}
	if db.ckpt != nil {
		close(db.stopCkpt)
		<-db.ckptDone
		_ = db.ckpt.Close()
	}
	err := db.w.Close()
	if db.r != db.w {
		err = errors.Join(err, db.r.Close())
	}
	return err
}

// Checkpoint folds SQLite's write-ahead log into the database file and
// truncates it (so the file's size is what the data takes). PostgreSQL
// manages its own.
func (db *DB) Checkpoint(ctx context.Context) error {
	if db.dialect.name() != "sqlite" {
		return nil
	}
	// On the checkpoint connection, so as not to race the background
	// checkpoints; busy (a reader or the writer in the way) is retried.
	for attempt := 0; ; attempt++ {
		var busy, logPages, done int
		if err := db.ckpt.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logPages, &done); err != nil {
			return err
		}
		if busy == 0 || attempt == 50 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// job names a maintenance job that one node at a time runs (the key of its
// PostgreSQL advisory lock).
type job int32

const (
	pruneJob   job = 0 // pruning message ids
	analyzeJob job = 1 // analyzing tables
)

// smallTable is the size (rows) below which a table's statistics make
// the planner scan it rather than use an index.
const smallTable = 10000

// Analyze refreshes the planner's statistics of tables that changed much
// since they were last analyzed (autovacuum's threshold: 50 rows and a
// tenth of the table), and returns how many it analyzed.
//
// On PostgreSQL, one node at a time, it analyzes at once the tables last
// analyzed (if ever) with fewer than smallTable rows that have since grown
// past twice that and a thousand rows more: without statistics
// the planner takes a table of a million identities for an empty one and
// scans it whole for every lookup, and a statement prepared while a table
// was nearly empty keeps such a plan (PostgreSQL plans it once for all
// after five runs) until the table is analyzed, which autovacuum's worker
// looks at only once a minute. Larger tables' plans no longer change with
// their size: those it leaves to autovacuum, or where autovacuum is off
// analyzes as it would, at most once a minute each.
//
// On SQLite it runs PRAGMA optimize with a bounded sample.
func (db *DB) Analyze(ctx context.Context) (int, error) {
	if db.dialect.name() == "sqlite" {
		// A bounded sample per index keeps this to milliseconds on the
		// writer connection.
		if _, err := db.w.ExecContext(ctx, `PRAGMA analysis_limit = 1000`); err != nil {
			return 0, err
		}
		_, err := db.w.ExecContext(ctx, `PRAGMA optimize`)
		return 0, err
	}
	var n int
	err := db.tx(ctx, func(q querier) error {
		n = 0
		if ok, err := db.dialect.turn(ctx, q, analyzeJob); err != nil || !ok {
			return err
		}
		var autovacuum string
		if err := q.QueryRowContext(ctx, `SELECT current_setting('autovacuum')`).Scan(&autovacuum); err != nil {
			return err
		}
		if v := db.autovacuumForTest.Load(); v != nil {
			autovacuum = *v
		}
		// At once, tables last analyzed (if ever) when they were small and
		// that have grown well past it: their statistics are the ones that
		// make plans scan. (Queues, whose rows come and go, stay small.)
		// The others only with autovacuum off, and as it would: once a
		// minute at most.
		rows, err := q.QueryContext(ctx, `SELECT quote_ident(s.schemaname) || '.' || quote_ident(s.relname)
			FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
			WHERE s.schemaname = current_schema() AND s.n_mod_since_analyze > 50 + s.n_live_tup / 10
			  AND ((c.reltuples < $2 AND s.n_live_tup > 2 * greatest(c.reltuples, 0) + 1000)
			    OR ($1 AND coalesce(greatest(s.last_analyze, s.last_autoanalyze) < now() - make_interval(secs => $3), true)))`,
			autovacuum != "on", smallTable, db.analyzeEvery().Seconds())
		if err != nil {
			return err
		}
		var tables []string
		for rows.Next() {
			var t string
			if err := rows.Scan(&t); err != nil {
				rows.Close()
				return err
			}
			tables = append(tables, t)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, t := range tables {
			if _, err := q.ExecContext(ctx, `ANALYZE `+t); err != nil {
				return err
			}
		}
		n = len(tables)
		return nil
	})
	if err != nil {
		return 0, db.dialect.translate(err)
	}
	return n, nil
}

// Migrate applies every migration not yet applied. It is safe to run from
// several processes at once on PostgreSQL (goose takes a lock).
func (db *DB) Migrate(ctx context.Context, log *slog.Logger) error {
	fsys, err := fs.Sub(migrations, "migrations/"+db.dialect.name())
	if err != nil {
		return err
	}
	opts := []goose.ProviderOption{}
	if db.dialect.name() == "postgres" {
		locker, err := newPostgresLocker()
		if err != nil {
			return err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(db.dialect.gooseDialect(), db.w, fsys, opts...)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", db.dialect.name(), err)
	}
	for _, r := range results {
		log.Info("migration applied", "version", r.Source.Version, "duration", r.Duration)
	}
	db.legacyIDs.Store(legacyUnknown)
	return nil
}

// querier runs statements: the write pool, the read pool or a transaction,
// with the dialect's placeholders.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// conn is a querier that rewrites the stores' $N placeholders for the
// dialect before running a statement.
type conn struct {
	q interface {
		QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
		QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
		ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	}
	d dialect
	// durable, when set, runs after each successful ExecContext: the
	// SQLite writer's statements commit without waiting for the disk.
	durable func() error
	// raw is the connection of a PostgreSQL transaction, for copyRows.
	raw *sql.Conn
}

func (c conn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	query, args = c.d.rebind(query, args)
	return c.q.QueryRowContext(ctx, query, args...)
}

func (c conn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	query, args = c.d.rebind(query, args)
	return c.q.QueryContext(ctx, query, args...)
}

func (c conn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	query, args = c.d.rebind(query, args)
	res, err := c.q.ExecContext(ctx, query, args...)
	if err == nil && c.durable != nil {
		err = c.durable()
	}
	return res, err
}

// wr runs statements on the write pool, rd on the read pool.
func (db *DB) wr() querier {
	c := conn{q: db.w, d: db.dialect}
	if db.wal != nil {
		c.durable = db.wal.wait
	}
	return c
}
func (db *DB) rd() querier { return conn{q: db.r, d: db.dialect} }

// tx runs fn in a write transaction, committing if it returns nil.
func (db *DB) tx(ctx context.Context, fn func(querier) error) error {
	var (
		tx  *sql.Tx
		raw *sql.Conn
		err error
	)
	if db.dialect.name() == "postgres" {
		// On a connection of its own, so that rows can be copied in
		// (copyRows) inside the transaction.
		if raw, err = db.w.Conn(ctx); err != nil {
			return db.dialect.translate(err)
		}
		defer raw.Close()
		tx, err = raw.BeginTx(ctx, nil)
	} else {
		// Statements the last transactions ran unprepared are prepared
		// now, while no transaction holds the writer's connection.
		db.stmts.preparePending(ctx, db.w)
		tx, err = db.w.BeginTx(ctx, nil)
	}
	if err != nil {
		return db.dialect.translate(err)
	}
	// Whatever happens in fn, a panic included, the transaction ends
	// before its connection is closed (after a commit this does nothing).
	defer tx.Rollback()
	q := conn{q: tx, d: db.dialect, raw: raw}
	if db.dialect.name() == "sqlite" {
		q.q = &preparedTx{tx: tx, m: map[string]*sql.Stmt{}, shared: &db.stmts}
	}
	if err := fn(q); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return db.dialect.translate(err)
	}
	if db.wal != nil {
		// Committed and visible; on disk once the next log fsync is done.
		// The writer is free meanwhile.
		return db.wal.wait()
	}
	return nil
}

// retryTx runs fn in a write transaction like tx, starting over, up to
// attempts times in all, after a short pause that grows (with jitter, so
// that two writers that collided do not collide again), when the database
// reports a conflict or is busy, such as a deadlock it broke. It returns
// how many times it started over.
func (db *DB) retryTx(ctx context.Context, attempts int, fn func(querier) error) (int, error) {
	var err error
	for attempt := range attempts {
		if err = db.tx(ctx, fn); err == nil || !retryable(err) || ctx.Err() != nil || attempt == attempts-1 {
			return attempt, err
		}
		select {
		case <-ctx.Done():
			return attempt, ctx.Err()
		case <-time.After(time.Duration(attempt+1)*2*time.Millisecond + time.Duration(mrand.Int64N(int64(10*time.Millisecond)))):
		}
	}
	return attempts - 1, err
}

// preparedTx runs a SQLite write transaction's statements. Each distinct
// statement is prepared at most once per transaction, so that one run for
// every event of a batch is parsed once, not once per event, and one the
// stmtCache holds is not parsed at all. (The PostgreSQL driver keeps its
// own statement cache per connection.) The transaction's handles on them
// close with it.
type preparedTx struct {
	tx     *sql.Tx
	m      map[string]*sql.Stmt
	shared *stmtCache
}

// maxPrepared bounds the statements prepared per transaction.
const maxPrepared = 64

func (c *preparedTx) stmt(ctx context.Context, query string) *sql.Stmt {
	if st, ok := c.m[query]; ok {
		return st
	}
	if sh := c.shared.get(query); sh != nil {
		st := c.tx.StmtContext(ctx, sh)
		c.m[query] = st
		return st
	}
	if len(c.m) >= maxPrepared {
		return nil
	}
	c.shared.want(query)
	st, err := c.tx.PrepareContext(ctx, query)
	if err != nil {
		return nil // run unprepared, which reports the error
	}
	c.m[query] = st
	return st
}

func (c *preparedTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := c.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return c.tx.QueryRowContext(ctx, query, args...)
}

func (c *preparedTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := c.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return c.tx.QueryContext(ctx, query, args...)
}

func (c *preparedTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := c.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return c.tx.ExecContext(ctx, query, args...)
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(n int64) time.Time { return time.UnixMicro(n).UTC() }

// stmtCache keeps the SQLite writer's statements prepared from one
// transaction to the next: parsing a statement costs as much as running it
// for a few rows, and every batch runs the same few dozen. A statement
// transactions had to prepare themselves twice is prepared here before the
// next transaction begins (on the writer's one connection, once no
// transaction holds it).
type stmtCache struct {
	mu      sync.Mutex
	m       map[string]*sql.Stmt
	seen    map[string]bool // prepared by a transaction once
	pending map[string]bool
	// txPrepares counts statements prepared inside transactions (tests).
	txPrepares atomic.Int64
}

// maxShared bounds the statements kept; past it a transaction prepares
// its own, as it would without the cache. maxSeen bounds the statements
// remembered as seen once.
const (
	maxShared = 256
	maxSeen   = 4096
)

func (c *stmtCache) get(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[query]
}

// want notes that a transaction had to prepare query. Seen a second time,
// it is prepared for good before the next transaction: a statement whose
// text varies (a list of any length) is not kept for one use.
func (c *stmtCache) want(query string) {
	c.txPrepares.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[string]bool{}
	}
	if c.pending == nil {
		c.pending = map[string]bool{}
	}
	if !c.seen[query] {
		if len(c.seen) >= maxSeen {
			clear(c.seen)
		}
		c.seen[query] = true
		return
	}
	if len(c.m)+len(c.pending) < maxShared {
		c.pending[query] = true
	}
}

// preparePending prepares the statements asked for on w. One that fails to
// prepare is left out: the transaction that runs it reports the error.
func (c *stmtCache) preparePending(ctx context.Context, w *sql.DB) {
	c.mu.Lock()
	pending := c.pending
	c.pending = nil
	c.mu.Unlock()
	for q := range pending {
		st, err := w.PrepareContext(ctx, q)
		if err != nil {
			continue
		}
		c.mu.Lock()
		if c.m == nil {
			c.m = map[string]*sql.Stmt{}
		}
		if _, dup := c.m[q]; dup {
			_ = st.Close()
		} else {
			c.m[q] = st
		}
		c.mu.Unlock()
	}
}
