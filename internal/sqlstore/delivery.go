package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/consent"
	"github.com/custos-cdp/custos/internal/eventcodec"
	"github.com/custos-cdp/custos/internal/forward"
	"github.com/custos-cdp/custos/internal/vault"
)

// Deliveries is the router's side of the store: it opens queued
// deliveries, records their outcomes, keeps dead letters and replays.
type Deliveries struct{ p *Profiles }

// Deliveries returns the delivery store.
func (s *Profiles) Deliveries() *Deliveries { return &Deliveries{p: s} }

// Open decrypts a queued delivery with its person's key. NotFound when the
// key is gone: the person was erased, and the delivery must not go out.
func (s *Deliveries) Open(ctx context.Context, ws cdp.WorkspaceID, profile cdp.ProfileID, dest cdp.DestinationID, sealed []byte) (cdp.Delivery, error) {
	var dk *vault.DataKey
	if req, ok := strings.CutPrefix(string(profile), erasureProfilePrefix); ok {
		k, err := s.openErasureKey(ctx, ws, req)
		if err != nil {
			return cdp.Delivery{}, err
		}
		dk = k
	} else {
		keys, err := s.p.vault.Keys(ctx, ws)
		if err != nil {
			return cdp.Delivery{}, err
		}
		if dk, err = s.p.key(ctx, keys, profile); err != nil {
			return cdp.Delivery{}, err
		}
	}
	pt, err := dk.Open(sealed, outboxAD(DeliverTopic(dest)))
	if err != nil {
		return cdp.Delivery{}, cdp.Wrap(cdp.NotFound, "unreadable", err, "delivery cannot be decrypted")
	}
	return forward.DecodeDelivery(pt)
}

func (s *Deliveries) update(ctx context.Context, q string, dest cdp.DestinationID, keys []string, args ...any) error {
	db := s.p.db
	for start := 0; start < len(keys); start += rowsPerStatement {
		chunk := keys[start:min(start+rowsPerStatement, len(keys))]
		all := append([]any{}, args...)
		all = append(all, dest)
		for _, k := range chunk {
			all = append(all, k)
		}
		n := len(args)
		stmt := q + fmt.Sprintf(` WHERE destination_id = $%d AND delivery_key IN (%s)`, n+1, placeholders(n+2, len(chunk)))
		if _, err := db.wr().ExecContext(ctx, stmt, all...); err != nil {
			return db.dialect.translate(err)
		}
	}
	return nil
}

// MarkDelivered records that a destination accepted deliveries.
func (s *Deliveries) MarkDelivered(ctx context.Context, dest cdp.DestinationID, keys []string, attempts int, at time.Time) error {
	return s.update(ctx, `UPDATE deliveries SET status = $1, reason = '', attempts = $2, last_error = '', updated_at = $3, delivered_at = $3`,
		dest, keys, string(cdp.DeliveryDelivered), attempts, micros(at))
}

// MarkRetrying records a failed attempt that will be retried.
func (s *Deliveries) MarkRetrying(ctx context.Context, dest cdp.DestinationID, keys []string, attempts int, lastErr string, at time.Time) error {
	return s.update(ctx, `UPDATE deliveries SET status = $1, attempts = $2, last_error = $3, updated_at = $4`,
		dest, keys, string(cdp.DeliveryRetrying), attempts, lastErr, micros(at))
}

// MarkErased records deliveries dropped because their person was erased.
func (s *Deliveries) MarkErased(ctx context.Context, dest cdp.DestinationID, keys []string, at time.Time) error {
	return s.update(ctx, `UPDATE deliveries SET status = $1, reason = 'person_erased', updated_at = $2`,
		dest, keys, string(cdp.DeliveryFiltered), micros(at))
}

// AddDeadLetters keeps failed deliveries and marks them dead-lettered.
func (s *Deliveries) AddDeadLetters(ctx context.Context, dls []cdp.DeadLetter) error {
	db := s.p.db
	return db.tx(ctx, func(tx querier) error {
		for _, d := range dls {
			if d.ID == "" {
				d.ID = newDeadLetterID()
			}
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO dead_letters (id, destination_id, workspace_id, profile_id, delivery_key, kind, message_id, payload, last_error, attempts, first_attempt, created_at)
				 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
				d.ID, d.Destination, d.WorkspaceID, d.Profile, d.Key, string(d.Kind), d.MessageID, d.Sealed, d.LastError, d.Attempts,
				micros(d.FirstTry), micros(d.CreatedAt)); err != nil {
				return db.dialect.translate(err)
			}
			if _, err := tx.ExecContext(ctx,
				`UPDATE deliveries SET status = $1, reason = $2, attempts = $3, last_error = $2, updated_at = $4 WHERE destination_id = $5 AND delivery_key = $6`,
				string(cdp.DeliveryDeadLettered), d.LastError, d.Attempts, micros(d.CreatedAt), d.Destination, d.Key); err != nil {
				return db.dialect.translate(err)
			}
		}
		return nil
	})
}

func newDeadLetterID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "dl_" + hex.EncodeToString(b[:])
}

// DeadLetters lists a destination's dead letters, newest first, up to
// limit, after the cursor (DeadLetter.Cursor; empty: from the newest).
func (s *Deliveries) DeadLetters(ctx context.Context, ws cdp.WorkspaceID, dest cdp.DestinationID, before string, limit int) ([]cdp.DeadLetter, error) {
	db := s.p.db
	q := `SELECT id, destination_id, workspace_id, profile_id, delivery_key, kind, message_id, payload, last_error, attempts, first_attempt, created_at
		FROM dead_letters WHERE workspace_id = $1 AND destination_id = $2`
	args := []any{ws, dest}
	if before != "" {
		at, id, err := cdp.ParseDeadLetterCursor(before)
		if err != nil {
			return nil, err
		}
		q += ` AND (created_at < $3 OR (created_at = $3 AND id < $4))`
		args = append(args, at, id)
	}
	q += fmt.Sprintf(` ORDER BY created_at DESC, id DESC LIMIT $%d`, len(args)+1)
	args = append(args, limit)
	rows, err := db.rd().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, db.dialect.translate(err)
	}
	defer rows.Close()
	var out []cdp.DeadLetter
	for rows.Next() {
		var (
			d              cdp.DeadLetter
			first, created int64
			kind           string
		)
		if err := rows.Scan(&d.ID, &d.Destination, &d.WorkspaceID, &d.Profile, &d.Key, &kind, &d.MessageID, &d.Sealed, &d.LastError, &d.Attempts, &first, &created); err != nil {
			return nil, err
		}
		d.Kind, d.FirstTry, d.CreatedAt = cdp.DeliveryKind(kind), fromMicros(first), fromMicros(created)
		out = append(out, d)
	}
	return out, rows.Err()
}

// ReplayDeadLetters re-queues a destination's dead letters that match
// (all when match is nil), deciding again as of now: consent may have
// changed since, and a person erased since is gone for good. Each replayed
// dead letter leaves the dead-letter store.
func (s *Deliveries) ReplayDeadLetters(ctx context.Context, ws cdp.WorkspaceID, dest cdp.DestinationID, match func(cdp.DeadLetter) bool) (cdp.ReplayResult, error) {
	var res cdp.ReplayResult
	d, err := s.p.dests.Get(ctx, ws, dest)
	if err != nil {
		return res, err
	}
	st, err := s.p.settings(ctx, ws)
	if err != nil {
		return res, err
	}
	cursor := ""
	for {
		page, err := s.DeadLetters(ctx, ws, dest, cursor, 200)
		if err != nil {
			return res, err
		}
		if len(page) == 0 {
			return res, nil
		}
		for _, dl := range page {
			if match != nil && !match(dl) {
				continue
			}
			r, err := s.replayOne(ctx, st, &d, dl)
			if err != nil {
				return res, err
			}
			res.Queued, res.Filtered, res.Gone = res.Queued+r.Queued, res.Filtered+r.Filtered, res.Gone+r.Gone
		}
		cursor = page[len(page)-1].Cursor()
	}
}

func (s *Deliveries) replayOne(ctx context.Context, st *settings, d *cdp.Destination, dl cdp.DeadLetter) (cdp.ReplayResult, error) {
	var res cdp.ReplayResult
	db := s.p.db
	del, err := s.Open(ctx, dl.WorkspaceID, dl.Profile, dl.Destination, dl.Sealed)
	gone := cdp.IsKind(err, cdp.NotFound)
	if err != nil && !gone {
		return res, err
	}
	err = db.tx(ctx, func(tx querier) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM dead_letters WHERE id = $1`, dl.ID); err != nil {
			return db.dialect.translate(err)
		}
		if gone {
			res.Gone = 1
			return nil
		}
		queued, err := s.requeue(ctx, tx, st, d, del, "")
		if queued {
			res.Queued = 1
		} else {
			res.Filtered = 1
		}
		return err
	})
	return res, err
}

// requeue decides a delivery again as of now against the person's live
// profile and, if it may go, puts it back in the outbox under the live
// profile's key. replay, when set, gives the delivery a new idempotency key
// so the destination takes it again.
func (s *Deliveries) requeue(ctx context.Context, tx querier, st *settings, d *cdp.Destination, del cdp.Delivery, replay string) (bool, error) {
	db := s.p.db
	keys, voc := st.keys, st.voc
	live, err := s.p.liveProfile(ctx, tx, d.WorkspaceID, del.Profile)
	if err != nil {
		return false, err
	}
	ledger, err := loadLedger(ctx, tx, db.dialect, live)
	if err != nil {
		return false, err
	}
	person := consent.Person{Current: consent.Current(ledger), Purposes: voc.Purposes}
	var dec forward.Decision
	switch {
	case del.Event != nil:
		dec = forward.Decide(d, del.Event, person)
		if dec.Forward {
			m := forward.Minimise(&d.Minimisation, *del.Event)
			del.Event, del.Identities = &m, m.Identities
		}
	case del.Consent != nil:
		dec = forward.DecideConsentChange(d, del.Consent, "", person)
	default:
		dec = forward.Decision{Forward: d.Enabled, Reason: "paused"}
	}
	del.Profile, del.CreatedAt = live, time.Now()
	if replay != "" {
		del.Key = forward.DeliveryKey(d.ID, del.Kind, "", del.MessageID, replay)
	}
	status, reason := cdp.DeliveryPending, ""
	if !dec.Forward {
		status, reason = cdp.DeliveryFiltered, dec.Reason
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO deliveries (destination_id, delivery_key, workspace_id, profile_id, kind, message_id, status, reason, attempts, last_error, created_at, updated_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, '', $9, $9)
		 ON CONFLICT (destination_id, delivery_key) DO UPDATE SET status = excluded.status, reason = excluded.reason, attempts = 0, last_error = '', updated_at = excluded.updated_at`,
		d.ID, del.Key, d.WorkspaceID, live, string(del.Kind), del.MessageID, string(status), reason, micros(del.CreatedAt)); err != nil {
		return false, db.dialect.translate(err)
	}
	if !dec.Forward {
		return false, nil
	}
	dk, err := s.p.openKey(ctx, tx, keys, live)
	if err != nil {
		return false, err
	}
	b, err := forward.EncodeDelivery(&del)
	if err != nil {
		return false, err
	}
	topic := DeliverTopic(d.ID)
	return true, insertOutboxRows(ctx, tx, db.dialect, []outboxRow{{ws: d.WorkspaceID, profile: live, topic: topic, payload: dk.Seal(nil, b, outboxAD(topic)), at: micros(del.CreatedAt)}})
}

// ReplayFrom re-delivers to a destination every stored event of its
// workspace that arrived at or after since, deciding each again as of now
// (consent, filters, minimisation) and giving each a new idempotency key,
// tagged with replay, so the destination takes it again.
func (s *Deliveries) ReplayFrom(ctx context.Context, ws cdp.WorkspaceID, dest cdp.DestinationID, since time.Time, replay string) (cdp.ReplayResult, error) {
	var res cdp.ReplayResult
	d, err := s.p.dests.Get(ctx, ws, dest)
	if err != nil {
		return res, err
	}
	st, err := s.p.settings(ctx, ws)
	if err != nil {
		return res, err
	}
	keys := st.keys
	db := s.p.db
	after := int64(0)
	for {
		rows, err := db.rd().QueryContext(ctx,
			`SELECT seq, profile_id, source_id, message_id, payload FROM events WHERE workspace_id = $1 AND received_at >= $2 AND seq > $3 ORDER BY seq LIMIT 200`,
			ws, micros(since), after)
		if err != nil {
			return res, db.dialect.translate(err)
		}
		type row struct {
			seq         int64
			p, src, mid string
			payload     []byte
		}
		var page []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.seq, &r.p, &r.src, &r.mid, &r.payload); err != nil {
				rows.Close()
				return res, err
			}
			page = append(page, r)
		}
		rows.Close()
		if len(page) == 0 {
			return res, nil
		}
		err = db.tx(ctx, func(tx querier) error {
			for _, r := range page {
				dk, err := s.p.openKey(ctx, tx, keys, cdp.ProfileID(r.p))
				if err != nil {
					return err
				}
				pt, err := dk.Open(r.payload, eventAD(cdp.SourceID(r.src), r.mid))
				if err != nil {
					return err
				}
				ev, err := eventcodec.DecodeOne(pt)
				if err != nil {
					return err
				}
				del := cdp.Delivery{DestinationID: d.ID, WorkspaceID: ws, Profile: cdp.ProfileID(r.p), Kind: cdp.DeliverEvent,
					MessageID: ev.MessageID, Event: &ev}
				del.Key = forward.DeliveryKey(d.ID, cdp.DeliverEvent, ev.SourceID, ev.MessageID, replay)
				if dec := forward.Decide(&d, &ev, consent.Person{}); dec.Reason == "source_not_connected" {
					continue
				}
				queued, err := s.requeue(ctx, tx, st, &d, del, "")
				if err != nil {
					return err
				}
				if queued {
					res.Queued++
				} else {
					res.Filtered++
				}
			}
			return nil
		})
		if err != nil {
			return res, err
		}
		after = page[len(page)-1].seq
	}
}

// Records returns the delivery outcomes of a profile's events, by message
// id, for the activity view.
func (s *Deliveries) Records(ctx context.Context, ws cdp.WorkspaceID, profile cdp.ProfileID, messageIDs []string) (map[string][]cdp.DeliveryRecord, error) {
	out := map[string][]cdp.DeliveryRecord{}
	if len(messageIDs) == 0 {
		return out, nil
	}
	db := s.p.db
	// By message id, not profile: the records of events that came with a
	// merged profile still name that profile.
	args := []any{ws}
	for _, m := range messageIDs {
		args = append(args, m)
	}
	rows, err := db.rd().QueryContext(ctx,
		`SELECT destination_id, message_id, status, reason, attempts, last_error, updated_at, delivered_at FROM deliveries
		 WHERE workspace_id = $1 AND kind = 'event' AND message_id IN (`+placeholders(2, len(messageIDs))+`)`, args...)
	if err != nil {
		return nil, db.dialect.translate(err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			r         cdp.DeliveryRecord
			status    string
			updated   int64
			delivered sql.NullInt64
		)
		if err := rows.Scan(&r.DestinationID, &r.MessageID, &status, &r.Reason, &r.Attempts, &r.LastError, &updated, &delivered); err != nil {
			return nil, err
		}
		r.Status, r.Profile, r.UpdatedAt = cdp.DeliveryStatus(status), profile, fromMicros(updated)
		if delivered.Valid {
			r.DeliveredAt = fromMicros(delivered.Int64)
		}
		out[r.MessageID] = append(out[r.MessageID], r)
	}
	return out, rows.Err()
}

// openErasureKey opens a request's erasure key; NotFound once the request
// completed and the key was destroyed.
func (s *Deliveries) openErasureKey(ctx context.Context, ws cdp.WorkspaceID, requestID string) (*vault.DataKey, error) {
	var sealed []byte
	err := s.p.db.rd().QueryRowContext(ctx, `SELECT erase_key_sealed FROM dsr_requests WHERE workspace_id = $1 AND id = $2`, ws, requestID).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && sealed == nil) {
		return nil, cdp.Errorf(cdp.NotFound, "erasure key gone")
	}
	if err != nil {
		return nil, s.p.db.dialect.translate(err)
	}
	raw, err := s.p.vault.OpenWithRoot(sealed, []byte("custos/erase-key/"+string(ws)+"/"+requestID))
	if err != nil {
		return nil, err
	}
	return vault.NewDataKey(raw)
}

// DeliveryState returns where one delivery stands; NotFound if there is no
// record of it.
func (s *Deliveries) DeliveryState(ctx context.Context, dest cdp.DestinationID, key string) (cdp.DeliveryRecord, error) {
	db := s.p.db
	var (
		r         cdp.DeliveryRecord
		status    string
		updated   int64
		delivered sql.NullInt64
	)
	err := db.rd().QueryRowContext(ctx, `SELECT message_id, profile_id, status, reason, attempts, last_error, updated_at, delivered_at FROM deliveries
		WHERE destination_id = $1 AND delivery_key = $2`, dest, key).Scan(&r.MessageID, &r.Profile, &status, &r.Reason, &r.Attempts, &r.LastError, &updated, &delivered)
	if errors.Is(err, sql.ErrNoRows) {
		return r, cdp.Errorf(cdp.NotFound, "no such delivery")
	}
	if err != nil {
		return r, db.dialect.translate(err)
	}
	r.DestinationID, r.Status, r.UpdatedAt = dest, cdp.DeliveryStatus(status), fromMicros(updated)
	if delivered.Valid {
		r.DeliveredAt = fromMicros(delivered.Int64)
	}
	return r, nil
}

// erasureProfilePrefix marks outbox records of erasure notices: they are
// sealed under their request's erasure key, not a person's data key, since
// the person's key is destroyed by the erasure they announce.
const erasureProfilePrefix = "dsr:"

// QueueErasure puts an erasure notice for one destination in its queue,
// sealed under the request's erasure key (created on first use, destroyed
// when the request completes), and records the delivery. It returns the
// delivery's key.
func (s *Deliveries) QueueErasure(ctx context.Context, d cdp.Destination, requestID string, profile cdp.ProfileID, erasure cdp.Erasure, at time.Time) (string, error) {
	db := s.p.db
	key := forward.DeliveryKey(d.ID, cdp.DeliverErasure, "", string(profile), requestID)
	var out string
	err := db.tx(ctx, func(tx querier) error {
		ek, err := s.erasureKey(ctx, tx, d.WorkspaceID, requestID)
		if err != nil {
			return err
		}
		del := cdp.Delivery{DestinationID: d.ID, WorkspaceID: d.WorkspaceID, Profile: profile, Kind: cdp.DeliverErasure, Key: key,
			MessageID: requestID, Identities: forward.MinimiseIdentities(&d.Minimisation, erasure.Identities), Erasure: &erasure, CreatedAt: at}
		b, err := forward.EncodeDelivery(&del)
		if err != nil {
			return err
		}
		topic := DeliverTopic(d.ID)
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO deliveries (destination_id, delivery_key, workspace_id, profile_id, kind, message_id, status, reason, attempts, last_error, created_at, updated_at)
			 VALUES ($1, $2, $3, $4, 'erasure', $5, 'pending', '', 0, '', $6, $6) ON CONFLICT (destination_id, delivery_key) DO NOTHING`,
			d.ID, key, d.WorkspaceID, erasureProfilePrefix+requestID, requestID, micros(at)); err != nil {
			return db.dialect.translate(err)
		}
		out = key
		return insertOutboxRows(ctx, tx, db.dialect, []outboxRow{{ws: d.WorkspaceID, profile: cdp.ProfileID(erasureProfilePrefix + requestID),
			topic: topic, payload: ek.Seal(nil, b, outboxAD(topic)), at: micros(at)}})
	})
	return out, err
}

// erasureKey returns a request's erasure key, creating it on first use.
func (s *Deliveries) erasureKey(ctx context.Context, q querier, ws cdp.WorkspaceID, requestID string) (*vault.DataKey, error) {
	db := s.p.db
	var sealed []byte
	if err := q.QueryRowContext(ctx, `SELECT erase_key_sealed FROM dsr_requests WHERE workspace_id = $1 AND id = $2`, ws, requestID).Scan(&sealed); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, cdp.Errorf(cdp.NotFound, "no such request")
		}
		return nil, db.dialect.translate(err)
	}
	ad := []byte("custos/erase-key/" + string(ws) + "/" + requestID)
	if sealed == nil {
		raw := make([]byte, 32)
		_, _ = rand.Read(raw)
		var err error
		if sealed, err = s.p.vault.SealWithRoot(raw, ad); err != nil {
			return nil, err
		}
		if _, err := q.ExecContext(ctx, `UPDATE dsr_requests SET erase_key_sealed = $1 WHERE workspace_id = $2 AND id = $3`, sealed, ws, requestID); err != nil {
			return nil, db.dialect.translate(err)
		}
	}
	raw, err := s.p.vault.OpenWithRoot(sealed, ad)
	if err != nil {
		return nil, err
	}
	return vault.NewDataKey(raw)
}
