package segment

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/forward"
)

// Message is one message of the Segment tracking spec, as sent.
type Message struct {
	Type         string          `json:"type"`
	MessageID    string          `json:"messageId"`
	UserID       string          `json:"userId,omitempty"`
	AnonymousID  string          `json:"anonymousId,omitempty"`
	Event        string          `json:"event,omitempty"`
	Name         string          `json:"name,omitempty"`
	Properties   json.RawMessage `json:"properties,omitempty"`
	Traits       json.RawMessage `json:"traits,omitempty"`
	GroupID      string          `json:"groupId,omitempty"`
	PreviousID   string          `json:"previousId,omitempty"`
	Context      json.RawMessage `json:"context,omitempty"`
	Integrations json.RawMessage `json:"integrations,omitempty"`
	Timestamp    string          `json:"timestamp,omitempty"`
}

// ConsentEvent is the track event name of a consent change.
const ConsentEvent = "Consent Updated"

// ConsentProperties are the properties of a consent change's message.
type ConsentProperties struct {
	Purpose     string `json:"purpose"`
	OldState    string `json:"old_state"`
	NewState    string `json:"new_state"`
	EntryID     string `json:"entry_id"`
	Source      string `json:"source"`
	Document    string `json:"document,omitempty"`
	CollectedAt string `json:"collected_at"`
}

func timestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// message converts a delivery; ok is false for deliveries the tracking
// spec cannot carry (erasures). A malformed delivery is a permanent error
// naming only its key or message id.
func message(d *cdp.Delivery) (m Message, ok bool, err error) {
	switch {
	case d.Kind == cdp.DeliverErasure:
		return Message{}, false, nil
	case d.Kind == cdp.DeliverEvent && d.Event != nil:
		m, err = eventMessage(d)
		return m, err == nil, err
	case d.Kind == cdp.DeliverConsent && d.Consent != nil:
		m, err = consentMessage(d)
		return m, err == nil, err
	}
	return Message{}, false, forward.Permanent(fmt.Sprintf("delivery %s: kind %q without its item", d.Key, d.Kind), nil)
}

func eventMessage(d *cdp.Delivery) (Message, error) {
	ev := d.Event
	m := Message{Type: string(ev.Type), MessageID: ev.MessageID, Integrations: object(ev.Integrations), Timestamp: timestamp(ev.Timestamp)}
	if m.MessageID == "" {
		m.MessageID = d.Key
	}
	m.UserID, m.AnonymousID = ids(ev.Identities)
	if m.UserID == "" && m.AnonymousID == "" {
		m.UserID, m.AnonymousID = ids(d.Identities)
	}
	if m.UserID == "" && m.AnonymousID == "" {
		m.AnonymousID = string(d.Profile)
	}
	switch ev.Type {
	case cdp.Identify:
		m.Traits = object(ev.Traits)
	case cdp.Track:
		if ev.Name == "" {
			return Message{}, forward.Permanent(fmt.Sprintf("message %s: a track needs an event name", m.MessageID), nil)
		}
		m.Event, m.Properties = ev.Name, object(ev.Properties)
	case cdp.Page, cdp.Screen:
		m.Name, m.Properties = ev.Name, object(ev.Properties)
	case cdp.Group:
		m.GroupID, m.Traits = ev.GroupID, object(ev.Traits)
	case cdp.Alias:
		m.PreviousID = ev.PreviousID
	default:
		return Message{}, forward.Permanent(fmt.Sprintf("message %s: unknown event type", m.MessageID), nil)
	}
	ctx, err := withIP(object(ev.Context), ev.IP)
	if err != nil {
		return Message{}, forward.Permanent(fmt.Sprintf("message %s: the context is not a JSON object", m.MessageID), err)
	}
	m.Context = ctx
	return m, nil
}

// ids returns the first user_id and anonymous_id of ids.
func ids(ids []cdp.Identity) (user, anon string) {
	for _, id := range ids {
		switch {
		case id.Type == cdp.UserID && user == "":
			user = id.Value
		case id.Type == cdp.AnonymousID && anon == "":
			anon = id.Value
		}
	}
	return user, anon
}

// object returns raw unless it is empty or JSON null.
func object(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	return raw
}

// withIP sets context.ip to ip when ip is known and the context has none.
func withIP(ctx json.RawMessage, ip string) (json.RawMessage, error) {
	if ip == "" {
		return ctx, nil
	}
	obj := map[string]json.RawMessage{}
	if ctx != nil {
		if err := json.Unmarshal(ctx, &obj); err != nil {
			return nil, err
		}
		if obj == nil {
			obj = map[string]json.RawMessage{}
		}
	}
	if _, ok := obj["ip"]; ok {
		return ctx, nil
	}
	obj["ip"], _ = json.Marshal(ip)
	return json.Marshal(obj)
}

func consentMessage(d *cdp.Delivery) (Message, error) {
	c := d.Consent
	props, err := json.Marshal(ConsentProperties{
		Purpose: string(c.Entry.Purpose), OldState: string(c.Old), NewState: string(c.New), EntryID: string(c.Entry.ID),
		Source: string(c.Entry.Source), Document: c.Entry.Document, CollectedAt: timestamp(c.Entry.CollectedAt),
	})
	if err != nil {
		return Message{}, forward.Permanent(fmt.Sprintf("delivery %s: encoding the consent change failed", d.Key), err)
	}
	m := Message{Type: string(cdp.Track), Event: ConsentEvent, MessageID: d.Key, Properties: props, Timestamp: timestamp(c.Entry.CollectedAt)}
	m.UserID, m.AnonymousID = ids(d.Identities)
	if m.UserID == "" && m.AnonymousID == "" {
		m.AnonymousID = string(d.Profile)
	}
	return m, nil
}
