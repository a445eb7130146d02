package ingest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/jsonscan"
)

// The types in this file decode the loosely typed values that real clients
// send, without going through interface{} maps: the decoder hands each one
// the raw bytes of its value.

var stringType = reflect.TypeFor[string]()

// flexString is an identifier that clients send as a JSON string or number
// (a numeric userId, mpid or messageId). A number keeps its decimal text;
// null and absence leave it empty. Any other JSON type is an
// *json.UnmarshalTypeError, which the decoder annotates with the field path.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	s, ok := flexValue(b)
	if !ok {
		return &json.UnmarshalTypeError{Value: jsonKind(b[0]), Type: stringType}
	}
	*f = flexString(s)
	return nil
}

// flexValue reads a valid raw JSON value as a flexString; ok is false for
// types other than string, number and null.
func flexValue(b []byte) (s string, ok bool) {
	switch b[0] {
	case 'n':
		return "", true
	case '"':
		return jsonscan.Unquote(b), true
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return numberText(b), true
	}
	return "", false
}

// numberText renders a JSON number as plain decimal text, so that 1e3 and
// 1000 name the same identifier. Integers of any length keep their digits.
func numberText(b []byte) string {
	if bytes.ContainsAny(b, ".eE") {
		if f, err := strconv.ParseFloat(string(b), 64); err == nil {
			return strconv.FormatFloat(f, 'f', -1, 64)
		}
	}
	return string(b)
}

// lenientString is a string field whose wrong type must not abort decoding
// of the rest of the message: the caller checks bad and picks the reason
// code (an event name of the wrong type is missing_event, not a type error).
type lenientString struct {
	s   string
	bad bool
}

func (l *lenientString) UnmarshalJSON(b []byte) error {
	*l = lenientValue(b)
	return nil
}

func lenientValue(b []byte) lenientString {
	switch b[0] {
	case 'n':
		return lenientString{}
	case '"':
		return lenientString{s: jsonscan.Unquote(b)}
	}
	return lenientString{bad: true}
}

func jsonKind(c byte) string {
	switch c {
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	case '"':
		return "string"
	case 'n':
		return "null"
	}
	return "number"
}

// The event log stores times as Unix nanoseconds, which cover roughly the
// years 1678 to 2262; a time outside is refused rather than wrapped around.
var (
	minTime = time.Date(1678, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)
)

func representable(t time.Time) bool {
	return !t.Before(minTime) && t.Before(maxTime)
}

// wireTime is an RFC 3339 timestamp. Go clients that marshal a zero
// time.Time send "0001-01-01T00:00:00Z" for "not set", so the zero time
// counts as absent, as do null and "".
type wireTime struct {
	t   time.Time
	bad bool
}

func (w *wireTime) UnmarshalJSON(b []byte) error {
	*w = timeValue(b)
	return nil
}

func timeValue(b []byte) wireTime {
	switch b[0] {
	case 'n':
		return wireTime{}
	case '"':
	default:
		return wireTime{bad: true}
	}
	s := jsonscan.Unquote(b)
	if s == "" {
		return wireTime{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	switch {
	case err != nil:
		return wireTime{bad: true}
	case t.IsZero():
		return wireTime{}
	case !representable(t):
		return wireTime{bad: true}
	}
	return wireTime{t: t.UTC()}
}

// msTime is a Unix time in milliseconds, mParticle's timestamp form. Zero
// and null count as absent.
type msTime struct {
	t   time.Time
	bad bool
}

func (m *msTime) UnmarshalJSON(b []byte) error {
	*m = msTime{}
	if b[0] == 'n' {
		return nil
	}
	if b[0] != '-' && (b[0] < '0' || b[0] > '9') {
		m.bad = true
		return nil
	}
	ms, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(string(b), 64)
		if ferr != nil || f < -1<<62 || f > 1<<62 {
			m.bad = true
			return nil
		}
		ms = int64(f)
	}
	if ms == 0 {
		return nil
	}
	if ms < minTime.UnixMilli() || ms >= maxTime.UnixMilli() {
		m.bad = true
		return nil
	}
	m.t = time.UnixMilli(ms).UTC()
	return nil
}

// rawMsg holds one element of a batch without copying it: it is decoded on
// its own right after and never outlives the request body. (The decoded
// event copies every byte it keeps.)
type rawMsg []byte

func (m *rawMsg) UnmarshalJSON(b []byte) error {
	*m = b
	return nil
}

// isNull reports whether a decoded raw value is absent or JSON null.
func isNull(raw []byte) bool {
	return len(raw) == 0 || jsonscan.FirstByte(raw) == 'n'
}

// objectField returns raw when it is a JSON object, nil when it is absent
// or null, and an invalid_field error naming field otherwise.
func objectField(raw json.RawMessage, field string) (json.RawMessage, *cdp.Error) {
	if isNull(raw) {
		return nil, nil
	}
	if jsonscan.FirstByte(raw) != '{' {
		return nil, reject(codeInvalidField, field+" must be a JSON object")
	}
	return raw, nil
}

// members calls fn for each member of the JSON object raw, in document
// order, so that signals and identities come out in the order they were
// sent. Values alias raw. Anything but a valid object is errNotObject; the
// first error of fn stops the walk and is returned.
func members(raw []byte, fn func(key string, value json.RawMessage) error) error {
	if jsonscan.FirstByte(raw) != '{' {
		return errNotObject
	}
	var err error
	ok := jsonscan.EachMember(raw, func(k, v []byte) {
		if err == nil {
			err = fn(string(jsonscan.Key(k)), v)
		}
	})
	if err != nil {
		return err
	}
	if !ok {
		return errNotObject
	}
	return nil
}

var errNotObject = reject(codeInvalidField, "not a JSON object")

// newMessageID returns a random UUIDv4 for a message the client sent
// without an id.
func newMessageID() string {
	var u [16]byte
	_, _ = rand.Read(u[:]) // never fails: crypto/rand aborts the program instead
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:], u[10:])
	return string(s[:])
}

// clientIP returns s in canonical form when it is an IP address and ""
// otherwise: a client's notion of its own address is kept only when it is
// one.
func clientIP(s string) string {
	if s == "" {
		return ""
	}
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return ""
	}
	return a.Unmap().WithZone("").String()
}
