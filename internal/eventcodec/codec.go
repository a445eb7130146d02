// Package eventcodec is the one encoding of the internal event envelope
// (cdp.Event) for machines: the event log's entries and the stored event
// payloads use it. A batch is JSON lines: one compact JSON record per line
// (compact JSON never holds a raw newline, so a line is a record). The record
// shape belongs to this package and changes only with a new Version.
package eventcodec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/jsonscan"
)

// Version names the record shape written by this package.
const Version = "1"

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
	// Always written, 0 for none: an entry without it is from a version
	// that did not record it (see DecodeOne).
	b = appendNanos(b, `,"ct":`, ev.ClientTime, false)
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

// DecodeOne parses one record (with or without its newline). It reads the
// record in one pass with jsonscan: encoding/json took 8 to 15% of the
// processor's time, most of it re-validating the raw JSON fields. Raw
// fields and strings are copied, so the event does not hold on to line.
// Unknown fields are skipped, a later copy of a field wins, and null leaves
// a field empty, as with encoding/json; field names must match exactly.
func DecodeOne(line []byte) (cdp.Event, error) {
	var (
		ev    cdp.Event
		bad   string
		hasCT bool
	)
	ok := jsonscan.EachMember(line, func(k, v []byte) {
		if bad != "" {
			return
		}
		key := jsonscan.Key(k)
		var good bool
		switch string(key) {
		case "mid":
			good = decodeString(v, &ev.MessageID)
		case "ws":
			good = decodeString(v, (*string)(&ev.WorkspaceID))
		case "src":
			good = decodeString(v, (*string)(&ev.SourceID))
		case "fmt":
			good = decodeString(v, (*string)(&ev.Format))
		case "t":
			good = decodeString(v, (*string)(&ev.Type))
		case "n":
			good = decodeString(v, &ev.Name)
		case "ids":
			good = decodeIdentities(v, &ev.Identities)
		case "prev":
			good = decodeString(v, &ev.PreviousID)
		case "grp":
			good = decodeString(v, &ev.GroupID)
		case "tr":
			ev.Traits, good = decodeRaw(v), true
		case "dtr":
			good = decodeStrings(v, &ev.DeletedTraits)
		case "pr":
			ev.Properties, good = decodeRaw(v), true
		case "ctx":
			ev.Context, good = decodeRaw(v), true
		case "int":
			ev.Integrations, good = decodeRaw(v), true
		case "ip":
			good = decodeString(v, &ev.IP)
		case "cs":
			good = decodeConsent(v, &ev.Consent)
		case "gpc":
			good = decodeBool(v, &ev.GPC)
		case "ts":
			good = decodeTime(v, &ev.Timestamp)
		case "ots":
			good = decodeTime(v, &ev.OriginalTimestamp)
		case "sat":
			good = decodeTime(v, &ev.SentAt)
		case "ct":
			good, hasCT = decodeTime(v, &ev.ClientTime), true
		case "rat":
			good = decodeTime(v, &ev.ReceivedAt)
		default:
			good = true
		}
		if !good {
			bad = string(key) // a field name of ours, never a value
		}
	})
	if !ok {
		return cdp.Event{}, errors.New("decode event: not a JSON object")
	}
	if bad != "" {
		return cdp.Event{}, fmt.Errorf("decode event: field %q has the wrong type", bad)
	}
	if len(ev.Identities) == 0 {
		ev.Identities = nil
	}
	if len(ev.Consent) == 0 {
		ev.Consent = nil
	}
	if !hasCT {
		ev.ClientTime = olderClientTime(&ev)
	}
	return ev, nil
}

// olderClientTime is the client time of an entry written before entries
// recorded it, worked out as the gateway now works it out, so that a retry
// of the message through a newer gateway is still found: the client's own
// originalTimestamp, else the event time unless the gateway gave it (it
// then equals the receipt, to the nanosecond).
func olderClientTime(ev *cdp.Event) time.Time {
	switch {
	case !ev.OriginalTimestamp.IsZero():
		return ev.OriginalTimestamp
	case !ev.Timestamp.Equal(ev.ReceivedAt):
		return ev.Timestamp
	}
	return time.Time{}
}

// The decode helpers leave dst as it is for null, as encoding/json does,
// and report false for a value of the wrong type.

func decodeString(v []byte, dst *string) bool {
	switch v[0] {
	case 'n':
		return true
	case '"':
		*dst = jsonscan.Unquote(v)
		return true
	}
	return false
}

func decodeBool(v []byte, dst *bool) bool {
	switch v[0] {
	case 'n':
	case 't':
		*dst = true
	case 'f':
		*dst = false
	default:
		return false
	}
	return true
}

func decodeTime(v []byte, dst *time.Time) bool {
	if v[0] == 'n' {
		return true
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return false
	}
	*dst = fromNanos(n)
	return true
}

func decodeRaw(v []byte) json.RawMessage {
	return append(json.RawMessage(nil), v...)
}

// decodeArray calls fn for each element of the array v and reports false
// when v is not an array or fn refused an element. reset(true) first
// empties the slice (null makes it nil, as with encoding/json).
func decodeArray(v []byte, reset func(null bool), fn func(el []byte) bool) bool {
	if v[0] == 'n' {
		reset(true)
		return true
	}
	if v[0] != '[' {
		return false
	}
	reset(false)
	good := true
	jsonscan.EachElement(v, func(el []byte) {
		good = good && fn(el)
	})
	return good
}

func emptyOrNil[T any](null bool) []T {
	if null {
		return nil
	}
	return []T{}
}

func decodeStrings(v []byte, dst *[]string) bool {
	return decodeArray(v, func(null bool) { *dst = emptyOrNil[string](null) }, func(el []byte) bool {
		var s string
		if !decodeString(el, &s) {
			return false
		}
		*dst = append(*dst, s)
		return true
	})
}

// decodeObject calls fn for each member of the object v and reports false
// when v is neither an object nor null, or fn refused a member.
func decodeObject(v []byte, fn func(key string, value []byte) bool) bool {
	if v[0] == 'n' {
		return true
	}
	if v[0] != '{' {
		return false
	}
	good := true
	jsonscan.EachMember(v, func(k, val []byte) {
		good = good && fn(string(jsonscan.Key(k)), val)
	})
	return good
}

// decodeObjects decodes an array of objects into dst, each member through
// field.
func decodeObjects[T any](v []byte, dst *[]T, field func(x *T, key string, val []byte) bool) bool {
	return decodeArray(v, func(null bool) { *dst = emptyOrNil[T](null) }, func(el []byte) bool {
		var x T
		good := decodeObject(el, func(key string, val []byte) bool { return field(&x, key, val) })
		*dst = append(*dst, x)
		return good
	})
}

func decodeIdentities(v []byte, dst *[]cdp.Identity) bool {
	return decodeObjects(v, dst, func(id *cdp.Identity, key string, val []byte) bool {
		switch key {
		case "t":
			return decodeString(val, (*string)(&id.Type))
		case "v":
			return decodeString(val, &id.Value)
		}
		return true
	})
}

func decodeConsent(v []byte, dst *[]cdp.ConsentSignal) bool {
	return decodeObjects(v, dst, func(c *cdp.ConsentSignal, key string, val []byte) bool {
		switch key {
		case "voc":
			return decodeString(val, (*string)(&c.Vocabulary))
		case "k":
			return decodeString(val, &c.Key)
		case "p":
			return decodeString(val, (*string)(&c.Purpose))
		case "g":
			return decodeBool(val, &c.Granted)
		case "w":
			return decodeBool(val, &c.Withdrawn)
		case "at":
			return decodeTime(val, &c.CollectedAt)
		case "doc":
			return decodeString(val, &c.Document)
		case "loc":
			return decodeString(val, &c.Location)
		case "hw":
			return decodeString(val, &c.HardwareID)
		}
		return true
	})
}
