package sqlstore

import "context"

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
