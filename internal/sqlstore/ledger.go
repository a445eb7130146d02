package sqlstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/consent"
	"github.com/custos-cdp/custos/internal/vault"
)

// The outbox topics.
const (
	TopicConsent = "consent"
)

func newEntryID() cdp.ConsentEntryID {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return cdp.ConsentEntryID("cns_" + hex.EncodeToString(b[:]))
}

// ledgerPII is the personal part of a ledger entry, sealed under the
// profile's data key.
type ledgerPII struct {
	Location   string `json:"location,omitempty"`
	HardwareID string `json:"hardware_id,omitempty"`
}

func ledgerAD(id cdp.ConsentEntryID) []byte { return []byte("custos/consent/" + string(id)) }

// ledger returns a profile's ledger (without personal data: deriving the
// state does not need it), cached for the transaction.
func (a *applier) ledger(ctx context.Context, p cdp.ProfileID) ([]cdp.ConsentEntry, error) {
	if l, ok := a.ledgers[p]; ok {
		return l, nil
	}
	l, err := loadLedger(ctx, a.tx, a.s.db.dialect, p)
	if err != nil {
		return nil, err
	}
	a.ledgers[p] = l
	return l, nil
}

func loadLedger(ctx context.Context, q querier, d dialect, p cdp.ProfileID) ([]cdp.ConsentEntry, error) {
	rows, err := q.QueryContext(ctx,
		`SELECT id, workspace_id, origin_profile_id, purpose, state, collected_at, received_at, source, source_name, document, message_id, merge_id
		 FROM consent_ledger WHERE profile_id = $1`, p)
	if err != nil {
		return nil, d.translate(err)
	}
	defer rows.Close()
	var out []cdp.ConsentEntry
	for rows.Next() {
		var (
			e                   cdp.ConsentEntry
			collected, received int64
		)
		if err := rows.Scan(&e.ID, &e.WorkspaceID, &e.Origin, &e.Purpose, &e.State, &collected, &received, &e.Source, &e.SourceName,
			&e.Document, &e.MessageID, &e.MergeID); err != nil {
			return nil, err
		}
		e.Profile, e.CollectedAt, e.ReceivedAt = p, fromMicros(collected), fromMicros(received)
		out = append(out, e)
	}
	return out, rows.Err()
}

// writesConsent says whether applying ev may append to its person's
// consent ledger.
func writesConsent(ev *cdp.Event) bool { return len(ev.Consent) > 0 || ev.GPC }

// applyConsent appends the consent an event carried (already mapped to
// purposes by the gateway) and, for a Sec-GPC request, the GPC opt-outs to
// the profile's ledger, and puts every change of current state in the
// outbox.
func (a *applier) applyConsent(ctx context.Context, ev *cdp.Event, p cdp.ProfileID, dk *vault.DataKey) error {
	if !writesConsent(ev) {
		return nil
	}
	if err := a.ensureExclusive(ctx, p); err != nil {
		return err
	}
	voc := a.env[ev.WorkspaceID].voc
	ledger, err := a.ledger(ctx, p)
	if err != nil {
		return err
	}
	source, sourceName := cdp.ConsentSourceOf(ev)
	var entries []cdp.ConsentEntry
	for _, s := range ev.Consent {
		purpose, ok := voc.Purposes[s.Purpose]
		if s.Purpose == "" || !ok || purpose.Retired {
			// The gateway reported it; a purpose retired since is not recorded.
			continue
		}
		state := cdp.Denied
		switch {
		case s.Granted:
			state = cdp.Granted
		case s.Withdrawn:
			state = cdp.Withdrawn
		}
		collected := s.CollectedAt
		if collected.IsZero() {
			collected = ev.Timestamp
		}
		name := sourceName
		if source == cdp.SourceSDK {
			name = string(s.Vocabulary)
		}
		entries = append(entries, cdp.ConsentEntry{
			ID: newEntryID(), WorkspaceID: ev.WorkspaceID, Profile: p, Origin: p, Purpose: s.Purpose, State: state,
			CollectedAt: collected, ReceivedAt: ev.ReceivedAt, Source: source, SourceName: name,
			Document: s.Document, Location: s.Location, HardwareID: s.HardwareID, MessageID: ev.MessageID,
		})
	}
	if ev.GPC {
		cur := consent.Current(append(ledger, entries...))
		for _, key := range []cdp.PurposeKey{cdp.PurposeSale, cdp.PurposeSharing} {
			if _, ok := voc.Purposes[key]; !ok {
				continue
			}
			// GPC is sticky: record it when the state does not already say
			// opted out, so repeated requests do not fill the ledger.
			if st := consent.StateOf(cur, key); st == cdp.Denied || st == cdp.Withdrawn {
				continue
			}
			entries = append(entries, cdp.ConsentEntry{
				ID: newEntryID(), WorkspaceID: ev.WorkspaceID, Profile: p, Origin: p, Purpose: key, State: cdp.Denied,
				CollectedAt: ev.Timestamp, ReceivedAt: ev.ReceivedAt, Source: cdp.SourceGPC, SourceName: "Sec-GPC", MessageID: ev.MessageID,
			})
		}
	}
	return a.appendLedger(ctx, p, dk, entries)
}

// appendLedger writes entries to a profile's ledger and the changes they
// make to the outbox.
func (a *applier) appendLedger(ctx context.Context, p cdp.ProfileID, dk *vault.DataKey, entries []cdp.ConsentEntry) error {
	ledger, err := a.ledger(ctx, p)
	if err != nil {
		return err
	}
	for _, e := range entries {
		old, nw, changed := consent.Change(consent.Current(ledger), e)
		if err := insertLedgerEntry(ctx, a.tx, a.s.db.dialect, e, dk); err != nil {
			return err
		}
		ledger = append(ledger, e)
		a.res.ConsentEntries++
		if changed {
			c := cdp.ConsentChange{Entry: e, Old: old, New: nw}
			a.outbox = append(a.outbox, outboxRow{ws: e.WorkspaceID, profile: p, topic: TopicConsent,
				payload: dk.Seal(nil, consentChangeJSON(c), outboxAD(TopicConsent)), at: micros(e.ReceivedAt)})
			a.changes = append(a.changes, c)
			a.res.ConsentChanges++
		}
	}
	a.ledgers[p] = ledger
	return nil
}

func insertLedgerEntry(ctx context.Context, q querier, d dialect, e cdp.ConsentEntry, dk *vault.DataKey) error {
	var pii []byte
	if e.Location != "" || e.HardwareID != "" {
		b, err := json.Marshal(ledgerPII{Location: e.Location, HardwareID: e.HardwareID})
		if err != nil {
			return err
		}
		pii = dk.Seal(nil, b, ledgerAD(e.ID))
	}
	_, err := q.ExecContext(ctx,
		`INSERT INTO consent_ledger (id, workspace_id, profile_id, origin_profile_id, purpose, state, collected_at, received_at, source, source_name, document, pii, message_id, merge_id)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		e.ID, e.WorkspaceID, e.Profile, e.Origin, e.Purpose, string(e.State), micros(e.CollectedAt), micros(e.ReceivedAt),
		string(e.Source), e.SourceName, e.Document, pii, e.MessageID, e.MergeID)
	return d.translate(err)
}

// ConsentChangeRecord is the outbox form of a consent change.
type ConsentChangeRecord struct {
	EntryID     string    `json:"entry_id"`
	WorkspaceID string    `json:"workspace_id"`
	ProfileID   string    `json:"profile_id"`
	Purpose     string    `json:"purpose"`
	Old         string    `json:"old_state"`
	New         string    `json:"new_state"`
	CollectedAt time.Time `json:"collected_at"`
	ReceivedAt  time.Time `json:"received_at"`
	Source      string    `json:"source"`
	SourceName  string    `json:"source_name,omitempty"`
	Document    string    `json:"document,omitempty"`
	MessageID   string    `json:"message_id,omitempty"`
}

func consentChangeJSON(c cdp.ConsentChange) []byte {
	b, _ := json.Marshal(ConsentChangeRecord{
		EntryID: string(c.Entry.ID), WorkspaceID: string(c.Entry.WorkspaceID), ProfileID: string(c.Entry.Profile),
		Purpose: string(c.Entry.Purpose), Old: string(c.Old), New: string(c.New),
		CollectedAt: c.Entry.CollectedAt, ReceivedAt: c.Entry.ReceivedAt, Source: string(c.Entry.Source),
		SourceName: c.Entry.SourceName, Document: c.Entry.Document, MessageID: c.Entry.MessageID,
	})
	return b
}

func outboxAD(topic string) []byte { return []byte("custos/outbox/" + topic) }

// ConsentHistory returns a live profile's whole ledger, oldest choice
// first, with its personal data decrypted. NotFound if the workspace has
// no such live profile.
func (s *Profiles) ConsentHistory(ctx context.Context, ws cdp.WorkspaceID, id cdp.ProfileID) ([]cdp.ConsentEntry, error) {
	keys, err := s.vault.Keys(ctx, ws)
	if err != nil {
		return nil, err
	}
	dk, err := s.key(ctx, keys, id)
	if err != nil {
		if cdp.IsKind(err, cdp.NotFound) {
			return nil, cdp.Errorf(cdp.NotFound, "profile not found")
		}
		return nil, err
	}
	rows, err := s.db.rd().QueryContext(ctx,
		`SELECT id, workspace_id, origin_profile_id, purpose, state, collected_at, received_at, source, source_name, document, pii, message_id, merge_id
		 FROM consent_ledger WHERE profile_id = $1 AND workspace_id = $2 ORDER BY collected_at, received_at, id`, id, ws)
	if err != nil {
		return nil, s.db.dialect.translate(err)
	}
	defer rows.Close()
	var out []cdp.ConsentEntry
	for rows.Next() {
		var (
			e                   cdp.ConsentEntry
			collected, received int64
			pii                 []byte
		)
		if err := rows.Scan(&e.ID, &e.WorkspaceID, &e.Origin, &e.Purpose, &e.State, &collected, &received, &e.Source, &e.SourceName,
			&e.Document, &pii, &e.MessageID, &e.MergeID); err != nil {
			return nil, err
		}
		e.Profile, e.CollectedAt, e.ReceivedAt = id, fromMicros(collected), fromMicros(received)
		if pii != nil {
			pt, err := dk.Open(pii, ledgerAD(e.ID))
			if err != nil {
				return nil, fmt.Errorf("consent entry %s: %w", e.ID, err)
			}
			var x ledgerPII
			if err := json.Unmarshal(pt, &x); err != nil {
				return nil, err
			}
			e.Location, e.HardwareID = x.Location, x.HardwareID
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// ConsentEntry returns one ledger entry of a live profile, decrypted.
// NotFound if the profile has no such entry.
func (s *Profiles) ConsentEntry(ctx context.Context, ws cdp.WorkspaceID, id cdp.ProfileID, entry cdp.ConsentEntryID) (cdp.ConsentEntry, error) {
	all, err := s.ConsentHistory(ctx, ws, id)
	if err != nil {
		return cdp.ConsentEntry{}, err
	}
	for _, e := range all {
		if e.ID == entry {
			return e, nil
		}
	}
	return cdp.ConsentEntry{}, cdp.Errorf(cdp.NotFound, "consent entry not found")
}

// moveLedger moves from's ledger entries (all, or those keep accepts) to
// to, re-sealing their personal data, and returns what moved.
func (m mover) ledger(ctx context.Context, from, to cdp.ProfileID, fk, tk *vault.DataKey, keep func(cdp.ConsentEntry) bool) ([]cdp.ConsentEntry, error) {
	entries, err := loadLedger(ctx, m.q, m.d, from)
	if err != nil {
		return nil, err
	}
	var moved []cdp.ConsentEntry
	for _, e := range entries {
		if keep != nil && !keep(e) {
			continue
		}
		var pii []byte
		if err := m.q.QueryRowContext(ctx, `SELECT pii FROM consent_ledger WHERE id = $1`, e.ID).Scan(&pii); err != nil {
			return nil, m.d.translate(err)
		}
		if pii != nil {
			pt, err := fk.Open(pii, ledgerAD(e.ID))
			if err != nil {
				return nil, err
			}
			pii = tk.Seal(nil, pt, ledgerAD(e.ID))
		}
		if _, err := m.q.ExecContext(ctx, `UPDATE consent_ledger SET profile_id = $1, pii = $2 WHERE id = $3`, to, pii, e.ID); err != nil {
			return nil, m.d.translate(err)
		}
		e.Profile = to
		moved = append(moved, e)
	}
	return moved, nil
}
