package segment_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/destinations/internal/deliverytest"
	"github.com/custos-cdp/custos/internal/destinations/segment"
	"github.com/custos-cdp/custos/internal/forward"
)

const writeKey = "wk_test_0123"

// specMessage is a message of the tracking spec as a strict receiver
// reads it: any field outside the spec fails the decoding.
type specMessage struct {
	Type         string          `json:"type"`
	MessageID    string          `json:"messageId"`
	UserID       string          `json:"userId"`
	AnonymousID  string          `json:"anonymousId"`
	Event        string          `json:"event"`
	Name         string          `json:"name"`
	Properties   json.RawMessage `json:"properties"`
	Traits       json.RawMessage `json:"traits"`
	GroupID      string          `json:"groupId"`
	PreviousID   string          `json:"previousId"`
	Context      json.RawMessage `json:"context"`
	Integrations json.RawMessage `json:"integrations"`
	Timestamp    time.Time       `json:"timestamp"`
}

type specBatch struct {
	Batch  []specMessage `json:"batch"`
	SentAt time.Time     `json:"sentAt"`
}

func decodeStrict(t *testing.T, body []byte) specBatch {
	t.Helper()
	var b specBatch
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		t.Fatalf("decode request body strictly: %v", err)
	}
	if dec.More() {
		t.Fatalf("request body has data after the object")
	}
	return b
}

func newSender(t *testing.T, endpoint string) *segment.Sender {
	t.Helper()
	s, err := segment.New(forward.SenderConfig{
		Destination: cdp.Destination{ID: deliverytest.Destination, Type: segment.Type, Endpoint: endpoint},
		Credentials: []byte(`{"write_key":"` + writeKey + `"}`),
		HTTPClient:  http.DefaultClient,
		Now:         func() time.Time { return deliverytest.T0.Add(time.Hour) },
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func track(key, id string, props string) cdp.Delivery {
	return deliverytest.Event(key, deliverytest.Alice, deliverytest.AliceIdentities, cdp.Event{MessageID: id, Type: cdp.Track,
		Name: "Viewed", Identities: []cdp.Identity{{Type: cdp.UserID, Value: "u-1"}}, Properties: json.RawMessage(props), Timestamp: deliverytest.T0})
}

func TestSendMessages(t *testing.T) {
	srv, requests := deliverytest.Server(t, nil)
	batch := deliverytest.Batch()
	batch = append(batch,
		deliverytest.Event("k09", deliverytest.Bob, nil, cdp.Event{MessageID: "msg-nobody", Type: cdp.Track, Name: "Opened",
			IP: "192.0.2.1", Timestamp: deliverytest.T0}),
		deliverytest.Consent("k10", deliverytest.Bob, nil, "cen_2", "analytics", cdp.Unknown, cdp.Granted, deliverytest.T0),
	)
	batch[len(batch)-1].Consent.Entry.Document = ""
	if err := newSender(t, srv.URL).Send(context.Background(), batch); err != nil {
		t.Fatalf("Send: %v", err)
	}
	reqs := requests()
	if len(reqs) != 1 {
		t.Fatalf("got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Method != http.MethodPost || r.Path != "/v1/batch" {
		t.Errorf("got %s %s, want POST /v1/batch", r.Method, r.Path)
	}
	user, pass, ok := (&http.Request{Header: r.Header}).BasicAuth()
	if !ok || user != writeKey || pass != "" {
		t.Errorf("basic auth: got %q:%q (%v), want %q with an empty password", user, pass, ok, writeKey)
	}
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type: got %q, want application/json", got)
	}
	if got := r.Header.Get("User-Agent"); got != "Custos/1 (+segment)" {
		t.Errorf("User-Agent: got %q, want Custos/1 (+segment)", got)
	}
	b := decodeStrict(t, r.Body)
	if want := deliverytest.T0.Add(time.Hour); !b.SentAt.Equal(want) {
		t.Errorf("sentAt: got %v, want %v", b.SentAt, want)
	}
	t0 := deliverytest.T0
	consent := func(purpose, from, to, entry, doc string, at time.Time) string {
		d := ""
		if doc != "" {
			d = `"document":"` + doc + `",`
		}
		return fmt.Sprintf(`{"purpose":%q,"old_state":%q,"new_state":%q,"entry_id":%q,"source":"server",%s"collected_at":%q}`,
			purpose, from, to, entry, d, at.Format(time.RFC3339Nano))
	}
	want := []specMessage{
		{Type: "identify", MessageID: "msg-identify", UserID: "u-1", AnonymousID: "anon-1",
			Traits:       json.RawMessage(`{"email":"alice@example.com","name":"Alice","plan":"pro"}`),
			Context:      json.RawMessage(`{"ip":"203.0.113.9","library":{"name":"analytics.js","version":"5.0.0"},"locale":"fr-FR"}`),
			Integrations: json.RawMessage(`{"All":true,"Mixpanel":false}`), Timestamp: t0},
		{Type: "track", MessageID: "msg-track", UserID: "u-1", AnonymousID: "anon-1", Event: "Order Completed",
			Properties: json.RawMessage(`{"currency":"EUR","total":42.5}`),
			Context:    json.RawMessage(`{"ip":"198.51.100.7","locale":"fr-FR"}`), Timestamp: t0.Add(time.Minute)},
		{Type: "page", MessageID: "msg-page", AnonymousID: "anon-1", Name: "Pricing",
			Properties: json.RawMessage(`{"path":"/pricing","title":"Pricing"}`), Timestamp: t0.Add(2 * time.Minute)},
		{Type: "screen", MessageID: "msg-screen", UserID: "u-1", AnonymousID: "anon-1", Name: "Home",
			Properties: json.RawMessage(`{"tab":"feed"}`), Timestamp: t0.Add(3 * time.Minute)},
		{Type: "group", MessageID: "msg-group", UserID: "u-1", GroupID: "acme",
			Traits: json.RawMessage(`{"employees":100,"name":"Acme Inc"}`), Timestamp: t0.Add(4 * time.Minute)},
		{Type: "alias", MessageID: "msg-alias", UserID: "u-1", PreviousID: "anon-1", Timestamp: t0.Add(5 * time.Minute)},
		{Type: "track", MessageID: "k07", UserID: "u-1", AnonymousID: "anon-1", Event: "Consent Updated",
			Properties: json.RawMessage(consent("marketing", "granted", "withdrawn", "cen_1", "privacy-v3", t0.Add(6*time.Minute))),
			Timestamp:  t0.Add(6 * time.Minute)},
		// The erasure (k08) is not sent.
		{Type: "track", MessageID: "msg-nobody", AnonymousID: "prf_bob", Event: "Opened",
			Context: json.RawMessage(`{"ip":"192.0.2.1"}`), Timestamp: t0},
		{Type: "track", MessageID: "k10", AnonymousID: "prf_bob", Event: "Consent Updated",
			Properties: json.RawMessage(consent("analytics", "unknown", "granted", "cen_2", "", t0)), Timestamp: t0},
	}
	if len(b.Batch) != len(want) {
		t.Fatalf("got %d messages, want %d", len(b.Batch), len(want))
	}
	for i, w := range want {
		t.Run(w.MessageID, func(t *testing.T) {
			g := b.Batch[i]
			if g.Type != w.Type || g.MessageID != w.MessageID || g.UserID != w.UserID || g.AnonymousID != w.AnonymousID ||
				g.Event != w.Event || g.Name != w.Name || g.GroupID != w.GroupID || g.PreviousID != w.PreviousID || !g.Timestamp.Equal(w.Timestamp) {
				t.Errorf("got %+v,\nwant %+v", g, w)
			}
			for _, f := range []struct {
				name      string
				got, want json.RawMessage
			}{{"properties", g.Properties, w.Properties}, {"traits", g.Traits, w.Traits}, {"context", g.Context, w.Context}, {"integrations", g.Integrations, w.Integrations}} {
				if !bytes.Equal(f.got, f.want) {
					t.Errorf("%s: got %s, want %s", f.name, f.got, f.want)
				}
			}
			if g.UserID == "" && g.AnonymousID == "" {
				t.Errorf("got neither userId nor anonymousId, want one")
			}
		})
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, r.Body, "", "  "); err != nil {
		t.Fatal(err)
	}
	deliverytest.Golden(t, "batch.golden.json", append(pretty.Bytes(), '\n'))
}

func TestSplitsLargeBatchesInOrder(t *testing.T) {
	srv, requests := deliverytest.Server(t, nil)
	big := `{"blob":"` + strings.Repeat("x", 30000) + `"}`
	var batch []cdp.Delivery
	var ids []string
	for i := range 40 {
		id := fmt.Sprintf("msg-%02d", i)
		batch = append(batch, track(fmt.Sprintf("k%02d", i), id, big))
		ids = append(ids, id)
	}
	if err := newSender(t, srv.URL).Send(context.Background(), batch); err != nil {
		t.Fatalf("Send: %v", err)
	}
	reqs := requests()
	if len(reqs) < 3 {
		t.Fatalf("got %d requests for 40 messages of about 30 KB, want at least 3", len(reqs))
	}
	var got []string
	for i, r := range reqs {
		if len(r.Body) > segment.MaxRequestBytes {
			t.Errorf("request %d: got %d bytes, want at most %d", i, len(r.Body), segment.MaxRequestBytes)
		}
		for _, m := range decodeStrict(t, r.Body).Batch {
			got = append(got, m.MessageID)
		}
	}
	if strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Errorf("got messages %v, want %v in that order", got, ids)
	}
}

func TestSendFailures(t *testing.T) {
	big := `{"blob":"` + strings.Repeat("x", 30000) + `"}`
	tests := []struct {
		name          string
		batch         []cdp.Delivery
		status        int
		wantRequests  int
		wantErr       bool
		wantRetryable bool
		wantInMessage string
	}{
		{name: "only an erasure", batch: []cdp.Delivery{deliverytest.Erasure("k1", deliverytest.Alice, deliverytest.AliceIdentities)}, status: 200, wantRequests: 0},
		{name: "empty", batch: nil, status: 200, wantRequests: 0},
		{name: "message over 32 KB", batch: []cdp.Delivery{track("k1", "msg-small", `{}`), track("k2", "msg-huge", `{"blob":"`+strings.Repeat("y", 33000)+`"}`)},
			status: 200, wantRequests: 0, wantErr: true, wantInMessage: "msg-huge"},
		{name: "500", batch: []cdp.Delivery{track("k1", "m1", `{}`)}, status: 500, wantRequests: 1, wantErr: true, wantRetryable: true},
		{name: "429", batch: []cdp.Delivery{track("k1", "m1", `{}`)}, status: 429, wantRequests: 1, wantErr: true, wantRetryable: true},
		{name: "400", batch: []cdp.Delivery{track("k1", "m1", `{}`)}, status: 400, wantRequests: 1, wantErr: true},
		{name: "401 bad write key", batch: []cdp.Delivery{track("k1", "m1", `{}`)}, status: 401, wantRequests: 1, wantErr: true},
		{name: "first request of several fails", batch: func() []cdp.Delivery {
			var b []cdp.Delivery
			for i := range 20 {
				b = append(b, track(fmt.Sprint("k", i), fmt.Sprint("m", i), big))
			}
			return b
		}(), status: 503, wantRequests: 1, wantErr: true, wantRetryable: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, requests := deliverytest.Server(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
				w.WriteHeader(tt.status)
				w.Write(body)
			})
			err := newSender(t, srv.URL).Send(context.Background(), tt.batch)
			if got := len(requests()); got != tt.wantRequests {
				t.Errorf("got %d requests, want %d", got, tt.wantRequests)
			}
			if !tt.wantErr {
				if err != nil {
					t.Errorf("got %v, want nil", err)
				}
				return
			}
			var se *forward.SendError
			if !errors.As(err, &se) {
				t.Fatalf("got %T %v, want a *forward.SendError", err, err)
			}
			if se.Retryable != tt.wantRetryable {
				t.Errorf("retryable: got %v, want %v", se.Retryable, tt.wantRetryable)
			}
			if !strings.Contains(se.Message, tt.wantInMessage) || strings.Contains(se.Message, "yyyy") || strings.Contains(se.Message, deliverytest.Email) {
				t.Errorf("message: got %q, want it to name %q and hold no payload", se.Message, tt.wantInMessage)
			}
		})
	}
}

func TestEndpointPath(t *testing.T) {
	tests := []struct {
		name     string
		suffix   string
		wantPath string
	}{
		{"base URL", "", "/v1/batch"},
		{"base URL with a slash", "/", "/v1/batch"},
		{"prefix", "/segment", "/segment/v1/batch"},
		{"full batch URL", "/v1/batch", "/v1/batch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, requests := deliverytest.Server(t, nil)
			if err := newSender(t, srv.URL+tt.suffix).Send(context.Background(), []cdp.Delivery{track("k1", "m1", `{}`)}); err != nil {
				t.Fatalf("Send: %v", err)
			}
			reqs := requests()
			if len(reqs) != 1 || reqs[0].Path != tt.wantPath {
				t.Fatalf("got %v, want one request to %s", reqs, tt.wantPath)
			}
		})
	}
}

func TestFactory(t *testing.T) {
	tests := []struct {
		name     string
		endpoint string
		creds    string
		wantErr  bool
	}{
		{"segment", "https://api.segment.io", `{"write_key":"abc"}`, false},
		{"custos", "http://127.0.0.1:8080", `{"write_key":"abc"}`, false},
		{"no credentials", "https://api.segment.io", ``, true},
		{"empty write key", "https://api.segment.io", `{"write_key":" "}`, true},
		{"misspelt field", "https://api.segment.io", `{"writeKey":"abc"}`, true},
		{"file endpoint", "file:///tmp", `{"write_key":"abc"}`, true},
		{"no host", "http://", `{"write_key":"abc"}`, true},
		{"credentials in the URL", "https://abc:@api.segment.io", `{"write_key":"abc"}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := segment.Factory(forward.SenderConfig{
				Destination: cdp.Destination{ID: "dst_1", Type: segment.Type, Endpoint: tt.endpoint},
				Credentials: []byte(tt.creds), HTTPClient: http.DefaultClient,
			})
			if !tt.wantErr {
				if err != nil || s == nil {
					t.Fatalf("got %v, %v, want a sender", s, err)
				}
				return
			}
			if s != nil || !cdp.IsKind(err, cdp.Invalid) {
				t.Fatalf("got %v, %v, want no sender and an invalid error", s, err)
			}
		})
	}
}
