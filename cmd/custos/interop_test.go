package main

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	mparticle "github.com/mParticle/mparticle-go-sdk/events"
	rudder "github.com/rudderlabs/analytics-go/v4"
	segment "github.com/segmentio/analytics-go/v3"
)

// These tests point the official client libraries at Custos by changing
// only their endpoint, and check what was stored.

type identityPair struct{ typ, value string }

func hasIdentity(e listedEvent, want identityPair) bool {
	for _, id := range e.Identities {
		if id.Type == want.typ && id.Value == want.value {
			return true
		}
	}
	return false
}

func byMessageID(evs []listedEvent) map[string]listedEvent {
	m := make(map[string]listedEvent, len(evs))
	for _, e := range evs {
		m[e.MessageID] = e
	}
	return m
}

// segmentCallback records the library's own verdict per message.
type segmentCallback struct {
	mu       sync.Mutex
	ok, fail int
}

func (c *segmentCallback) Success(segment.Message) { c.mu.Lock(); c.ok++; c.mu.Unlock() }
func (c *segmentCallback) Failure(_ segment.Message, err error) {
	c.mu.Lock()
	c.fail++
	c.mu.Unlock()
}

func TestInteropSegmentGo(t *testing.T) {
	srv := startInProcess(t, backend{name: "embedded", natsPrefix: "custos"}, t.TempDir())
	cb := &segmentCallback{}
	cl, err := segment.NewWithConfig(testWriteKey, segment.Config{
		Endpoint: srv.url, Interval: 50 * time.Millisecond, BatchSize: 10, Callback: cb,
	})
	if err != nil {
		t.Fatal(err)
	}
	msgs := []segment.Message{
		segment.Identify{MessageId: "sg-identify", AnonymousId: "anon-sg", UserId: "user-sg",
			Traits: segment.NewTraits().SetEmail("Ada@Example.COM ").Set("plan", "pro")},
		segment.Track{MessageId: "sg-track", UserId: "user-sg", Event: "Order Completed",
			Properties: segment.NewProperties().SetRevenue(19.99).SetCurrency("EUR")},
		segment.Page{MessageId: "sg-page", AnonymousId: "anon-sg", Name: "Pricing"},
		segment.Screen{MessageId: "sg-screen", UserId: "user-sg", Name: "Home"},
		segment.Group{MessageId: "sg-group", UserId: "user-sg", GroupId: "acme"},
		segment.Alias{MessageId: "sg-alias", PreviousId: "anon-sg", UserId: "user-sg"},
		segment.Track{UserId: "user-sg", Event: "Library Assigned Id"},
	}
	for _, m := range msgs {
		if err := cl.Enqueue(m); err != nil {
			t.Fatalf("enqueue: %v", err)
		}
	}
	if err := cl.Close(); err != nil {
		t.Fatal(err)
	}
	if cb.fail != 0 || cb.ok != len(msgs) {
		t.Fatalf("library reported %d successes and %d failures, want %d and 0", cb.ok, cb.fail, len(msgs))
	}
	c := newClient(srv.url)
	evs := c.waitForEvents(t, "the Segment library's events", 20*time.Second, func(evs []listedEvent) bool { return len(evs) >= len(msgs) })
	got := byMessageID(evs)
	tests := []struct {
		mid, typ, name string
		id             identityPair
	}{
		{"sg-identify", "identify", "", identityPair{"email", "ada@example.com"}},
		{"sg-track", "track", "Order Completed", identityPair{"user_id", "user-sg"}},
		{"sg-page", "page", "Pricing", identityPair{"anonymous_id", "anon-sg"}},
		{"sg-screen", "screen", "Home", identityPair{"user_id", "user-sg"}},
		{"sg-group", "group", "", identityPair{"user_id", "user-sg"}},
		{"sg-alias", "alias", "", identityPair{"user_id", "user-sg"}},
	}
	for _, tt := range tests {
		e, ok := got[tt.mid]
		if !ok {
			t.Errorf("%s not stored", tt.mid)
			continue
		}
		if e.Type != tt.typ || e.Event != tt.name || !hasIdentity(e, tt.id) {
			t.Errorf("%s stored as %s %q %+v, want %s %q with %s", tt.mid, e.Type, e.Event, e.Identities, tt.typ, tt.name, tt.id.typ)
		}
	}
	if len(evs) != len(msgs) {
		t.Errorf("stored %d events, want %d", len(evs), len(msgs))
	}
}

func TestInteropRudderStackGo(t *testing.T) {
	srv := startInProcess(t, backend{name: "embedded", natsPrefix: "custos"}, t.TempDir())
	var (
		mu       sync.Mutex
		ok, fail int
	)
	cl, err := rudder.NewWithConfig(testWriteKey, rudder.Config{
		DataPlaneUrl: srv.url, Interval: 50 * time.Millisecond, BatchSize: 10,
		Callback: rudderCallback{func(success bool) {
			mu.Lock()
			defer mu.Unlock()
			if success {
				ok++
			} else {
				fail++
			}
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	msgs := []rudder.Message{
		rudder.Identify{MessageId: "rs-identify", AnonymousId: "anon-rs", UserId: "user-rs",
			Traits: rudder.NewTraits().SetPhone("+1 (415) 555-0100")},
		rudder.Track{MessageId: "rs-track", UserId: "user-rs", Event: "Signed Up",
			Context: &rudder.Context{Extra: map[string]any{"consentManagement": map[string]any{
				"provider": "oneTrust", "allowedConsentIds": []string{"C0001", "C0002"}, "deniedConsentIds": []string{"C0004"}}}}},
	}
	for _, m := range msgs {
		if err := cl.Enqueue(m); err != nil {
			t.Fatalf("enqueue: %v", err)
		}
	}
	if err := cl.Close(); err != nil {
		t.Fatal(err)
	}
	if fail != 0 || ok != len(msgs) {
		t.Fatalf("library reported %d successes and %d failures, want %d and 0", ok, fail, len(msgs))
	}
	c := newClient(srv.url)
	evs := c.waitForEvents(t, "the RudderStack library's events", 20*time.Second, func(evs []listedEvent) bool { return len(evs) >= 2 })
	got := byMessageID(evs)
	if e := got["rs-identify"]; e.Type != "identify" || !hasIdentity(e, identityPair{"phone", "+14155550100"}) {
		t.Errorf("identify stored as %+v, want identify with phone +14155550100", e)
	}
	if e := got["rs-track"]; e.Type != "track" || e.Event != "Signed Up" || !hasIdentity(e, identityPair{"user_id", "user-rs"}) {
		t.Errorf("track stored as %+v, want track \"Signed Up\" of user-rs", e)
	}
}

type rudderCallback struct{ f func(bool) }

func (c rudderCallback) Success(rudder.Message)        { c.f(true) }
func (c rudderCallback) Failure(rudder.Message, error) { c.f(false) }

func TestInteropMParticleGo(t *testing.T) {
	srv := startInProcess(t, backend{name: "embedded", natsPrefix: "custos"}, t.TempDir())
	cfg := mparticle.NewConfiguration()
	cfg.BasePath = srv.url + "/v2"
	cl := mparticle.NewAPIClient(cfg)
	ctx := context.WithValue(context.Background(), mparticle.ContextBasicAuth,
		mparticle.BasicAuth{APIKey: testWriteKey, APISecret: testWriteSecret})

	custom := mparticle.NewCustomEvent()
	custom.Data.EventName = "Played Video"
	custom.Data.CustomEventType = mparticle.MediaCustomEventType
	custom.Data.SourceMessageID = "mp-custom"
	custom.Data.CustomAttributes = map[string]any{"video": "intro"}
	screen := mparticle.NewScreenViewEvent()
	screen.Data.ScreenName = "Checkout"
	screen.Data.SourceMessageID = "mp-screen"
	batch := mparticle.Batch{
		Environment:     mparticle.DevelopmentEnvironment,
		SourceRequestID: "mp-request-1",
		MPID:            8001,
		UserIdentities:  &mparticle.UserIdentities{CustomerID: "user-mp", Email: "MP@example.com"},
		DeviceInfo:      &mparticle.DeviceInformation{IOSAdvertisingID: "607258D9-C28B-43AD-95ED-E9593025D5A1"},
		UserAttributes:  map[string]any{"tier": "gold"},
		ConsentState: &mparticle.ConsentState{GDPR: map[string]mparticle.GdprConsentState{
			"marketing": {Consented: true, Document: "privacy_v4", TimestampUnixtimeMS: 1764300000000},
		}},
		Events: []mparticle.Event{custom, screen},
	}
	resp, err := cl.EventsAPI.UploadEvents(ctx, batch)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("upload: status %d, want 202", resp.StatusCode)
	}
	bulk := batch
	bulk.SourceRequestID = "mp-request-2"
	bulk.ConsentState, bulk.UserAttributes = nil, nil
	bulkEvent := mparticle.NewCustomEvent()
	bulkEvent.Data.EventName = "Bulk"
	bulkEvent.Data.CustomEventType = mparticle.OtherCustomEventType
	bulkEvent.Data.SourceMessageID = "mp-bulk"
	bulk.Events = []mparticle.Event{bulkEvent}
	if resp, err = cl.EventsAPI.BulkUploadEvents(ctx, []mparticle.Batch{bulk}); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("bulk upload: status %v, err %v", resp, err)
	}

	c := newClient(srv.url)
	evs := c.waitForEvents(t, "the mParticle library's events", 20*time.Second, func(evs []listedEvent) bool { return len(evs) >= 4 })
	got := byMessageID(evs)
	tests := []struct {
		mid, typ, name string
		id             identityPair
	}{
		{"mp-request-1:identify", "identify", "", identityPair{"email", "mp@example.com"}},
		{"mp-custom", "track", "Played Video", identityPair{"mpid", "8001"}},
		{"mp-screen", "screen", "Checkout", identityPair{"ios_idfa", "607258d9-c28b-43ad-95ed-e9593025d5a1"}},
		{"mp-bulk", "track", "Bulk", identityPair{"user_id", "user-mp"}},
	}
	for _, tt := range tests {
		e, ok := got[tt.mid]
		if !ok {
			t.Errorf("%s not stored (have %v)", tt.mid, keys(got))
			continue
		}
		if e.Type != tt.typ || e.Event != tt.name || !hasIdentity(e, tt.id) {
			t.Errorf("%s stored as %s %q %+v, want %s %q with %s", tt.mid, e.Type, e.Event, e.Identities, tt.typ, tt.name, tt.id.typ)
		}
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
