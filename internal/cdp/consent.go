package cdp

import (
	"log/slog"
	"time"
)

// PurposeKey is a workspace's stable lower-case name of a purpose of
// processing: "marketing", "analytics", "data_sale_opt_out".
type PurposeKey string

// The purposes every workspace has from the start: the CCPA opt-outs.
const (
	PurposeSale    PurposeKey = "data_sale_opt_out" // sale of personal information
	PurposeSharing PurposeKey = "sharing_opt_out"   // sharing for cross-context behavioural advertising
)

// Regime says what the absence of a choice means.
type Regime string

// The regimes.
const (
	// OptIn: without an explicit grant the state is unknown, and unknown
	// is not granted (GDPR style).
	OptIn Regime = "opt_in"
	// OptOut: data may be used until the person opts out (CCPA style).
	OptOut Regime = "opt_out"
)

// Purpose is one purpose of processing a workspace asks consent for.
type Purpose struct {
	WorkspaceID     WorkspaceID
	Key             PurposeKey
	Name            string
	Description     string
	Regime          Regime
	DocumentVersion string // the current version of the document a grant refers to
	// RequireCurrentDocument marks grants citing another document version
	// as needing renewal: they no longer count as granted.
	RequireCurrentDocument bool
	// Retired purposes take no new entries; their history stays.
	Retired   bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// ConsentState is a person's choice for one purpose. For every regime it
// answers "may their data be used for this purpose": for the CCPA opt-out
// purposes, granted means sale (or sharing) is allowed and denied means the
// person opted out.
type ConsentState string

// The states. Unknown is never recorded; it is what no entry means.
const (
	Granted   ConsentState = "granted"
	Denied    ConsentState = "denied"
	Withdrawn ConsentState = "withdrawn"
	Unknown   ConsentState = "unknown"
)

// Valid reports whether s can be recorded in a ledger.
func (s ConsentState) Valid() bool { return s == Granted || s == Denied || s == Withdrawn }

// ConsentSource says how a ledger entry was collected.
type ConsentSource string

// The sources.
const (
	SourceSDK      ConsentSource = "sdk"      // carried by an event from a client library
	SourceServer   ConsentSource = "server"   // the server-to-server consent API
	SourceFeed     ConsentSource = "feed"     // a consent-management platform's feed
	SourceGPC      ConsentSource = "gpc"      // a Sec-GPC: 1 request header
	SourceOperator ConsentSource = "operator" // an operator in the admin API
	SourceMerge    ConsentSource = "merge"    // the most restrictive state carried over by a merge
)

// ConsentEntryID identifies a ledger entry.
type ConsentEntryID string

// ConsentEntry is one append-only record of a person's choice. Location and
// HardwareID are personal data.
type ConsentEntry struct {
	ID          ConsentEntryID
	WorkspaceID WorkspaceID
	Profile     ProfileID
	// Origin is the profile the entry was first recorded on; it tells a
	// split which entries go back.
	Origin      ProfileID
	Purpose     PurposeKey
	State       ConsentState
	CollectedAt time.Time // when the person chose (client clock)
	ReceivedAt  time.Time // when Custos learnt it
	Source      ConsentSource
	SourceName  string // the feed, vocabulary or source id that carried it
	Document    string
	Location    string
	HardwareID  string
	MessageID   string  // the event that carried it, if any
	MergeID     MergeID // for SourceMerge entries: the merge that made it
}

// LogValue keeps personal data out of logs.
func (e ConsentEntry) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", string(e.ID)), slog.String("purpose", string(e.Purpose)),
		slog.String("state", string(e.State)), slog.String("source", string(e.Source)))
}

// ConsentChange is a change of a person's current state for a purpose,
// emitted into the pipeline for destinations to learn it.
type ConsentChange struct {
	Entry    ConsentEntry
	Old, New ConsentState
}

// ConsentMapping maps an external vocabulary's name for a choice to a
// workspace purpose: a Segment category, a OneTrust id, a TCF purpose
// number, a GPP field.
type ConsentMapping struct {
	Vocabulary ConsentVocabulary
	External   string
	Purpose    PurposeKey
}

// Source ids of events that did not come from a source's write key: the
// consent API and partner feeds put consent into the pipeline as events
// of these pseudo-sources.
const (
	apiSourcePrefix  = "api:"
	feedSourcePrefix = "feed:"
)

// APISource is the source id of events the consent API makes for a token.
func APISource(tok TokenID) SourceID { return SourceID(apiSourcePrefix + string(tok)) }

// FeedSource is the source id of events a partner feed makes.
func FeedSource(feed string) SourceID { return SourceID(feedSourcePrefix + feed) }

// ConsentSourceOf says how consent carried by ev was collected, and by
// which source, feed or vocabulary.
func ConsentSourceOf(ev *Event) (ConsentSource, string) {
	s := string(ev.SourceID)
	switch {
	case len(s) > len(feedSourcePrefix) && s[:len(feedSourcePrefix)] == feedSourcePrefix:
		return SourceFeed, s[len(feedSourcePrefix):]
	case len(s) > len(apiSourcePrefix) && s[:len(apiSourcePrefix)] == apiSourcePrefix:
		return SourceServer, s[len(apiSourcePrefix):]
	}
	return SourceSDK, s
}

// ConsentFeed is a consent-management platform that sends a workspace
// consent through a signed endpoint. Its secret is kept sealed.
type ConsentFeed struct {
	ID           string
	WorkspaceID  WorkspaceID
	Name         string
	SecretSealed []byte
	CreatedAt    time.Time
}
