package sqlstore

import (
	"context"
	"strings"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/consent"
	"github.com/custos-cdp/custos/internal/forward"
	"github.com/custos-cdp/custos/internal/vault"
)

// DeliverTopic is the outbox topic of a destination's queue.
func DeliverTopic(d cdp.DestinationID) string { return "deliver." + string(d) }

type deliveryRow struct {
	dest    cdp.DestinationID
	key     string
	ws      cdp.WorkspaceID
	profile cdp.ProfileID
	kind    cdp.DeliveryKind
	mid     string
	status  cdp.DeliveryStatus
	reason  string
	at      int64
}

type outboxRow struct {
	ws      cdp.WorkspaceID
	profile cdp.ProfileID
	topic   string
	payload []byte
	at      int64
}

// fanOut decides, for every destination of the workspace, whether the event
// and the consent changes it made go there; it queues what does (sealed
// under the person's key, in the outbox of this transaction) and records
// every outcome for the person's activity view.
func (a *applier) fanOut(ctx context.Context, ev *cdp.Event, p cdp.ProfileID, dk *vault.DataKey, changes []cdp.ConsentChange) error {
	dests, voc := a.env[ev.WorkspaceID].dests, a.env[ev.WorkspaceID].voc
	if len(dests) == 0 {
		return nil
	}
	ledger, err := a.ledger(ctx, p)
	if err != nil {
		return err
	}
	person := consent.Person{Current: consent.Current(ledger), Purposes: voc.Purposes}
	now := time.Now()
	for i := range dests {
		d := &dests[i]
		dec := forward.Decide(d, ev, person)
		a.count(d.ID, dec)
		if dec.Reason != "source_not_connected" {
			del := cdp.Delivery{DestinationID: d.ID, WorkspaceID: ev.WorkspaceID, Profile: p, Kind: cdp.DeliverEvent,
				Key: forward.DeliveryKey(d.ID, cdp.DeliverEvent, ev.SourceID, ev.MessageID, ""), MessageID: ev.MessageID, CreatedAt: now}
			if dec.Forward {
				m := forward.Minimise(&d.Minimisation, *ev)
				del.Event, del.Identities = &m, m.Identities
			}
			if err := a.queue(del, dk, dec); err != nil {
				return err
			}
		}
		for j := range changes {
			c := &changes[j]
			cdec := forward.DecideConsentChange(d, c, ev.SourceID, person)
			if !cdec.Forward {
				continue // not this destination's business: not recorded
			}
			del := cdp.Delivery{DestinationID: d.ID, WorkspaceID: ev.WorkspaceID, Profile: p, Kind: cdp.DeliverConsent,
				Key: forward.DeliveryKey(d.ID, cdp.DeliverConsent, ev.SourceID, string(c.Entry.ID), ""), MessageID: string(c.Entry.ID),
				Identities: forward.MinimiseIdentities(&d.Minimisation, ev.Identities), Consent: c, CreatedAt: now}
			if err := a.queue(del, dk, cdec); err != nil {
				return err
			}
		}
	}
	return nil
}

// count tallies a decision for the processor's metrics.
func (a *applier) count(d cdp.DestinationID, dec forward.Decision) {
	if a.res.Forwarding == nil {
		a.res.Forwarding = map[cdp.DestinationID]map[string]int{}
	}
	m := a.res.Forwarding[d]
	if m == nil {
		m = map[string]int{}
		a.res.Forwarding[d] = m
	}
	reason := dec.Reason
	if dec.Forward {
		reason = "forwarded"
	}
	m[reason]++
}

// queue records a decided delivery and, if it goes out, puts it in the
// outbox.
func (a *applier) queue(del cdp.Delivery, dk *vault.DataKey, dec forward.Decision) error {
	row := deliveryRow{dest: del.DestinationID, key: del.Key, ws: del.WorkspaceID, profile: del.Profile, kind: del.Kind,
		mid: del.MessageID, status: cdp.DeliveryPending, at: micros(del.CreatedAt)}
	if !dec.Forward {
		row.status, row.reason = cdp.DeliveryFiltered, dec.Reason
		if dec.Purpose != "" {
			row.reason += ":" + string(dec.Purpose)
		}
		a.deliveries = append(a.deliveries, row)
		return nil
	}
	b, err := forward.EncodeDelivery(&del)
	if err != nil {
		return err
	}
	topic := DeliverTopic(del.DestinationID)
	a.deliveries = append(a.deliveries, row)
	a.outbox = append(a.outbox, outboxRow{ws: del.WorkspaceID, profile: del.Profile, topic: topic, payload: dk.Seal(nil, b, outboxAD(topic)), at: row.at})
	return nil
}

// flushForwarding writes the buffered delivery records and outbox rows.
func (a *applier) flushForwarding(ctx context.Context) error {
	if err := insertDeliveries(ctx, a.tx, a.s.db.dialect, a.deliveries); err != nil {
		return err
	}
	a.deliveries = a.deliveries[:0]
	if err := insertOutboxRows(ctx, a.tx, a.s.db.dialect, a.outbox); err != nil {
		return err
	}
	a.outbox = a.outbox[:0]
	return nil
}

func insertDeliveries(ctx context.Context, q querier, d dialect, rows []deliveryRow) error {
	const cols = 10
	for chunk := range chunks(d, rows) {
		var b strings.Builder
		b.WriteString(`INSERT INTO deliveries (destination_id, delivery_key, workspace_id, profile_id, kind, message_id, status, reason, created_at, updated_at, attempts, last_error) VALUES `)
		args := make([]any, 0, cols*len(chunk))
		for i, r := range chunk {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(" + placeholders(cols*i+1, cols) + ", 0, '')")
			args = append(args, r.dest, r.key, r.ws, r.profile, string(r.kind), r.mid, string(r.status), r.reason, r.at, r.at)
		}
		b.WriteString(` ON CONFLICT (destination_id, delivery_key) DO NOTHING`)
		if _, err := q.ExecContext(ctx, b.String(), args...); err != nil {
			return d.translate(err)
		}
	}
	return nil
}

func insertOutboxRows(ctx context.Context, q querier, d dialect, rows []outboxRow) error {
	vals := make([][]any, len(rows))
	for i, r := range rows {
		vals[i] = []any{string(r.ws), string(r.profile), r.topic, r.payload, r.at}
	}
	return insertRows(ctx, q, d, "outbox", []string{"workspace_id", "profile_id", "topic", "payload", "created_at"}, vals)
}
