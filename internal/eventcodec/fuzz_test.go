package eventcodec

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
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
