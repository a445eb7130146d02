package eventcodec

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/jsonscan"
)

// asJSON is what encoding/json makes of a string (invalid UTF-8 becomes
// U+FFFD): the hand-written encoder must agree.
func asJSON(s string) string {
	b, _ := json.Marshal(s)
	var out string
	_ = json.Unmarshal(b, &out)
	return out
}

func compact(raw []byte) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return "invalid: " + err.Error()
	}
	return b.String()
}

// FuzzAppend: any strings and any valid raw JSON make one line that
// decodes to the same event.
func FuzzAppend(f *testing.F) {
	f.Add("m1", "Order Completed", "user-1", []byte(`{"a": 1,
 "b": [true, null]}`))
	f.Add("m\x00\"\\", "caf\xc3\xa9\xff", "\u2028\t\r\n", []byte(`"x\ny"`))
	f.Add("", "", "", []byte(` null `))
	f.Fuzz(func(t *testing.T, mid, name, value string, raw []byte) {
		if !json.Valid(raw) {
			raw = nil // Append's precondition: the gateway validated raw fields
		}
		at := time.Unix(0, 1_700_000_000_123_456_789).UTC()
		ev := cdp.Event{MessageID: mid, WorkspaceID: "ws", SourceID: "src", Type: cdp.Track, Name: name,
			Identities: []cdp.Identity{{Type: cdp.UserID, Value: value}}, Properties: raw, Context: raw,
			DeletedTraits: []string{value}, Consent: []cdp.ConsentSignal{{Key: name, Granted: true, Location: value, CollectedAt: at}},
			Timestamp: at, ReceivedAt: at}
		b, err := Append(nil, &ev)
		if err != nil {
			t.Fatalf("append: %v", err)
		}
		if bytes.IndexByte(b, '\n') != len(b)-1 {
			t.Fatalf("record is not one line: %q", b)
		}
		got, err := DecodeOne(b)
		if err != nil {
			t.Fatalf("decode %q: %v", b, err)
		}
		if got.MessageID != asJSON(mid) || got.Name != asJSON(name) || got.Identities[0].Value != asJSON(value) ||
			got.DeletedTraits[0] != asJSON(value) || got.Consent[0].Key != asJSON(name) || got.Consent[0].Location != asJSON(value) {
			t.Fatalf("strings changed: %+v", got)
		}
		if !got.Timestamp.Equal(at) || !got.Consent[0].CollectedAt.Equal(at) || !got.ReceivedAt.Equal(at) {
			t.Fatalf("times changed: %+v", got)
		}
		want := ""
		if raw != nil && compact(raw) != "null" {
			want = compact(raw)
		}
		for _, r := range []json.RawMessage{got.Properties, got.Context} {
			if g := string(rawOrNil(r)); g != want && compact(r) != want {
				t.Fatalf("raw field %q came back as %q", want, r)
			}
		}
	})
}

// FuzzDecodeOne holds DecodeOne to the encoding/json decoder it replaced:
// whatever it accepts, encoding/json accepts and reads the same. (Field
// names that match ours only when case is ignored are left out: encoding/json
// matches them, DecodeOne does not, and Append never writes them.)
func FuzzDecodeOne(f *testing.F) {
	at := time.Unix(0, 1_700_000_000_123_456_789).UTC()
	ev := cdp.Event{MessageID: "m1", WorkspaceID: "ws", SourceID: "src", Format: cdp.FormatSegment, Type: cdp.Identify, Name: "n",
		Identities: []cdp.Identity{{Type: cdp.UserID, Value: "u\u00e9"}, {Type: cdp.Email, Value: "a@b.c"}}, PreviousID: "p", GroupID: "g",
		Traits: json.RawMessage(`{"plan":"pro"}`), DeletedTraits: []string{"x"}, Properties: json.RawMessage(`[1,{"a":null}]`),
		Context: json.RawMessage(`{"ip":"1.2.3.4"}`), Integrations: json.RawMessage(`{"All":false}`), IP: "1.2.3.4",
		Consent: []cdp.ConsentSignal{{Vocabulary: "v", Key: "k", Purpose: "p", Granted: true, Withdrawn: true, CollectedAt: at, Document: "d", Location: "l", HardwareID: "h"}},
		GPC:     true, Timestamp: at, OriginalTimestamp: at, SentAt: at, ReceivedAt: at}
	line, err := Append(nil, &ev)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(line)
	f.Add([]byte(`{"mid":null,"ids":[null,{"t":"email"}],"ids":null,"cs":[],"gpc":false,"ts":-0,"tr":null,"zz":[{"t":1}]}`))
	f.Add([]byte(`{"mid":1}`))
	f.Add([]byte(`{"ts":1e3}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		got, err := DecodeOne(line)
		if err != nil || foldedKey(line) {
			return
		}
		want, werr := decodeReference(line)
		if werr != nil {
			t.Fatalf("DecodeOne accepted %q, encoding/json refuses it: %v", line, werr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n got %#v\nwant %#v", line, got, want)
		}
	})
}

var recordKeys = strings.Fields("mid ws src fmt t n ids prev grp tr dtr pr ctx int ip cs gpc ts ots sat ct rat v voc k p g w at doc loc hw")

// foldedKey reports whether any object key in data equals one of the
// record's field names only when case is ignored.
func foldedKey(data []byte) bool {
	found := false
	var walk func(v []byte)
	walk = func(v []byte) {
		switch {
		case len(v) == 0 || found:
		case v[0] == '{':
			jsonscan.EachMember(v, func(k, val []byte) {
				key := jsonscan.Key(k)
				for _, rk := range recordKeys {
					if string(key) != rk && bytes.EqualFold(key, []byte(rk)) {
						found = true
					}
				}
				walk(val)
			})
		case v[0] == '[':
			jsonscan.EachElement(v, walk)
		}
	}
	walk(bytes.TrimSpace(data))
	return found
}
