package sqlstore

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
)

// Events keeps the message ids applied per source, for deduplication.
type Events struct{ db *DB }

// Events returns the message-id store.
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

// placeholders returns "$from, $from+1, ..." for n parameters.
func placeholders(from, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d", from+i)
	}
	return b.String()
}

// insertRows inserts rows (each a value per column of cols) into table:
// copied in where the transaction can (PostgreSQL), else in multi-row
// INSERTs of rowsPerStatement rows.
func insertRows(ctx context.Context, q querier, d dialect, table string, cols []string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	if copied, err := copyRows(ctx, q, table, cols, rows); copied || err != nil {
		return err
	}
	head := `INSERT INTO ` + table + ` (` + strings.Join(cols, ", ") + `) VALUES `
	for start := 0; start < len(rows); start += rowsPerStatement {
		chunk := rows[start:min(start+rowsPerStatement, len(rows))]
		args := make([]any, 0, len(cols)*len(chunk))
		for _, r := range chunk {
			args = append(args, r...)
		}
		if _, err := q.ExecContext(ctx, head+rowsOf(len(chunk), len(cols)), args...); err != nil {
			return d.translate(err)
		}
	}
	return nil
}

// rowsOf is the VALUES list of n rows of cols placeholders each.
func rowsOf(n, cols int) string {
	if n > rowsPerStatement {
		return buildRows(n, cols).text
	}
	v, ok := rowLists.Load(cols)
	if !ok {
		v, _ = rowLists.LoadOrStore(cols, buildRows(rowsPerStatement, cols))
	}
	r := v.(rowList)
	return r.text[:r.ends[n]]
}

// rowList is the VALUES list of rowsPerStatement rows, and where each row
// ends in it: a list of fewer rows is a prefix. Every batch needs lists of
// many lengths, some of them thousands of characters long.
type rowList struct {
	text string
	ends []int // ends[n]: the length of the list of n rows
}

var rowLists sync.Map // cols -> rowList

func buildRows(n, cols int) rowList {
	var b strings.Builder
	ends := make([]int, 1, n+1)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(" + placeholders(cols*i+1, cols) + ")")
		ends = append(ends, b.Len())
	}
	return rowList{text: b.String(), ends: ends}
}

// inSet is the condition "col is one of vals" and its arguments, numbered
// from from. PostgreSQL gets one array parameter: it plans as an index
// condition however many values there are, and the statement keeps one
// shape for the driver's statement cache. SQLite gets a placeholder list.
// vals of a bytea column hold bytes.
func inSet[T ~string](d dialect, col string, from int, pgType string, vals []T) (string, []any) {
	if d.name() == "postgres" {
		if pgType == "bytea" {
			arr := make([][]byte, len(vals))
			for i, v := range vals {
				arr[i] = []byte(v)
			}
			return fmt.Sprintf("%s = ANY($%d::bytea[])", col, from), []any{arr}
		}
		arr := make([]string, len(vals))
		for i, v := range vals {
			arr[i] = string(v)
		}
		return fmt.Sprintf("%s = ANY($%d::%s[])", col, from, pgType), []any{arr}
	}
	args := make([]any, len(vals))
	for i, v := range vals {
		if pgType == "bytea" {
			args[i] = []byte(v)
		} else {
			args[i] = string(v)
		}
	}
	return col + " IN (" + placeholders(from, len(vals)) + ")", args
}

// claimMessageIDs records the message ids of events and returns the
// indexes of the events whose id was not recorded before, in order. Of two
// copies of a message in one batch (a client retry), the first counts.
// Rows go in in key order: on PostgreSQL a claim waits for another
// transaction's uncommitted claim of the same id, and two batches sharing
// ids (a log entry handed out twice) must not each wait for the other.
func claimMessageIDs(ctx context.Context, tx querier, d dialect, events []cdp.Event) ([]int, error) {
	fresh := make([]int, 0, len(events))
	keys := make([]dedupKey, len(events))
	seen := make(map[dedupKey]bool, len(events))
	for i := range events {
		keys[i] = dedupKey{events[i].SourceID, string(messageHash(events[i].MessageID))}
		if !seen[keys[i]] {
			seen[keys[i]] = true
			fresh = append(fresh, i)
		}
	}
	sorted := slices.Clone(fresh)
	slices.SortFunc(sorted, func(a, b int) int {
		if c := strings.Compare(string(keys[a].source), string(keys[b].source)); c != 0 {
			return c
		}
		return strings.Compare(keys[a].hash, keys[b].hash)
	})
	claimed := make(map[dedupKey]bool, len(fresh))
	for start := 0; start < len(sorted); start += rowsPerStatement {
		idx := sorted[start:min(start+rowsPerStatement, len(sorted))]
		args := make([]any, 0, 3*len(idx))
		for _, i := range idx {
			args = append(args, events[i].SourceID, []byte(keys[i].hash), micros(events[i].ReceivedAt))
		}
		rows, err := tx.QueryContext(ctx, `INSERT INTO message_ids (source_id, message_hash, received_at) VALUES `+rowsOf(len(idx), 3)+
			` ON CONFLICT (source_id, message_hash) DO NOTHING RETURNING source_id, message_hash`, args...)
		if err != nil {
			return nil, d.translate(err)
		}
		for rows.Next() {
			var (
				src  string
				hash []byte
			)
			if err := rows.Scan(&src, &hash); err != nil {
				rows.Close()
				return nil, err
			}
			claimed[dedupKey{cdp.SourceID(src), string(hash)}] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, d.translate(err)
		}
	}
	out := make([]int, 0, len(fresh))
	for _, i := range fresh {
		if claimed[keys[i]] {
			out = append(out, i)
		}
	}
	return out, nil
}

// PruneMessageIDs forgets message ids received before cutoff; a message
// resent after that is applied again. It returns how many it forgot.
func (s *Events) PruneMessageIDs(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.db.wr().ExecContext(ctx, `DELETE FROM message_ids WHERE received_at < $1`, micros(cutoff))
	if err != nil {
		return 0, s.db.dialect.translate(err)
	}
	return res.RowsAffected()
}
