package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
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
// identity keys, and the buckets they fall in.
const (
	identityLockClass = 0x43555354 // "CUST"
	bucketLockClass   = 0x43555342 // "CUSB"
)

// lockBuckets is the number of buckets identity keys fall in, and the most
// exact keys a transaction locks: PostgreSQL keeps advisory locks in a
// shared table of about 64 per connection, so a large batch must not take
// one per identity.
const lockBuckets = 128

// lockKeys locks identity keys in two levels. A transaction with at most
// lockBuckets keys takes their buckets shared, then the keys exclusive; a
// larger one takes its buckets exclusive and no keys. Either way two
// transactions naming a common identity exclude each other, no transaction
// holds more than 2*lockBuckets locks, and since every transaction takes
// buckets before keys, each level in sorted order (unnest hands them over
// in array order), none waits for another in a cycle.
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
	if len(keys) > lockBuckets {
		return d.lock(ctx, q, "pg_advisory_xact_lock", bucketLockClass, buckets)
	}
	if err := d.lock(ctx, q, "pg_advisory_xact_lock_shared", bucketLockClass, buckets); err != nil {
		return err
	}
	return d.lock(ctx, q, "pg_advisory_xact_lock", identityLockClass, keys)
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
