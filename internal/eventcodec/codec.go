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
	"strconv"
	"time"
	"unicode/utf8"

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

// Append appends ev as one JSON line to buf. It writes the record by hand:
// encoding/json spent most of its time re-validating and compacting the
// raw JSON fields, which the gateway's decoders have validated already
// (raw fields must be valid JSON; ones holding a line break are compacted,
// so a record stays one line). Strings are escaped as encoding/json does,
// invalid UTF-8 becoming U+FFFD.
func Append(buf []byte, ev *cdp.Event) ([]byte, error) {
	b := append(buf, `{"mid":`...)
	b = appendString(b, ev.MessageID)
	b = appendStringField(b, `,"ws":`, string(ev.WorkspaceID))
	b = appendStringField(b, `,"src":`, string(ev.SourceID))
	b = appendStringField(b, `,"fmt":`, string(ev.Format))
	b = appendStringField(b, `,"t":`, string(ev.Type))
	if ev.Name != "" {
		b = appendStringField(b, `,"n":`, ev.Name)
	}
	if len(ev.Identities) > 0 {
		b = append(b, `,"ids":[`...)
		for i, id := range ev.Identities {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendStringField(b, `{"t":`, string(id.Type))
			b = appendStringField(b, `,"v":`, id.Value)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if ev.PreviousID != "" {
		b = appendStringField(b, `,"prev":`, ev.PreviousID)
	}
	if ev.GroupID != "" {
		b = appendStringField(b, `,"grp":`, ev.GroupID)
	}
	var err error
	if b, err = appendRaw(b, `,"tr":`, ev.Traits); err != nil {
		return buf, err
	}
	if len(ev.DeletedTraits) > 0 {
		b = append(b, `,"dtr":[`...)
		for i, name := range ev.DeletedTraits {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, name)
		}
		b = append(b, ']')
	}
	for _, f := range []struct {
		key string
		raw json.RawMessage
	}{{`,"pr":`, ev.Properties}, {`,"ctx":`, ev.Context}, {`,"int":`, ev.Integrations}} {
		if b, err = appendRaw(b, f.key, f.raw); err != nil {
			return buf, err
		}
	}
	if ev.IP != "" {
		b = appendStringField(b, `,"ip":`, ev.IP)
	}
	if len(ev.Consent) > 0 {
		b = append(b, `,"cs":[`...)
		for i, c := range ev.Consent {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendStringField(b, `{"voc":`, string(c.Vocabulary))
			b = appendStringField(b, `,"k":`, c.Key)
			if c.Purpose != "" {
				b = appendStringField(b, `,"p":`, string(c.Purpose))
			}
			b = append(b, `,"g":`...)
			b = strconv.AppendBool(b, c.Granted)
			if c.Withdrawn {
				b = append(b, `,"w":true`...)
			}
			b = appendNanos(b, `,"at":`, c.CollectedAt, true)
			if c.Document != "" {
				b = appendStringField(b, `,"doc":`, c.Document)
			}
			if c.Location != "" {
				b = appendStringField(b, `,"loc":`, c.Location)
			}
			if c.HardwareID != "" {
				b = appendStringField(b, `,"hw":`, c.HardwareID)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if ev.GPC {
		b = append(b, `,"gpc":true`...)
	}
	b = appendNanos(b, `,"ts":`, ev.Timestamp, false)
	b = appendNanos(b, `,"ots":`, ev.OriginalTimestamp, true)
	b = appendNanos(b, `,"sat":`, ev.SentAt, true)
	b = appendNanos(b, `,"rat":`, ev.ReceivedAt, false)
	return append(b, '}', '\n'), nil
}

func appendStringField(b []byte, key, s string) []byte {
	return appendString(append(b, key...), s)
}

func appendNanos(b []byte, key string, t time.Time, omitZero bool) []byte {
	n := nanos(t)
	if n == 0 && omitZero {
		return b
	}
	return strconv.AppendInt(append(b, key...), n, 10)
}

// appendRaw appends a raw JSON field unless it is empty or null.
func appendRaw(b []byte, key string, raw json.RawMessage) ([]byte, error) {
	raw = rawOrNil(raw)
	if raw == nil {
		return b, nil
	}
	b = append(b, key...)
	if bytes.IndexByte(raw, '\n') < 0 && bytes.IndexByte(raw, '\r') < 0 {
		return append(b, raw...), nil
	}
	var c bytes.Buffer
	if err := json.Compact(&c, raw); err != nil {
		// The gateway validated raw fields; failing here is a bug.
		return b, fmt.Errorf("encode event: %w", err)
	}
	return append(b, c.Bytes()...), nil
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
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
