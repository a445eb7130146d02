package sqlstore

import (
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"math/bits"
	"slices"
	"strconv"
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

// dedupKey is where a message id is recorded: the client's time for the
// event (microseconds; clientTimeNone when it sent none), the source and
// the id's hash.
type dedupKey struct {
	at     int64
	source cdp.SourceID
	hash   string
}

const clientTimeNone int64 = 0

// clientTimeSlack is how far a client's time for an event may be from when
// the event was received and still say when its id may be forgotten: ids
// are pruned by client time once it is older than the window and this.
// Ids further off (a device offline for a day, a clock set wrong) are
// listed in message_ids_expiring and pruned by when they were received.
const clientTimeSlack = time.Hour

func keyOf(ev *cdp.Event) dedupKey {
	at := clientTimeNone
	if !ev.ClientTime.IsZero() && ev.ClientTime.UnixMicro() > 0 {
		at = ev.ClientTime.UnixMicro()
	}
	return dedupKey{at, ev.SourceID, string(messageHash(ev.MessageID))}
}

// expires reports whether the id of ev, recorded under k, must be listed
// to be pruned by its receipt rather than by its client time.
func expires(ev *cdp.Event, k dedupKey) bool {
	if k.at <= clientTimeNone {
		return true
	}
	off := ev.ReceivedAt.Sub(ev.ClientTime)
	return off > clientTimeSlack || off < -clientTimeSlack
}

func compareKeys(a, b dedupKey) int {
	return cmp.Or(cmp.Compare(a.at, b.at), strings.Compare(string(a.source), string(b.source)), strings.Compare(a.hash, b.hash))
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
	return execRows(ctx, q, d, table, cols, rows, "")
}

// execRows inserts rows into table in multi-row INSERTs of
// rowsPerStatement rows, each statement ending in tail (an ON CONFLICT
// clause, or nothing).
func execRows(ctx context.Context, q querier, d dialect, table string, cols []string, rows [][]any, tail string) error {
	head := `INSERT INTO ` + table + ` (` + strings.Join(cols, ", ") + `) VALUES `
	for chunk := range chunks(d, rows) {
		args := make([]any, 0, len(cols)*len(chunk))
		for _, r := range chunk {
			args = append(args, r...)
		}
		if _, err := q.ExecContext(ctx, head+rowsOf(len(chunk), len(cols))+tail, args...); err != nil {
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
	args = padded(d, args)
	return col + " IN (" + placeholders(from, len(args)) + ")", args
}

// padded returns the values of an IN list padded, on SQLite, to the next
// power of two by repeating the last, so that lists come in a few lengths
// and their statements stay prepared (stmtCache). The repeats match
// nothing more.
func padded(d dialect, args []any) []any {
	if d.name() != "sqlite" {
		return args
	}
	for n := len(args); len(args) < padLen(n); {
		args = append(args, args[n-1])
	}
	return args
}

// chunks splits rows into the pieces multi-row statements take:
// rowsPerStatement rows while that many are left, then on SQLite the
// largest power of two that fits, so that statements come in a few
// shapes, which stay prepared (stmtCache). On PostgreSQL the rest goes in
// one statement: each statement is a round trip to the server, and the
// driver's own cache prepares each shape once.
func chunks[T any](d dialect, rows []T) iter.Seq[[]T] {
	return func(yield func([]T) bool) {
		for len(rows) > 0 {
			n := min(len(rows), rowsPerStatement)
			if d.name() == "sqlite" {
				n = chunkLen(len(rows))
			}
			if !yield(rows[:n]) {
				return
			}
			rows = rows[n:]
		}
	}
}

func chunkLen(n int) int {
	if n >= rowsPerStatement {
		return rowsPerStatement
	}
	return 1 << (bits.Len(uint(n)) - 1)
}

// padLen is the length an IN list of n values is padded to: the next power
// of two.
func padLen(n int) int {
	if n <= 1 {
		return n
	}
	return 1 << bits.Len(uint(n-1))
}

// claimMessageIDs records the message ids of events and returns the
// indexes of the events whose id was not recorded before, in order. Of two
// copies of a message in one batch (a client retry), the first counts.
// Rows go in in key order: on PostgreSQL a claim waits for another
// transaction's uncommitted claim of the same id, and two batches sharing
// ids (a log entry handed out twice) must not each wait for the other.
func claimMessageIDs(ctx context.Context, tx querier, db *DB, events []cdp.Event) ([]int, error) {
	d := db.dialect
	fresh := make([]int, 0, len(events))
	keys := make([]dedupKey, len(events))
	seen := make(map[dedupKey]bool, len(events))
	for i := range events {
		keys[i] = keyOf(&events[i])
		if !seen[keys[i]] {
			seen[keys[i]] = true
			fresh = append(fresh, i)
		}
	}
	fresh, err := dropLegacy(ctx, tx, db, keys, fresh)
	if err != nil {
		return nil, err
	}
	sorted := slices.Clone(fresh)
	slices.SortFunc(sorted, func(a, b int) int { return compareKeys(keys[a], keys[b]) })
	claimed := make(map[dedupKey]bool, len(fresh))
	for idx := range chunks(d, sorted) {
		args := make([]any, 0, 3*len(idx))
		for _, i := range idx {
			args = append(args, keys[i].at, events[i].SourceID, []byte(keys[i].hash))
		}
		rows, err := tx.QueryContext(ctx, `INSERT INTO message_ids (client_time, source_id, message_hash) VALUES `+rowsOf(len(idx), 3)+
			` ON CONFLICT (client_time, source_id, message_hash) DO NOTHING RETURNING client_time, source_id, message_hash`, args...)
		if err != nil {
			return nil, d.translate(err)
		}
		for rows.Next() {
			var (
				k    dedupKey
				src  string
				hash []byte
			)
			if err := rows.Scan(&k.at, &src, &hash); err != nil {
				rows.Close()
				return nil, err
			}
			k.source, k.hash = cdp.SourceID(src), string(hash)
			claimed[k] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, d.translate(err)
		}
	}
	out := make([]int, 0, len(fresh))
	var expiring [][]any
	for _, i := range fresh {
		if claimed[keys[i]] {
			out = append(out, i)
		}
	}
	for _, i := range sorted {
		if claimed[keys[i]] && expires(&events[i], keys[i]) {
			expiring = append(expiring, []any{keys[i].at, events[i].SourceID, []byte(keys[i].hash), micros(events[i].ReceivedAt)})
		}
	}
	// A listing left behind without its id (which pruning never leaves)
	// must not fail every later claim of that id: it is taken over.
	err = execRows(ctx, tx, d, "message_ids_expiring", []string{"client_time", "source_id", "message_hash", "received_at"}, expiring,
		` ON CONFLICT (client_time, source_id, message_hash) DO UPDATE SET received_at = excluded.received_at`)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// dropLegacy leaves out of fresh the events whose id was recorded before
// ids were keyed by time, while any such id is still remembered.
func dropLegacy(ctx context.Context, tx querier, db *DB, keys []dedupKey, fresh []int) ([]int, error) {
	if db.legacyIDs.Load() == legacyGone || len(fresh) == 0 {
		return fresh, nil
	}
	if db.legacyIDs.Load() == legacyUnknown {
		if left, err := db.legacyLeft(ctx, tx); err != nil || !left {
			return fresh, err
		}
	}
	bySource := map[cdp.SourceID][]string{}
	for _, i := range fresh {
		bySource[keys[i].source] = append(bySource[keys[i].source], keys[i].hash)
	}
	known := map[dedupKey]bool{}
	for src, hashes := range bySource {
		for start := 0; start < len(hashes); start += rowsPerStatement {
			cond, args := inSet(db.dialect, "message_hash", 2, "bytea", hashes[start:min(start+rowsPerStatement, len(hashes))])
			rows, err := tx.QueryContext(ctx, `SELECT message_hash FROM message_ids_legacy WHERE source_id = $1 AND `+cond, append([]any{src}, args...)...)
			if err != nil {
				return nil, db.dialect.translate(err)
			}
			for rows.Next() {
				var h []byte
				if err := rows.Scan(&h); err != nil {
					rows.Close()
					return nil, err
				}
				known[dedupKey{source: src, hash: string(h)}] = true
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, db.dialect.translate(err)
			}
		}
	}
	if len(known) == 0 {
		return fresh, nil
	}
	return slices.DeleteFunc(fresh, func(i int) bool {
		return known[dedupKey{source: keys[i].source, hash: keys[i].hash}]
	}), nil
}

// Whether ids recorded before keys had a time may still be remembered
// (DB.legacyIDs): claims look them up until none is left.
const (
	legacyUnknown int32 = iota
	legacyPresent
	legacyGone
)

// Rows pruned per transaction: the writer (SQLite has one) is never held
// for long, and processing goes on between them.
const (
	pruneRangeChunk    = 10000
	pruneExpiringChunk = 1000
)

// PruneMessageIDs forgets the message ids received more than window
// before now, and returns how many it forgot; a message resent after that
// is applied again. Ids with a client time close to their receipt are
// dropped by whole ranges of client time (older than window and
// clientTimeSlack); the others, listed in message_ids_expiring, by when
// they were received. It works in transactions of a few thousand rows.
func (s *Events) PruneMessageIDs(ctx context.Context, now time.Time, window time.Duration) (int64, error) {
	db := s.db
	cut := micros(now.Add(-window))
	var total int64
	// drain forgets the ids of table received before cut, chunk by chunk.
	drain := func(table string) error {
		for {
			n, err := s.pruneByReceipt(ctx, table, cut, pruneExpiringChunk)
			total += n
			if err != nil || n < pruneExpiringChunk {
				return err
			}
		}
	}
	if err := drain("message_ids_expiring"); err != nil {
		return total, err
	}
	rangeCut := micros(now.Add(-window - clientTimeSlack))
	for {
		n, done, err := s.pruneRange(ctx, rangeCut)
		total += n
		if err != nil {
			return total, err
		}
		if done {
			break
		}
	}
	// Checked again every round: another process may have gone down to
	// the previous version and up again meanwhile, leaving ids there.
	if db.legacyIDs.Load() == legacyGone {
		if _, err := db.legacyLeft(ctx, db.wr()); err != nil {
			return total, err
		}
	}
	if db.legacyIDs.Load() != legacyGone {
		if err := drain("message_ids_legacy"); err != nil {
			return total, err
		}
		if _, err := db.legacyLeft(ctx, db.wr()); err != nil {
			return total, err
		}
	}
	return total, nil
}

// legacyLeft reports, and notes in db.legacyIDs, whether any id recorded
// before keys had a time is still remembered.
func (db *DB) legacyLeft(ctx context.Context, q querier) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM message_ids_legacy LIMIT 1) AS l`).Scan(&n)
	if err != nil {
		return false, db.dialect.translate(err)
	}
	if n == 0 {
		db.legacyIDs.Store(legacyGone)
	} else {
		db.legacyIDs.Store(legacyPresent)
	}
	return n > 0, nil
}

// pruneByReceipt forgets about chunk ids of table (message_ids_expiring,
// whose ids are forgotten from message_ids as well, or
// message_ids_legacy) received before cut, the longest known first.
func (s *Events) pruneByReceipt(ctx context.Context, table string, cut int64, chunk int) (int64, error) {
	var n int64
	err := s.db.tx(ctx, func(tx querier) error {
		if ok, err := s.db.dialect.turn(ctx, tx, pruneJob); err != nil || !ok {
			return err // another node is pruning: n stays 0 and this round ends
		}
		bound := cut - 1
		err := tx.QueryRowContext(ctx, `SELECT received_at FROM `+table+` WHERE received_at < $1
			ORDER BY received_at LIMIT 1 OFFSET $2`, cut, chunk-1).Scan(&bound)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if table == "message_ids_expiring" && s.db.dialect.name() == "postgres" {
			// One statement, so that both deletes see the same listed ids
			// (READ COMMITTED gives each statement its own snapshot).
			return tx.QueryRowContext(ctx, `WITH e AS (DELETE FROM message_ids_expiring WHERE received_at <= $1
					RETURNING client_time, source_id, message_hash),
				m AS (DELETE FROM message_ids USING e WHERE message_ids.client_time = e.client_time
					AND message_ids.source_id = e.source_id AND message_ids.message_hash = e.message_hash)
				SELECT count(*) FROM e`, bound).Scan(&n)
		}
		if table == "message_ids_expiring" {
			if _, err := tx.ExecContext(ctx, `DELETE FROM message_ids WHERE (client_time, source_id, message_hash) IN
				(SELECT client_time, source_id, message_hash FROM message_ids_expiring WHERE received_at <= $1)`, bound); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE received_at <= $1`, bound)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, s.db.dialect.translate(err)
}

// pruneRange forgets up to about pruneRangeChunk ids of client time
// before cut that are not listed to expire by receipt, the oldest first,
// and reports whether it reached cut. Ids up to DB.pruneFloor are already
// done: those left there are listed, and no id goes in that far back
// without being listed.
func (s *Events) pruneRange(ctx context.Context, cut int64) (int64, bool, error) {
	db := s.db
	// A floor past the cut (the clock was set back) starts again there.
	floor := max(min(db.pruneFloor.Load(), cut-1), clientTimeNone)
	if floor >= cut-1 {
		db.pruneFloor.Store(floor)
		return 0, true, nil
	}
	var (
		n    int64
		done bool
	)
	err := db.tx(ctx, func(tx querier) error {
		if ok, err := db.dialect.turn(ctx, tx, pruneJob); err != nil || !ok {
			done = true // another node is pruning: this round ends
			return err
		}
		bound := cut - 1
		err := tx.QueryRowContext(ctx, `SELECT client_time FROM message_ids WHERE client_time > $1 AND client_time < $2
			ORDER BY client_time LIMIT 1 OFFSET $3`, floor, cut, pruneRangeChunk-1).Scan(&bound)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			bound, done = cut-1, true
		case err != nil:
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM message_ids WHERE client_time > $1 AND client_time <= $2
			AND NOT EXISTS (SELECT 1 FROM message_ids_expiring e WHERE e.client_time > $1 AND e.client_time <= $2
				AND e.client_time = message_ids.client_time AND e.source_id = message_ids.source_id
				AND e.message_hash = message_ids.message_hash)`, floor, bound)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		floor = bound
		return err
	})
	if err != nil {
		return 0, false, db.dialect.translate(err)
	}
	db.pruneFloor.Store(floor)
	return n, done, nil
}

// Backfill records n made-up message ids of source, received evenly from
// from to to, in transactions of 10,000: what a deduplication window full
// of earlier traffic holds, for benchmarks. One in fifty has no client
// time, as from a client that sent none.
func (s *Events) Backfill(ctx context.Context, source cdp.SourceID, n int, from, to time.Time) error {
	const chunk = 10000
	step := to.Sub(from) / time.Duration(max(n, 1))
	for start := 0; start < n; start += chunk {
		var timed, expiring [][]any
		for i := start; i < min(start+chunk, n); i++ {
			at := from.Add(time.Duration(i) * step)
			h := messageHash("backfill-" + strconv.Itoa(i))
			if i%50 == 0 {
				expiring = append(expiring, []any{clientTimeNone, source, h, micros(at)})
				timed = append(timed, []any{clientTimeNone, source, h})
				continue
			}
			timed = append(timed, []any{micros(at), source, h})
		}
		err := s.db.tx(ctx, func(tx querier) error {
			if err := insertRows(ctx, tx, s.db.dialect, "message_ids", []string{"client_time", "source_id", "message_hash"}, timed); err != nil {
				return err
			}
			return insertRows(ctx, tx, s.db.dialect, "message_ids_expiring", []string{"client_time", "source_id", "message_hash", "received_at"}, expiring)
		})
		if err != nil {
			return err
		}
	}
	return nil
}
