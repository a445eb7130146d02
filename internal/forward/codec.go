package forward

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/eventcodec"
)

// A queued delivery is JSON, sealed under the person's data key by the
// store before it leaves the database. The event inside uses eventcodec.

type deliveryRecord struct {
	Destination string          `json:"dest"`
	Workspace   string          `json:"ws"`
	Profile     string          `json:"profile"`
	Kind        string          `json:"kind"`
	Key         string          `json:"key"`
	MessageID   string          `json:"mid"`
	Identities  []identity      `json:"ids,omitempty"`
	Event       json.RawMessage `json:"event,omitempty"`
	Consent     *consentRecord  `json:"consent,omitempty"`
	Erasure     *erasureRecord  `json:"erasure,omitempty"`
	CreatedAt   time.Time       `json:"at"`
}

type identity struct {
	Type  string `json:"t"`
	Value string `json:"v"`
}

type consentRecord struct {
	Entry       string    `json:"entry"`
	Purpose     string    `json:"purpose"`
	Old         string    `json:"old"`
	New         string    `json:"new"`
	CollectedAt time.Time `json:"collected_at"`
	ReceivedAt  time.Time `json:"received_at"`
	Source      string    `json:"source"`
	SourceName  string    `json:"source_name,omitempty"`
	Document    string    `json:"document,omitempty"`
	MessageID   string    `json:"mid,omitempty"`
}

type erasureRecord struct {
	RequestID  string     `json:"request"`
	Regulation string     `json:"regulation,omitempty"`
	Identities []identity `json:"ids"`
}

func toIdentities(ids []cdp.Identity) []identity {
	out := make([]identity, len(ids))
	for i, id := range ids {
		out[i] = identity{Type: string(id.Type), Value: id.Value}
	}
	return out
}

func fromIdentities(ids []identity) []cdp.Identity {
	out := make([]cdp.Identity, len(ids))
	for i, id := range ids {
		out[i] = cdp.Identity{Type: cdp.IdentityType(id.Type), Value: id.Value}
	}
	return out
}

// EncodeDelivery is the queued form of a delivery.
func EncodeDelivery(d *cdp.Delivery) ([]byte, error) {
	r := deliveryRecord{Destination: string(d.DestinationID), Workspace: string(d.WorkspaceID), Profile: string(d.Profile),
		Kind: string(d.Kind), Key: d.Key, MessageID: d.MessageID, Identities: toIdentities(d.Identities), CreatedAt: d.CreatedAt}
	if d.Event != nil {
		b, err := eventcodec.Append(nil, d.Event)
		if err != nil {
			return nil, err
		}
		r.Event = json.RawMessage(b[:len(b)-1]) // without the line's newline
	}
	if c := d.Consent; c != nil {
		r.Consent = &consentRecord{Entry: string(c.Entry.ID), Purpose: string(c.Entry.Purpose), Old: string(c.Old), New: string(c.New),
			CollectedAt: c.Entry.CollectedAt, ReceivedAt: c.Entry.ReceivedAt, Source: string(c.Entry.Source),
			SourceName: c.Entry.SourceName, Document: c.Entry.Document, MessageID: c.Entry.MessageID}
	}
	if e := d.Erasure; e != nil {
		r.Erasure = &erasureRecord{RequestID: e.RequestID, Regulation: e.Regulation, Identities: toIdentities(e.Identities)}
	}
	return json.Marshal(r)
}

// DecodeDelivery reads what EncodeDelivery wrote.
func DecodeDelivery(b []byte) (cdp.Delivery, error) {
	var r deliveryRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return cdp.Delivery{}, fmt.Errorf("decode delivery: %w", err)
	}
	d := cdp.Delivery{DestinationID: cdp.DestinationID(r.Destination), WorkspaceID: cdp.WorkspaceID(r.Workspace),
		Profile: cdp.ProfileID(r.Profile), Kind: cdp.DeliveryKind(r.Kind), Key: r.Key, MessageID: r.MessageID,
		Identities: fromIdentities(r.Identities), CreatedAt: r.CreatedAt}
	if len(r.Event) > 0 {
		ev, err := eventcodec.DecodeOne(r.Event)
		if err != nil {
			return d, err
		}
		d.Event = &ev
	}
	if c := r.Consent; c != nil {
		d.Consent = &cdp.ConsentChange{Old: cdp.ConsentState(c.Old), New: cdp.ConsentState(c.New), Entry: cdp.ConsentEntry{
			ID: cdp.ConsentEntryID(c.Entry), WorkspaceID: d.WorkspaceID, Profile: d.Profile, Purpose: cdp.PurposeKey(c.Purpose),
			State: cdp.ConsentState(c.New), CollectedAt: c.CollectedAt, ReceivedAt: c.ReceivedAt, Source: cdp.ConsentSource(c.Source),
			SourceName: c.SourceName, Document: c.Document, MessageID: c.MessageID}}
	}
	if e := r.Erasure; e != nil {
		d.Erasure = &cdp.Erasure{RequestID: e.RequestID, Regulation: e.Regulation, Identities: fromIdentities(e.Identities)}
	}
	return d, nil
}
