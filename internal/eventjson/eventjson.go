// Package eventjson is the public JSON form of Custos events and consent
// changes: what the admin API shows and what webhook and raw destinations
// receive. One shape everywhere, documented in the OpenAPI document.
package eventjson

import (
	"encoding/json"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
)

// Event is an event as Custos shows it outside.
type Event struct {
	MessageID  string          `json:"message_id"`
	ProfileID  string          `json:"profile_id,omitempty"`
	SourceID   string          `json:"source_id"`
	Type       string          `json:"type"`
	Event      string          `json:"event,omitempty"`
	Identities []Identity      `json:"identities"`
	Properties json.RawMessage `json:"properties,omitempty"`
	Traits     json.RawMessage `json:"traits,omitempty"`
	Context    json.RawMessage `json:"context,omitempty"`
	GroupID    string          `json:"group_id,omitempty"`
	PreviousID string          `json:"previous_id,omitempty"`
	IP         string          `json:"ip,omitempty"`
	Timestamp  time.Time       `json:"timestamp"`
	ReceivedAt time.Time       `json:"received_at"`
}

// Identity is one identity.
type Identity struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// FromEvent converts an envelope.
func FromEvent(ev *cdp.Event, profile cdp.ProfileID) Event {
	out := Event{
		MessageID: ev.MessageID, ProfileID: string(profile), SourceID: string(ev.SourceID), Type: string(ev.Type), Event: ev.Name,
		Identities: make([]Identity, len(ev.Identities)),
		Properties: nonEmpty(ev.Properties), Traits: nonEmpty(ev.Traits), Context: nonEmpty(ev.Context),
		GroupID: ev.GroupID, PreviousID: ev.PreviousID, IP: ev.IP, Timestamp: ev.Timestamp, ReceivedAt: ev.ReceivedAt,
	}
	for i, id := range ev.Identities {
		out.Identities[i] = Identity{Type: string(id.Type), Value: id.Value}
	}
	return out
}

func nonEmpty(m json.RawMessage) json.RawMessage {
	if len(m) == 0 || string(m) == "null" {
		return nil
	}
	return m
}

// RawEvent is the full envelope, for raw-batch destinations (data lakes,
// queues): everything Event has, plus the wire format, the client's own
// clocks, its integrations switches and the consent it carried.
type RawEvent struct {
	Event
	Format            string          `json:"format"`
	OriginalTimestamp *time.Time      `json:"original_timestamp,omitempty"`
	SentAt            *time.Time      `json:"sent_at,omitempty"`
	Integrations      json.RawMessage `json:"integrations,omitempty"`
	DeletedTraits     []string        `json:"deleted_traits,omitempty"`
	GPC               bool            `json:"gpc,omitempty"`
	Consent           []Signal        `json:"consent,omitempty"`
}

// Signal is a consent choice an event carried, as mapped to a purpose.
type Signal struct {
	Vocabulary  string     `json:"vocabulary"`
	Key         string     `json:"key"`
	Purpose     string     `json:"purpose,omitempty"`
	Granted     bool       `json:"granted"`
	Withdrawn   bool       `json:"withdrawn,omitempty"`
	CollectedAt *time.Time `json:"collected_at,omitempty"`
	Document    string     `json:"document,omitempty"`
}

// FromEventRaw converts an envelope to its full form.
func FromEventRaw(ev *cdp.Event, profile cdp.ProfileID) RawEvent {
	r := RawEvent{Event: FromEvent(ev, profile), Format: string(ev.Format), Integrations: nonEmpty(ev.Integrations),
		DeletedTraits: ev.DeletedTraits, GPC: ev.GPC}
	if !ev.OriginalTimestamp.IsZero() {
		t := ev.OriginalTimestamp
		r.OriginalTimestamp = &t
	}
	if !ev.SentAt.IsZero() {
		t := ev.SentAt
		r.SentAt = &t
	}
	for _, s := range ev.Consent {
		sig := Signal{Vocabulary: string(s.Vocabulary), Key: s.Key, Purpose: string(s.Purpose), Granted: s.Granted, Withdrawn: s.Withdrawn, Document: s.Document}
		if s.Vocabulary == cdp.ConsentTCF || s.Vocabulary == cdp.ConsentGPP {
			sig.Key = "" // the IAB string itself stays out: it is the client's, not a name
		}
		if !s.CollectedAt.IsZero() {
			t := s.CollectedAt
			sig.CollectedAt = &t
		}
		r.Consent = append(r.Consent, sig)
	}
	return r
}

// ConsentChange is a change of a person's consent for one purpose.
type ConsentChange struct {
	EntryID     string    `json:"entry_id"`
	ProfileID   string    `json:"profile_id"`
	Purpose     string    `json:"purpose"`
	OldState    string    `json:"old_state"`
	NewState    string    `json:"new_state"`
	CollectedAt time.Time `json:"collected_at"`
	ReceivedAt  time.Time `json:"received_at"`
	Source      string    `json:"source"`
	SourceName  string    `json:"source_name,omitempty"`
	Document    string    `json:"document,omitempty"`
	MessageID   string    `json:"message_id,omitempty"`
}

// FromConsentChange converts a change.
func FromConsentChange(c *cdp.ConsentChange) ConsentChange {
	return ConsentChange{
		EntryID: string(c.Entry.ID), ProfileID: string(c.Entry.Profile), Purpose: string(c.Entry.Purpose),
		OldState: string(c.Old), NewState: string(c.New), CollectedAt: c.Entry.CollectedAt, ReceivedAt: c.Entry.ReceivedAt,
		Source: string(c.Entry.Source), SourceName: c.Entry.SourceName, Document: c.Entry.Document, MessageID: c.Entry.MessageID,
	}
}

// Erasure asks a receiver to delete a person.
type Erasure struct {
	RequestID  string     `json:"request_id"`
	ProfileID  string     `json:"profile_id"`
	Regulation string     `json:"regulation,omitempty"`
	Identities []Identity `json:"identities"`
}

// FromErasure converts an erasure.
func FromErasure(e *cdp.Erasure, profile cdp.ProfileID) Erasure {
	out := Erasure{RequestID: e.RequestID, ProfileID: string(profile), Regulation: e.Regulation, Identities: make([]Identity, len(e.Identities))}
	for i, id := range e.Identities {
		out.Identities[i] = Identity{Type: string(id.Type), Value: id.Value}
	}
	return out
}

// Delivery is one item of a batch a webhook or raw destination receives.
// Exactly one of Event (RawEvent for raw destinations), Consent and Erasure
// is set, by Kind.
type Delivery struct {
	Kind           string         `json:"kind"` // "event", "consent", "erasure"
	IdempotencyKey string         `json:"idempotency_key"`
	ProfileID      string         `json:"profile_id"`
	Identities     []Identity     `json:"identities,omitempty"`
	Event          *Event         `json:"event,omitempty"`
	RawEvent       *RawEvent      `json:"raw_event,omitempty"`
	Consent        *ConsentChange `json:"consent,omitempty"`
	Erasure        *Erasure       `json:"erasure,omitempty"`
}

// FromDelivery converts a delivery; raw chooses the full envelope.
func FromDelivery(d *cdp.Delivery, raw bool) Delivery {
	out := Delivery{Kind: string(d.Kind), IdempotencyKey: d.Key, ProfileID: string(d.Profile)}
	for _, id := range d.Identities {
		out.Identities = append(out.Identities, Identity{Type: string(id.Type), Value: id.Value})
	}
	switch {
	case d.Event != nil && raw:
		e := FromEventRaw(d.Event, d.Profile)
		out.RawEvent = &e
	case d.Event != nil:
		e := FromEvent(d.Event, d.Profile)
		out.Event = &e
	case d.Consent != nil:
		c := FromConsentChange(d.Consent)
		out.Consent = &c
	case d.Erasure != nil:
		e := FromErasure(d.Erasure, d.Profile)
		out.Erasure = &e
	}
	return out
}
