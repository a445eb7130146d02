package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib" // also registers the "pgx" driver
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/custos-cdp/custos/internal/cdp"
)

type postgresDialect struct{}

func (postgresDialect) name() string                { return "postgres" }
func (postgresDialect) gooseDialect() goose.Dialect { return goose.DialectPostgres }
func (postgresDialect) lockUpdate() string          { return " FOR UPDATE" }

func (postgresDialect) rebind(q string, args []any) (string, []any) { return q, args }

// Advisory lock classes (namespaces among the server's advisory locks):
// identity keys, the buckets they fall in, workspaces' identity graphs,
// and maintenance jobs.
const (
	identityLockClass    = 0x43555354 // "CUST"
	bucketLockClass      = 0x43555342 // "CUSB"
	graphLockClass       = 0x43555347 // "CUSG"
	maintenanceLockClass = 0x43555350 // "CUSP"
)

// turn lets one transaction at a time, over all nodes, run a maintenance
// job: nodes pruning the same rows side by side only duplicate the work
// and may deadlock each other, and analyzing a table twice at once makes
// the second wait for the first.
func (postgresDialect) turn(ctx context.Context, q querier, j job) (bool, error) {
	var ok bool
	err := q.QueryRowContext(ctx, `SELECT pg_try_advisory_xact_lock($1::int, $2::int)`, maintenanceLockClass, int32(j)).Scan(&ok)
	return ok, err
}

// lockBuckets is the number of buckets identity keys fall in.
const lockBuckets = 128

// maxKeyLocks is the most identity keys a transaction locks one by one;
// one naming more locks their buckets instead, and then runs alone among
// the transactions naming new identities. PostgreSQL keeps advisory locks
// in a shared table sized max_locks_per_transaction times max_connections
// (64 x 100 by default), so a transaction holds at most
// lockBuckets+maxKeyLocks of them. Only identities new to the graph are
// locked (see applier.lockNew): a batch of 1000 events of the benchmark's
// mix names about 250, a catch-up batch of 4000 about 900.
const maxKeyLocks = 512

// lockKeys locks identity keys in two levels. A transaction with at most
// maxKeyLocks keys takes their buckets shared, then the keys exclusive; a
// larger one takes its buckets exclusive and no keys. Either way two
// transactions naming a common identity exclude each other, no transaction
// holds more than lockBuckets+maxKeyLocks locks, and since every
// transaction takes buckets before keys, each level in sorted order
// (unnest hands them over in array order), none waits for another in a
// cycle.
func (d postgresDialect) lockKeys(ctx context.Context, q querier, keys []int32) error {
	if len(keys) == 0 {
		return nil
	}
	buckets := make([]int32, len(keys))
	for i, k := range keys {
		buckets[i] = int32(uint32(k) % lockBuckets)
	}
	slices.Sort(buckets)
	buckets = slices.Compact(buckets)
	if len(keys) > maxKeyLocks {
		return d.lock(ctx, q, "pg_advisory_xact_lock", bucketLockClass, buckets)
	}
	if err := d.lock(ctx, q, "pg_advisory_xact_lock_shared", bucketLockClass, buckets); err != nil {
		return err
	}
	return d.lock(ctx, q, "pg_advisory_xact_lock", identityLockClass, keys)
}

// lockGraph locks workspaces' graphs (each key a hash of the workspace id;
// workspaces sharing a key only wait for each other's splits), keys in
// sorted order.
func (d postgresDialect) lockGraph(ctx context.Context, q querier, wss []cdp.WorkspaceID, exclusive bool) error {
	fn := "pg_advisory_xact_lock_shared"
	if exclusive {
		fn = "pg_advisory_xact_lock"
	}
	keys := make([]int32, len(wss))
	for i, ws := range wss {
		h := fnv.New32a()
		h.Write([]byte(ws))
		keys[i] = int32(h.Sum32())
	}
	slices.Sort(keys)
	return d.lock(ctx, q, fn, graphLockClass, slices.Compact(keys))
}

// lockProfiles locks through custos_lock_profiles (migration 6), which
// takes each row FOR UPDATE or FOR SHARE in the order given: one sorted
// sweep in mixed modes, so two transactions locking common profiles never
// wait for each other in a cycle.
func (d postgresDialect) lockProfiles(ctx context.Context, q querier, ids []cdp.ProfileID, exclusive []bool) (map[cdp.ProfileID]profileState, error) {
	out := make(map[cdp.ProfileID]profileState, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	arr := make([]string, len(ids))
	for i, p := range ids {
		arr[i] = string(p)
	}
	rows, err := q.QueryContext(ctx, `SELECT profile_id, live, merged_into FROM custos_lock_profiles($1::text[], $2::boolean[])`, arr, exclusive)
	if err != nil {
		return nil, d.translate(err)
	}
	if err := scanProfileStates(rows, out); err != nil {
		return nil, d.translate(err)
	}
	return out, nil
}

func (d postgresDialect) lock(ctx context.Context, q querier, fn string, class int32, keys []int32) error {
	rows, err := q.QueryContext(ctx, `SELECT `+fn+`($1, k) FROM unnest($2::int4[]) AS k`, class, keys)
	if err != nil {
		return d.translate(err)
	}
	for rows.Next() {
	}
	rows.Close()
	return d.translate(rows.Err())
}

// translate maps SQLSTATE codes to error kinds.
func (postgresDialect) translate(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			return cdp.Wrap(cdp.Conflict, "conflict", err, "already exists")
		case "23503": // foreign_key_violation
			return cdp.Wrap(cdp.Invalid, "invalid_reference", err, "refers to something that does not exist")
		case "40001", "40P01", "53200": // serialization_failure, deadlock_detected, out_of_memory (lock table full)
			return cdp.Wrap(cdp.Unavailable, "database_busy", err, "database busy")
		case "57P01", "57P02", "57P03", "08000", "08003", "08006":
			return cdp.Wrap(cdp.Unavailable, "database_unavailable", err, "database unavailable")
		}
	}
	return err
}

// copyRows copies rows into a table inside q's PostgreSQL transaction
// (COPY: on this machine 2.3x faster than a multi-row INSERT for a batch's
// timeline rows). It returns false, having done nothing, where q cannot:
// SQLite, or outside a transaction.
func copyRows(ctx context.Context, q querier, table string, cols []string, rows [][]any) (bool, error) {
	c, ok := q.(conn)
	if !ok || c.raw == nil {
		return false, nil
	}
	err := c.raw.Raw(func(dc any) error {
		pc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("postgres: driver connection is %T", dc)
		}
		_, err := pc.Conn().CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(rows))
		return err
	})
	return true, c.d.translate(err)
}

func openPostgres(cfg Config) (*DB, error) {
	db, err := sql.Open("pgx", cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	db.SetMaxOpenConns(cfg.MaxConns)
	db.SetMaxIdleConns(cfg.MaxConns)
	return &DB{w: db, r: db, dialect: postgresDialect{}}, nil
}

func newPostgresLocker() (lock.SessionLocker, error) {
	return lock.NewPostgresSessionLocker()
}
