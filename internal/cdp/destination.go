package cdp

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// DestinationID identifies a destination (a connection to a tool).
type DestinationID string

// DestinationType names the kind of a destination; each kind is one package
// behind the forwarding interface.
type DestinationType string

// The destination types.
const (
	DestinationWebhook   DestinationType = "webhook"   // signed JSON batches over HTTPS
	DestinationSegment   DestinationType = "segment"   // the Segment tracking spec, to any endpoint that speaks it
	DestinationRaw       DestinationType = "raw"       // full envelopes and consent records, to a URL or a directory
	DestinationWarehouse DestinationType = "warehouse" // tables in a PostgreSQL database
)

// Valid reports whether t is a known type.
func (t DestinationType) Valid() bool {
	switch t {
	case DestinationWebhook, DestinationSegment, DestinationRaw, DestinationWarehouse:
		return true
	}
	return false
}

// ConsentMode says how a rule's purposes combine.
type ConsentMode string

// The modes.
const (
	AllOf ConsentMode = "all"
	AnyOf ConsentMode = "any"
)

// EventFilter selects the events a destination takes. Empty include lists
// take everything; excludes win over includes.
type EventFilter struct {
	IncludeTypes  []EventType
	ExcludeTypes  []EventType
	IncludeEvents []string // event names (track event, page/screen name)
	ExcludeEvents []string
}

// Minimisation trims what a destination receives. Allow lists, when set,
// keep only the named keys; deny lists drop the named keys.
type Minimisation struct {
	AllowTraits     []string
	DenyTraits      []string
	AllowProperties []string
	DenyProperties  []string
	DropIP          bool // remove the IP address (envelope and context.ip)
	HashEmail       bool // replace e-mail identities and traits by their SHA-256 (hex, of the normalised value)
}

// Destination is a workspace's connection to a tool.
type Destination struct {
	ID          DestinationID
	WorkspaceID WorkspaceID
	Name        string
	Type        DestinationType
	Enabled     bool   // false: paused; deliveries are recorded as filtered
	Endpoint    string // URL; for a raw destination in embedded setups, file:///dir
	// Credentials are sealed at rest and never returned by the API.
	CredentialsSealed []byte
	Settings          DestinationSettings
	Sources           []SourceID // empty: every source
	Filter            EventFilter
	Minimisation      Minimisation
	SaleOrShare       bool // a sale or sharing under CCPA: opt-outs and GPC block it
	ConsentPurposes   []PurposeKey
	ConsentMode       ConsentMode
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

// DestinationSettings tune delivery.
type DestinationSettings struct {
	BatchSize   int           // deliveries per request (1..1000, default 100)
	MaxAttempts int           // before dead-lettering (default 20)
	MaxAge      time.Duration // before dead-lettering (default 24h)
	Timeout     time.Duration // per request (default 10s)
	// PinSHA256 are base64 SHA-256 hashes of the server's
	// SubjectPublicKeyInfo; when set, a connection whose chain holds none of
	// them is refused.
	PinSHA256 []string
	// OpenDSRURL is the tool's OpenDSR processor API (ending in /opendsr/v1
	// or the like), when it has one: erasures reach it as controller
	// requests. The bearer token for it is "opendsr_token" in the
	// destination's credentials.
	OpenDSRURL string
}

// DeliveryKind says what a delivery carries.
type DeliveryKind string

// The kinds.
const (
	DeliverEvent   DeliveryKind = "event"   // an event (minimised)
	DeliverConsent DeliveryKind = "consent" // a change of a person's consent
	DeliverErasure DeliveryKind = "erasure" // a data subject's erasure
)

// Delivery is one item queued for one destination. Exactly one of Event,
// Consent and Erasure is set, by Kind.
type Delivery struct {
	DestinationID DestinationID
	WorkspaceID   WorkspaceID
	Profile       ProfileID
	Kind          DeliveryKind
	// Key is the idempotency key: the same for every attempt of this
	// delivery, different for any other.
	Key       string
	MessageID string
	// Identities are the person's identities as this destination may see
	// them (after minimisation), so that consent changes and erasures can
	// be attributed downstream.
	Identities []Identity
	Event      *Event
	Consent    *ConsentChange
	Erasure    *Erasure
	CreatedAt  time.Time
}

// Erasure asks a destination to delete everything about a person.
type Erasure struct {
	RequestID  string     // the data subject request
	Identities []Identity // the person's identities as the destination knew them
	Regulation string
}

// DeliveryStatus is where a delivery stands.
type DeliveryStatus string

// The statuses.
const (
	DeliveryPending      DeliveryStatus = "pending"
	DeliveryDelivered    DeliveryStatus = "delivered"
	DeliveryRetrying     DeliveryStatus = "retrying"
	DeliveryFiltered     DeliveryStatus = "filtered"
	DeliveryDeadLettered DeliveryStatus = "dead_lettered"
)

// DeliveryRecord is a destination's outcome for one event, for the
// person's activity view.
type DeliveryRecord struct {
	DestinationID DestinationID
	MessageID     string
	Profile       ProfileID
	Status        DeliveryStatus
	Reason        string // filtered: which rule; dead-lettered: why
	Attempts      int
	LastError     string
	UpdatedAt     time.Time
	DeliveredAt   time.Time
}

// DeadLetter is a delivery that failed for good, kept sealed under the
// person's key for inspection and replay.
type DeadLetter struct {
	ID          string
	Destination DestinationID
	WorkspaceID WorkspaceID
	Profile     ProfileID
	Key         string
	Kind        DeliveryKind
	MessageID   string
	Sealed      []byte // the queued delivery, sealed under the person's key
	LastError   string
	Attempts    int
	FirstTry    time.Time
	CreatedAt   time.Time
}

// Cursor is the position just after this dead letter in a newest-first
// listing. It stays valid when the dead letter itself is replayed (and so
// removed) while a caller pages through the list.
func (d DeadLetter) Cursor() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(d.CreatedAt.UnixMicro(), 10) + "." + d.ID))
}

// ParseDeadLetterCursor reads a Cursor back into its time (Unix
// microseconds) and id.
func ParseDeadLetterCursor(c string) (int64, string, error) {
	bad := Reason(Invalid, "invalid_cursor", "cursor is not one this API returned")
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", bad
	}
	at, id, ok := strings.Cut(string(b), ".")
	n, err := strconv.ParseInt(at, 10, 64)
	if !ok || err != nil || id == "" {
		return 0, "", bad
	}
	return n, id, nil
}

// ReplayResult says what a replay did.
type ReplayResult struct {
	Queued   int // re-queued for delivery
	Filtered int // not allowed any more (consent, filters, paused)
	Gone     int // the person was erased since
}
