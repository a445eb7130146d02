package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/eventcodec"
	"github.com/custos-cdp/custos/internal/vault"
)

// Find returns the profile that holds an identity. NotFound if none does.
func (s *Profiles) Find(ctx context.Context, ws cdp.WorkspaceID, id cdp.Identity) (cdp.ProfileID, error) {
	keys, err := s.vault.Keys(ctx, ws)
	if err != nil {
		return "", err
	}
	var p string
	err = s.db.rd().QueryRowContext(ctx, `SELECT profile_id FROM identities WHERE workspace_id = $1 AND blind = $2`,
		ws, keys.BlindIndex(id)).Scan(&p)
	if errors.Is(err, sql.ErrNoRows) {
		return "", cdp.Errorf(cdp.NotFound, "no profile has that identity")
	}
	return cdp.ProfileID(p), s.db.dialect.translate(err)
}

// Get returns a profile with its identities, traits and groups decrypted.
// A profile that was merged away comes back with only ID and MergedInto.
// NotFound if the workspace has no such profile.
func (s *Profiles) Get(ctx context.Context, ws cdp.WorkspaceID, id cdp.ProfileID) (cdp.Profile, error) {
	var (
		p                cdp.Profile
		merged           sql.NullString
		created, updated int64
		shredded         bool
	)
	err := s.db.rd().QueryRowContext(ctx,
		`SELECT created_at, updated_at, merged_into, data_key IS NULL FROM profiles WHERE id = $1 AND workspace_id = $2`, id, ws).
		Scan(&created, &updated, &merged, &shredded)
	if errors.Is(err, sql.ErrNoRows) {
		return p, cdp.Errorf(cdp.NotFound, "profile not found")
	}
	if err != nil {
		return p, s.db.dialect.translate(err)
	}
	p.ID, p.WorkspaceID = id, ws
	if merged.Valid {
		p.MergedInto = cdp.ProfileID(merged.String)
		return p, nil
	}
	// Its key destroyed (an erasure under way), the profile is gone, also
	// for a process that still has the key cached.
	if shredded {
		return p, cdp.Errorf(cdp.NotFound, "profile not found")
	}
	// Counted from the timeline index (profile, event time), not kept per
	// profile: see migration 00005.
	var newest int64
	if err := s.db.rd().QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(MAX(event_time), 0) FROM events WHERE profile_id = $1`, id).
		Scan(&p.EventCount, &newest); err != nil {
		return p, s.db.dialect.translate(err)
	}
	p.CreatedAt, p.UpdatedAt = fromMicros(created), fromMicros(max(updated, newest))
	keys, err := s.vault.Keys(ctx, ws)
	if err != nil {
		return p, err
	}
	dk, err := s.key(ctx, keys, id)
	if err != nil {
		return p, err
	}
	if p.Identities, err = s.identities(ctx, id, dk); err != nil {
		return p, err
	}
	if p.Traits, err = s.traits(ctx, id, dk); err != nil {
		return p, err
	}
	if p.Groups, err = s.groups(ctx, id, dk); err != nil {
		return p, err
	}
	return p, nil
}

func (s *Profiles) key(ctx context.Context, keys *vault.Keys, p cdp.ProfileID) (*vault.DataKey, error) {
	if dk, ok := s.keys.get(p); ok {
		return dk, nil
	}
	return s.openKey(ctx, s.db.rd(), keys, p)
}

func (s *Profiles) identities(ctx context.Context, p cdp.ProfileID, dk *vault.DataKey) ([]cdp.ProfileIdentity, error) {
	rows, err := s.db.rd().QueryContext(ctx, `SELECT blind, type, value, first_seen FROM identities WHERE profile_id = $1 ORDER BY type, first_seen`, p)
	if err != nil {
		return nil, s.db.dialect.translate(err)
	}
	defer rows.Close()
	var out []cdp.ProfileIdentity
	for rows.Next() {
		var (
			blind, value []byte
			typ          string
			first        int64
		)
		if err := rows.Scan(&blind, &typ, &value, &first); err != nil {
			return nil, err
		}
		pt, err := dk.Open(value, identityAD(string(blind)))
		if err != nil {
			return nil, fmt.Errorf("identity of %s: %w", p, err)
		}
		out = append(out, cdp.ProfileIdentity{Identity: cdp.Identity{Type: cdp.IdentityType(typ), Value: string(pt)}, FirstSeen: fromMicros(first)})
	}
	return out, rows.Err()
}

func (s *Profiles) traits(ctx context.Context, p cdp.ProfileID, dk *vault.DataKey) ([]cdp.Trait, error) {
	rows, err := s.db.rd().QueryContext(ctx, `SELECT name, value, updated_at FROM traits WHERE profile_id = $1 AND value IS NOT NULL ORDER BY name`, p)
	if err != nil {
		return nil, s.db.dialect.translate(err)
	}
	defer rows.Close()
	var out []cdp.Trait
	for rows.Next() {
		var (
			t     cdp.Trait
			value []byte
			at    int64
		)
		if err := rows.Scan(&t.Name, &value, &at); err != nil {
			return nil, err
		}
		if t.Value, err = dk.Open(value, traitAD(t.Name)); err != nil {
			return nil, fmt.Errorf("trait of %s: %w", p, err)
		}
		t.UpdatedAt = fromMicros(at)
		out = append(out, t)
	}
	return out, rows.Err()
}

func (s *Profiles) groups(ctx context.Context, p cdp.ProfileID, dk *vault.DataKey) ([]cdp.GroupMembership, error) {
	rows, err := s.db.rd().QueryContext(ctx, `SELECT group_key, group_id, traits, updated_at FROM profile_groups WHERE profile_id = $1 ORDER BY updated_at`, p)
	if err != nil {
		return nil, s.db.dialect.translate(err)
	}
	defer rows.Close()
	var out []cdp.GroupMembership
	for rows.Next() {
		var (
			key, gid, traits []byte
			at               int64
		)
		if err := rows.Scan(&key, &gid, &traits, &at); err != nil {
			return nil, err
		}
		g := cdp.GroupMembership{UpdatedAt: fromMicros(at)}
		pt, err := dk.Open(gid, groupAD(key))
		if err != nil {
			return nil, fmt.Errorf("group of %s: %w", p, err)
		}
		g.GroupID = string(pt)
		if traits != nil {
			if g.Traits, err = dk.Open(traits, groupAD(key)); err != nil {
				return nil, fmt.Errorf("group of %s: %w", p, err)
			}
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// Live returns the live profile a profile id names: itself, or the
// profile it was merged into (tombstones point at it directly). NotFound if
// the workspace has no such profile, or its key was destroyed (an erasure
// under way; also for a process that still has the key cached).
func (s *Profiles) Live(ctx context.Context, ws cdp.WorkspaceID, id cdp.ProfileID) (cdp.ProfileID, error) {
	for range 2 {
		var (
			merged   sql.NullString
			shredded bool
		)
		err := s.db.rd().QueryRowContext(ctx, `SELECT merged_into, data_key IS NULL FROM profiles WHERE id = $1 AND workspace_id = $2`, id, ws).
			Scan(&merged, &shredded)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return "", cdp.Errorf(cdp.NotFound, "profile not found")
		case err != nil:
			return "", s.db.dialect.translate(err)
		case merged.Valid:
			id = cdp.ProfileID(merged.String)
		case shredded:
			return "", cdp.Errorf(cdp.NotFound, "profile not found")
		default:
			return id, nil
		}
	}
	return "", cdp.Errorf(cdp.NotFound, "profile not found")
}

// Timeline returns up to limit events of a live profile, newest (by event
// time) first, after cursor and matching f. NotFound if the workspace has
// no such live profile.
func (s *Profiles) Timeline(ctx context.Context, ws cdp.WorkspaceID, id cdp.ProfileID, f cdp.TimelineFilter, after cdp.TimelineCursor, limit int) ([]cdp.StoredEvent, error) {
	keys, err := s.vault.Keys(ctx, ws)
	if err != nil {
		return nil, err
	}
	if live, err := s.Live(ctx, ws, id); err != nil || live != id {
		if err == nil {
			err = cdp.Errorf(cdp.NotFound, "profile not found")
		}
		return nil, err
	}
	where := []string{"profile_id = $1"}
	args := []any{id}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if after.Seq > 0 {
		t, q := arg(micros(after.At)), arg(after.Seq)
		where = append(where, "(event_time < "+t+" OR (event_time = "+t+" AND seq < "+q+"))")
	}
	if f.Name != "" {
		where = append(where, "name = "+arg(f.Name))
	}
	if f.Type != "" {
		where = append(where, "type = "+arg(string(f.Type)))
	}
	if !f.From.IsZero() {
		where = append(where, "event_time >= "+arg(micros(f.From)))
	}
	if !f.To.IsZero() {
		where = append(where, "event_time < "+arg(micros(f.To)))
	}
	q := `SELECT seq, profile_id, source_id, message_id, payload FROM events WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY event_time DESC, seq DESC LIMIT ` + arg(limit)
	return s.readEvents(ctx, keys, q, args...)
}

// AllEvents returns up to limit events of a workspace in order of arrival
// at the store, newest first, below seq before (0: from the newest).
func (s *Profiles) AllEvents(ctx context.Context, ws cdp.WorkspaceID, before int64, limit int) ([]cdp.StoredEvent, error) {
	keys, err := s.vault.Keys(ctx, ws)
	if err != nil {
		return nil, err
	}
	if before <= 0 {
		before = math.MaxInt64
	}
	return s.readEvents(ctx, keys,
		`SELECT seq, profile_id, source_id, message_id, payload FROM events WHERE workspace_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3`,
		ws, before, limit)
}

func (s *Profiles) readEvents(ctx context.Context, keys *vault.Keys, q string, args ...any) ([]cdp.StoredEvent, error) {
	rows, err := s.db.rd().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.db.dialect.translate(err)
	}
	type row struct {
		seq         int64
		p, src, mid string
		payload     []byte
	}
	var all []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.seq, &r.p, &r.src, &r.mid, &r.payload); err != nil {
			rows.Close()
			return nil, err
		}
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, s.db.dialect.translate(err)
	}
	out := make([]cdp.StoredEvent, 0, len(all))
	for _, r := range all {
		dk, err := s.key(ctx, keys, cdp.ProfileID(r.p))
		if err != nil {
			return nil, err
		}
		pt, err := dk.Open(r.payload, eventAD(cdp.SourceID(r.src), r.mid))
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", r.seq, err)
		}
		ev, err := eventcodec.DecodeOne(pt)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", r.seq, err)
		}
		out = append(out, cdp.StoredEvent{Seq: r.seq, Profile: cdp.ProfileID(r.p), Event: ev})
	}
	return out, nil
}

// Merges returns the merge log entries that involve a profile or a
// profile merged into it (every tombstone points at its live profile
// directly), newest first: after A into B and B into C, C's history holds
// both merges.
func (s *Profiles) Merges(ctx context.Context, ws cdp.WorkspaceID, id cdp.ProfileID) ([]cdp.Merge, error) {
	// Two halves, each an index lookup per profile (an OR of IN lists
	// made PostgreSQL scan every merge of every workspace).
	const cols = `id, survivor_id, merged_id, rule, message_id, source_id, created_at, undone_at`
	const profiles = `(SELECT CAST($2 AS TEXT) UNION ALL SELECT id FROM profiles WHERE merged_into = $2)`
	rows, err := s.db.rd().QueryContext(ctx,
		`SELECT `+cols+` FROM merges WHERE workspace_id = $1 AND survivor_id IN `+profiles+`
		 UNION
		 SELECT `+cols+` FROM merges WHERE workspace_id = $1 AND merged_id IN `+profiles+`
		 ORDER BY created_at DESC, id`, ws, id)
	if err != nil {
		return nil, s.db.dialect.translate(err)
	}
	defer rows.Close()
	var out []cdp.Merge
	for rows.Next() {
		var (
			m       cdp.Merge
			created int64
			undone  sql.NullInt64
		)
		if err := rows.Scan(&m.ID, &m.Survivor, &m.Merged, &m.Rule, &m.MessageID, &m.SourceID, &created, &undone); err != nil {
			return nil, err
		}
		m.WorkspaceID, m.At = ws, fromMicros(created)
		if undone.Valid {
			m.UndoneAt = fromMicros(undone.Int64)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// EventCount is the number of events stored for a workspace.
func (s *Profiles) EventCount(ctx context.Context, ws cdp.WorkspaceID) (int64, error) {
	var n int64
	err := s.db.rd().QueryRowContext(ctx, `SELECT COUNT(*) FROM events WHERE workspace_id = $1`, ws).Scan(&n)
	return n, s.db.dialect.translate(err)
}
