package cdp

import (
	"encoding/json"
	"time"
)

// DSRType is what a data subject asks for.
type DSRType string

// The request types.
const (
	DSRAccess      DSRType = "access"
	DSRPortability DSRType = "portability"
	DSRErasure     DSRType = "erasure"
)

// DSRStatus is where a request stands.
type DSRStatus string

// The statuses: pending -> in_progress -> completed, or cancelled (only
// from pending).
const (
	DSRPending    DSRStatus = "pending"
	DSRInProgress DSRStatus = "in_progress"
	DSRCompleted  DSRStatus = "completed"
	DSRCancelled  DSRStatus = "cancelled"
)

// DSRIdentity is one identity a request names: the Custos type, how the
// request spelled it, and the value (normalised, or the hash's hex).
// Value is personal data.
type DSRIdentity struct {
	Type        IdentityType
	RequestType string // the OpenDSR identity_type
	Format      string // raw, sha256, sha1, md5
	Value       string
}

// DSR is a data subject request. Identities are kept, sealed, only while
// the request is open; the rest holds no personal data and outlives it.
type DSR struct {
	WorkspaceID WorkspaceID
	ID          string // the controller's subject_request_id
	Regulation  string // gdpr, ccpa
	Type        DSRType
	Status      DSRStatus
	Fingerprint string // of the request's content: a resend is recognised
	Identities  []DSRIdentity
	// IdentitySummary lists the identity types and formats, never values.
	IdentitySummary string
	CallbackURLs    []string
	SubmittedAt     time.Time
	ReceivedAt      time.Time
	ExpectedAt      time.Time
	StartAfter      time.Time       // the end of the waiting period
	Deadlines       json.RawMessage // the legal deadlines, as the dsr package encodes them
	ResultsCount    int
	ResultsExpires  time.Time
	Outcome         json.RawMessage // what was done where, as the dsr package encodes it
	StartedAt       time.Time
	CompletedAt     time.Time
	CancelledAt     time.Time
	UpdatedAt       time.Time
}

// DSRDestinationState is a destination's part in an erasure.
type DSRDestinationState string

// The states.
const (
	DSRDestPending       DSRDestinationState = "pending"
	DSRDestSent          DSRDestinationState = "sent"
	DSRDestConfirmed     DSRDestinationState = "confirmed"
	DSRDestFailed        DSRDestinationState = "failed"
	DSRDestNotApplicable DSRDestinationState = "not_applicable"
)

// DSRDestination is one destination's state in an erasure.
type DSRDestination struct {
	Destination DestinationID
	State       DSRDestinationState
	Reason      string
	Attempts    int
	UpdatedAt   time.Time
}

// ErasureCounts says how much of a person each store held and lost.
type ErasureCounts struct {
	Profiles       int `json:"profiles"`
	Identities     int `json:"identities"`
	Traits         int `json:"traits"`
	Groups         int `json:"groups"`
	Events         int `json:"events"`
	ConsentEntries int `json:"consent_entries"`
	Deliveries     int `json:"deliveries"`
	DeadLetters    int `json:"dead_letters"`
	Outbox         int `json:"outbox"`
	Merges         int `json:"merges"`
	Exports        int `json:"exports"`
	DataKeys       int `json:"data_keys"`
}

// DSRPreview is what a request would touch.
type DSRPreview struct {
	Profiles       int
	Events         int
	ConsentEntries int
	Identities     int
	Destinations   []DestinationID // that received some of the person's data
}

// Recipient is a destination that received some of a person's data
// (GDPR Art. 15 and 19).
type Recipient struct {
	Destination DestinationID
	Kinds       []string // event, consent
	Count       int
	First, Last time.Time
}

// DSRBundle is everything held about a person, decrypted, for an access or
// portability export. It is personal data.
type DSRBundle struct {
	Profiles   []Profile
	Events     []StoredEvent
	Consent    []ConsentEntry
	Merges     []Merge
	Recipients []Recipient
}

// DSRCallback is a status callback owed to a controller.
type DSRCallback struct {
	ID          string
	WorkspaceID WorkspaceID
	RequestID   string
	URL         string
	Status      DSRStatus
	Body        []byte
	Attempts    int
	NextAt      time.Time
}

// DSRCallbackAttempt is one attempt of a callback.
type DSRCallbackAttempt struct {
	URL        string
	Status     string
	Attempt    int
	At         time.Time
	HTTPStatus int
	Error      string
	Done       bool
}

// AuditRecord is one entry of the tamper-evident log: its hash covers its
// content and the hash of the entry before it.
type AuditRecord struct {
	Seq         int64
	WorkspaceID WorkspaceID
	Kind        string // "dsr", "operator"
	Subject     string
	Record      json.RawMessage
	PrevHash    string
	Hash        string
	CreatedAt   time.Time
}
