package warehouse

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migration is one step of the schema. {schema} stands for the quoted
// schema name. Migrations are append-only: a released one is never edited,
// a change is a new one; and they only add, so that an older node keeps
// loading into a schema a newer node has migrated.
type migration struct {
	version    int
	name       string
	statements []string
}

var migrations = []migration{
	{1, "events, profiles and consent changes", []string{
		`CREATE TABLE {schema}.events (
			message_id   TEXT PRIMARY KEY,
			source_id    TEXT NOT NULL,
			profile_id   TEXT NOT NULL,
			type         TEXT NOT NULL,
			event        TEXT,
			user_id      TEXT,
			anonymous_id TEXT,
			identities   JSONB NOT NULL DEFAULT '[]',
			properties   JSONB,
			traits       JSONB,
			context      JSONB,
			ip           TEXT,
			timestamp    TIMESTAMPTZ,
			received_at  TIMESTAMPTZ,
			loaded_at    TIMESTAMPTZ NOT NULL DEFAULT now()
		)`,
		`CREATE INDEX events_profile_id ON {schema}.events (profile_id)`,
		`CREATE INDEX events_event_timestamp ON {schema}.events (event, timestamp)`,
		`CREATE TABLE {schema}.profiles (
			profile_id TEXT PRIMARY KEY,
			identities JSONB NOT NULL DEFAULT '[]',
			traits     JSONB NOT NULL DEFAULT '{}',
			updated_at TIMESTAMPTZ NOT NULL
		)`,
		`CREATE TABLE {schema}.consent_changes (
			entry_id     TEXT PRIMARY KEY,
			profile_id   TEXT NOT NULL,
			purpose      TEXT NOT NULL,
			old_state    TEXT NOT NULL,
			new_state    TEXT NOT NULL,
			collected_at TIMESTAMPTZ,
			received_at  TIMESTAMPTZ,
			source       TEXT,
			document     TEXT
		)`,
		`CREATE INDEX consent_changes_profile_id ON {schema}.consent_changes (profile_id)`,
	}},
	{2, "events.group_id and events.previous_id", []string{
		`ALTER TABLE {schema}.events ADD COLUMN group_id TEXT, ADD COLUMN previous_id TEXT`,
	}},
}

// lockKey is the advisory lock of a schema's migrations.
func lockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("custos/warehouse/" + schema))
	return int64(h.Sum64())
}

// migrate creates schema if needed and applies the migrations of list it
// has not applied, in order, in one transaction under an advisory lock
// held until it ends: nodes migrating at once wait for each other, and a
// failure leaves the schema as it was.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string, list []migration) error {
	q := quote(schema)
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey(schema)); err != nil {
			return fmt.Errorf("lock schema %s: %w", schema, err)
		}
		if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+q); err != nil {
			return fmt.Errorf("create schema %s: %w", schema, err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+q+`.custos_schema_versions (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
		)`); err != nil {
			return fmt.Errorf("create schema versions table in %s: %w", schema, err)
		}
		rows, err := tx.Query(ctx, `SELECT version FROM `+q+`.custos_schema_versions`)
		if err != nil {
			return fmt.Errorf("read schema versions of %s: %w", schema, err)
		}
		applied, err := pgx.CollectRows(rows, pgx.RowTo[int])
		if err != nil {
			return fmt.Errorf("read schema versions of %s: %w", schema, err)
		}
		done := map[int]bool{}
		for _, v := range applied {
			done[v] = true
		}
		for _, m := range list {
			if done[m.version] {
				continue
			}
			for _, stmt := range m.statements {
				if _, err := tx.Exec(ctx, strings.ReplaceAll(stmt, "{schema}", q)); err != nil {
					return fmt.Errorf("apply migration %d (%s) to %s: %w", m.version, m.name, schema, err)
				}
			}
			if _, err := tx.Exec(ctx, `INSERT INTO `+q+`.custos_schema_versions (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
				return fmt.Errorf("record migration %d in %s: %w", m.version, schema, err)
			}
		}
		return nil
	})
}
