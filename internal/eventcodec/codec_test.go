package eventcodec

import (
	"encoding/json"
	"reflect"
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
			Timestamp: at, OriginalTimestamp: at.Add(-time.Second), SentAt: at.Add(time.Second), ReceivedAt: at.Add(2 * time.Second),
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
