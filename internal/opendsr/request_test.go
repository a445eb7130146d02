package opendsr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/custos-cdp/custos/internal/cdp"
)

var testNow = time.Date(2027, time.March, 10, 12, 0, 0, 0, time.UTC)

const (
	testID        = "a7551968-d5d6-44b2-9831-815ac9017798"
	adaSHA256     = "b5fc85e55755f9e0d030a10ab4429b6b2944855f9a0d60077fe832becbc41d72"
	adaSHA1       = "3ca93ad87e0bb737e653b66ad67731e86bbc050f"
	adaMD5        = "3e3417d7ef77d5932a6734b916515ed5"
	canary        = "CANARY7f3e"
	canaryEmail   = "canary7f3e@example.com"
	canaryPattern = "(?i)canary7f3e"
)

// body returns a valid request as a JSON object, changed by edit.
func body(t *testing.T, edit func(m map[string]any)) []byte {
	t.Helper()
	m := map[string]any{
		"api_version":          "2.0",
		"regulation":           "gdpr",
		"subject_request_id":   testID,
		"subject_request_type": "erasure",
		"submitted_time":       "2027-03-09T15:00:00Z",
		"subject_identities": []any{
			map[string]any{"identity_type": "email", "identity_value": "ada@example.com", "identity_format": "raw"},
		},
		"status_callback_urls": []any{"https://brand.example/opendsr/callbacks"},
	}
	if edit != nil {
		edit(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func identities(ids ...map[string]any) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}

func ident(typ, value, format string) map[string]any {
	return map[string]any{"identity_type": typ, "identity_value": value, "identity_format": format}
}

func TestParseRequestValid(t *testing.T) {
	type tc struct {
		name  string
		edit  func(m map[string]any)
		check func(t *testing.T, r Request)
	}
	var tests []tc
	for _, reg := range Regulations {
		for _, typ := range RequestTypes {
			tests = append(tests, tc{
				name: reg + " " + typ,
				edit: func(m map[string]any) { m["regulation"], m["subject_request_type"] = reg, typ },
				check: func(t *testing.T, r Request) {
					if r.Regulation != reg || r.SubjectRequestType != typ {
						t.Errorf("got %s %s, want %s %s", r.Regulation, r.SubjectRequestType, reg, typ)
					}
				},
			})
		}
	}
	tests = append(tests,
		tc{
			name: "every field read",
			check: func(t *testing.T, r Request) {
				want := Request{APIVersion: "2.0", Regulation: "gdpr", SubjectRequestID: testID, SubjectRequestType: "erasure",
					SubmittedTime:      time.Date(2027, 3, 9, 15, 0, 0, 0, time.UTC),
					SubjectIdentities:  []SubjectIdentity{{IdentityType: "email", IdentityValue: "ada@example.com", IdentityFormat: "raw"}},
					StatusCallbackURLs: []string{"https://brand.example/opendsr/callbacks"}}
				if got, _ := json.Marshal(r); !bytes.Equal(got, mustJSON(t, want)) {
					t.Errorf("got %s, want %s", got, mustJSON(t, want))
				}
			},
		},
		tc{
			name: "hashed identities",
			edit: func(m map[string]any) {
				m["subject_identities"] = identities(ident("email", adaSHA256, "sha256"), ident("email", adaSHA1, "sha1"),
					ident("controller_customer_id", adaMD5, "md5"))
			},
			check: func(t *testing.T, r Request) {
				got := []string{r.SubjectIdentities[0].IdentityFormat, r.SubjectIdentities[1].IdentityFormat, r.SubjectIdentities[2].IdentityFormat}
				if want := []string{"sha256", "sha1", "md5"}; !slices.Equal(got, want) {
					t.Errorf("got formats %v, want %v", got, want)
				}
				if r.SubjectIdentities[0].IdentityValue != adaSHA256 {
					t.Errorf("got value %q, want %q", r.SubjectIdentities[0].IdentityValue, adaSHA256)
				}
			},
		},
		tc{
			name: "every identity type",
			edit: func(m map[string]any) {
				var ids []any
				for _, typ := range IdentityTypes {
					ids = append(ids, ident(typ, "id-"+typ, "raw"))
				}
				m["subject_identities"] = ids
			},
			check: func(t *testing.T, r Request) {
				if got, want := len(r.SubjectIdentities), len(IdentityTypes); got != want {
					t.Errorf("got %d identities, want %d", got, want)
				}
			},
		},
		tc{
			name: "empty or absent format is raw",
			edit: func(m map[string]any) {
				m["subject_identities"] = identities(ident("email", "ada@example.com", ""),
					map[string]any{"identity_type": "android_id", "identity_value": "abc123"})
			},
			check: func(t *testing.T, r Request) {
				for i, id := range r.SubjectIdentities {
					if id.IdentityFormat != "raw" {
						t.Errorf("identity %d: got format %q, want raw", i, id.IdentityFormat)
					}
				}
			},
		},
		tc{
			name: "exactly 100 identities",
			edit: func(m map[string]any) {
				var ids []any
				for i := range MaxIdentities {
					ids = append(ids, ident("controller_customer_id", fmt.Sprint("customer-", i), "raw"))
				}
				m["subject_identities"] = ids
			},
			check: func(t *testing.T, r Request) {
				if got := len(r.SubjectIdentities); got != MaxIdentities {
					t.Errorf("got %d identities, want %d", got, MaxIdentities)
				}
			},
		},
		tc{
			name: "submitted time with an offset is read as UTC",
			edit: func(m map[string]any) { m["submitted_time"] = "2027-03-09T17:00:00+02:00" },
			check: func(t *testing.T, r Request) {
				if want := time.Date(2027, 3, 9, 15, 0, 0, 0, time.UTC); !r.SubmittedTime.Equal(want) || r.SubmittedTime.Location() != time.UTC {
					t.Errorf("got %v, want %v", r.SubmittedTime, want)
				}
			},
		},
		tc{
			name:  "submitted 23 hours ahead is clock skew",
			edit:  func(m map[string]any) { m["submitted_time"] = testNow.Add(23 * time.Hour).Format(time.RFC3339) },
			check: func(t *testing.T, r Request) {},
		},
		tc{
			name: "unknown fields, extensions and no callbacks",
			edit: func(m map[string]any) {
				m["group_id"] = "g1"
				m["extensions"] = map[string]any{"custos.example": map[string]any{"property_id": "1"}}
				delete(m, "status_callback_urls")
				delete(m, "api_version")
			},
			check: func(t *testing.T, r Request) {
				if got, want := string(r.Extensions), `{"custos.example":{"property_id":"1"}}`; got != want {
					t.Errorf("got extensions %s, want %s", got, want)
				}
				if r.StatusCallbackURLs != nil || r.APIVersion != "" {
					t.Errorf("got callbacks %v and version %q, want none", r.StatusCallbackURLs, r.APIVersion)
				}
			},
		},
		tc{
			name: "duplicate callback URLs kept once",
			edit: func(m map[string]any) {
				m["status_callback_urls"] = []any{"https://a.example/cb", "http://b.example:8080/cb?x=1", "https://a.example/cb"}
			},
			check: func(t *testing.T, r Request) {
				if want := []string{"https://a.example/cb", "http://b.example:8080/cb?x=1"}; !slices.Equal(r.StatusCallbackURLs, want) {
					t.Errorf("got %v, want %v", r.StatusCallbackURLs, want)
				}
			},
		},
		tc{
			name: "raw value of 1024 bytes",
			edit: func(m map[string]any) {
				m["subject_identities"] = identities(ident("controller_customer_id", strings.Repeat("x", 1024), "raw"))
			},
			check: func(t *testing.T, r Request) {
				if got := len(r.SubjectIdentities[0].IdentityValue); got != 1024 {
					t.Errorf("got %d bytes, want 1024", got)
				}
			},
		},
	)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRequest(body(t, tt.edit), testNow)
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			tt.check(t, r)
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// problemsOf returns the problems of a *ValidationError, failing otherwise.
func problemsOf(t *testing.T, err error) []ErrorItem {
	t.Helper()
	ve, ok := errors.AsType[*ValidationError](err)
	if !ok {
		t.Fatalf("got error %v (%T), want *ValidationError", err, err)
	}
	return ve.Problems
}

func TestParseRequestReasons(t *testing.T) {
	setID := func(id map[string]any) func(m map[string]any) {
		return func(m map[string]any) { m["subject_identities"] = identities(id) }
	}
	tooMany := func(n int) func(m map[string]any) {
		return func(m map[string]any) {
			var ids []any
			for i := range n {
				ids = append(ids, ident("controller_customer_id", fmt.Sprint(i+1), "raw"))
			}
			m["subject_identities"] = ids
		}
	}
	tests := []struct {
		name       string
		raw        string // the body, when not built by edit
		edit       func(m map[string]any)
		wantReason string
		wantField  string // named in the message
	}{
		{name: "regulation missing", edit: func(m map[string]any) { delete(m, "regulation") }, wantReason: "missing_field", wantField: "regulation"},
		{name: "regulation null", edit: func(m map[string]any) { m["regulation"] = nil }, wantReason: "missing_field", wantField: "regulation"},
		{name: "id missing", edit: func(m map[string]any) { delete(m, "subject_request_id") }, wantReason: "missing_field", wantField: "subject_request_id"},
		{name: "type missing", edit: func(m map[string]any) { delete(m, "subject_request_type") }, wantReason: "missing_field", wantField: "subject_request_type"},
		{name: "time missing", edit: func(m map[string]any) { delete(m, "submitted_time") }, wantReason: "missing_field", wantField: "submitted_time"},
		{name: "identities missing", edit: func(m map[string]any) { delete(m, "subject_identities") }, wantReason: "missing_field", wantField: "subject_identities"},
		{name: "identities empty", edit: func(m map[string]any) { m["subject_identities"] = []any{} }, wantReason: "missing_field", wantField: "subject_identities"},
		{name: "identity type missing", edit: setID(map[string]any{"identity_value": "ada@example.com"}), wantReason: "missing_field", wantField: "subject_identities[0].identity_type"},
		{name: "identity value missing", edit: setID(map[string]any{"identity_type": "email"}), wantReason: "missing_field", wantField: "subject_identities[0].identity_value"},

		{name: "id upper-case", edit: func(m map[string]any) { m["subject_request_id"] = strings.ToUpper(testID) }, wantReason: "invalid_uuid", wantField: "subject_request_id"},
		{name: "id version 1", edit: func(m map[string]any) { m["subject_request_id"] = "a7551968-d5d6-14b2-9831-815ac9017798" }, wantReason: "invalid_uuid", wantField: "subject_request_id"},
		{name: "id wrong variant", edit: func(m map[string]any) { m["subject_request_id"] = "a7551968-d5d6-44b2-c831-815ac9017798" }, wantReason: "invalid_uuid", wantField: "subject_request_id"},
		{name: "id without dashes", edit: func(m map[string]any) { m["subject_request_id"] = "a7551968d5d644b29831815ac9017798" }, wantReason: "invalid_uuid", wantField: "subject_request_id"},
		{name: "id a number", edit: func(m map[string]any) { m["subject_request_id"] = 42 }, wantReason: "invalid_uuid", wantField: "subject_request_id"},

		{name: "regulation unknown", edit: func(m map[string]any) { m["regulation"] = "lgpd" }, wantReason: "invalid_regulation", wantField: "regulation"},
		{name: "regulation upper-case", edit: func(m map[string]any) { m["regulation"] = "GDPR" }, wantReason: "invalid_regulation", wantField: "regulation"},
		{name: "regulation an array", edit: func(m map[string]any) { m["regulation"] = []any{"gdpr"} }, wantReason: "invalid_regulation", wantField: "regulation"},

		{name: "type rectification", edit: func(m map[string]any) { m["subject_request_type"] = "rectification" }, wantReason: "invalid_type", wantField: "subject_request_type"},
		{name: "type a bool", edit: func(m map[string]any) { m["subject_request_type"] = true }, wantReason: "invalid_type", wantField: "subject_request_type"},

		{name: "time not RFC 3339", edit: func(m map[string]any) { m["submitted_time"] = "2027-03-09 15:00:00" }, wantReason: "invalid_time", wantField: "submitted_time"},
		{name: "time without zone", edit: func(m map[string]any) { m["submitted_time"] = "2027-03-09T15:00:00" }, wantReason: "invalid_time", wantField: "submitted_time"},
		{name: "time a number", edit: func(m map[string]any) { m["submitted_time"] = 1800000000 }, wantReason: "invalid_time", wantField: "submitted_time"},
		{name: "time over 24h ahead", edit: func(m map[string]any) {
			m["submitted_time"] = testNow.Add(24*time.Hour + time.Second).Format(time.RFC3339)
		}, wantReason: "invalid_time", wantField: "submitted_time"},
		{name: "time before the GDPR", edit: func(m map[string]any) { m["submitted_time"] = "0000-01-01T00:00:00+23:59" }, wantReason: "invalid_time", wantField: "submitted_time"},

		{name: "identity type unknown", edit: setID(ident("phone", "+442079460958", "raw")), wantReason: "invalid_identity_type", wantField: "subject_identities[0].identity_type"},
		{name: "identity type upper-case", edit: setID(ident("EMAIL", "ada@example.com", "raw")), wantReason: "invalid_identity_type", wantField: "subject_identities[0].identity_type"},
		{name: "identity type a number", edit: setID(map[string]any{"identity_type": 1, "identity_value": "x1"}), wantReason: "invalid_identity_type", wantField: "subject_identities[0].identity_type"},

		{name: "format sha512", edit: setID(ident("email", adaSHA256, "sha512")), wantReason: "invalid_identity_format", wantField: "subject_identities[0].identity_format"},
		{name: "format a number", edit: setID(map[string]any{"identity_type": "email", "identity_value": "ada@example.com", "identity_format": 256}), wantReason: "invalid_identity_format", wantField: "subject_identities[0].identity_format"},

		{name: "sha256 too short", edit: setID(ident("email", adaSHA1, "sha256")), wantReason: "invalid_identity_value", wantField: "subject_identities[0].identity_value"},
		{name: "sha1 too long", edit: setID(ident("email", adaSHA256, "sha1")), wantReason: "invalid_identity_value", wantField: "subject_identities[0].identity_value"},
		{name: "md5 upper-case", edit: setID(ident("email", strings.ToUpper(adaMD5), "md5")), wantReason: "invalid_identity_value", wantField: "subject_identities[0].identity_value"},
		{name: "md5 not hex", edit: setID(ident("email", strings.Repeat("g", 32), "md5")), wantReason: "invalid_identity_value", wantField: "subject_identities[0].identity_value"},
		{name: "raw empty", edit: setID(ident("email", "", "raw")), wantReason: "invalid_identity_value", wantField: "subject_identities[0].identity_value"},
		{name: "raw blank", edit: setID(ident("controller_customer_id", "   ", "raw")), wantReason: "invalid_identity_value", wantField: "subject_identities[0].identity_value"},
		{name: "raw placeholder", edit: setID(ident("controller_customer_id", "undefined", "raw")), wantReason: "invalid_identity_value", wantField: "subject_identities[0].identity_value"},
		{name: "raw over 1024 bytes", edit: setID(ident("controller_customer_id", strings.Repeat("x", 1025), "raw")), wantReason: "invalid_identity_value", wantField: "subject_identities[0].identity_value"},
		{name: "raw longer once lower-cased", edit: setID(ident("email", strings.Repeat("Ⱥ", 400), "raw")), wantReason: "invalid_identity_value", wantField: "subject_identities[0].identity_value"},
		{name: "raw with a NUL", edit: setID(ident("controller_customer_id", "ab\x00cd", "raw")), wantReason: "invalid_identity_value", wantField: "subject_identities[0].identity_value"},
		{name: "value a number", edit: setID(map[string]any{"identity_type": "controller_customer_id", "identity_value": 42}), wantReason: "invalid_identity_value", wantField: "subject_identities[0].identity_value"},

		{name: "101 identities", edit: tooMany(101), wantReason: "too_many_identities", wantField: "subject_identities"},

		{name: "callback ftp", edit: func(m map[string]any) { m["status_callback_urls"] = []any{"ftp://brand.example/cb"} }, wantReason: "invalid_callback_url", wantField: "status_callback_urls[0]"},
		{name: "callback relative", edit: func(m map[string]any) { m["status_callback_urls"] = []any{"/callbacks"} }, wantReason: "invalid_callback_url", wantField: "status_callback_urls[0]"},
		{name: "callback without host", edit: func(m map[string]any) { m["status_callback_urls"] = []any{"https:///cb"} }, wantReason: "invalid_callback_url", wantField: "status_callback_urls[0]"},
		{name: "callback opaque", edit: func(m map[string]any) { m["status_callback_urls"] = []any{"https:brand.example"} }, wantReason: "invalid_callback_url", wantField: "status_callback_urls[0]"},
		{name: "callback with credentials", edit: func(m map[string]any) { m["status_callback_urls"] = []any{"https://u:p@brand.example/cb"} }, wantReason: "invalid_callback_url", wantField: "status_callback_urls[0]"},
		{name: "callback not a URL", edit: func(m map[string]any) { m["status_callback_urls"] = []any{"https://brand.example/\x7f"} }, wantReason: "invalid_callback_url", wantField: "status_callback_urls[0]"},
		{name: "callback too long", edit: func(m map[string]any) {
			m["status_callback_urls"] = []any{"https://brand.example/" + strings.Repeat("a", 2048)}
		}, wantReason: "invalid_callback_url", wantField: "status_callback_urls[0]"},
		{name: "callback a number", edit: func(m map[string]any) { m["status_callback_urls"] = []any{1} }, wantReason: "invalid_callback_url", wantField: "status_callback_urls[0]"},
		{name: "callbacks a string", edit: func(m map[string]any) { m["status_callback_urls"] = "https://brand.example/cb" }, wantReason: "invalid_callback_url", wantField: "status_callback_urls"},
		{name: "11 callbacks", edit: func(m map[string]any) {
			var urls []any
			for i := range 11 {
				urls = append(urls, fmt.Sprintf("https://brand.example/cb/%d", i))
			}
			m["status_callback_urls"] = urls
		}, wantReason: "invalid_callback_url", wantField: "status_callback_urls"},

		{name: "not JSON", raw: `{"regulation":`, wantReason: "invalid_json", wantField: "body"},
		{name: "empty body", raw: ``, wantReason: "invalid_json", wantField: "body"},
		{name: "null body", raw: `null`, wantReason: "invalid_json", wantField: "body"},
		{name: "array body", raw: `[{}]`, wantReason: "invalid_json", wantField: "body"},
		{name: "trailing data", raw: string(body(t, nil)) + `{}`, wantReason: "invalid_json", wantField: "body"},
		{name: "identities an object", edit: func(m map[string]any) { m["subject_identities"] = map[string]any{} }, wantReason: "invalid_json", wantField: "subject_identities"},
		{name: "identity a string", edit: func(m map[string]any) { m["subject_identities"] = []any{"ada@example.com"} }, wantReason: "invalid_json", wantField: "subject_identities[0]"},
		{name: "extensions an array", edit: func(m map[string]any) { m["extensions"] = []any{1} }, wantReason: "invalid_json", wantField: "extensions"},
		{name: "api_version a number", edit: func(m map[string]any) { m["api_version"] = 2 }, wantReason: "invalid_json", wantField: "api_version"},
	}
	reached := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := []byte(tt.raw)
			if tt.edit != nil {
				b = body(t, tt.edit)
			}
			r, err := ParseRequest(b, testNow)
			if err == nil {
				t.Fatalf("got request %+v and no error, want %s", r, tt.wantReason)
			}
			ps := problemsOf(t, err)
			if len(ps) != 1 {
				t.Fatalf("got %d problems %+v, want 1", len(ps), ps)
			}
			if ps[0].Reason != tt.wantReason {
				t.Errorf("got reason %q (%s), want %q", ps[0].Reason, ps[0].Message, tt.wantReason)
			}
			if !strings.Contains(ps[0].Message, tt.wantField) {
				t.Errorf("got message %q, want it to name %s", ps[0].Message, tt.wantField)
			}
			if ps[0].Domain != "Validation" {
				t.Errorf("got domain %q, want Validation", ps[0].Domain)
			}
			if r.SubjectRequestID != "" || r.SubjectIdentities != nil {
				t.Errorf("got a partial request %+v with the error, want the zero Request", r)
			}
			reached[ps[0].Reason] = true
		})
	}
	for _, reason := range []string{"missing_field", "invalid_uuid", "invalid_regulation", "invalid_type", "invalid_time",
		"invalid_identity_type", "invalid_identity_format", "invalid_identity_value", "too_many_identities",
		"invalid_callback_url", "invalid_json"} {
		if !reached[reason] {
			t.Errorf("reason %s: got no case reaching it, want one", reason)
		}
	}
}

func TestParseRequestReportsEveryProblem(t *testing.T) {
	b := body(t, func(m map[string]any) {
		m["regulation"] = "lgpd"
		m["subject_request_id"] = "not-a-uuid"
		delete(m, "subject_request_type")
		m["submitted_time"] = "yesterday"
		m["subject_identities"] = identities(
			ident("email", "ada@example.com", "raw"),
			ident("fax", "123", "raw"),
			ident("email", "ABC", "sha256"),
			ident("email", "ada@example.com", "base64"),
		)
		m["status_callback_urls"] = []any{"https://ok.example/cb", "mailto:brand@example.com"}
	})
	_, err := ParseRequest(b, testNow)
	ps := problemsOf(t, err)
	var got []string
	for _, p := range ps {
		got = append(got, p.Reason)
	}
	want := []string{"invalid_regulation", "invalid_uuid", "missing_field", "invalid_time",
		"invalid_identity_type", "invalid_identity_value", "invalid_identity_format", "invalid_callback_url"}
	if !slices.Equal(got, want) {
		t.Errorf("got reasons %v, want %v", got, want)
	}
	wantFields := []string{"regulation", "subject_request_id", "subject_request_type", "submitted_time",
		"subject_identities[1].identity_type", "subject_identities[2].identity_value", "subject_identities[3].identity_format",
		"status_callback_urls[1]"}
	for i, p := range ps {
		if i < len(wantFields) && !strings.Contains(p.Message, wantFields[i]) {
			t.Errorf("problem %d: got message %q, want it to name %s", i, p.Message, wantFields[i])
		}
	}
}

func TestParseRequestNeverEchoesInput(t *testing.T) {
	tests := []struct {
		name string
		edit func(m map[string]any)
	}{
		{"raw value too long", func(m map[string]any) {
			m["subject_identities"] = identities(ident("email", canaryEmail+strings.Repeat("x", 1100), "raw"))
		}},
		{"raw value with a control character", func(m map[string]any) {
			m["subject_identities"] = identities(ident("email", canaryEmail+"\x01", "raw"))
		}},
		{"hashed value not hex", func(m map[string]any) {
			m["subject_identities"] = identities(ident("email", canaryEmail, "sha256"))
		}},
		{"value under an unknown type", func(m map[string]any) {
			m["subject_identities"] = identities(ident(canary, canaryEmail, "raw"))
		}},
		{"value under an unknown format", func(m map[string]any) {
			m["subject_identities"] = identities(ident("email", canaryEmail, canary))
		}},
		{"canary in every scalar", func(m map[string]any) {
			m["regulation"], m["subject_request_id"], m["subject_request_type"], m["submitted_time"] = canary, canary, canary, canary
			m["api_version"] = map[string]any{canary: canary}
			m["extensions"] = []any{canary}
			m["status_callback_urls"] = []any{"gopher://" + canary + "/", "https://" + canary + ":x@h.example/", canary}
		}},
		{"canary as a key", func(m map[string]any) {
			m["subject_identities"] = []any{map[string]any{canary: canaryEmail}}
		}},
	}
	echo := regexp.MustCompile(canaryPattern)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRequest(body(t, tt.edit), testNow)
			if err == nil {
				t.Fatal("got no error, want one")
			}
			ve, _ := errors.AsType[*ValidationError](err)
			if ve == nil {
				t.Fatalf("got %T, want *ValidationError", err)
			}
			var logged bytes.Buffer
			slog.New(slog.NewJSONHandler(&logged, nil)).Info("refused", "err", err)
			for what, text := range map[string]string{
				"Error()": err.Error(), "Body()": string(mustJSON(t, ve.Body())),
				"cdp error": errors.Unwrap(err).Error(), "log": logged.String(),
			} {
				if echo.MatchString(text) {
					t.Errorf("%s: got %q, want no trace of the input", what, text)
				}
			}
		})
	}
}

func TestValidationErrorIsInvalid(t *testing.T) {
	tests := []struct {
		name     string
		body     []byte
		wantCode string
		wantMsg  string
	}{
		{"one problem", []byte(`{}` + "x"), "invalid_json", "the body must be a JSON object"},
		{"several problems", []byte(`{}`), "invalid_request", "the request has 5 problems"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRequest(tt.body, testNow)
			if !cdp.IsKind(err, cdp.Invalid) {
				t.Errorf("got kind %v, want invalid", cdp.ErrorKind(err))
			}
			if !errors.Is(err, &cdp.Error{Kind: cdp.Invalid, Code: tt.wantCode}) {
				t.Errorf("got %v, want code %s", errors.Unwrap(err), tt.wantCode)
			}
			ve, _ := errors.AsType[*ValidationError](err)
			b := ve.Body()
			if b.Error.Code != 400 || b.Error.Message != tt.wantMsg || len(b.Error.Errors) != len(ve.Problems) {
				t.Errorf("got body %+v, want code 400, message %q and every problem", b, tt.wantMsg)
			}
		})
	}
}

func TestRequestRedactsIdentities(t *testing.T) {
	r, err := ParseRequest(body(t, func(m map[string]any) {
		m["subject_identities"] = identities(ident("email", canaryEmail, "raw"))
	}), testNow)
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("request", "req", r, "id", r.SubjectIdentities[0])
	echo := regexp.MustCompile(canaryPattern)
	for what, text := range map[string]string{
		"%v": fmt.Sprintf("%v", r), "%+v": fmt.Sprintf("%+v", r), "%#v": fmt.Sprintf("%#v", r.SubjectIdentities),
		"slog": logged.String(),
	} {
		if echo.MatchString(text) {
			t.Errorf("%s: got %q, want the value redacted", what, text)
		}
	}
	if !strings.Contains(logged.String(), "subject_request_id="+testID) {
		t.Errorf("got log %q, want the request id in it", logged.String())
	}
}

// FuzzParseRequest checks that no body panics the parser, that every
// refusal is a well-formed ValidationError, and that every accepted request
// holds the invariants the rest of Custos relies on.
func FuzzParseRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRequest(b, testNow)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		checkAccepted(t, r)

		// What Custos accepts, it can store, resend and recognise.
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("got marshal error %v for an accepted request", err)
		}
		r2, err := ParseRequest(again, testNow)
		if err != nil {
			t.Fatalf("got %v re-parsing an accepted request, want none", err)
		}
		if Fingerprint(r) != Fingerprint(r2) {
			t.Fatalf("got a different fingerprint after a round trip, want the same")
		}
	})
}

var reasons = []string{ReasonMissingField, ReasonInvalidUUID, ReasonInvalidRegulation, ReasonInvalidType, ReasonInvalidTime,
	ReasonInvalidIdentityType, ReasonInvalidIdentityFormat, ReasonInvalidIdentityValue, ReasonTooManyIdentities,
	ReasonInvalidCallbackURL, ReasonInvalidJSON}

// safeMessage is what a problem message may hold: field paths and fixed
// words, never arbitrary input.
var safeMessage = regexp.MustCompile(`^[A-Za-z0-9_ ,.\[\]()'-]+$`)

func checkRefusal(t *testing.T, err error) {
	t.Helper()
	ve, ok := errors.AsType[*ValidationError](err)
	if !ok {
		if _, isCDP := errors.AsType[*cdp.Error](err); !isCDP {
			t.Fatalf("got error %T, want *ValidationError or *cdp.Error", err)
		}
		return
	}
	if len(ve.Problems) == 0 {
		t.Fatal("got a ValidationError without problems")
	}
	for _, p := range ve.Problems {
		if p.Domain != ValidationDomain || !slices.Contains(reasons, p.Reason) {
			t.Fatalf("got problem %+v, want domain Validation and a known reason", p)
		}
		if len(p.Message) > 160 || !safeMessage.MatchString(p.Message) {
			t.Fatalf("got message %q, want a short message of field names and fixed words", p.Message)
		}
	}
}

func checkAccepted(t *testing.T, r Request) {
	t.Helper()
	if !slices.Contains(Regulations, r.Regulation) || !slices.Contains(RequestTypes, r.SubjectRequestType) {
		t.Fatalf("got regulation %q type %q, want known ones", r.Regulation, r.SubjectRequestType)
	}
	if !isUUIDv4(r.SubjectRequestID) {
		t.Fatalf("got id %q, want a lower-case UUID v4", r.SubjectRequestID)
	}
	if r.SubmittedTime.Location() != time.UTC || r.SubmittedTime.Before(earliestSubmitted) || r.SubmittedTime.After(testNow.Add(MaxFutureSkew)) {
		t.Fatalf("got submitted time %v, want UTC between %v and now+24h", r.SubmittedTime, earliestSubmitted)
	}
	if n := len(r.SubjectIdentities); n < 1 || n > MaxIdentities {
		t.Fatalf("got %d identities, want 1 to %d", n, MaxIdentities)
	}
	for i, id := range r.SubjectIdentities {
		typ, ok := CustosType(id.IdentityType)
		if !ok {
			t.Fatalf("identity %d: got unknown type %q", i, id.IdentityType)
		}
		switch id.IdentityFormat {
		case FormatRaw:
			if !utf8.ValidString(id.IdentityValue) || len(id.IdentityValue) > cdp.MaxIdentityValueLen {
				t.Fatalf("identity %d: got a raw value of %d bytes, want valid UTF-8 of at most 1024", i, len(id.IdentityValue))
			}
			if _, err := cdp.NewIdentity(typ, Normalised(typ, id.IdentityFormat, id.IdentityValue)); err != nil {
				t.Fatalf("identity %d: got %v for the normalised value, want a valid Custos identity", i, err)
			}
		case FormatSHA1, FormatMD5, FormatSHA256:
			if len(id.IdentityValue) != hexLen[id.IdentityFormat] || !isLowerHex(id.IdentityValue) {
				t.Fatalf("identity %d: got a %s value of %d bytes, want lower-case hex of %d", i, id.IdentityFormat, len(id.IdentityValue), hexLen[id.IdentityFormat])
			}
		default:
			t.Fatalf("identity %d: got format %q, want a known one", i, id.IdentityFormat)
		}
	}
	if len(r.StatusCallbackURLs) > MaxCallbackURLs {
		t.Fatalf("got %d callback URLs, want at most %d", len(r.StatusCallbackURLs), MaxCallbackURLs)
	}
	for i, u := range r.StatusCallbackURLs {
		if checkCallbackURL(u) != "" {
			t.Fatalf("callback %d: got an invalid URL of %d bytes", i, len(u))
		}
		if slices.Index(r.StatusCallbackURLs, u) != i {
			t.Fatalf("callback %d: got a duplicate", i)
		}
	}
	if r.Extensions != nil && !json.Valid(r.Extensions) {
		t.Fatal("got invalid extensions JSON")
	}
}
