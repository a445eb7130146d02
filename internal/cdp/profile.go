package cdp

import (
	"encoding/json"
	"time"
)

// ProfileID identifies one person's profile in a workspace.
type ProfileID string

// Profile is one person as Custos knows them: every identity, every trait,
// the groups they belong to. Identity values and trait values are personal
// data.
type Profile struct {
	ID          ProfileID
	WorkspaceID WorkspaceID
	CreatedAt   time.Time
	// UpdatedAt is the later of the last change to the profile itself
	// (created, merged, split) and the time of its newest event.
	UpdatedAt  time.Time
	Identities []ProfileIdentity
	Traits     []Trait
	Groups     []GroupMembership
	EventCount int64
	// MergedInto is set, and everything else empty, when this profile was
	// merged into another: the person now lives there.
	MergedInto ProfileID
}

// ProfileIdentity is an identity attached to a profile.
type ProfileIdentity struct {
	Identity
	FirstSeen time.Time
	LastSeen  time.Time
}

// Trait is one attribute of a person. UpdatedAt is the event time of the
// write that set it: traits are last-write-wins by event time, not by
// arrival.
type Trait struct {
	Name      string
	Value     json.RawMessage
	UpdatedAt time.Time
}

// GroupMembership is a person's link to a group or account.
type GroupMembership struct {
	GroupID   string
	Traits    json.RawMessage
	UpdatedAt time.Time
}

// MergeID identifies one merge of two profiles.
type MergeID string

// Merge records that one profile was folded into another, why, and whether
// an operator undid it.
type Merge struct {
	ID          MergeID
	WorkspaceID WorkspaceID
	Survivor    ProfileID
	Merged      ProfileID
	Rule        string // why, e.g. "event linked anonymous_id to the profile of user_id"
	MessageID   string // the event that caused it
	SourceID    SourceID
	At          time.Time
	UndoneAt    time.Time // zero while in force
}

// TimelineFilter narrows a profile's timeline.
type TimelineFilter struct {
	Name     string
	Type     EventType
	From, To time.Time // event time, inclusive from, exclusive to; zero means open
}

// TimelineCursor is a position in a timeline: the events strictly older
// than (At, Seq) in (event time, arrival) order. The zero value is the
// newest end.
type TimelineCursor struct {
	At  time.Time
	Seq int64
}

// After returns the position just past e in a timeline.
func (e StoredEvent) After() TimelineCursor {
	return TimelineCursor{At: e.Event.Timestamp, Seq: e.Seq}
}
