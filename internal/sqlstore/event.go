package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/eventcodec"
)

// Events stores applied events and the message ids seen per source.
type Events struct{ db *DB }

// Events returns the event store.
func (db *DB) Events() *Events { return &Events{db: db} }

// rowsPerStatement keeps multi-row statements under both databases' limits
// on bound parameters.
const rowsPerStatement = 400

func messageHash(id string) []byte {
	h := sha256.Sum256([]byte(id))
	return h[:16]
}

type dedupKey struct {
	source cdp.SourceID
	hash   string
}

// Apply stores the events whose message id was not seen before from the
// same source, and returns how many it stored. It is atomic: either every
// new event and its message id are stored, or nothing is. Applying the same
// events again stores nothing.
func (s *Events) Apply(ctx context.Context, events []cdp.Event) (int, error) {
	if len(events) == 0 {
		return 0, nil
	}
	// A client retry can put two copies of a message in one log entry: the
	// first one counts.
	fresh := make([]int, 0, len(events))
	hashes := make([][]byte, len(events))
	seen := make(map[dedupKey]bool, len(events))
	for i := range events {
		hashes[i] = messageHash(events[i].MessageID)
		k := dedupKey{events[i].SourceID, string(hashes[i])}
		if !seen[k] {
			seen[k] = true
			fresh = append(fresh, i)
		}
	}
	applied := 0
	err := s.db.tx(ctx, func(tx *sql.Tx) error {
		applied = 0
		for start := 0; start < len(fresh); start += rowsPerStatement {
			chunk := fresh[start:min(start+rowsPerStatement, len(fresh))]
			newIdx, err := s.claimMessageIDs(ctx, tx, events, hashes, chunk)
			if err != nil {
				return err
			}
			if err := s.insertEvents(ctx, tx, events, newIdx); err != nil {
				return err
			}
			applied += len(newIdx)
		}
		return nil
	})
	return applied, err
}

// claimMessageIDs records the message ids of events[idx] and returns the
// indexes of those not recorded before.
func (s *Events) claimMessageIDs(ctx context.Context, tx *sql.Tx, events []cdp.Event, hashes [][]byte, idx []int) ([]int, error) {
	var q strings.Builder
	q.WriteString(`INSERT INTO message_ids (source_id, message_hash, received_at) VALUES `)
	args := make([]any, 0, 3*len(idx))
	for n, i := range idx {
		if n > 0 {
			q.WriteString(", ")
		}
		fmt.Fprintf(&q, "($%d, $%d, $%d)", 3*n+1, 3*n+2, 3*n+3)
		args = append(args, events[i].SourceID, hashes[i], micros(events[i].ReceivedAt))
	}
	q.WriteString(` ON CONFLICT (source_id, message_hash) DO NOTHING RETURNING source_id, message_hash`)
	rows, err := tx.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, s.db.dialect.translate(err)
	}
	defer rows.Close()
	claimed := make(map[dedupKey]bool, len(idx))
	for rows.Next() {
		var (
			src  string
			hash []byte
		)
		if err := rows.Scan(&src, &hash); err != nil {
			return nil, err
		}
		claimed[dedupKey{cdp.SourceID(src), string(hash)}] = true
	}
	if err := rows.Err(); err != nil {
		return nil, s.db.dialect.translate(err)
	}
	out := make([]int, 0, len(claimed))
	for _, i := range idx {
		if claimed[dedupKey{events[i].SourceID, string(hashes[i])}] {
			out = append(out, i)
		}
	}
	return out, nil
}

func (s *Events) insertEvents(ctx context.Context, tx *sql.Tx, events []cdp.Event, idx []int) error {
	if len(idx) == 0 {
		return nil
	}
	const cols = 8
	var q strings.Builder
	q.WriteString(`INSERT INTO events (workspace_id, source_id, message_id, type, name, event_time, received_at, payload) VALUES `)
	args := make([]any, 0, cols*len(idx))
	for n, i := range idx {
		ev := &events[i]
		payload, err := eventcodec.Append(nil, ev)
		if err != nil {
			return err
		}
		if n > 0 {
			q.WriteString(", ")
		}
		q.WriteByte('(')
		for c := range cols {
			if c > 0 {
				q.WriteString(", ")
			}
			fmt.Fprintf(&q, "$%d", cols*n+c+1)
		}
		q.WriteByte(')')
		args = append(args, ev.WorkspaceID, ev.SourceID, ev.MessageID, string(ev.Type), ev.Name,
			micros(ev.Timestamp), micros(ev.ReceivedAt), payload)
	}
	if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
		return s.db.dialect.translate(err)
	}
	return nil
}

// List returns up to limit events of a workspace, newest first, starting
// below seq before (0 means from the newest).
func (s *Events) List(ctx context.Context, ws cdp.WorkspaceID, before int64, limit int) ([]cdp.StoredEvent, error) {
	if before <= 0 {
		before = math.MaxInt64
	}
	rows, err := s.db.r.QueryContext(ctx,
		`SELECT seq, payload FROM events WHERE workspace_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3`,
		ws, before, limit)
	if err != nil {
		return nil, s.db.dialect.translate(err)
	}
	defer rows.Close()
	var out []cdp.StoredEvent
	for rows.Next() {
		var (
			se      cdp.StoredEvent
			payload []byte
		)
		if err := rows.Scan(&se.Seq, &payload); err != nil {
			return nil, err
		}
		ev, err := eventcodec.DecodeOne(payload)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", se.Seq, err)
		}
		se.Event = ev
		out = append(out, se)
	}
	return out, rows.Err()
}

// Count returns the number of stored events of a workspace.
func (s *Events) Count(ctx context.Context, ws cdp.WorkspaceID) (int64, error) {
	var n int64
	err := s.db.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM events WHERE workspace_id = $1`, ws).Scan(&n)
	return n, s.db.dialect.translate(err)
}

// PruneMessageIDs forgets message ids received before cutoff; a message
// resent after that is stored again. It returns how many it forgot.
func (s *Events) PruneMessageIDs(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.db.w.ExecContext(ctx, `DELETE FROM message_ids WHERE received_at < $1`, micros(cutoff))
	if err != nil {
		return 0, s.db.dialect.translate(err)
	}
	return res.RowsAffected()
}
