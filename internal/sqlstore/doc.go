// Package sqlstore keeps Custos's state in SQL: SQLite for the embedded
// single-binary deployment, PostgreSQL for scale-out. The stores are written
// once against database/sql; a Dialect holds what differs (driver, schema
// types, migrations, error codes). One conformance suite runs every store
// against both databases.
package sqlstore
