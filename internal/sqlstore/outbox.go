package sqlstore

import (
	"context"

	"github.com/custos-cdp/custos/internal/cdp"
)

// Outbox is the transactional outbox: records written with the changes
// that caused them, relayed to the bus afterwards.
type Outbox struct{ db *DB }

// Outbox returns the outbox store.
func (db *DB) Outbox() *Outbox { return &Outbox{db: db} }

// Relay takes up to limit of the oldest records, hands them to publish,
// and deletes them if publish returned nil, all in one transaction: a
// record is deleted only once it was published, and on PostgreSQL several
// relays share the work without taking the same record (SKIP LOCKED). A
// crash between publishing and deleting publishes a record again; records
// carry their sequence number so that consumers can tell. It returns how
// many records it relayed.
func (s *Outbox) Relay(ctx context.Context, limit int, publish func(context.Context, []cdp.OutboxRecord) error) (int, error) {
	n := 0
	err := s.db.tx(ctx, func(tx querier) error {
		lock := ""
		if s.db.dialect.lockUpdate() != "" {
			lock = s.db.dialect.lockUpdate() + " SKIP LOCKED"
		}
		rows, err := tx.QueryContext(ctx,
			`SELECT seq, workspace_id, profile_id, topic, payload, created_at FROM outbox ORDER BY seq LIMIT $1`+lock, limit)
		if err != nil {
			return s.db.dialect.translate(err)
		}
		var recs []cdp.OutboxRecord
		for rows.Next() {
			var (
				r       cdp.OutboxRecord
				created int64
			)
			if err := rows.Scan(&r.Seq, &r.WorkspaceID, &r.Profile, &r.Topic, &r.Payload, &created); err != nil {
				rows.Close()
				return err
			}
			r.CreatedAt = fromMicros(created)
			recs = append(recs, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return s.db.dialect.translate(err)
		}
		if len(recs) == 0 {
			return nil
		}
		if err := publish(ctx, recs); err != nil {
			return err
		}
		args := make([]any, len(recs))
		for i, r := range recs {
			args[i] = r.Seq
		}
		args = padded(s.db.dialect, args)
		if _, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE seq IN (`+placeholders(1, len(args))+`)`, args...); err != nil {
			return s.db.dialect.translate(err)
		}
		n = len(recs)
		return nil
	})
	return n, err
}

// Len is the number of records waiting to be relayed.
func (s *Outbox) Len(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.rd().QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox`).Scan(&n)
	return n, s.db.dialect.translate(err)
}
