package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/eventcodec"
)

// Resolve finds the live profiles a request's identities belong to. Raw
// identities are looked up by blind index; hashed ones by the keyed hash of
// their hashed form, so no plaintext is needed either way.
func (s *DSRs) Resolve(ctx context.Context, ws cdp.WorkspaceID, ids []cdp.DSRIdentity) ([]cdp.ProfileID, error) {
	keys, err := s.p.vault.Keys(ctx, ws)
	if err != nil {
		return nil, err
	}
	db := s.p.db
	seen := map[cdp.ProfileID]bool{}
	var out []cdp.ProfileID
	add := func(p string) {
		if !seen[cdp.ProfileID(p)] {
			seen[cdp.ProfileID(p)] = true
			out = append(out, cdp.ProfileID(p))
		}
	}
	for _, id := range ids {
		var rows *sql.Rows
		if id.Format == "" || id.Format == "raw" {
			rows, err = db.rd().QueryContext(ctx, `SELECT profile_id FROM identities WHERE workspace_id = $1 AND blind = $2`,
				ws, keys.BlindIndex(cdp.Identity{Type: id.Type, Value: id.Value}))
		} else {
			rows, err = db.rd().QueryContext(ctx, `SELECT i.profile_id FROM identity_hashes h JOIN identities i ON i.workspace_id = h.workspace_id AND i.blind = h.blind
				WHERE h.workspace_id = $1 AND h.hashed = $2`, ws, keys.HashedIndex(id.Type, id.Format, id.Value))
		}
		if err != nil {
			return nil, db.dialect.translate(err)
		}
		for rows.Next() {
			var p string
			if err := rows.Scan(&p); err != nil {
				rows.Close()
				return nil, err
			}
			add(p)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, db.dialect.translate(err)
		}
	}
	return out, nil
}

// withTombstones adds the profiles merged into the given live ones.
func withTombstones(ctx context.Context, q querier, d dialect, ws cdp.WorkspaceID, live []cdp.ProfileID) ([]cdp.ProfileID, error) {
	if len(live) == 0 {
		return nil, nil
	}
	args := []any{ws}
	for _, p := range live {
		args = append(args, p)
	}
	rows, err := q.QueryContext(ctx, `SELECT id FROM profiles WHERE workspace_id = $1 AND merged_into IN (`+placeholders(2, len(live))+`)`, args...)
	if err != nil {
		return nil, d.translate(err)
	}
	defer rows.Close()
	all := append([]cdp.ProfileID{}, live...)
	for rows.Next() {
		var p cdp.ProfileID
		if err := rows.Scan(&p); err != nil {
			return nil, err
		}
		all = append(all, p)
	}
	return all, rows.Err()
}

func inArgs(first []any, ids []cdp.ProfileID) []any {
	out := append([]any{}, first...)
	for _, p := range ids {
		out = append(out, p)
	}
	return out
}

// lockForErasure locks a person's profiles exclusively in id order, and
// answers Conflict if one of them was merged away.
func lockForErasure(ctx context.Context, tx querier, d dialect, ids []cdp.ProfileID) error {
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	states, err := d.lockProfiles(ctx, tx, sorted, slices.Repeat([]bool{true}, len(sorted)))
	if err != nil {
		return err
	}
	for _, p := range ids {
		if st, ok := states[p]; ok && st.mergedInto != "" {
			return cdp.Reason(cdp.Conflict, "profiles_changed", "a profile of the person was merged away since the request was resolved")
		}
	}
	return nil
}

// Preview counts what a request covering these profiles would touch,
// changing nothing.
func (s *DSRs) Preview(ctx context.Context, ws cdp.WorkspaceID, live []cdp.ProfileID) (cdp.DSRPreview, error) {
	var pv cdp.DSRPreview
	db := s.p.db
	all, err := withTombstones(ctx, db.rd(), db.dialect, ws, live)
	if err != nil || len(all) == 0 {
		return pv, err
	}
	pv.Profiles = len(live)
	in := placeholders(2, len(all))
	for _, c := range []struct {
		q   string
		dst *int
	}{
		{`SELECT COUNT(*) FROM events WHERE workspace_id = $1 AND profile_id IN (` + in + `)`, &pv.Events},
		{`SELECT COUNT(*) FROM consent_ledger WHERE workspace_id = $1 AND profile_id IN (` + in + `)`, &pv.ConsentEntries},
		{`SELECT COUNT(*) FROM identities WHERE workspace_id = $1 AND profile_id IN (` + in + `)`, &pv.Identities},
	} {
		if err := db.rd().QueryRowContext(ctx, c.q, inArgs([]any{ws}, all)...).Scan(c.dst); err != nil {
			return pv, db.dialect.translate(err)
		}
	}
	recips, err := s.Recipients(ctx, ws, live)
	if err != nil {
		return pv, err
	}
	for _, r := range recips {
		pv.Destinations = append(pv.Destinations, r.Destination)
	}
	return pv, nil
}

// Recipients lists the destinations that received a person's data, when
// and how much (GDPR Art. 15 and 19).
func (s *DSRs) Recipients(ctx context.Context, ws cdp.WorkspaceID, live []cdp.ProfileID) ([]cdp.Recipient, error) {
	db := s.p.db
	all, err := withTombstones(ctx, db.rd(), db.dialect, ws, live)
	if err != nil || len(all) == 0 {
		return nil, err
	}
	rows, err := db.rd().QueryContext(ctx, `SELECT destination_id, kind, COUNT(*), MIN(delivered_at), MAX(delivered_at) FROM deliveries
		WHERE workspace_id = $1 AND status = 'delivered' AND profile_id IN (`+placeholders(2, len(all))+`)
		GROUP BY destination_id, kind ORDER BY destination_id, kind`, inArgs([]any{ws}, all)...)
	if err != nil {
		return nil, db.dialect.translate(err)
	}
	defer rows.Close()
	var out []cdp.Recipient
	for rows.Next() {
		var (
			dest, kind  string
			n           int
			first, last sql.NullInt64
		)
		if err := rows.Scan(&dest, &kind, &n, &first, &last); err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].Destination != cdp.DestinationID(dest) {
			out = append(out, cdp.Recipient{Destination: cdp.DestinationID(dest), First: timeOf(first), Last: timeOf(last)})
		}
		r := &out[len(out)-1]
		r.Kinds, r.Count = append(r.Kinds, kind), r.Count+n
		if f := timeOf(first); !f.IsZero() && (r.First.IsZero() || f.Before(r.First)) {
			r.First = f
		}
		if l := timeOf(last); l.After(r.Last) {
			r.Last = l
		}
	}
	return out, rows.Err()
}

// Erase removes everything Custos holds about the people behind these live
// profiles, in one transaction: their profiles and the profiles merged into
// them (with their data keys, so every copy sealed under them becomes
// unreadable), identities and their hashed forms, traits, groups, timeline,
// consent ledger, delivery records, dead letters, queued outbox records and
// merge log entries. Every identity's blind index goes on the suppression
// list, so data naming the person again is dropped. It returns the counts
// removed per store and the suppressed blind indexes.
func (s *DSRs) Erase(ctx context.Context, ws cdp.WorkspaceID, requestID string, live []cdp.ProfileID, at time.Time) (cdp.ErasureCounts, [][]byte, error) {
	var (
		c      cdp.ErasureCounts
		blinds [][]byte
		all    []cdp.ProfileID
	)
	db := s.p.db
	err := db.tx(ctx, func(tx querier) error {
		c, blinds = cdp.ErasureCounts{}, nil
		var err error
		// The workspace's graph first, exclusively: the erasure waits for
		// the batches under way and holds the next ones back (as a split
		// does, and one after the other with splits), so it never waits
		// for a batch, or a split for it, while holding the rows the other
		// wants. Then the person's profiles: nothing merges into them
		// while the erasure holds them, so the tombstones read next are
		// all there are. One merged away since the request was resolved
		// means the person now lives in another profile: it is resolved
		// again.
		if err := db.dialect.lockGraph(ctx, tx, []cdp.WorkspaceID{ws}, true); err != nil {
			return err
		}
		if err := lockForErasure(ctx, tx, db.dialect, live); err != nil {
			return err
		}
		if all, err = withTombstones(ctx, tx, db.dialect, ws, live); err != nil || len(all) == 0 {
			return err
		}
		in := placeholders(2, len(all))
		args := inArgs([]any{ws}, all)
		rows, err := tx.QueryContext(ctx, `SELECT blind FROM identities WHERE workspace_id = $1 AND profile_id IN (`+in+`)`, args...)
		if err != nil {
			return db.dialect.translate(err)
		}
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				rows.Close()
				return err
			}
			blinds = append(blinds, b)
		}
		rows.Close()
		if err := suppress(ctx, tx, db.dialect, ws, requestID, blinds, at); err != nil {
			return err
		}
		for _, b := range blinds {
			if _, err := tx.ExecContext(ctx, `DELETE FROM identity_hashes WHERE workspace_id = $1 AND blind = $2`, ws, b); err != nil {
				return db.dialect.translate(err)
			}
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM profiles WHERE workspace_id = $1 AND data_key IS NOT NULL AND id IN (`+in+`)`, args...).Scan(&c.DataKeys); err != nil {
			return db.dialect.translate(err)
		}
		for _, d := range []struct {
			q   string
			dst *int
		}{
			{`DELETE FROM identities WHERE workspace_id = $1 AND profile_id IN (` + in + `)`, &c.Identities},
			{`DELETE FROM traits WHERE profile_id IN (` + placeholders(1, len(all)) + `)`, &c.Traits},
			{`DELETE FROM profile_groups WHERE profile_id IN (` + placeholders(1, len(all)) + `)`, &c.Groups},
			{`DELETE FROM events WHERE workspace_id = $1 AND profile_id IN (` + in + `)`, &c.Events},
			{`DELETE FROM consent_ledger WHERE workspace_id = $1 AND profile_id IN (` + in + `)`, &c.ConsentEntries},
			{`DELETE FROM deliveries WHERE workspace_id = $1 AND profile_id IN (` + in + `)`, &c.Deliveries},
			{`DELETE FROM dead_letters WHERE workspace_id = $1 AND profile_id IN (` + in + `)`, &c.DeadLetters},
			{`DELETE FROM outbox WHERE workspace_id = $1 AND profile_id IN (` + in + `)`, &c.Outbox},
			{`DELETE FROM merges WHERE workspace_id = $1 AND (survivor_id IN (` + in + `) OR merged_id IN (` + in + `))`, &c.Merges},
			{`DELETE FROM profiles WHERE workspace_id = $1 AND id IN (` + in + `)`, &c.Profiles},
		} {
			a := args
			if d.q[12:18] == "traits" || d.q[12:26] == "profile_groups" {
				a = inArgs(nil, all)
			}
			res, err := tx.ExecContext(ctx, d.q, a...)
			if err != nil {
				return fmt.Errorf("erase: %w", db.dialect.translate(err))
			}
			n, _ := res.RowsAffected()
			*d.dst = int(n)
		}
		a, b := placeholders(1, len(all)), placeholders(len(all)+1, len(all))
		_, err = tx.ExecContext(ctx, `DELETE FROM merge_blocks WHERE profile_a IN (`+a+`) OR profile_b IN (`+b+`)`, append(inArgs(nil, all), inArgs(nil, all)...)...)
		return db.dialect.translate(err)
	})
	if err == nil {
		s.p.keys.drop(all...)
	}
	return c, blinds, err
}

// suppress puts blind indexes on the suppression list (again, if they were
// lifted).
func suppress(ctx context.Context, q querier, d dialect, ws cdp.WorkspaceID, requestID string, blinds [][]byte, at time.Time) error {
	for _, b := range blinds {
		if _, err := q.ExecContext(ctx, `INSERT INTO suppressions (workspace_id, blind, request_id, created_at, lifted_by) VALUES ($1, $2, $3, $4, '')
			ON CONFLICT (workspace_id, blind) DO UPDATE SET lifted_at = NULL, lifted_by = '', request_id = excluded.request_id`,
			ws, b, requestID, micros(at)); err != nil {
			return d.translate(err)
		}
	}
	return nil
}

// Reapply puts an erasure's suppressions back and erases any profile that
// holds one of its identities again: after a database restore brought
// back rows the erasure had removed. It returns the counts it removed.
func (s *DSRs) Reapply(ctx context.Context, ws cdp.WorkspaceID, requestID string, blinds [][]byte, at time.Time) (cdp.ErasureCounts, error) {
	db := s.p.db
	if err := db.tx(ctx, func(tx querier) error { return suppress(ctx, tx, db.dialect, ws, requestID, blinds, at) }); err != nil {
		return cdp.ErasureCounts{}, err
	}
	// A profile merged away between finding the people and erasing them
	// makes Erase answer Conflict: find them again.
	for attempt := 0; ; attempt++ {
		live, err := s.owners(ctx, ws, blinds)
		if err != nil || len(live) == 0 {
			return cdp.ErasureCounts{}, err
		}
		c, _, err := s.Erase(ctx, ws, requestID, live, at)
		if err == nil || !cdp.IsKind(err, cdp.Conflict) || attempt == 4 {
			return c, err
		}
	}
}

// owners returns the profiles that hold any of the identities, each once.
func (s *DSRs) owners(ctx context.Context, ws cdp.WorkspaceID, blinds [][]byte) ([]cdp.ProfileID, error) {
	db := s.p.db
	seen := map[cdp.ProfileID]bool{}
	var live []cdp.ProfileID
	for _, b := range blinds {
		var p cdp.ProfileID
		err := db.rd().QueryRowContext(ctx, `SELECT profile_id FROM identities WHERE workspace_id = $1 AND blind = $2`, ws, b).Scan(&p)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, db.dialect.translate(err)
		}
		if !seen[p] {
			seen[p] = true
			live = append(live, p)
		}
	}
	return live, nil
}

// LiftSuppression lets data naming an erased person's identities in again
// (the person came back and asked to be a customer). It returns how many
// identities it lifted; NotFound if the request suppressed none.
func (s *DSRs) LiftSuppression(ctx context.Context, ws cdp.WorkspaceID, requestID, by string, at time.Time) (int, error) {
	res, err := s.p.db.wr().ExecContext(ctx, `UPDATE suppressions SET lifted_at = $1, lifted_by = $2 WHERE workspace_id = $3 AND request_id = $4 AND lifted_at IS NULL`,
		micros(at), by, ws, requestID)
	if err != nil {
		return 0, s.p.db.dialect.translate(err)
	}
	n, _ := res.RowsAffected()
	if n == 0 {
		return 0, cdp.Errorf(cdp.NotFound, "no active suppression for this request")
	}
	return int(n), nil
}

// Collect gathers everything held about the people behind these live
// profiles.
func (s *DSRs) Collect(ctx context.Context, ws cdp.WorkspaceID, live []cdp.ProfileID) (cdp.DSRBundle, error) {
	var b cdp.DSRBundle
	for _, id := range live {
		p, err := s.p.Get(ctx, ws, id)
		if err != nil {
			return b, err
		}
		b.Profiles = append(b.Profiles, p)
		after := cdp.TimelineCursor{}
		for {
			page, err := s.p.Timeline(ctx, ws, id, cdp.TimelineFilter{}, after, 1000)
			if err != nil {
				return b, err
			}
			b.Events = append(b.Events, page...)
			if len(page) < 1000 {
				break
			}
			after = page[len(page)-1].After()
		}
		entries, err := s.p.ConsentHistory(ctx, ws, id)
		if err != nil {
			return b, err
		}
		b.Consent = append(b.Consent, entries...)
		merges, err := s.p.Merges(ctx, ws, id)
		if err != nil {
			return b, err
		}
		b.Merges = append(b.Merges, merges...)
	}
	recips, err := s.Recipients(ctx, ws, live)
	b.Recipients = recips
	return b, err
}

// ErasureIdentities returns a person's identities as each destination may
// have received them, for erasure notices: the plaintext is read once,
// before the data is destroyed.
func (s *DSRs) ErasureIdentities(ctx context.Context, ws cdp.WorkspaceID, live []cdp.ProfileID) ([]cdp.Identity, error) {
	var out []cdp.Identity
	for _, id := range live {
		p, err := s.p.Get(ctx, ws, id)
		if err != nil {
			return nil, err
		}
		for _, pi := range p.Identities {
			out = append(out, pi.Identity)
		}
	}
	return out, nil
}

func auditHash(prev string, ws cdp.WorkspaceID, kind, subject string, record []byte, at int64) string {
	h := sha256.New()
	for _, part := range [][]byte{[]byte(prev), []byte(ws), []byte(kind), []byte(subject), record, []byte(fmt.Sprint(at))} {
		h.Write([]byte(fmt.Sprintf("%d:", len(part))))
		h.Write(part)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// AppendAudit appends a record to the tamper-evident log: its hash covers
// the record and the previous record's hash, so changing or removing any
// entry breaks every hash after it.
func (s *Profiles) AppendAudit(ctx context.Context, ws cdp.WorkspaceID, kind, subject string, record json.RawMessage, at time.Time) (cdp.AuditRecord, error) {
	db := s.db
	var out cdp.AuditRecord
	err := db.tx(ctx, func(tx querier) error {
		var prev string
		err := tx.QueryRowContext(ctx, `SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1`+db.dialect.lockUpdate()).Scan(&prev)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return db.dialect.translate(err)
		}
		now := micros(at)
		hash := auditHash(prev, ws, kind, subject, record, now)
		if err := tx.QueryRowContext(ctx, `INSERT INTO audit_log (workspace_id, kind, subject, record, prev_hash, hash, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING seq`,
			ws, kind, subject, string(record), prev, hash, now).Scan(&out.Seq); err != nil {
			return db.dialect.translate(err)
		}
		out = cdp.AuditRecord{Seq: out.Seq, WorkspaceID: ws, Kind: kind, Subject: subject, Record: record, PrevHash: prev, Hash: hash, CreatedAt: fromMicros(now)}
		return nil
	})
	return out, err
}

// Audit returns the log's records about a subject, oldest first.
func (s *Profiles) Audit(ctx context.Context, ws cdp.WorkspaceID, kind, subject string) ([]cdp.AuditRecord, error) {
	rows, err := s.db.rd().QueryContext(ctx, `SELECT seq, record, prev_hash, hash, created_at FROM audit_log WHERE workspace_id = $1 AND kind = $2 AND subject = $3 ORDER BY seq`, ws, kind, subject)
	if err != nil {
		return nil, s.db.dialect.translate(err)
	}
	defer rows.Close()
	var out []cdp.AuditRecord
	for rows.Next() {
		r := cdp.AuditRecord{WorkspaceID: ws, Kind: kind, Subject: subject}
		var (
			rec string
			at  int64
		)
		if err := rows.Scan(&r.Seq, &rec, &r.PrevHash, &r.Hash, &at); err != nil {
			return nil, err
		}
		r.Record, r.CreatedAt = json.RawMessage(rec), fromMicros(at)
		out = append(out, r)
	}
	return out, rows.Err()
}

// AuditLog pages through a workspace's whole audit log in order: records
// after sequence number after, at most limit.
func (s *Profiles) AuditLog(ctx context.Context, ws cdp.WorkspaceID, after int64, limit int) ([]cdp.AuditRecord, error) {
	rows, err := s.db.rd().QueryContext(ctx, `SELECT seq, kind, subject, record, prev_hash, hash, created_at FROM audit_log
		WHERE workspace_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, ws, after, limit)
	if err != nil {
		return nil, s.db.dialect.translate(err)
	}
	defer rows.Close()
	var out []cdp.AuditRecord
	for rows.Next() {
		r := cdp.AuditRecord{WorkspaceID: ws}
		var (
			rec string
			at  int64
		)
		if err := rows.Scan(&r.Seq, &r.Kind, &r.Subject, &rec, &r.PrevHash, &r.Hash, &at); err != nil {
			return nil, err
		}
		r.Record, r.CreatedAt = json.RawMessage(rec), fromMicros(at)
		out = append(out, r)
	}
	return out, rows.Err()
}

// VerifyAudit walks the whole log and reports the first record whose hash
// does not match its content and predecessor.
func (s *Profiles) VerifyAudit(ctx context.Context) error {
	rows, err := s.db.rd().QueryContext(ctx, `SELECT seq, workspace_id, kind, subject, record, prev_hash, hash, created_at FROM audit_log ORDER BY seq`)
	if err != nil {
		return s.db.dialect.translate(err)
	}
	defer rows.Close()
	prev := ""
	for rows.Next() {
		var (
			seq, at                    int64
			ws, kind, subj, rec, ph, h string
		)
		if err := rows.Scan(&seq, &ws, &kind, &subj, &rec, &ph, &h, &at); err != nil {
			return err
		}
		if ph != prev || auditHash(prev, cdp.WorkspaceID(ws), kind, subj, []byte(rec), at) != h {
			return cdp.Reason(cdp.Conflict, "audit_tampered", fmt.Sprintf("audit log record %d does not match its hash chain", seq))
		}
		prev = h
	}
	return rows.Err()
}

var _ = eventcodec.Version
