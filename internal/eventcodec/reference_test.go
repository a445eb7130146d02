package eventcodec

import (
	"encoding/json"
	"fmt"

	"github.com/custos-cdp/custos/internal/cdp"
)

// The record shape as encoding/json structs, and the decoder this package
// used before its own: the reference the fuzz test holds DecodeOne to.

type record struct {
	MessageID     string          `json:"mid"`
	WorkspaceID   string          `json:"ws"`
	SourceID      string          `json:"src"`
	Format        string          `json:"fmt"`
	Type          string          `json:"t"`
	Name          string          `json:"n,omitempty"`
	Identities    []identity      `json:"ids,omitempty"`
	PreviousID    string          `json:"prev,omitempty"`
	GroupID       string          `json:"grp,omitempty"`
	Traits        json.RawMessage `json:"tr,omitempty"`
	DeletedTraits []string        `json:"dtr,omitempty"`
	Properties    json.RawMessage `json:"pr,omitempty"`
	Context       json.RawMessage `json:"ctx,omitempty"`
	Integrations  json.RawMessage `json:"int,omitempty"`
	IP            string          `json:"ip,omitempty"`
	Consent       []consent       `json:"cs,omitempty"`
	GPC           bool            `json:"gpc,omitempty"`
	Timestamp     int64           `json:"ts"`
	Original      int64           `json:"ots,omitempty"`
	SentAt        int64           `json:"sat,omitempty"`
	ClientTime    *int64          `json:"ct"`
	ReceivedAt    int64           `json:"rat"`
}

type identity struct {
	Type  string `json:"t"`
	Value string `json:"v"`
}

type consent struct {
	Vocabulary  string `json:"voc"`
	Key         string `json:"k"`
	Purpose     string `json:"p,omitempty"`
	Granted     bool   `json:"g"`
	Withdrawn   bool   `json:"w,omitempty"`
	CollectedAt int64  `json:"at,omitempty"`
	Document    string `json:"doc,omitempty"`
	Location    string `json:"loc,omitempty"`
	HardwareID  string `json:"hw,omitempty"`
}

func decodeReference(line []byte) (cdp.Event, error) {
	var r record
	if err := json.Unmarshal(line, &r); err != nil {
		return cdp.Event{}, fmt.Errorf("decode event: %w", err)
	}
	ev := cdp.Event{
		MessageID:         r.MessageID,
		WorkspaceID:       cdp.WorkspaceID(r.WorkspaceID),
		SourceID:          cdp.SourceID(r.SourceID),
		Format:            cdp.Format(r.Format),
		Type:              cdp.EventType(r.Type),
		Name:              r.Name,
		PreviousID:        r.PreviousID,
		GroupID:           r.GroupID,
		Traits:            r.Traits,
		DeletedTraits:     r.DeletedTraits,
		Properties:        r.Properties,
		Context:           r.Context,
		Integrations:      r.Integrations,
		IP:                r.IP,
		GPC:               r.GPC,
		Timestamp:         fromNanos(r.Timestamp),
		OriginalTimestamp: fromNanos(r.Original),
		SentAt:            fromNanos(r.SentAt),
		ReceivedAt:        fromNanos(r.ReceivedAt),
	}
	if r.ClientTime != nil {
		ev.ClientTime = fromNanos(*r.ClientTime)
	} else {
		ev.ClientTime = olderClientTime(&ev)
	}
	if len(r.Identities) > 0 {
		ev.Identities = make([]cdp.Identity, len(r.Identities))
		for i, id := range r.Identities {
			ev.Identities[i] = cdp.Identity{Type: cdp.IdentityType(id.Type), Value: id.Value}
		}
	}
	if len(r.Consent) > 0 {
		ev.Consent = make([]cdp.ConsentSignal, len(r.Consent))
		for i, c := range r.Consent {
			ev.Consent[i] = cdp.ConsentSignal{
				Vocabulary: cdp.ConsentVocabulary(c.Vocabulary), Key: c.Key, Purpose: cdp.PurposeKey(c.Purpose), Granted: c.Granted, Withdrawn: c.Withdrawn,
				CollectedAt: fromNanos(c.CollectedAt), Document: c.Document,
				Location: c.Location, HardwareID: c.HardwareID,
			}
		}
	}
	return ev, nil
}
