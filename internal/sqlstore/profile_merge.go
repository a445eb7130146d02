package sqlstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/consent"
	"github.com/custos-cdp/custos/internal/eventcodec"
	"github.com/custos-cdp/custos/internal/identity"
	"github.com/custos-cdp/custos/internal/vault"
)

func newMergeID() cdp.MergeID {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return cdp.MergeID("mrg_" + hex.EncodeToString(b[:]))
}

// lockPair locks two profiles for writing, in a fixed order so that two
// transactions locking the same pair cannot deadlock.
func (a *applier) lockPair(ctx context.Context, x, y cdp.ProfileID) error {
	if y < x {
		x, y = y, x
	}
	if err := a.ensureExclusive(ctx, x); err != nil {
		return err
	}
	return a.ensureExclusive(ctx, y)
}

// merge folds m.From into survivor: its identities, timeline, traits and
// groups move over, re-encrypted under the survivor's data key; its own key
// is destroyed; the merge log records why.
func (a *applier) merge(ctx context.Context, keys *vault.Keys, survivor cdp.ProfileID, m identity.PlannedMerge, ev *cdp.Event) error {
	if err := a.lockPair(ctx, survivor, m.From); err != nil {
		return err
	}
	to, err := a.dataKey(ctx, keys, survivor)
	if err != nil {
		return err
	}
	from, err := a.s.openKey(ctx, a.tx, keys, m.From)
	if err != nil {
		return err
	}
	mv := mover{q: a.tx, d: a.s.db.dialect}
	moved, err := mv.identities(ctx, m.From, survivor, from, to, nil)
	if err != nil {
		return err
	}
	if _, err := mv.events(ctx, m.From, survivor, from, to, nil); err != nil {
		return err
	}
	survivorLedger, err := a.ledger(ctx, survivor)
	if err != nil {
		return err
	}
	movedLedger, err := mv.ledger(ctx, m.From, survivor, from, to, nil)
	if err != nil {
		return err
	}
	a.ledgers[survivor] = append(append([]cdp.ConsentEntry{}, survivorLedger...), movedLedger...)
	delete(a.ledgers, m.From)
	if err := mv.traits(ctx, m.From, survivor, from, to); err != nil {
		return err
	}
	if err := mv.groups(ctx, m.From, survivor, from, to); err != nil {
		return err
	}
	now := micros(ev.ReceivedAt)
	if _, err := a.tx.ExecContext(ctx,
		`UPDATE profiles SET updated_at = $1 WHERE id = $2`, now, survivor); err != nil {
		return a.s.db.dialect.translate(err)
	}
	// The merged profile keeps its data key while it is a tombstone: queued
	// deliveries and dead letters sealed under it stay readable, and an
	// erasure of the survivor destroys it with the survivor's.
	if _, err := a.tx.ExecContext(ctx,
		`UPDATE profiles SET merged_into = $1, updated_at = $2 WHERE id = $3`,
		survivor, now, m.From); err != nil {
		return a.s.db.dialect.translate(err)
	}
	// Profiles merged into From earlier now point at the survivor, so an old
	// profile id is one hop from its live profile (and an erasure of the
	// survivor finds every tombstone).
	if _, err := a.tx.ExecContext(ctx, `UPDATE profiles SET merged_into = $1 WHERE merged_into = $2`, survivor, m.From); err != nil {
		return a.s.db.dialect.translate(err)
	}
	mergeID := newMergeID()
	if _, err := a.tx.ExecContext(ctx,
		`INSERT INTO merges (id, workspace_id, survivor_id, merged_id, rule, message_id, source_id, moved, created_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		mergeID, ev.WorkspaceID, survivor, m.From, m.Rule, ev.MessageID, ev.SourceID, bytes.Join(moved, nil), now); err != nil {
		return a.s.db.dialect.translate(err)
	}
	// For opt-out purposes the most restrictive state of the two wins.
	voc := a.env[ev.WorkspaceID].voc
	carried := consent.MergeCarryOver(survivorLedger, movedLedger, voc.Purposes, ev.ReceivedAt)
	for i := range carried {
		carried[i].ID, carried[i].WorkspaceID, carried[i].Profile, carried[i].Origin = newEntryID(), ev.WorkspaceID, survivor, survivor
		carried[i].MergeID = mergeID
	}
	if err := a.appendLedger(ctx, survivor, to, carried); err != nil {
		return err
	}
	for _, b := range moved {
		a.owners[string(b)] = survivor
	}
	a.active[m.From] = false
	a.s.keys.drop(m.From)
	a.res.Merges++
	return nil
}

// mover moves a profile's data to another profile, re-encrypting it.
type mover struct {
	q querier
	d dialect
}

// identities moves the identities of from (all, or those whose blind index
// is in only) to to, and returns their blind indexes.
func (m mover) identities(ctx context.Context, from, to cdp.ProfileID, fk, tk *vault.DataKey, only map[string]bool) ([][]byte, error) {
	rows, err := m.q.QueryContext(ctx, `SELECT workspace_id, blind, value FROM identities WHERE profile_id = $1`, from)
	if err != nil {
		return nil, m.d.translate(err)
	}
	type row struct {
		ws           string
		blind, value []byte
	}
	var all []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.ws, &r.blind, &r.value); err != nil {
			rows.Close()
			return nil, err
		}
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, m.d.translate(err)
	}
	var moved [][]byte
	for _, r := range all {
		if only != nil && !only[string(r.blind)] {
			continue
		}
		pt, err := fk.Open(r.value, identityAD(string(r.blind)))
		if err != nil {
			return nil, err
		}
		if _, err := m.q.ExecContext(ctx, `UPDATE identities SET profile_id = $1, value = $2 WHERE workspace_id = $3 AND blind = $4`,
			to, tk.Seal(nil, pt, identityAD(string(r.blind))), r.ws, r.blind); err != nil {
			return nil, m.d.translate(err)
		}
		moved = append(moved, r.blind)
	}
	return moved, nil
}

// events moves the timeline of from to to: every event, or those keep
// accepts. It returns the message ids of those that moved.
func (m mover) events(ctx context.Context, from, to cdp.ProfileID, fk, tk *vault.DataKey, keep func(*cdp.Event) bool) (map[string]bool, error) {
	rows, err := m.q.QueryContext(ctx, `SELECT seq, source_id, message_id, payload FROM events WHERE profile_id = $1`, from)
	if err != nil {
		return nil, m.d.translate(err)
	}
	type row struct {
		seq           int64
		src, mid      string
		payload, next []byte
	}
	var all []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.seq, &r.src, &r.mid, &r.payload); err != nil {
			rows.Close()
			return nil, err
		}
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, m.d.translate(err)
	}
	moved := map[string]bool{}
	for _, r := range all {
		ad := eventAD(cdp.SourceID(r.src), r.mid)
		pt, err := fk.Open(r.payload, ad)
		if err != nil {
			return nil, err
		}
		if keep != nil {
			ev, err := eventcodec.DecodeOne(pt)
			if err != nil {
				return nil, err
			}
			if !keep(&ev) {
				continue
			}
		}
		if _, err := m.q.ExecContext(ctx, `UPDATE events SET profile_id = $1, payload = $2 WHERE seq = $3`,
			to, tk.Seal(nil, pt, ad), r.seq); err != nil {
			return nil, m.d.translate(err)
		}
		moved[r.mid] = true
	}
	return moved, nil
}

// traits moves from's traits onto to, each keeping the later write.
func (m mover) traits(ctx context.Context, from, to cdp.ProfileID, fk, tk *vault.DataKey) error {
	rows, err := m.q.QueryContext(ctx, `SELECT name, value, updated_at FROM traits WHERE profile_id = $1`, from)
	if err != nil {
		return m.d.translate(err)
	}
	var out []traitRow
	for rows.Next() {
		var (
			r     traitRow
			value []byte
		)
		if err := rows.Scan(&r.name, &value, &r.at); err != nil {
			rows.Close()
			return err
		}
		if value != nil {
			pt, err := fk.Open(value, traitAD(r.name))
			if err != nil {
				rows.Close()
				return err
			}
			r.value = tk.Seal(nil, pt, traitAD(r.name))
		}
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return m.d.translate(err)
	}
	if err := upsertTraits(ctx, m.q, m.d, to, out); err != nil {
		return err
	}
	_, err = m.q.ExecContext(ctx, `DELETE FROM traits WHERE profile_id = $1`, from)
	return m.d.translate(err)
}

// groups moves from's group links onto to, each keeping the later write.
func (m mover) groups(ctx context.Context, from, to cdp.ProfileID, fk, tk *vault.DataKey) error {
	rows, err := m.q.QueryContext(ctx, `SELECT group_key, group_id, traits, updated_at FROM profile_groups WHERE profile_id = $1`, from)
	if err != nil {
		return m.d.translate(err)
	}
	type row struct {
		key, gid, traits []byte
		at               int64
	}
	var all []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.key, &r.gid, &r.traits, &r.at); err != nil {
			rows.Close()
			return err
		}
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return m.d.translate(err)
	}
	for _, r := range all {
		gid, err := fk.Open(r.gid, groupAD(r.key))
		if err != nil {
			return err
		}
		var traits []byte
		if r.traits != nil {
			pt, err := fk.Open(r.traits, groupAD(r.key))
			if err != nil {
				return err
			}
			traits = tk.Seal(nil, pt, groupAD(r.key))
		}
		if err := upsertGroup(ctx, m.q, m.d, to, r.key, tk.Seal(nil, gid, groupAD(r.key)), traits, r.at); err != nil {
			return err
		}
	}
	_, err = m.q.ExecContext(ctx, `DELETE FROM profile_groups WHERE profile_id = $1`, from)
	return m.d.translate(err)
}

// Split undoes a merge: the merged profile comes back with a new data key,
// the identities that came with it move back, each event of the survivor
// that carries only the merged profile's identities moves back, and both
// profiles' traits and groups are recomputed from their timelines. The two
// profiles are kept apart from then on. NotFound if the workspace has no
// such merge; Conflict if it was undone already or the merged profile has
// since been erased.
func (s *Profiles) Split(ctx context.Context, ws cdp.WorkspaceID, id cdp.MergeID) (cdp.Merge, error) {
	var out cdp.Merge
	keys, err := s.vault.Keys(ctx, ws)
	if err != nil {
		return out, err
	}
	err = s.db.tx(ctx, func(tx querier) error {
		var (
			moved    []byte
			undone   sql.NullInt64
			created  int64
			survivor string
		)
		// A split moves known identities between two live profiles, which
		// no profile lock of Apply would notice: it waits for the batches
		// under way and holds the next ones back until it commits, so a
		// batch naming one of those identities runs wholly before or after.
		if err := s.db.dialect.lockGraph(ctx, tx, []cdp.WorkspaceID{ws}, true); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx,
			`SELECT survivor_id, merged_id, rule, message_id, source_id, moved, created_at, undone_at FROM merges WHERE id = $1 AND workspace_id = $2`+s.db.dialect.lockUpdate(),
			id, ws).Scan(&survivor, &out.Merged, &out.Rule, &out.MessageID, &out.SourceID, &moved, &created, &undone)
		if errors.Is(err, sql.ErrNoRows) {
			return cdp.Errorf(cdp.NotFound, "merge not found")
		}
		if err != nil {
			return s.db.dialect.translate(err)
		}
		if undone.Valid {
			return cdp.Reason(cdp.Conflict, "already_split", "this merge was undone already")
		}
		out.ID, out.WorkspaceID, out.Survivor, out.At = id, ws, cdp.ProfileID(survivor), fromMicros(created)
		// The identities moving back are also locked as Apply locked every
		// identity before the graph lock, so that while nodes of the two
		// versions run side by side (a rolling upgrade), a batch of an older
		// node naming one still runs wholly before or after the split.
		var lk []int32
		for i := 0; i+32 <= len(moved); i += 32 {
			lk = append(lk, identityLockKey(string(moved[i:i+32])))
		}
		slices.Sort(lk)
		if err := s.db.dialect.lockKeys(ctx, tx, slices.Compact(lk)); err != nil {
			return err
		}
		// The survivor may itself have merged into another profile since.
		holder, err := s.liveProfile(ctx, tx, ws, out.Survivor)
		if err != nil {
			return err
		}
		var mergedInto sql.NullString
		if err := tx.QueryRowContext(ctx, `SELECT merged_into FROM profiles WHERE id = $1`+s.db.dialect.lockUpdate(), out.Merged).Scan(&mergedInto); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return cdp.Reason(cdp.Conflict, "profile_erased", "the merged profile no longer exists")
			}
			return s.db.dialect.translate(err)
		}
		hk, err := s.openKey(ctx, tx, keys, holder)
		if err != nil {
			return err
		}
		// The merged profile comes back with the data key it kept as a
		// tombstone, so what was queued under it stays readable.
		mk, err := s.openKey(ctx, tx, keys, out.Merged)
		if err != nil {
			return cdp.Wrap(cdp.Conflict, "profile_erased", err, "the merged profile's data is gone")
		}
		now := micros(s.now())
		if _, err := tx.ExecContext(ctx, `UPDATE profiles SET merged_into = NULL, updated_at = $1 WHERE id = $2`, now, out.Merged); err != nil {
			return s.db.dialect.translate(err)
		}
		back := map[string]bool{}
		for i := 0; i+32 <= len(moved); i += 32 {
			back[string(moved[i:i+32])] = true
		}
		mv := mover{q: tx, d: s.db.dialect}
		if _, err := mv.identities(ctx, holder, out.Merged, hk, mk, back); err != nil {
			return err
		}
		stays := map[string]bool{}
		for _, b := range mustBlinds(ctx, tx, s.db.dialect, holder) {
			stays[b] = true
		}
		movedEvents, err := mv.events(ctx, holder, out.Merged, hk, mk, func(ev *cdp.Event) bool {
			own, other := false, false
			for _, id := range ev.Identities {
				b := string(keys.BlindIndex(id))
				own = own || back[b]
				other = other || stays[b]
			}
			return own && !other
		})
		if err != nil {
			return err
		}
		// Consent goes back with what carried it; what the merge decided
		// for the pair is undone.
		if _, err := mv.ledger(ctx, holder, out.Merged, hk, mk, func(e cdp.ConsentEntry) bool {
			return e.MergeID == "" && (e.Origin == out.Merged || movedEvents[e.MessageID])
		}); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM consent_ledger WHERE merge_id = $1`, id); err != nil {
			return s.db.dialect.translate(err)
		}
		for _, p := range []struct {
			id cdp.ProfileID
			dk *vault.DataKey
		}{{holder, hk}, {out.Merged, mk}} {
			if err := s.recompute(ctx, tx, keys, p.id, p.dk); err != nil {
				return err
			}
		}
		a, b := holder, out.Merged
		if b < a {
			a, b = b, a
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO merge_blocks (profile_a, profile_b, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
			a, b, now); err != nil {
			return s.db.dialect.translate(err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE merges SET undone_at = $1 WHERE id = $2`, now, id); err != nil {
			return s.db.dialect.translate(err)
		}
		out.UndoneAt = fromMicros(now)
		return nil
	})
	s.keys.drop(out.Survivor, out.Merged)
	return out, err
}

func mustBlinds(ctx context.Context, q querier, d dialect, p cdp.ProfileID) []string {
	rows, err := q.QueryContext(ctx, `SELECT blind FROM identities WHERE profile_id = $1`, p)
	if err != nil {
		return nil
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var b []byte
		if rows.Scan(&b) == nil {
			out = append(out, string(b))
		}
	}
	return out
}

// liveProfile follows a merged profile id to the live profile that holds
// its data now.
func (s *Profiles) liveProfile(ctx context.Context, q querier, ws cdp.WorkspaceID, p cdp.ProfileID) (cdp.ProfileID, error) {
	var merged sql.NullString
	err := q.QueryRowContext(ctx, `SELECT merged_into FROM profiles WHERE id = $1 AND workspace_id = $2`, p, ws).Scan(&merged)
	if errors.Is(err, sql.ErrNoRows) {
		return "", cdp.Errorf(cdp.NotFound, "profile not found")
	}
	if err != nil {
		return "", s.db.dialect.translate(err)
	}
	if merged.Valid {
		return cdp.ProfileID(merged.String), nil
	}
	return p, nil
}

// recompute rebuilds a profile's traits, groups and event count from its
// timeline, applying the same last-write-wins rules as the processor.
func (s *Profiles) recompute(ctx context.Context, tx querier, keys *vault.Keys, p cdp.ProfileID, dk *vault.DataKey) error {
	rows, err := tx.QueryContext(ctx, `SELECT source_id, message_id, payload FROM events WHERE profile_id = $1`, p)
	if err != nil {
		return s.db.dialect.translate(err)
	}
	var events []cdp.Event
	for rows.Next() {
		var (
			src, mid string
			payload  []byte
		)
		if err := rows.Scan(&src, &mid, &payload); err != nil {
			rows.Close()
			return err
		}
		pt, err := dk.Open(payload, eventAD(cdp.SourceID(src), mid))
		if err != nil {
			rows.Close()
			return err
		}
		ev, err := eventcodec.DecodeOne(pt)
		if err != nil {
			rows.Close()
			return err
		}
		events = append(events, ev)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return s.db.dialect.translate(err)
	}
	for _, q := range []string{`DELETE FROM traits WHERE profile_id = $1`, `DELETE FROM profile_groups WHERE profile_id = $1`} {
		if _, err := tx.ExecContext(ctx, q, p); err != nil {
			return s.db.dialect.translate(err)
		}
	}
	latest := map[string]traitRow{}
	for i := range events {
		ev := &events[i]
		at := micros(ev.Timestamp)
		if ev.Type == cdp.Identify {
			var traits map[string]json.RawMessage
			_ = json.Unmarshal(ev.Traits, &traits)
			for name, v := range traits {
				if cur, ok := latest[name]; !ok || at >= cur.at {
					latest[name] = traitRow{name: name, value: dk.Seal(nil, v, traitAD(name)), at: at}
				}
			}
			for _, name := range ev.DeletedTraits {
				if _, set := traits[name]; set {
					continue
				}
				if cur, ok := latest[name]; !ok || at >= cur.at {
					latest[name] = traitRow{name: name, at: at}
				}
			}
		}
		if ev.Type == cdp.Group && ev.GroupID != "" {
			key := keys.BlindIndex(cdp.Identity{Type: "group", Value: ev.GroupID})
			var traits []byte
			if len(ev.Traits) > 0 {
				traits = dk.Seal(nil, ev.Traits, groupAD(key))
			}
			if err := upsertGroup(ctx, tx, s.db.dialect, p, key, dk.Seal(nil, []byte(ev.GroupID), groupAD(key)), traits, at); err != nil {
				return err
			}
		}
	}
	rowsOut := make([]traitRow, 0, len(latest))
	for _, r := range latest {
		rowsOut = append(rowsOut, r)
	}
	if err := upsertTraits(ctx, tx, s.db.dialect, p, rowsOut); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE profiles SET updated_at = $1 WHERE id = $2`, micros(time.Now()), p)
	return s.db.dialect.translate(err)
}
