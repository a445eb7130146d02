// Package warehouse loads events, traits and consent changes into tables
// of a PostgreSQL database, for analysts to query with SQL.
//
// # Credentials
//
//	{"url": "postgres://user:password@host:5432/db?sslmode=verify-full", "schema": "custos"}
//
// url is required: a postgres:// or postgresql:// URL, with any libpq
// parameters it takes (sslmode, sslrootcert, application_name, ...). It is
// kept in the sealed credentials rather than the endpoint because it holds
// the password; the destination's endpoint is not used. schema is
// optional, "custos" by default, a plain lower-case identifier
// ([a-z_][a-z0-9_]{0,62}, not starting with pg_). Connections go through
// the same guard as every destination's (no private addresses unless the
// deployment allows them); at most 4 are open at a time.
//
// # Tables
//
// One wide table holds every event, rather than a table per event type or
// name: a new event name needs no DDL, a client's typo cannot create
// tables, and there is one place to query. Properties, traits, context and
// identities are JSONB, so every property stays queryable
// (properties->>'total'), and (event, timestamp) is indexed.
//
//	<schema>.events           message_id TEXT PRIMARY KEY, source_id, profile_id,
//	                          type, event (track event, page/screen name),
//	                          user_id, anonymous_id, identities JSONB,
//	                          properties JSONB, traits JSONB, context JSONB, ip,
//	                          timestamp, received_at, loaded_at (default now()),
//	                          group_id, previous_id
//	<schema>.profiles         profile_id PRIMARY KEY, identities JSONB,
//	                          traits JSONB, updated_at
//	<schema>.consent_changes  entry_id PRIMARY KEY, profile_id, purpose,
//	                          old_state, new_state, collected_at, received_at,
//	                          source, document
//
// The schema is created and evolved on first use: the migrations this
// version knows are applied in order, each once, recorded in
// <schema>.custos_schema_versions, under a transaction-scoped advisory lock
// so that Custos nodes starting together do not race. Migrations only add
// (tables, columns, indexes), so an older node keeps loading while a newer
// one has migrated.
//
// # Loading
//
// Each batch is one transaction: it is loaded whole or not at all.
//
//   - Events are inserted once per message id; a batch sent again inserts
//     nothing new.
//   - An identify event also upserts the person's profiles row: its traits
//     are merged into the stored ones (deleted traits removed) and its
//     identities replace them, unless the row was last updated by a later
//     event, so the latest event wins whatever the order of arrival. Group
//     traits describe the group, not the person: they stay on the group
//     event's row.
//   - Consent changes are inserted once per ledger entry.
//   - An erasure deletes the person's rows (by profile id) from events,
//     profiles and consent_changes, and succeeds when there were none.
//
// # Errors
//
// No connection, a timeout (the destination's timeout, 10 seconds by
// default, bounds each batch), a serialization failure or deadlock, an
// overloaded or restarting server, refused authentication and failures to
// prepare the schema are retried. A batch the database refuses for its
// content (SQLSTATE classes 22, 23, 54, and 42 but for a missing
// privilege: a NUL character in a JSON string, say) fails for good: the
// router then loads its deliveries one by one and dead-letters the ones
// still refused. Messages name the SQLSTATE, never a value.
package warehouse
