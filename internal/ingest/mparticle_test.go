package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
)

func decodeMP(t *testing.T, body string) MParticleRequest {
	t.Helper()
	req, err := DecodeMParticle([]byte(body), false, Limits{}, receivedAt)
	if err != nil {
		t.Fatalf("got error %v, want none", err)
	}
	return req
}

func TestDecodeMParticleIdentities(t *testing.T) {
	tests := []struct {
		name  string
		batch string
		want  []cdp.Identity
	}{
		{"mpid number", `"mpid":-8433569646818451201`, ids("mpid", "-8433569646818451201")},
		{"mpid string", `"mpid":"42"`, ids("mpid", "42")},
		{"mpid zero is junk", `"mpid":0,"user_identities":{"customer_id":"u-1"}`, ids("user_id", "u-1")},
		{
			"user identities in order",
			`"user_identities":{"customer_id":"u-1","email":"Ada@Example.com","mobile_number":"+1 202 555 0123","other":"o-1",
				"other_id_2":"o-2","facebook":"fb-1","other_id_5":"o-5","Google":"g-1"}`,
			ids("user_id", "u-1", "email", "ada@example.com", "phone", "+12025550123", "custom:other", "o-1",
				"custom:other_id_2", "o-2", "custom:facebook", "fb-1", "custom:other_id_5", "o-5", "custom:google", "g-1"),
		},
		{"junk and null identities dropped", `"mpid":7,"user_identities":{"customer_id":"null","email":null,"other":"unknown"}`, ids("mpid", "7")},
		{
			"device ids",
			`"device_info":{"ios_idfv":"IDFV-1","ios_advertising_id":"IDFA-1","android_advertising_id":"AAID-1","android_uuid":"AID-1","brand":"x"}`,
			ids("ios_idfv", "idfv-1", "ios_idfa", "idfa-1", "android_aaid", "aaid-1", "android_id", "aid-1"),
		},
		{"duplicates once", `"mpid":7,"user_identities":{"customer_id":"u-1","other":"x"},"device_info":{"ios_idfv":"A"}`, ids("mpid", "7", "user_id", "u-1", "custom:other", "x", "ios_idfv", "a")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := decodeMP(t, `{`+tt.batch+`,"events":[{"event_type":"session_start","data":{}},{"event_type":"session_end","data":{}}]}`)
			if len(req.Events) != 2 {
				t.Fatalf("got %d events (rejections %v), want 2", len(req.Events), req.Rejected)
			}
			for _, ev := range req.Events {
				assertEvent(t, cdp.Event{Identities: ev.Identities}, cdp.Event{Identities: tt.want})
			}
		})
	}
}

func TestDecodeMParticleEventTypes(t *testing.T) {
	tests := []struct {
		eventType string
		data      string
		wantType  cdp.EventType
		wantName  string
	}{
		{"custom_event", `{"event_name":"Played","custom_event_type":"media"}`, cdp.Track, "Played"},
		{"screen_view", `{"screen_name":"Home","event_name":"ignored"}`, cdp.Screen, "Home"},
		{"screen_view", `{"event_name":"Settings"}`, cdp.Screen, "Settings"},
		{"commerce_event", `{}`, cdp.Track, "Commerce Event"},
		{"commerce_event", `{"event_name":"Purchase"}`, cdp.Track, "Purchase"},
		{"session_start", `{}`, cdp.Track, "Session Start"},
		{"session_end", `{}`, cdp.Track, "Session End"},
		{"user_attribute_change", `{}`, cdp.Identify, ""},
		{"user_identity_change", `{}`, cdp.Identify, ""},
		{"opt_out", `{}`, cdp.Track, "Opt Out"},
		{"crash_report", `{}`, cdp.Track, "Crash Report"},
		{"push_registration", `{}`, cdp.Track, "Push Registration"},
		{"breadcrumb", `{}`, cdp.Track, "Breadcrumb"},
		{"application_state_transition", `{}`, cdp.Track, "Application State Transition"},
		{"first_run", `{}`, cdp.Track, "First Run"},
		{"uninstall", `{}`, cdp.Track, "Uninstall"},
		{"media_event", `{}`, cdp.Track, "Media Event"},
	}
	for _, tt := range tests {
		t.Run(tt.eventType+" "+tt.data, func(t *testing.T) {
			req := decodeMP(t, `{"mpid":7,"events":[{"event_type":"`+tt.eventType+`","data":`+tt.data+`}]}`)
			if len(req.Events) != 1 {
				t.Fatalf("got %d events (rejections %v), want 1", len(req.Events), req.Rejected)
			}
			if ev := req.Events[0]; ev.Type != tt.wantType || ev.Name != tt.wantName || ev.Format != cdp.FormatMParticle {
				t.Errorf("got %s %s %q, want %s %s %q", ev.Format, ev.Type, ev.Name, cdp.FormatMParticle, tt.wantType, tt.wantName)
			}
		})
	}
}

func TestDecodeMParticleEvent(t *testing.T) {
	batchTS := time.UnixMilli(1764300000000).UTC()
	tests := []struct {
		name  string
		batch string // the batch minus its closing brace, events follow
		event string
		want  func(cdp.Event) cdp.Event
	}{
		{
			name:  "custom event with attributes and its own id and time",
			batch: `{"mpid":7,"environment":"production","source_request_id":"req-1","timestamp_unixtime_ms":1764300000000`,
			event: `{"event_type":"custom_event","data":{"event_name":"Played","custom_event_type":"media","source_message_id":"sm-1","timestamp_unixtime_ms":1764300001234,"custom_attributes":{"song":"x"}}}`,
			want: func(e cdp.Event) cdp.Event {
				e.MessageID, e.Name, e.Properties = "sm-1", "Played", json.RawMessage(`{"song":"x"}`)
				e.Timestamp = time.UnixMilli(1764300001234).UTC()
				e.Context = json.RawMessage(`{"mparticle":{"environment":"production","event_type":"custom_event","custom_event_type":"media","source_request_id":"req-1"}}`)
				return e
			},
		},
		{
			name:  "message id from the request id and the event's position; batch time",
			batch: `{"mpid":7,"source_request_id":"req-1","timestamp_unixtime_ms":1764300000000`,
			event: `{"event_type":"session_start","data":{}}`,
			want: func(e cdp.Event) cdp.Event {
				e.MessageID, e.Name, e.Timestamp = "req-1:0", "Session Start", batchTS
				e.Context = json.RawMessage(`{"mparticle":{"event_type":"session_start","source_request_id":"req-1"}}`)
				return e
			},
		},
		{
			name:  "device, batch context, ip",
			batch: `{"mpid":7,"ip":"203.0.113.9","device_info":{"platform":"iOS","ios_idfv":"V"},"context":{"data_plan":{"plan_id":"p","plan_version":2},"mparticle":"shadowed"}`,
			event: `{"event_type":"screen_view","data":{"screen_name":"Home","source_message_id":"sm-1"}}`,
			want: func(e cdp.Event) cdp.Event {
				e.MessageID, e.Type, e.Name, e.IP = "sm-1", cdp.Screen, "Home", "203.0.113.9"
				e.Identities = ids("mpid", "7", "ios_idfv", "v")
				e.Context = json.RawMessage(`{"data_plan":{"plan_id":"p","plan_version":2},"device":{"platform":"iOS","ios_idfv":"V"},"mparticle":{"event_type":"screen_view"}}`)
				return e
			},
		},
		{
			name:  "commerce event properties",
			batch: `{"mpid":7`,
			event: `{"event_type":"commerce_event","data":{"source_message_id":"sm-1","custom_attributes":{"coupon":"X","currency_code":"shadowed"},
				"product_action":{"action":"purchase","total_amount":42.5,"products":[{"id":"p1"}]},"product_impressions":[{"product_impression_list":"l"}],
				"promotion_action":null,"currency_code":"EUR"}}`,
			want: func(e cdp.Event) cdp.Event {
				e.MessageID, e.Name = "sm-1", "Commerce Event"
				e.Properties = json.RawMessage(`{"coupon":"X","currency_code":"EUR","product_action":{"action":"purchase","total_amount":42.5,"products":[{"id":"p1"}]},"product_impressions":[{"product_impression_list":"l"}]}`)
				e.Context = json.RawMessage(`{"mparticle":{"event_type":"commerce_event"}}`)
				return e
			},
		},
		{
			name:  "user attribute change sets a trait",
			batch: `{"mpid":7`,
			event: `{"event_type":"user_attribute_change","data":{"source_message_id":"sm-1","user_attribute_name":"plan","new":"pro","old":"free","deleted":false}}`,
			want: func(e cdp.Event) cdp.Event {
				e.MessageID, e.Type, e.Traits = "sm-1", cdp.Identify, json.RawMessage(`{"plan":"pro"}`)
				e.Context = json.RawMessage(`{"mparticle":{"event_type":"user_attribute_change"}}`)
				return e
			},
		},
		{
			name:  "user attribute change deletes a trait",
			batch: `{"mpid":7`,
			event: `{"event_type":"user_attribute_change","data":{"source_message_id":"sm-1","user_attribute_name":"plan","old":"free","deleted":true}}`,
			want: func(e cdp.Event) cdp.Event {
				e.MessageID, e.Type, e.DeletedTraits = "sm-1", cdp.Identify, []string{"plan"}
				e.Context = json.RawMessage(`{"mparticle":{"event_type":"user_attribute_change"}}`)
				return e
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := decodeMP(t, tt.batch+`,"events":[`+tt.event+`]}`)
			if len(req.Events) != 1 {
				t.Fatalf("got %d events (rejections %v), want 1", len(req.Events), req.Rejected)
			}
			base := cdp.Event{Format: cdp.FormatMParticle, Type: cdp.Track, Identities: ids("mpid", "7"), Timestamp: receivedAt, ReceivedAt: receivedAt}
			assertEvent(t, req.Events[0], tt.want(base))
		})
	}

	t.Run("random message id without any id", func(t *testing.T) {
		req := decodeMP(t, `{"mpid":7,"events":[{"event_type":"first_run","data":{}}]}`)
		if id := req.Events[0].MessageID; !uuidV4.MatchString(id) {
			t.Errorf("got message id %q, want a UUIDv4", id)
		}
	})
}

func TestDecodeMParticleIdentifyAndConsent(t *testing.T) {
	body := `{"mpid":7,"source_request_id":"req-9","timestamp_unixtime_ms":1764300000000,
		"user_identities":{"customer_id":"u-1"},
		"user_attributes":{"plan":"pro","$FirstName":"Ada"},
		"deleted_user_attributes":["old_plan",""],
		"consent_state":{
			"gdpr":{"marketing":{"consented":true,"document":"privacy_policy_v4","timestamp_unixtime_ms":1764200000000,"location":"example.com/signup","hardware_id":"IDFA:abc"},
			        "analytics":{"consented":false}},
			"ccpa":{"data_sale_opt_out":{"consented":true,"timestamp_unixtime_ms":1764100000000},"sharing_opt_out":{"consented":true}}},
		"events":[{"event_type":"custom_event","data":{"event_name":"E"}}]}`
	req := decodeMP(t, body)
	if len(req.Events) != 2 {
		t.Fatalf("got %d events (rejections %v), want identify + track", len(req.Events), req.Rejected)
	}
	batchTS := time.UnixMilli(1764300000000).UTC()
	assertEvent(t, req.Events[0], cdp.Event{
		MessageID: "req-9:identify", Format: cdp.FormatMParticle, Type: cdp.Identify,
		Identities:    ids("mpid", "7", "user_id", "u-1"),
		Traits:        json.RawMessage(`{"plan":"pro","$FirstName":"Ada"}`),
		DeletedTraits: []string{"old_plan"},
		Context:       json.RawMessage(`{"mparticle":{"source_request_id":"req-9"}}`),
		Consent: []cdp.ConsentSignal{
			{Vocabulary: cdp.ConsentMParticleGDPR, Key: "marketing", Granted: true, CollectedAt: time.UnixMilli(1764200000000).UTC(),
				Document: "privacy_policy_v4", Location: "example.com/signup", HardwareID: "IDFA:abc"},
			{Vocabulary: cdp.ConsentMParticleGDPR, Key: "analytics", Granted: false},
			// consented:true under data_sale_opt_out is an opt-out: not granted.
			{Vocabulary: cdp.ConsentMParticleCCPA, Key: "data_sale_opt_out", Granted: false, CollectedAt: time.UnixMilli(1764100000000).UTC()},
		},
		Timestamp: batchTS, ReceivedAt: receivedAt,
	})
	if track := req.Events[1]; track.Type != cdp.Track || track.MessageID != "req-9:0" || len(track.Consent) != 0 || track.Traits != nil {
		t.Errorf("got track %s %q with %d consent signals and traits %s, want track req-9:0 with neither", track.Type, track.MessageID, len(track.Consent), track.Traits)
	}
}

func TestDecodeMParticleCCPAPolarity(t *testing.T) {
	tests := []struct {
		consented   bool
		wantGranted bool
	}{
		{consented: true, wantGranted: false},
		{consented: false, wantGranted: true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("consented %v", tt.consented), func(t *testing.T) {
			req := decodeMP(t, fmt.Sprintf(`{"mpid":7,"consent_state":{"ccpa":{"data_sale_opt_out":{"consented":%v}}}}`, tt.consented))
			if len(req.Events) != 1 || len(req.Events[0].Consent) != 1 {
				t.Fatalf("got %d events, want one identify with one signal", len(req.Events))
			}
			s := req.Events[0].Consent[0]
			if s.Vocabulary != cdp.ConsentMParticleCCPA || s.Key != "data_sale_opt_out" || s.Granted != tt.wantGranted {
				t.Errorf("got %s/%s granted %v, want mparticle_ccpa/data_sale_opt_out granted %v", s.Vocabulary, s.Key, s.Granted, tt.wantGranted)
			}
		})
	}
}

func TestDecodeMParticleIdentifyOnlyWhenThereIsSomething(t *testing.T) {
	tests := []struct {
		name   string
		fields string
		want   int
	}{
		{"empty attributes and consent", `"user_attributes":{},"deleted_user_attributes":[],"consent_state":{"gdpr":{}}`, 0},
		{"attributes", `"user_attributes":{"a":1}`, 1},
		{"deleted attributes", `"deleted_user_attributes":["a"]`, 1},
		{"consent", `"consent_state":{"gdpr":{"p":{"consented":true}}}`, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := decodeMP(t, `{"mpid":7,`+tt.fields+`}`)
			if len(req.Events) != tt.want {
				t.Fatalf("got %d events, want %d", len(req.Events), tt.want)
			}
			if tt.want == 1 && !uuidV4.MatchString(req.Events[0].MessageID) {
				t.Errorf("got message id %q without source_request_id, want a UUIDv4", req.Events[0].MessageID)
			}
		})
	}
}

func TestDecodeMParticleEventRejections(t *testing.T) {
	body := `{"mpid":7,"events":[
		{"event_type":"custom_event","data":{"event_name":"ok"}},
		{"event_type":"custom_event","data":{}},
		{"event_type":"network_performance","data":{}},
		{"data":{}},
		"session_start",
		{"event_type":"custom_event","data":{"event_name":"E","custom_attributes":[1]}},
		{"event_type":"custom_event","data":{"event_name":"E","timestamp_unixtime_ms":"soon"}},
		{"event_type":"custom_event","data":{"event_name":["E"]}},
		{"event_type":"custom_event","data":"E"},
		{"event_type":"session_end","data":null}
	]}`
	req := decodeMP(t, body)
	if len(req.Events) != 2 {
		t.Errorf("got %d events, want 2", len(req.Events))
	}
	assertRejections(t, req.Rejected, []Rejection{
		{Index: 1, Code: "missing_event"},
		{Index: 2, Code: "unknown_event_type"},
		{Index: 3, Code: "unknown_event_type"},
		{Index: 4, Code: "invalid_event"},
		{Index: 5, Code: "invalid_field"},
		{Index: 6, Code: "invalid_timestamp"},
		{Index: 7, Code: "invalid_field"},
		{Index: 8, Code: "invalid_field"},
	})
}

func TestDecodeMParticleBatchErrors(t *testing.T) {
	tests := []struct {
		name string
		body string
		kind cdp.Kind
		code string
	}{
		{"malformed json", `{"mpid":`, cdp.Invalid, "invalid_json"},
		{"array", `[{"mpid":7}]`, cdp.Invalid, "invalid_batch"},
		{"no identity", `{"events":[{"event_type":"session_start","data":{}}]}`, cdp.Invalid, "missing_identity"},
		{"only junk identities", `{"mpid":0,"user_identities":{"email":"undefined"},"device_info":{"ios_idfv":"00000000-0000-0000-0000-000000000000"}}`, cdp.Invalid, "missing_identity"},
		{"user identities an array", `{"mpid":7,"user_identities":["u-1"]}`, cdp.Invalid, "invalid_field"},
		{"user identity an object", `{"mpid":7,"user_identities":{"email":{"x":1}}}`, cdp.Invalid, "invalid_field"},
		{"device info a string", `{"mpid":7,"device_info":"iPhone"}`, cdp.Invalid, "invalid_field"},
		{"device id an object", `{"mpid":7,"device_info":{"ios_idfv":{}}}`, cdp.Invalid, "invalid_field"},
		{"user attributes an array", `{"mpid":7,"user_attributes":[]}`, cdp.Invalid, "invalid_field"},
		{"deleted attributes not strings", `{"mpid":7,"deleted_user_attributes":[1]}`, cdp.Invalid, "invalid_field"},
		{"context a string", `{"mpid":7,"context":"x"}`, cdp.Invalid, "invalid_field"},
		{"events an object", `{"mpid":7,"events":{}}`, cdp.Invalid, "invalid_field"},
		{"mpid an object", `{"mpid":{}}`, cdp.Invalid, "invalid_field"},
		{"batch time a string", `{"mpid":7,"timestamp_unixtime_ms":"2025-11-28"}`, cdp.Invalid, "invalid_timestamp"},
		{"batch time out of range", `{"mpid":7,"timestamp_unixtime_ms":99999999999999999}`, cdp.Invalid, "invalid_timestamp"},
		{"long source_request_id", `{"mpid":7,"source_request_id":"` + strings.Repeat("r", 201) + `"}`, cdp.Invalid, "invalid_field"},
		{"consent without consented", `{"mpid":7,"consent_state":{"gdpr":{"p":{"document":"d"}}}}`, cdp.Invalid, "invalid_consent"},
		{"consented a string", `{"mpid":7,"consent_state":{"gdpr":{"p":{"consented":"yes"}}}}`, cdp.Invalid, "invalid_consent"},
		{"gdpr an array", `{"mpid":7,"consent_state":{"gdpr":[]}}`, cdp.Invalid, "invalid_consent"},
		{"ccpa a string", `{"mpid":7,"consent_state":{"ccpa":"opt-out"}}`, cdp.Invalid, "invalid_consent"},
		{"consent state a bool", `{"mpid":7,"consent_state":true}`, cdp.Invalid, "invalid_consent"},
		{"consent time a string", `{"mpid":7,"consent_state":{"ccpa":{"data_sale_opt_out":{"consented":true,"timestamp_unixtime_ms":"now"}}}}`, cdp.Invalid, "invalid_consent"},
		{"body over 128 KB", `{"mpid":7,"pad":"` + strings.Repeat(" ", 128<<10) + `"}`, cdp.TooLarge, "body_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := DecodeMParticle([]byte(tt.body), false, Limits{}, receivedAt)
			if len(req.Events) != 0 || len(req.Rejected) != 0 {
				t.Errorf("got %d events and %d rejections, want none", len(req.Events), len(req.Rejected))
			}
			assertCode(t, err, tt.kind, tt.code)
		})
	}
}

func TestDecodeMParticleBulk(t *testing.T) {
	t.Run("one bad batch", func(t *testing.T) {
		body := `[
			{"mpid":1,"source_request_id":"r-0","events":[{"event_type":"session_start","data":{}}]},
			{"events":[{"event_type":"session_start","data":{}}]},
			"batch",
			{"mpid":3,"source_request_id":"r-3","events":[{"event_type":"nope","data":{}},{"event_type":"session_end","data":{}}]},
			{"mpid":4,"consent_state":{"gdpr":{"p":{}}}}
		]`
		req, err := DecodeMParticle([]byte(body), true, Limits{}, receivedAt)
		if err != nil {
			t.Fatalf("got error %v, want none", err)
		}
		var got []string
		for _, ev := range req.Events {
			got = append(got, ev.MessageID)
		}
		if want := []string{"r-0:0", "r-3:1"}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("got events %v, want %v", got, want)
		}
		assertRejections(t, req.Rejected, []Rejection{
			{Index: 1, Code: "missing_identity"},
			{Index: 2, Code: "invalid_batch"},
			{Index: 0, BatchIndex: intp(3), Code: "unknown_event_type"},
			{Index: 4, Code: "invalid_consent"},
		})
	})

	t.Run("a batch over 128 KB", func(t *testing.T) {
		big := `{"mpid":1,"user_attributes":{"pad":"` + strings.Repeat("x", 128<<10) + `"}}`
		req, err := DecodeMParticle([]byte(`[`+big+`,{"mpid":2,"events":[{"event_type":"first_run","data":{}}]}]`), true, Limits{}, receivedAt)
		if err != nil {
			t.Fatalf("got error %v, want none", err)
		}
		if len(req.Events) != 1 {
			t.Errorf("got %d events, want 1", len(req.Events))
		}
		assertRejections(t, req.Rejected, []Rejection{{Index: 0, Code: "batch_too_large"}})
	})

	batches := func(n int) string {
		return "[" + strings.TrimSuffix(strings.Repeat(`{"mpid":1},`, n), ",") + "]"
	}
	tests := []struct {
		name string
		body string
		kind cdp.Kind
		code string
	}{
		{"malformed", `[{"mpid":1}`, cdp.Invalid, "invalid_json"},
		{"an object", `{"mpid":1}`, cdp.Invalid, "invalid_batch"},
		{"101 batches", batches(101), cdp.TooLarge, "too_many_batches"},
		{"body over 256 KB", `[` + strings.Repeat(" ", 256<<10) + `]`, cdp.TooLarge, "body_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeMParticle([]byte(tt.body), true, Limits{}, receivedAt)
			assertCode(t, err, tt.kind, tt.code)
		})
	}
	t.Run("100 batches", func(t *testing.T) {
		if _, err := DecodeMParticle([]byte(batches(100)), true, Limits{}, receivedAt); err != nil {
			t.Errorf("got error %v, want none", err)
		}
	})
}

func TestDecodeMParticleDoesNotAliasTheBody(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("testdata", "mparticle_batch.json"))
	if err != nil {
		t.Fatal(err)
	}
	req, err := DecodeMParticle(body, false, Limits{}, receivedAt)
	if err != nil {
		t.Fatal(err)
	}
	before, err := json.Marshal(req.Events)
	if err != nil {
		t.Fatal(err)
	}
	copy(body, bytes.Repeat([]byte("#"), len(body)))
	after, err := json.Marshal(req.Events)
	if err != nil {
		t.Fatalf("events broke when the body was overwritten: %v", err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("got events changed by overwriting the body:\n%s\nwant\n%s", after, before)
	}
}

func TestDecodeMParticleErrorsHoldNoPayload(t *testing.T) {
	const secret = "canary-4f1e"
	bodies := []struct {
		bulk bool
		body string
	}{
		{false, `{"user_identities":{"` + secret + `":{"` + secret + `":1}}}`},
		{false, `{"mpid":7,"consent_state":{"gdpr":{"` + secret + `":{"consented":"` + secret + `"}}}}`},
		{false, `{"mpid":7,"device_info":{"ios_idfv":{"` + secret + `":1}}}`},
		{false, `{"mpid":7,"events":[{"event_type":"` + secret + `","data":{}},{"event_type":"custom_event","data":{"event_name":{"` + secret + `":1}}}]}`},
		{true, `[{"mpid":"` + secret + `","timestamp_unixtime_ms":"` + secret + `"},"` + secret + `"]`},
	}
	for i, tt := range bodies {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			req, err := DecodeMParticle([]byte(tt.body), tt.bulk, Limits{}, receivedAt)
			if err == nil && len(req.Rejected) == 0 {
				t.Fatal("got no error and no rejection, want one")
			}
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("got error %q, want one that does not repeat the payload", err)
			}
			for _, r := range req.Rejected {
				if strings.Contains(r.Message, secret) || strings.Contains(r.Code, secret) {
					t.Errorf("got rejection %+v, want one that does not repeat the payload", r)
				}
			}
		})
	}
}
