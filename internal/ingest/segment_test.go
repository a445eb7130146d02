package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
)

func TestDecodeSegmentMessage(t *testing.T) {
	seg := func(typ cdp.EventType, mid string) cdp.Event {
		return cdp.Event{MessageID: mid, Format: cdp.FormatSegment, Type: typ, Timestamp: receivedAt, ReceivedAt: receivedAt}
	}
	tests := []struct {
		name     string
		endpoint cdp.EventType
		body     string
		want     func(cdp.Event) cdp.Event
	}{
		{
			name: "track", endpoint: cdp.Track,
			body: `{"userId":"u-1","messageId":"m-1","event":"Order Completed","properties":{"revenue":42.5},"integrations":{"All":false}}`,
			want: func(e cdp.Event) cdp.Event {
				e.Identities, e.Name = ids("user_id", "u-1"), "Order Completed"
				e.Properties, e.Integrations = json.RawMessage(`{"revenue":42.5}`), json.RawMessage(`{"All":false}`)
				return e
			},
		},
		{
			name: "type in the body is ignored on a single endpoint", endpoint: cdp.Track,
			body: `{"type":"identify","userId":"u-1","messageId":"m-1","event":"Clicked"}`,
			want: func(e cdp.Event) cdp.Event { e.Identities, e.Name = ids("user_id", "u-1"), "Clicked"; return e },
		},
		{
			name: "a type of the wrong JSON type is ignored on a single endpoint", endpoint: cdp.Track,
			body: `{"type":7,"userId":"u-1","messageId":"m-1","event":"Clicked"}`,
			want: func(e cdp.Event) cdp.Event { e.Identities, e.Name = ids("user_id", "u-1"), "Clicked"; return e },
		},
		{
			name: "number userId and anonymousId", endpoint: cdp.Identify,
			body: `{"userId":12345,"anonymousId":1e3,"messageId":"m-1"}`,
			want: func(e cdp.Event) cdp.Event { e.Identities = ids("user_id", "12345", "anonymous_id", "1000"); return e },
		},
		{
			name: "number messageId", endpoint: cdp.Identify,
			body: `{"userId":"u-1","messageId":42}`,
			want: func(e cdp.Event) cdp.Event { e.MessageID, e.Identities = "42", ids("user_id", "u-1"); return e },
		},
		{
			name: "junk userId dropped, anonymousId kept", endpoint: cdp.Identify,
			body: `{"userId":"undefined","anonymousId":"a-1","messageId":"m-1"}`,
			want: func(e cdp.Event) cdp.Event { e.Identities = ids("anonymous_id", "a-1"); return e },
		},
		{
			name: "identify traits email and phone, normalised", endpoint: cdp.Identify,
			body: `{"userId":"u-1","messageId":"m-1","traits":{"email":" Ada@Example.COM ","phone":"+44 (20) 7946-0958","plan":"pro"}}`,
			want: func(e cdp.Event) cdp.Event {
				e.Identities = ids("user_id", "u-1", "email", "ada@example.com", "phone", "+442079460958")
				e.Traits = json.RawMessage(`{"email":" Ada@Example.COM ","phone":"+44 (20) 7946-0958","plan":"pro"}`)
				return e
			},
		},
		{
			name: "junk trait email dropped", endpoint: cdp.Identify,
			body: `{"userId":"u-1","messageId":"m-1","traits":{"email":"N/A","phone":"null"}}`,
			want: func(e cdp.Event) cdp.Event {
				e.Identities, e.Traits = ids("user_id", "u-1"), json.RawMessage(`{"email":"N/A","phone":"null"}`)
				return e
			},
		},
		{
			name: "traits of a track name no identity", endpoint: cdp.Track,
			body: `{"userId":"u-1","messageId":"m-1","event":"E","traits":{"email":"ada@example.com"}}`,
			want: func(e cdp.Event) cdp.Event { e.Identities, e.Name = ids("user_id", "u-1"), "E"; return e },
		},
		{
			name: "context traits, external ids and an iOS device, de-duplicated", endpoint: cdp.Track,
			body: `{"anonymousId":"a-1","messageId":"m-1","event":"E","context":{
				"traits":{"email":"ada@example.com","phone":12025550123},
				"externalIds":[{"id":"crm-7","type":"CRM Id","collection":"users","encoding":"none"},{"id":"x","type":"bad type!"},{"id":"crm-7","type":"crm_id"},{"id":"null","type":"other"}],
				"device":{"type":"iOS","id":"ABCD-IDFV","advertisingId":"EF01-IDFA"}}}`,
			want: func(e cdp.Event) cdp.Event {
				e.Name = "E"
				e.Identities = ids("anonymous_id", "a-1", "email", "ada@example.com", "phone", "12025550123",
					"custom:crm_id", "crm-7", "ios_idfv", "abcd-idfv", "ios_idfa", "ef01-idfa")
				e.Context = json.RawMessage(`{"traits":{"email":"ada@example.com","phone":12025550123},
				"externalIds":[{"id":"crm-7","type":"CRM Id","collection":"users","encoding":"none"},{"id":"x","type":"bad type!"},{"id":"crm-7","type":"crm_id"},{"id":"null","type":"other"}],
				"device":{"type":"iOS","id":"ABCD-IDFV","advertisingId":"EF01-IDFA"}}`)
				return e
			},
		},
		{
			name: "android device", endpoint: cdp.Screen,
			body: `{"anonymousId":"a-1","messageId":"m-1","name":"Home","context":{"device":{"type":"android","id":"AID-1","advertisingId":"AAID-1"}}}`,
			want: func(e cdp.Event) cdp.Event {
				e.Name = "Home"
				e.Identities = ids("anonymous_id", "a-1", "android_id", "aid-1", "android_aaid", "aaid-1")
				e.Context = json.RawMessage(`{"device":{"type":"android","id":"AID-1","advertisingId":"AAID-1"}}`)
				return e
			},
		},
		{
			name: "identify email equal to context email is one identity", endpoint: cdp.Identify,
			body: `{"userId":"u-1","messageId":"m-1","traits":{"email":"ADA@example.com"},"context":{"traits":{"email":"ada@example.com"}}}`,
			want: func(e cdp.Event) cdp.Event {
				e.Identities = ids("user_id", "u-1", "email", "ada@example.com")
				e.Traits = json.RawMessage(`{"email":"ADA@example.com"}`)
				e.Context = json.RawMessage(`{"traits":{"email":"ada@example.com"}}`)
				return e
			},
		},
		{
			name: "page with name and properties", endpoint: cdp.Page,
			body: `{"anonymousId":"a-1","messageId":"m-1","name":"Pricing","properties":{"path":"/pricing"}}`,
			want: func(e cdp.Event) cdp.Event {
				e.Identities, e.Name, e.Properties = ids("anonymous_id", "a-1"), "Pricing", json.RawMessage(`{"path":"/pricing"}`)
				return e
			},
		},
		{
			name: "page without name", endpoint: cdp.Page,
			body: `{"anonymousId":"a-1","messageId":"m-1"}`,
			want: func(e cdp.Event) cdp.Event { e.Identities = ids("anonymous_id", "a-1"); return e },
		},
		{
			name: "group with number groupId and traits", endpoint: cdp.Group,
			body: `{"userId":"u-1","messageId":"m-1","groupId":77,"traits":{"name":"Acme","email":"billing@acme.example"}}`,
			want: func(e cdp.Event) cdp.Event {
				e.Identities, e.GroupID = ids("user_id", "u-1"), "77"
				e.Traits = json.RawMessage(`{"name":"Acme","email":"billing@acme.example"}`)
				return e
			},
		},
		{
			name: "alias", endpoint: cdp.Alias,
			body: `{"userId":"u-1","previousId":" a-1 ","messageId":"m-1"}`,
			want: func(e cdp.Event) cdp.Event { e.Identities, e.PreviousID = ids("user_id", "u-1"), "a-1"; return e },
		},
		{
			name: "context ip wins and is canonical", endpoint: cdp.Identify,
			body: `{"userId":"u-1","messageId":"m-1","context":{"ip":"::ffff:203.0.113.9"}}`,
			want: func(e cdp.Event) cdp.Event {
				e.Identities, e.IP, e.Context = ids("user_id", "u-1"), "203.0.113.9", json.RawMessage(`{"ip":"::ffff:203.0.113.9"}`)
				return e
			},
		},
		{
			name: "context ip that is no address is not kept", endpoint: cdp.Identify,
			body: `{"userId":"u-1","messageId":"m-1","context":{"ip":"localhost"}}`,
			want: func(e cdp.Event) cdp.Event {
				e.Identities, e.Context = ids("user_id", "u-1"), json.RawMessage(`{"ip":"localhost"}`)
				return e
			},
		},
		{
			name: "null objects are absent", endpoint: cdp.Track,
			body: `{"userId":"u-1","messageId":"m-1","event":"E","properties":null,"context":null,"integrations":null,"traits":null}`,
			want: func(e cdp.Event) cdp.Event { e.Identities, e.Name = ids("user_id", "u-1"), "E"; return e },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := DecodeSegment([]byte(tt.body), tt.endpoint, Limits{}, receivedAt)
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if len(req.Events) != 1 || len(req.Rejected) != 0 {
				t.Fatalf("got %d events and %d rejections, want 1 and 0", len(req.Events), len(req.Rejected))
			}
			assertEvent(t, req.Events[0], tt.want(seg(tt.endpoint, "m-1")))
		})
	}
}

func TestDecodeSegmentAssignsMessageID(t *testing.T) {
	body := []byte(`{"userId":"u-1","event":"E"}`)
	a, err := DecodeSegment(body, cdp.Track, Limits{}, receivedAt)
	if err != nil {
		t.Fatal(err)
	}
	b, err := DecodeSegment(body, cdp.Track, Limits{}, receivedAt)
	if err != nil {
		t.Fatal(err)
	}
	if id := a.Events[0].MessageID; !uuidV4.MatchString(id) {
		t.Errorf("got message id %q, want a UUIDv4", id)
	}
	if a.Events[0].MessageID == b.Events[0].MessageID {
		t.Errorf("got the same message id %q twice, want fresh ones", a.Events[0].MessageID)
	}
}

func TestDecodeSegmentTimes(t *testing.T) {
	tests := []struct {
		name                       string
		fields                     string
		wantTS, wantOrig, wantSent string // "" is the zero time; "recv" is receivedAt
	}{
		{"none: received", ``, "recv", "", ""},
		{"timestamp as given", `"timestamp":"2025-11-28T13:00:00+01:00"`, "2025-11-28T12:00:00Z", "", ""},
		{"timestamp with fraction", `"timestamp":"2025-11-27T08:30:00.123456Z"`, "2025-11-27T08:30:00.123456Z", "", ""},
		{"originalTimestamp alone", `"originalTimestamp":"2025-11-27T08:30:00Z"`, "2025-11-27T08:30:00Z", "2025-11-27T08:30:00Z", ""},
		{
			// The device clock is two hours slow; the message waited 5.5 s on it.
			"skew corrected", `"originalTimestamp":"2025-11-28T10:00:00Z","sentAt":"2025-11-28T10:00:05.5Z"`,
			"2025-11-28T11:59:54.5Z", "2025-11-28T10:00:00Z", "2025-11-28T10:00:05.5Z",
		},
		{
			"skew correction wins over timestamp",
			`"timestamp":"2020-01-01T00:00:00Z","originalTimestamp":"2025-11-28T10:00:00Z","sentAt":"2025-11-28T10:01:00Z"`,
			"2025-11-28T11:59:00Z", "2025-11-28T10:00:00Z", "2025-11-28T10:01:00Z",
		},
		{"sentAt alone keeps the received time", `"sentAt":"2025-11-28T10:00:00Z"`, "recv", "", "2025-11-28T10:00:00Z"},
		{"timestamp with sentAt but no original", `"timestamp":"2025-11-28T09:00:00Z","sentAt":"2025-11-28T10:00:00Z"`, "2025-11-28T09:00:00Z", "", "2025-11-28T10:00:00Z"},
		{"Go zero times are absent", `"timestamp":"0001-01-01T00:00:00Z","originalTimestamp":"0001-01-01T00:00:00Z","sentAt":""`, "recv", "", ""},
	}
	parse := func(s string) time.Time {
		switch s {
		case "":
			return time.Time{}
		case "recv":
			return receivedAt
		}
		return mustTime(t, s)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"userId":"u-1","event":"E"`
			if tt.fields != "" {
				body += "," + tt.fields
			}
			body += "}"
			req, err := DecodeSegment([]byte(body), cdp.Track, Limits{}, receivedAt)
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			ev := req.Events[0]
			if want := parse(tt.wantTS); !ev.Timestamp.Equal(want) {
				t.Errorf("Timestamp: got %v, want %v", ev.Timestamp, want)
			}
			if want := parse(tt.wantOrig); !ev.OriginalTimestamp.Equal(want) {
				t.Errorf("OriginalTimestamp: got %v, want %v", ev.OriginalTimestamp, want)
			}
			if want := parse(tt.wantSent); !ev.SentAt.Equal(want) {
				t.Errorf("SentAt: got %v, want %v", ev.SentAt, want)
			}
			if !ev.ReceivedAt.Equal(receivedAt) {
				t.Errorf("ReceivedAt: got %v, want %v", ev.ReceivedAt, receivedAt)
			}
		})
	}
}

func TestDecodeSegmentConsent(t *testing.T) {
	tests := []struct {
		name    string
		context string
		want    []cdp.ConsentSignal
	}{
		{
			"segment categories in document order",
			`{"consent":{"categoryPreferences":{"Advertising":true,"Analytics":false,"Functional":true}}}`,
			[]cdp.ConsentSignal{
				{Vocabulary: cdp.ConsentSegmentCategory, Key: "Advertising", Granted: true},
				{Vocabulary: cdp.ConsentSegmentCategory, Key: "Analytics", Granted: false},
				{Vocabulary: cdp.ConsentSegmentCategory, Key: "Functional", Granted: true},
			},
		},
		{
			"rudderstack ids as arrays",
			`{"consentManagement":{"provider":"oneTrust","allowedConsentIds":["C0001","C0002"],"deniedConsentIds":["C0004"],"resolutionStrategy":"and"}}`,
			[]cdp.ConsentSignal{
				{Vocabulary: cdp.ConsentRudderID, Key: "C0001", Granted: true},
				{Vocabulary: cdp.ConsentRudderID, Key: "C0002", Granted: true},
				{Vocabulary: cdp.ConsentRudderID, Key: "C0004", Granted: false},
			},
		},
		{
			"rudderstack allowed ids as an object of id to name",
			`{"consentManagement":{"provider":"oneTrust","allowedConsentIds":{"C0001":"Strictly Necessary","C0003":"Functional"},"deniedConsentIds":[]}}`,
			[]cdp.ConsentSignal{
				{Vocabulary: cdp.ConsentRudderID, Key: "C0001", Granted: true},
				{Vocabulary: cdp.ConsentRudderID, Key: "C0003", Granted: true},
			},
		},
		{
			"tcf and gpp strings",
			`{"consent":{"tcf":"CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA","gpp":"DBABMA~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA"}}`,
			[]cdp.ConsentSignal{
				{Vocabulary: cdp.ConsentTCF, Key: "CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA"},
				{Vocabulary: cdp.ConsentGPP, Key: "DBABMA~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA"},
			},
		},
		{"null consent objects", `{"consent":null,"consentManagement":null}`, nil},
		{"keys are matched as spelled", `{"Consent":{"categoryPreferences":{"Ads":true}},"consent":{"CategoryPreferences":{"Ads":true}}}`, nil},
		{"empty tcf and gpp are absent", `{"consent":{"tcf":"","gpp":null}}`, nil},
		{"empty preferences", `{"consent":{"categoryPreferences":{}}}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"userId":"u-1","messageId":"m-1","context":` + tt.context + `}`
			req, err := DecodeSegment([]byte(body), cdp.Identify, Limits{}, receivedAt)
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			want := receivedAtEvent(cdp.Identify)
			want.Identities, want.Context, want.Consent = ids("user_id", "u-1"), json.RawMessage(tt.context), tt.want
			assertEvent(t, req.Events[0], want)
		})
	}
}

func receivedAtEvent(typ cdp.EventType) cdp.Event {
	return cdp.Event{MessageID: "m-1", Format: cdp.FormatSegment, Type: typ, Timestamp: receivedAt, ReceivedAt: receivedAt}
}

func TestDecodeSegmentMessageErrors(t *testing.T) {
	tests := []struct {
		name     string
		endpoint cdp.EventType
		body     string
		kind     cdp.Kind
		code     string
	}{
		{"malformed json", cdp.Track, `{"userId":`, cdp.Invalid, "invalid_json"},
		{"not an object", cdp.Track, `["userId"]`, cdp.Invalid, "invalid_json"},
		{"empty body", cdp.Track, ``, cdp.Invalid, "invalid_json"},
		{"no identity", cdp.Track, `{"event":"E"}`, cdp.Invalid, "missing_identity"},
		{"only junk identities", cdp.Track, `{"userId":"null","anonymousId":"00000000-0000-0000-0000-000000000000","event":"E"}`, cdp.Invalid, "missing_identity"},
		{"number zero userId is junk", cdp.Track, `{"userId":0,"event":"E"}`, cdp.Invalid, "missing_identity"},
		{"email alone is not enough", cdp.Identify, `{"traits":{"email":"ada@example.com"}}`, cdp.Invalid, "missing_identity"},
		{"userId of the wrong type", cdp.Track, `{"userId":{"id":1},"event":"E"}`, cdp.Invalid, "invalid_field"},
		{"userId true", cdp.Track, `{"userId":true,"event":"E"}`, cdp.Invalid, "invalid_field"},
		{"track without event", cdp.Track, `{"userId":"u-1"}`, cdp.Invalid, "missing_event"},
		{"track with blank event", cdp.Track, `{"userId":"u-1","event":"  "}`, cdp.Invalid, "missing_event"},
		{"track with number event", cdp.Track, `{"userId":"u-1","event":5}`, cdp.Invalid, "missing_event"},
		{"page name of the wrong type", cdp.Page, `{"userId":"u-1","name":["a"]}`, cdp.Invalid, "invalid_field"},
		{"group without groupId", cdp.Group, `{"userId":"u-1","traits":{}}`, cdp.Invalid, "missing_group_id"},
		{"alias without previousId", cdp.Alias, `{"userId":"u-1"}`, cdp.Invalid, "missing_previous_id"},
		{"alias with junk previousId", cdp.Alias, `{"userId":"u-1","previousId":"undefined"}`, cdp.Invalid, "missing_previous_id"},
		{"alias without userId", cdp.Alias, `{"anonymousId":"a-1","previousId":"a-0"}`, cdp.Invalid, "missing_identity"},
		{"traits not an object", cdp.Identify, `{"userId":"u-1","traits":"gold"}`, cdp.Invalid, "invalid_field"},
		{"properties an array", cdp.Track, `{"userId":"u-1","event":"E","properties":[1]}`, cdp.Invalid, "invalid_field"},
		{"context a number", cdp.Track, `{"userId":"u-1","event":"E","context":5}`, cdp.Invalid, "invalid_field"},
		{"integrations a string", cdp.Track, `{"userId":"u-1","event":"E","integrations":"all"}`, cdp.Invalid, "invalid_field"},
		{"context traits an array", cdp.Track, `{"userId":"u-1","event":"E","context":{"traits":[]}}`, cdp.Invalid, "invalid_field"},
		{"externalIds an object", cdp.Track, `{"userId":"u-1","event":"E","context":{"externalIds":{}}}`, cdp.Invalid, "invalid_field"},
		{"trait email an object", cdp.Identify, `{"userId":"u-1","traits":{"email":{}}}`, cdp.Invalid, "invalid_field"},
		{"unparseable timestamp", cdp.Track, `{"userId":"u-1","event":"E","timestamp":"yesterday"}`, cdp.Invalid, "invalid_timestamp"},
		{"number timestamp", cdp.Track, `{"userId":"u-1","event":"E","originalTimestamp":1764300000}`, cdp.Invalid, "invalid_timestamp"},
		{"date without time", cdp.Track, `{"userId":"u-1","event":"E","sentAt":"2025-11-28"}`, cdp.Invalid, "invalid_timestamp"},
		{"timestamp beyond the log's clock", cdp.Track, `{"userId":"u-1","event":"E","timestamp":"9999-01-01T00:00:00Z"}`, cdp.Invalid, "invalid_timestamp"},
		{"skew beyond the log's clock", cdp.Track, `{"userId":"u-1","event":"E","originalTimestamp":"2261-01-01T00:00:00Z","sentAt":"1679-01-01T00:00:00Z"}`, cdp.Invalid, "invalid_timestamp"},
		{"category preference not a bool", cdp.Track, `{"userId":"u-1","event":"E","context":{"consent":{"categoryPreferences":{"Advertising":"yes"}}}}`, cdp.Invalid, "invalid_consent"},
		{"category preferences an array", cdp.Track, `{"userId":"u-1","event":"E","context":{"consent":{"categoryPreferences":["Advertising"]}}}`, cdp.Invalid, "invalid_consent"},
		{"consent a string", cdp.Track, `{"userId":"u-1","event":"E","context":{"consent":"granted"}}`, cdp.Invalid, "invalid_consent"},
		{"tcf a number", cdp.Track, `{"userId":"u-1","event":"E","context":{"consent":{"tcf":1}}}`, cdp.Invalid, "invalid_consent"},
		{"consent ids of the wrong type", cdp.Track, `{"userId":"u-1","event":"E","context":{"consentManagement":{"allowedConsentIds":"C0001"}}}`, cdp.Invalid, "invalid_consent"},
		{"empty category name", cdp.Track, `{"userId":"u-1","event":"E","context":{"consent":{"categoryPreferences":{"":true}}}}`, cdp.Invalid, "invalid_consent"},
		{"empty consent id", cdp.Track, `{"userId":"u-1","event":"E","context":{"consentManagement":{"allowedConsentIds":["C0001",""]}}}`, cdp.Invalid, "invalid_consent"},
		{"empty consent id as a key", cdp.Track, `{"userId":"u-1","event":"E","context":{"consentManagement":{"deniedConsentIds":{"":"x"}}}}`, cdp.Invalid, "invalid_consent"},
		{"consentManagement an array", cdp.Track, `{"userId":"u-1","event":"E","context":{"consentManagement":[]}}`, cdp.Invalid, "invalid_consent"},
		{"consent id a number", cdp.Track, `{"userId":"u-1","event":"E","context":{"consentManagement":{"deniedConsentIds":[4]}}}`, cdp.Invalid, "invalid_consent"},
		{"huge messageId", cdp.Track, `{"userId":"u-1","event":"E","messageId":"` + strings.Repeat("m", 257) + `"}`, cdp.Invalid, "invalid_field"},
		{"message over 32 KB", cdp.Track, `{"userId":"u-1","event":"E","properties":{"p":"` + strings.Repeat("x", 32<<10) + `"}}`, cdp.TooLarge, "message_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := DecodeSegment([]byte(tt.body), tt.endpoint, Limits{}, receivedAt)
			if len(req.Events) != 0 {
				t.Errorf("got %d events, want none", len(req.Events))
			}
			assertCode(t, err, tt.kind, tt.code)
		})
	}
}

// Error messages may reach logs and other people's dashboards: they name
// fields, never what the fields held.
func TestDecodeSegmentErrorsHoldNoPayload(t *testing.T) {
	const secret = "canary-4f1e"
	bodies := []string{
		`{"userId":"` + secret + `","event":{"` + secret + `":1}}`,
		`{"userId":"` + secret + `","event":"E","timestamp":"` + secret + `"}`,
		`{"userId":"` + secret + `","traits":{"email":{"` + secret + `":1}}}`,
		`{"userId":"` + secret + `","event":"E","context":{"consent":{"categoryPreferences":{"` + secret + `":"` + secret + `"}}}}`,
		`{"` + secret + `":`,
	}
	for i, body := range bodies {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			_, err := DecodeSegment([]byte(body), cdp.Track, Limits{}, receivedAt)
			if err == nil {
				t.Fatal("got no error, want one")
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("got error %q, want one that does not repeat the payload", err)
			}
		})
	}
}

func TestDecodeSegmentWriteKey(t *testing.T) {
	tests := []struct {
		name, body string
		endpoint   cdp.EventType
		wantErr    bool
	}{
		{"single", `{"writeKey":"wk-1","userId":"u-1","event":"E"}`, cdp.Track, false},
		{"single with a bad message", `{"writeKey":"wk-1","event":"E"}`, cdp.Track, true},
		{"batch", `{"writeKey":"wk-1","batch":[]}`, "", false},
		{"batch without array", `{"writeKey":"wk-1","batch":{}}`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := DecodeSegment([]byte(tt.body), tt.endpoint, Limits{}, receivedAt)
			if (err != nil) != tt.wantErr {
				t.Errorf("got error %v, want error %v", err, tt.wantErr)
			}
			if req.WriteKey != "wk-1" {
				t.Errorf("got write key %q, want wk-1", req.WriteKey)
			}
		})
	}
}

func TestDecodeSegmentBatch(t *testing.T) {
	t.Run("context null and mixed types", func(t *testing.T) {
		body := `{"batch":[
			{"type":"identify","userId":"u-1","messageId":"m-0","traits":{"plan":"pro"}},
			{"type":"Track","userId":"u-1","messageId":"m-1","event":"Clicked"},
			{"type":"page","anonymousId":"a-1","messageId":"m-2","name":"Home"},
			{"type":"alias","userId":"u-1","previousId":"a-1","messageId":"m-3"}
		],"context":null,"integrations":{"All":true},"messageId":"batch-1","sentAt":null}`
		req, err := DecodeSegment([]byte(body), "", Limits{}, receivedAt)
		if err != nil {
			t.Fatalf("got error %v, want none", err)
		}
		wantTypes := []cdp.EventType{cdp.Identify, cdp.Track, cdp.Page, cdp.Alias}
		if len(req.Events) != len(wantTypes) || len(req.Rejected) != 0 {
			t.Fatalf("got %d events and rejections %v, want %d and none", len(req.Events), req.Rejected, len(wantTypes))
		}
		for i, ev := range req.Events {
			if ev.Type != wantTypes[i] || ev.MessageID != fmt.Sprintf("m-%d", i) {
				t.Errorf("event %d: got %s %s, want %s m-%d", i, ev.Type, ev.MessageID, wantTypes[i], i)
			}
			if ev.Context != nil {
				t.Errorf("event %d: got context %s, want none", i, ev.Context)
			}
		}
	})

	t.Run("batch context and sentAt are inherited", func(t *testing.T) {
		body := `{"batch":[
			{"type":"track","anonymousId":"a-1","messageId":"m-0","event":"E","originalTimestamp":"2025-11-28T10:00:00Z"},
			{"type":"track","anonymousId":"a-1","messageId":"m-1","event":"E","context":null,"originalTimestamp":"2025-11-28T10:00:00Z","sentAt":"2025-11-28T10:00:30Z"},
			{"type":"track","anonymousId":"a-1","messageId":"m-2","event":"E","context":{"ip":"198.51.100.7"}}
		],"context":{"ip":"203.0.113.9","traits":{"email":"ada@example.com"},"consent":{"categoryPreferences":{"Analytics":true}}},
		"sentAt":"2025-11-28T10:00:10Z"}`
		req, err := DecodeSegment([]byte(body), "", Limits{}, receivedAt)
		if err != nil {
			t.Fatalf("got error %v, want none", err)
		}
		if len(req.Events) != 3 {
			t.Fatalf("got %d events (rejections %v), want 3", len(req.Events), req.Rejected)
		}
		batchCtx := json.RawMessage(`{"ip":"203.0.113.9","traits":{"email":"ada@example.com"},"consent":{"categoryPreferences":{"Analytics":true}}}`)
		analytics := []cdp.ConsentSignal{{Vocabulary: cdp.ConsentSegmentCategory, Key: "Analytics", Granted: true}}
		orig := mustTime(t, "2025-11-28T10:00:00Z")
		want := []cdp.Event{
			{
				MessageID: "m-0", Format: cdp.FormatSegment, Type: cdp.Track, Name: "E",
				Identities: ids("anonymous_id", "a-1", "email", "ada@example.com"),
				Context:    batchCtx, IP: "203.0.113.9", Consent: analytics,
				Timestamp: receivedAt.Add(-10 * time.Second), OriginalTimestamp: orig,
				SentAt: mustTime(t, "2025-11-28T10:00:10Z"), ReceivedAt: receivedAt,
			},
			{
				MessageID: "m-1", Format: cdp.FormatSegment, Type: cdp.Track, Name: "E",
				Identities: ids("anonymous_id", "a-1", "email", "ada@example.com"),
				Context:    batchCtx, IP: "203.0.113.9", Consent: analytics,
				Timestamp: receivedAt.Add(-30 * time.Second), OriginalTimestamp: orig,
				SentAt: mustTime(t, "2025-11-28T10:00:30Z"), ReceivedAt: receivedAt,
			},
			{
				MessageID: "m-2", Format: cdp.FormatSegment, Type: cdp.Track, Name: "E",
				Identities: ids("anonymous_id", "a-1"),
				Context:    json.RawMessage(`{"ip":"198.51.100.7"}`), IP: "198.51.100.7",
				Timestamp: receivedAt, SentAt: mustTime(t, "2025-11-28T10:00:10Z"), ReceivedAt: receivedAt,
			},
		}
		for i := range want {
			t.Run(want[i].MessageID, func(t *testing.T) { assertEvent(t, req.Events[i], want[i]) })
		}
	})

	t.Run("bad messages are rejected by index, the others accepted", func(t *testing.T) {
		big := `{"type":"track","userId":"u-1","event":"E","properties":{"p":"` + strings.Repeat("x", 32<<10) + `"}}`
		body := `{"batch":[
			{"type":"track","userId":"u-1","event":"E"},
			{"type":"track","event":"E"},
			{"type":"purchase","userId":"u-1"},
			{"userId":"u-1"},
			42,
			null,
			` + big + `,
			{"type":"track","userId":"u-1","event":"E","timestamp":"soon"},
			{"type":"group","userId":"u-1"},
			{"type":"identify","anonymousId":"a-1"}
		]}`
		req, err := DecodeSegment([]byte(body), "", Limits{}, receivedAt)
		if err != nil {
			t.Fatalf("got error %v, want none", err)
		}
		if len(req.Events) != 2 {
			t.Errorf("got %d events, want 2", len(req.Events))
		}
		assertRejections(t, req.Rejected, []Rejection{
			{Index: 1, Code: "missing_identity"},
			{Index: 2, Code: "invalid_type"},
			{Index: 3, Code: "invalid_type"},
			{Index: 4, Code: "invalid_message"},
			{Index: 5, Code: "invalid_message"},
			{Index: 6, Code: "message_too_large"},
			{Index: 7, Code: "invalid_timestamp"},
			{Index: 8, Code: "missing_group_id"},
		})
	})

	t.Run("empty batch", func(t *testing.T) {
		req, err := DecodeSegment([]byte(`{"batch":[]}`), "", Limits{}, receivedAt)
		if err != nil || len(req.Events) != 0 || len(req.Rejected) != 0 {
			t.Errorf("got %d events, %d rejections, error %v; want none of each", len(req.Events), len(req.Rejected), err)
		}
	})
}

func TestDecodeSegmentBatchErrors(t *testing.T) {
	many := func(n int) string {
		var b strings.Builder
		b.WriteString(`{"batch":[`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{"type":"track","userId":"u","event":"E"}`)
		}
		b.WriteString(`]}`)
		return b.String()
	}
	tests := []struct {
		name string
		body string
		kind cdp.Kind
		code string
	}{
		{"malformed json", `{"batch":[{"type":"track",]}`, cdp.Invalid, "invalid_json"},
		{"one malformed message spoils the body", `{"batch":[{"type":"track","userId":"u","event":"E"},{"type":}]}`, cdp.Invalid, "invalid_json"},
		{"array body", `[{"type":"track"}]`, cdp.Invalid, "invalid_batch"},
		{"no batch", `{"messages":[]}`, cdp.Invalid, "invalid_batch"},
		{"batch null", `{"batch":null}`, cdp.Invalid, "invalid_batch"},
		{"batch an object", `{"batch":{"type":"track"}}`, cdp.Invalid, "invalid_batch"},
		{"batch context a string", `{"batch":[],"context":"web"}`, cdp.Invalid, "invalid_batch"},
		{"batch context with bad consent", `{"batch":[],"context":{"consent":{"categoryPreferences":{"Ads":1}}}}`, cdp.Invalid, "invalid_consent"},
		{"batch sentAt unparseable", `{"batch":[],"sentAt":"now"}`, cdp.Invalid, "invalid_timestamp"},
		{"2,501 messages", many(2501), cdp.TooLarge, "too_many_messages"},
		{"body over 500 KB", `{"batch":[],"pad":"` + strings.Repeat(" ", 500<<10) + `"}`, cdp.TooLarge, "body_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := DecodeSegment([]byte(tt.body), "", Limits{}, receivedAt)
			if len(req.Events) != 0 {
				t.Errorf("got %d events, want none", len(req.Events))
			}
			assertCode(t, err, tt.kind, tt.code)
		})
	}

	t.Run("2,500 messages", func(t *testing.T) {
		req, err := DecodeSegment([]byte(many(2500)), "", Limits{}, receivedAt)
		if err != nil || len(req.Events) != 2500 {
			t.Errorf("got %d events and error %v, want 2500 and none", len(req.Events), err)
		}
	})

	t.Run("limits are configurable", func(t *testing.T) {
		_, err := DecodeSegment([]byte(many(3)), "", Limits{SegmentMaxBatchMessages: 2}, receivedAt)
		assertCode(t, err, cdp.TooLarge, "too_many_messages")
		req, err := DecodeSegment([]byte(many(2)), "", Limits{SegmentMaxMessageBytes: 20}, receivedAt)
		if err != nil {
			t.Fatal(err)
		}
		assertRejections(t, req.Rejected, []Rejection{{Index: 0, Code: "message_too_large"}, {Index: 1, Code: "message_too_large"}})
	})
}

// The handler reuses request buffers, so a decoded event must not share
// memory with the body it came from.
func TestDecodeSegmentDoesNotAliasTheBody(t *testing.T) {
	body := []byte(`{"batch":[{"type":"identify","userId":"u-1","messageId":"m-1","traits":{"plan":"pro"},
		"properties":{"a":1},"context":{"ip":"203.0.113.9","page":{"path":"/"}},"integrations":{"All":true}}],
		"context":{"library":{"name":"x"}}}`)
	req, err := DecodeSegment(body, "", Limits{}, receivedAt)
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
