// Package eventcodec is the one encoding of the internal event envelope
// (cdp.Event) for machines: the event log's entries and the stored event
// payloads use it. A batch is JSON lines: one compact JSON record per line
// (compact JSON never holds a raw newline, so a line is a record). The record
// shape belongs to this package and changes only with a new Version.
package eventcodec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
)

// Version names the record shape written by this package.
const Version = "1"

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

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func rawOrNil(m json.RawMessage) json.RawMessage {
	if len(m) == 0 || string(m) == "null" {
		return nil
	}
	return m
}

// Append appends ev as one JSON line to buf.
func Append(buf []byte, ev *cdp.Event) ([]byte, error) {
	r := record{
		MessageID:     ev.MessageID,
		WorkspaceID:   string(ev.WorkspaceID),
		SourceID:      string(ev.SourceID),
		Format:        string(ev.Format),
		Type:          string(ev.Type),
		Name:          ev.Name,
		PreviousID:    ev.PreviousID,
		GroupID:       ev.GroupID,
		Traits:        rawOrNil(ev.Traits),
		DeletedTraits: ev.DeletedTraits,
		Properties:    rawOrNil(ev.Properties),
		Context:       rawOrNil(ev.Context),
		Integrations:  rawOrNil(ev.Integrations),
		IP:            ev.IP,
		GPC:           ev.GPC,
		Timestamp:     nanos(ev.Timestamp),
		Original:      nanos(ev.OriginalTimestamp),
		SentAt:        nanos(ev.SentAt),
		ReceivedAt:    nanos(ev.ReceivedAt),
	}
	if len(ev.Identities) > 0 {
		r.Identities = make([]identity, len(ev.Identities))
		for i, id := range ev.Identities {
			r.Identities[i] = identity{Type: string(id.Type), Value: id.Value}
		}
	}
	if len(ev.Consent) > 0 {
		r.Consent = make([]consent, len(ev.Consent))
		for i, c := range ev.Consent {
			r.Consent[i] = consent{
				Vocabulary: string(c.Vocabulary), Key: c.Key, Purpose: string(c.Purpose), Granted: c.Granted, Withdrawn: c.Withdrawn,
				CollectedAt: nanos(c.CollectedAt), Document: c.Document,
				Location: c.Location, HardwareID: c.HardwareID,
			}
		}
	}
	b, err := json.Marshal(&r)
	if err != nil {
		// The raw fields were validated at the gateway; failing here is a bug.
		return buf, fmt.Errorf("encode event: %w", err)
	}
	buf = append(buf, b...)
	return append(buf, '\n'), nil
}

// Encode returns events as JSON lines.
func Encode(events []cdp.Event) ([]byte, error) {
	var buf []byte
	for i := range events {
		var err error
		if buf, err = Append(buf, &events[i]); err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// Decode parses JSON lines written by Encode or Append.
func Decode(data []byte) ([]cdp.Event, error) {
	n := bytes.Count(data, []byte{'\n'})
	events := make([]cdp.Event, 0, n)
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if len(line) == 0 {
			continue
		}
		ev, err := DecodeOne(line)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", len(events), err)
		}
		events = append(events, ev)
	}
	return events, nil
}

// DecodeOne parses one record (with or without its newline).
func DecodeOne(line []byte) (cdp.Event, error) {
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
