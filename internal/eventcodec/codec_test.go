package eventcodec

import (
	"bytes"
	"encoding/json"
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
)

func TestRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 28, 12, 0, 0, 123456789, time.UTC)
	events := []cdp.Event{
		{
			MessageID: "m1", WorkspaceID: "ws", SourceID: "src", Format: cdp.FormatSegment, Type: cdp.Identify,
			Identities: []cdp.Identity{{Type: cdp.UserID, Value: "u1"}, {Type: cdp.Email, Value: "a@example.com"}},
			Traits:     json.RawMessage(`{"plan":"pro"}`), DeletedTraits: []string{"old"},
			Context: json.RawMessage(`{"ip":"1.2.3.4"}`), Integrations: json.RawMessage(`{"All":false}`),
			IP: "1.2.3.4", GPC: true,
			Consent: []cdp.ConsentSignal{{Vocabulary: cdp.ConsentMParticleGDPR, Key: "marketing", Purpose: "marketing",
				Granted: false, Withdrawn: true, CollectedAt: at, Document: "v4", Location: "here", HardwareID: "hw"}},
			Timestamp: at, OriginalTimestamp: at.Add(-time.Second), SentAt: at.Add(time.Second), ClientTime: at.Add(-time.Second), ReceivedAt: at.Add(2 * time.Second),
		},
		{MessageID: "m2", WorkspaceID: "ws", SourceID: "src", Format: cdp.FormatMParticle, Type: cdp.Alias, PreviousID: "old",
			Identities: []cdp.Identity{{Type: cdp.UserID, Value: "u1"}}, Timestamp: at, ReceivedAt: at},
	}
	b, err := Encode(events)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, events) {
		t.Errorf("round trip changed the events:\n got %+v\nwant %+v", got, events)
	}
	if _, err := Decode([]byte("{not json}\n")); err == nil {
		t.Error("decoded garbage")
	}
}

// BenchmarkDecode reads a typical log record (a Segment track of about 500
// bytes): DecodeOne against the encoding/json decoder it replaced.
func BenchmarkDecode(b *testing.B) {
	at := time.Unix(0, 1_700_000_000_123_456_789).UTC()
	ev := cdp.Event{MessageID: "7f3a9c2e-5b1d-4e8f-a6c0-2d9e8b7f1a34", WorkspaceID: "ws_01", SourceID: "src_01JD2Q", Format: cdp.FormatSegment,
		Type: cdp.Track, Name: "Order Completed", Identities: []cdp.Identity{{Type: cdp.UserID, Value: "user-1001"}, {Type: cdp.AnonymousID, Value: "a3c1e9f0-4b2d-4c8e-9f1a-7d6b5e4c3b2a"}},
		Properties: json.RawMessage(`{"order_id":"50314b8e9bcf000000000000","total":27.5,"revenue":25,"currency":"USD","products":[{"product_id":"507f1f77bcf86cd799439011","sku":"45790-32","name":"Monopoly","price":19,"quantity":1}]}`),
		Context:    json.RawMessage(`{"library":{"name":"analytics-go","version":"3.0.0"},"userAgent":"Mozilla/5.0","locale":"en-US","page":{"path":"/checkout","url":"https://shop.example/checkout"}}`),
		IP:         "203.0.113.9", Timestamp: at, SentAt: at, ReceivedAt: at}
	line, err := Append(nil, &ev)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		fn   func([]byte) (cdp.Event, error)
	}{{"jsonscan", DecodeOne}, {"encoding-json", decodeReference}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.fn(line); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestClientTimeOfOlderEntries: an entry written before entries recorded
// the client's time gets the time the gateway now gives such a message, so
// a retry of it through a newer gateway has the same deduplication key; a
// newer entry keeps what it recorded, none included.
func TestClientTimeOfOlderEntries(t *testing.T) {
	rat := time.Date(2026, 11, 28, 12, 0, 0, 123456789, time.UTC)
	given := time.Date(2026, 11, 28, 11, 59, 58, 0, time.UTC)
	for _, c := range []struct {
		name string
		ev   cdp.Event
		want time.Time
	}{
		{"originalTimestamp", cdp.Event{OriginalTimestamp: given.Add(-time.Second), Timestamp: rat.Add(-time.Second), SentAt: rat}, given.Add(-time.Second)},
		{"timestamp as given", cdp.Event{Timestamp: given}, given},
		{"timestamp the gateway gave", cdp.Event{Timestamp: rat}, time.Time{}},
	} {
		ev := c.ev
		ev.MessageID, ev.WorkspaceID, ev.SourceID, ev.Type, ev.ReceivedAt = "m", "ws", "src", cdp.Track, rat
		line, err := Append(nil, &ev)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(line, []byte(`,"ct":`)) {
			t.Fatalf("%s: the client time is not written when zero: %s", c.name, line)
		}
		older := regexp.MustCompile(`,"ct":-?[0-9]+`).ReplaceAll(line, nil)
		for _, dec := range []struct {
			name string
			fn   func([]byte) (cdp.Event, error)
		}{{"jsonscan", DecodeOne}, {"encoding-json", decodeReference}} {
			got, err := dec.fn(older)
			if err != nil {
				t.Fatal(err)
			}
			if !got.ClientTime.Equal(c.want) {
				t.Errorf("%s, %s: older entry's client time %v, want %v", c.name, dec.name, got.ClientTime, c.want)
			}
			got, err = dec.fn(line)
			if err != nil {
				t.Fatal(err)
			}
			if !got.ClientTime.Equal(ev.ClientTime) {
				t.Errorf("%s, %s: client time %v, want what was recorded (%v)", c.name, dec.name, got.ClientTime, ev.ClientTime)
			}
		}
	}
}
