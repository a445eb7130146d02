package cdp

import (
	"encoding/json"
	"time"
)

// EventType is the kind of an event in the internal envelope. mParticle event
// types are mapped onto these at the gateway.
type EventType string

// The event types.
const (
	Identify EventType = "identify"
	Track    EventType = "track"
	Page     EventType = "page"
	Screen   EventType = "screen"
	Group    EventType = "group"
	Alias    EventType = "alias"
)

// Valid reports whether t is one of the event types.
func (t EventType) Valid() bool {
	switch t {
	case Identify, Track, Page, Screen, Group, Alias:
		return true
	}
	return false
}

// Format names the wire format an event arrived in. It is kept for the
// record; no stage after the gateway reads the raw format.
type Format string

// The accepted wire formats.
const (
	FormatSegment   Format = "segment"
	FormatMParticle Format = "mparticle"
	FormatAPI       Format = "api"
)

// Event is the internal envelope every stage after the gateway consumes. The
// gateway builds it from any accepted wire format; Properties, Traits and
// Context hold JSON objects (or nil) and are personal data.
type Event struct {
	MessageID   string // unique per source; the deduplication key
	WorkspaceID WorkspaceID
	SourceID    SourceID
	Format      Format
	Type        EventType
	Name        string // track event name, page/screen name; empty otherwise

	// Identities carries every identifier of the person the event names,
	// normalised and free of junk values.
	Identities []Identity
	PreviousID string // alias: the identifier being aliased (any type)
	GroupID    string // group: the group/account id

	Traits        json.RawMessage // identify/group traits, mParticle user_attributes
	DeletedTraits []string        // mParticle deleted_user_attributes
	Properties    json.RawMessage // track/page/screen properties, mParticle custom_attributes
	Context       json.RawMessage // device, app, library, page, campaign, ...
	Integrations  json.RawMessage // the client's per-destination switches, as sent
	IP            string

	Consent []ConsentSignal // consent the event carried, not yet mapped to purposes
	GPC     bool            // the request carried Sec-GPC: 1

	Timestamp         time.Time // when it happened, after clock-skew correction
	OriginalTimestamp time.Time // the client's own clock, if it sent one
	SentAt            time.Time // when the client sent it, if it said
	// ClientTime is the client's own time for the event exactly as it sent
	// it (originalTimestamp, else timestamp), zero if it sent none. A retry
	// resends the same value, so deduplication keys on it: message ids are
	// then stored in the order they happen, not scattered by their hash.
	ClientTime time.Time
	ReceivedAt time.Time // the server clock at the gateway
}

// Identity returns the first identity of type t, if the event carries one.
func (e *Event) Identity(t IdentityType) (Identity, bool) {
	for _, id := range e.Identities {
		if id.Type == t {
			return id, true
		}
	}
	return Identity{}, false
}

// ConsentVocabulary names where a carried consent signal came from, which
// decides how its Key maps to a workspace purpose.
type ConsentVocabulary string

// The consent vocabularies the gateway reads.
const (
	ConsentMParticleGDPR   ConsentVocabulary = "mparticle_gdpr"    // consent_state.gdpr.<purpose>
	ConsentMParticleCCPA   ConsentVocabulary = "mparticle_ccpa"    // consent_state.ccpa.data_sale_opt_out
	ConsentSegmentCategory ConsentVocabulary = "segment_category"  // context.consent.categoryPreferences
	ConsentRudderID        ConsentVocabulary = "rudder_consent_id" // context.consentManagement ids (OneTrust-style)
	ConsentTCF             ConsentVocabulary = "tcf"               // a TCF v2 TC string (Key holds the string); mappings name purpose numbers "1".."11"
	ConsentGPP             ConsentVocabulary = "gpp"               // a GPP string (Key holds the string); mappings name fields "SaleOptOut", ...
	ConsentOneTrust        ConsentVocabulary = "onetrust"          // purpose ids in a partner feed
	ConsentAPI             ConsentVocabulary = "purpose"           // a workspace purpose key, as the consent API takes it
)

// ConsentSignal is one consent choice carried by an event, before mapping.
// Granted always means "may be used for the purpose": the gateway inverts
// polarities such as mParticle's data_sale_opt_out, where consented=true means
// the person opted out.
type ConsentSignal struct {
	Vocabulary ConsentVocabulary
	Key        string
	// Purpose is the workspace purpose Key maps to; the gateway fills it in
	// (and drops signals that map to nothing, reporting them).
	Purpose     PurposeKey
	Granted     bool
	Withdrawn   bool      // a withdrawal rather than a plain refusal (Granted is false)
	CollectedAt time.Time // zero when the client did not say; the event time is used then
	Document    string
	Location    string // personal data
	HardwareID  string // personal data
}

// StoredEvent is an event as the store keeps it, with its position in the
// workspace's order of arrival at the store (Seq grows with each event).
type StoredEvent struct {
	Seq     int64
	Profile ProfileID
	Event   Event
}

// ApplyResult says what applying a batch of logged events did.
type ApplyResult struct {
	Applied           int // events stored
	Duplicates        int // events whose message id was applied before
	ProfilesCreated   int
	Merges            int
	DroppedIdentities int // identities not attached (limits, unique types, splits)
	ConsentEntries    int // ledger entries appended
	ConsentChanges    int // changes of a person's current consent state
	Suppressed        int // events dropped: they named an erased person
	// Retries counts the times the transaction started over after a
	// concurrent change to the people it names, or a busy database.
	Retries int
	// Forwarding counts decisions per destination: "forwarded" or the
	// reason an event was not forwarded.
	Forwarding map[DestinationID]map[string]int
}

// OutboxRecord is a record written in the same transaction as the state
// change that caused it (a consent change, a delivery), to be relayed to
// the bus. Payload is sealed under the profile's data key.
type OutboxRecord struct {
	Seq         int64
	WorkspaceID WorkspaceID
	Profile     ProfileID
	Topic       string
	Payload     []byte
	CreatedAt   time.Time
}
