// Package deliverytest builds the batches the destination tests send: one
// delivery of every event type, a consent change and an erasure, with
// fixed times so that wire formats can be pinned in golden files.
package deliverytest

import (
	"encoding/json"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
)

// T0 is the time the fixtures' events happened.
var T0 = time.Date(2026, 11, 28, 20, 55, 32, 123456789, time.UTC)

// The fixtures' destination and people.
const (
	Destination cdp.DestinationID = "dst_test"
	Workspace   cdp.WorkspaceID   = "ws_test"
	Alice       cdp.ProfileID     = "prf_alice"
	Bob         cdp.ProfileID     = "prf_bob"
	Email                         = "alice@example.com" // personal data that must never reach an error message
)

// AliceIdentities are Alice's identities as a destination may see them.
var AliceIdentities = []cdp.Identity{
	{Type: cdp.UserID, Value: "u-1"},
	{Type: cdp.AnonymousID, Value: "anon-1"},
	{Type: cdp.Email, Value: Email},
}

// Event returns a delivery of ev for profile, keyed by key.
func Event(key string, profile cdp.ProfileID, ids []cdp.Identity, ev cdp.Event) cdp.Delivery {
	if ev.WorkspaceID == "" {
		ev.WorkspaceID = Workspace
	}
	if ev.SourceID == "" {
		ev.SourceID = "src_web"
	}
	if ev.Format == "" {
		ev.Format = cdp.FormatSegment
	}
	if ev.ReceivedAt.IsZero() {
		ev.ReceivedAt = ev.Timestamp.Add(time.Second)
	}
	return cdp.Delivery{DestinationID: Destination, WorkspaceID: Workspace, Profile: profile, Kind: cdp.DeliverEvent,
		Key: key, MessageID: ev.MessageID, Identities: ids, Event: &ev, CreatedAt: ev.ReceivedAt}
}

// Consent returns a delivery of a change of profile's consent for purpose.
func Consent(key string, profile cdp.ProfileID, ids []cdp.Identity, entry cdp.ConsentEntryID, purpose cdp.PurposeKey, from, to cdp.ConsentState, at time.Time) cdp.Delivery {
	c := cdp.ConsentChange{Old: from, New: to, Entry: cdp.ConsentEntry{ID: entry, WorkspaceID: Workspace, Profile: profile, Origin: profile,
		Purpose: purpose, State: to, CollectedAt: at, ReceivedAt: at.Add(2 * time.Second), Source: cdp.SourceServer,
		SourceName: "tok_1", Document: "privacy-v3"}}
	return cdp.Delivery{DestinationID: Destination, WorkspaceID: Workspace, Profile: profile, Kind: cdp.DeliverConsent,
		Key: key, Identities: ids, Consent: &c, CreatedAt: c.Entry.ReceivedAt}
}

// Erasure returns a delivery of profile's erasure.
func Erasure(key string, profile cdp.ProfileID, ids []cdp.Identity) cdp.Delivery {
	return cdp.Delivery{DestinationID: Destination, WorkspaceID: Workspace, Profile: profile, Kind: cdp.DeliverErasure,
		Key: key, Identities: ids, Erasure: &cdp.Erasure{RequestID: "dsr_1", Identities: ids, Regulation: "gdpr"}, CreatedAt: T0}
}

// Batch is Alice's life in one batch: identify, track, page, screen,
// group and alias events, a consent change and, last, her erasure.
func Batch() []cdp.Delivery {
	user := cdp.Identity{Type: cdp.UserID, Value: "u-1"}
	anon := cdp.Identity{Type: cdp.AnonymousID, Value: "anon-1"}
	return []cdp.Delivery{
		Event("k01", Alice, AliceIdentities, cdp.Event{MessageID: "msg-identify", Type: cdp.Identify,
			Identities: []cdp.Identity{user, anon, {Type: cdp.Email, Value: Email}},
			Traits:     raw(`{"email":"` + Email + `","name":"Alice","plan":"pro"}`),
			Context:    raw(`{"library":{"name":"analytics.js","version":"5.0.0"},"locale":"fr-FR"}`),
			IP:         "203.0.113.9", Integrations: raw(`{"All":true,"Mixpanel":false}`),
			Timestamp: T0, OriginalTimestamp: T0.Add(-time.Second), SentAt: T0}),
		Event("k02", Alice, AliceIdentities, cdp.Event{MessageID: "msg-track", Type: cdp.Track, Name: "Order Completed",
			Identities: []cdp.Identity{user, anon},
			Properties: raw(`{"currency":"EUR","total":42.5}`),
			Context:    raw(`{"ip":"198.51.100.7","locale":"fr-FR"}`),
			IP:         "203.0.113.9", Timestamp: T0.Add(time.Minute)}),
		Event("k03", Alice, AliceIdentities, cdp.Event{MessageID: "msg-page", Type: cdp.Page, Name: "Pricing",
			Identities: []cdp.Identity{anon},
			Properties: raw(`{"path":"/pricing","title":"Pricing"}`),
			Timestamp:  T0.Add(2 * time.Minute)}),
		Event("k04", Alice, AliceIdentities, cdp.Event{MessageID: "msg-screen", Type: cdp.Screen, Name: "Home",
			Format: cdp.FormatMParticle, Properties: raw(`{"tab":"feed"}`), Timestamp: T0.Add(3 * time.Minute)}),
		Event("k05", Alice, AliceIdentities, cdp.Event{MessageID: "msg-group", Type: cdp.Group, GroupID: "acme",
			Identities: []cdp.Identity{user},
			Traits:     raw(`{"employees":100,"name":"Acme Inc"}`),
			Timestamp:  T0.Add(4 * time.Minute)}),
		Event("k06", Alice, AliceIdentities, cdp.Event{MessageID: "msg-alias", Type: cdp.Alias, PreviousID: "anon-1",
			Identities: []cdp.Identity{user},
			Timestamp:  T0.Add(5 * time.Minute)}),
		Consent("k07", Alice, AliceIdentities, "cen_1", "marketing", cdp.Granted, cdp.Withdrawn, T0.Add(6*time.Minute)),
		Erasure("k08", Alice, AliceIdentities),
	}
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }
