package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

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

// lockKeys takes the advisory locks in one statement; unnest hands the
// sorted keys over in array order, so every transaction locks in the same
// order and none waits for another in a cycle.
func (d postgresDialect) lockKeys(ctx context.Context, q querier, keys []int64) error {
	if len(keys) == 0 {
		return nil
	}
	rows, err := q.QueryContext(ctx, `SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k`, keys)
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
		case "40001", "40P01": // serialization_failure, deadlock_detected
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
