package webhook_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/destinations/internal/deliverytest"
	"github.com/custos-cdp/custos/internal/destinations/webhook"
	"github.com/custos-cdp/custos/internal/forward"
)

const secret = "0123456789abcdef-webhook"

func newSender(t *testing.T, endpoint string, now time.Time) *webhook.Sender {
	t.Helper()
	s, err := webhook.New(forward.SenderConfig{
		Destination: cdp.Destination{ID: deliverytest.Destination, Type: webhook.Type, Endpoint: endpoint},
		Credentials: []byte(`{"secret":"` + secret + `"}`),
		HTTPClient:  http.DefaultClient,
		Now:         func() time.Time { return now },
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSendBody(t *testing.T) {
	now := deliverytest.T0.Add(time.Hour)
	srv, requests := deliverytest.Server(t, nil)
	s := newSender(t, srv.URL+"/hooks/custos", now)
	batch := deliverytest.Batch()
	if err := s.Send(context.Background(), batch); err != nil {
		t.Fatalf("Send: %v", err)
	}
	reqs := requests()
	if len(reqs) != 1 {
		t.Fatalf("got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	for _, h := range []struct{ name, want string }{
		{"Content-Type", "application/json"},
		{"User-Agent", "Custos/1 (+webhook)"},
		{"X-Custos-Timestamp", strconv.FormatInt(now.Unix(), 10)},
		{"Idempotency-Key", keysHash(batch)},
	} {
		if got := r.Header.Get(h.name); got != h.want {
			t.Errorf("header %s: got %q, want %q", h.name, got, h.want)
		}
	}
	if r.Method != http.MethodPost || r.Path != "/hooks/custos" {
		t.Errorf("got %s %s, want POST /hooks/custos", r.Method, r.Path)
	}
	if got, want := r.Header.Get("X-Custos-Signature"), signature(secret, r.Header.Get("X-Custos-Timestamp"), r.Body); got != want {
		t.Errorf("X-Custos-Signature: got %q, want %q", got, want)
	}
	if err := webhook.Verify(secret, r.Header.Get("X-Custos-Timestamp"), r.Header.Get("X-Custos-Signature"), r.Body, now, time.Minute); err != nil {
		t.Errorf("Verify of the request: got %v, want nil", err)
	}

	var body webhook.Body
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("decode body strictly: %v", err)
	}
	if want := now.UTC().Format(time.RFC3339); body.SentAt != want {
		t.Errorf("sent_at: got %q, want %q", body.SentAt, want)
	}
	if len(body.Batch) != len(batch) {
		t.Fatalf("got %d items, want %d", len(body.Batch), len(batch))
	}
	for i, item := range body.Batch {
		d := batch[i]
		if item.Kind != string(d.Kind) || item.IdempotencyKey != d.Key || item.ProfileID != string(d.Profile) {
			t.Errorf("item %d: got kind %q key %q profile %q, want %q %q %q", i, item.Kind, item.IdempotencyKey, item.ProfileID, d.Kind, d.Key, d.Profile)
		}
		if item.RawEvent != nil {
			t.Errorf("item %d: got a raw event, want the public event form", i)
		}
		if d.Event != nil && (item.Event == nil || item.Event.MessageID != d.Event.MessageID) {
			t.Errorf("item %d: got event %+v, want message id %q", i, item.Event, d.Event.MessageID)
		}
	}
	last := body.Batch[len(body.Batch)-1]
	if last.Kind != "erasure" || last.Erasure == nil || last.Erasure.RequestID != "dsr_1" || len(last.Erasure.Identities) != 3 {
		t.Errorf("erasure item: got %+v, want kind erasure, request dsr_1, 3 identities", last)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, r.Body, "", "  "); err != nil {
		t.Fatal(err)
	}
	deliverytest.Golden(t, "batch.golden.json", append(pretty.Bytes(), '\n'))
}

func keysHash(batch []cdp.Delivery) string {
	keys := make([]string, len(batch))
	for i, d := range batch {
		keys[i] = d.Key
	}
	h := sha256.Sum256([]byte(strings.Join(keys, "\n")))
	return hex.EncodeToString(h[:])
}

func TestIdempotencyKeyStableAcrossResend(t *testing.T) {
	srv, requests := deliverytest.Server(t, nil)
	batch := deliverytest.Batch()
	first := newSender(t, srv.URL, deliverytest.T0)
	again := newSender(t, srv.URL, deliverytest.T0.Add(90*time.Second))
	other := newSender(t, srv.URL, deliverytest.T0)
	for _, send := range []struct {
		s     *webhook.Sender
		batch []cdp.Delivery
	}{{first, batch}, {again, batch}, {other, batch[:3]}} {
		if err := send.s.Send(context.Background(), send.batch); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	reqs := requests()
	if len(reqs) != 3 {
		t.Fatalf("got %d requests, want 3", len(reqs))
	}
	k0, k1, k2 := reqs[0].Header.Get("Idempotency-Key"), reqs[1].Header.Get("Idempotency-Key"), reqs[2].Header.Get("Idempotency-Key")
	if k0 == "" || k0 != k1 {
		t.Errorf("resent batch: got keys %q and %q, want the same non-empty key", k0, k1)
	}
	if k2 == k0 {
		t.Errorf("another batch: got key %q, want a different key", k2)
	}
	if reqs[0].Header.Get("X-Custos-Signature") == reqs[1].Header.Get("X-Custos-Signature") {
		t.Errorf("resent batch at another time: got the same signature, want a new one over the new timestamp")
	}
}

func TestVerify(t *testing.T) {
	now := deliverytest.T0
	body := []byte(`{"batch":[],"sent_at":"2026-11-28T20:55:32Z"}`)
	ts := strconv.FormatInt(now.Unix(), 10)
	good := signature(secret, ts, body)
	tests := []struct {
		name      string
		secret    string
		timestamp string
		signature string
		body      []byte
		now       time.Time
		wantCode  string
	}{
		{"valid", secret, ts, good, body, now, ""},
		{"valid within tolerance", secret, ts, good, body, now.Add(4 * time.Minute), ""},
		{"one of several signatures", secret, ts, "v1=00ff," + good, body, now, ""},
		{"tampered body", secret, ts, good, []byte(`{"batch":[{}],"sent_at":"2026-11-28T20:55:32Z"}`), now, "invalid_signature"},
		{"wrong secret", "another-secret-of-16+", ts, good, body, now, "invalid_signature"},
		{"stale timestamp", secret, ts, good, body, now.Add(6 * time.Minute), "stale_timestamp"},
		{"future timestamp", secret, ts, good, body, now.Add(-6 * time.Minute), "stale_timestamp"},
		{"timestamp changed", secret, strconv.FormatInt(now.Unix()+1, 10), good, body, now, "invalid_signature"},
		{"timestamp not a number", secret, "yesterday", good, body, now, "invalid_timestamp"},
		{"no timestamp", secret, "", good, body, now, "invalid_timestamp"},
		{"no signature", secret, ts, "", body, now, "invalid_signature"},
		{"unknown version", secret, ts, strings.Replace(good, "v1=", "v0=", 1), body, now, "invalid_signature"},
		{"not hex", secret, ts, "v1=zz", body, now, "invalid_signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := webhook.Verify(tt.secret, tt.timestamp, tt.signature, tt.body, tt.now, 5*time.Minute)
			if tt.wantCode == "" {
				if err != nil {
					t.Errorf("got %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, &cdp.Error{Kind: cdp.Unauthenticated, Code: tt.wantCode}) {
				t.Errorf("got %v, want an unauthenticated error with code %s", err, tt.wantCode)
			}
		})
	}
}

// signature computes the documented signature independently of the
// package.
func signature(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

func TestSendErrors(t *testing.T) {
	tests := []struct {
		name           string
		status         int
		header         map[string]string
		refused        bool
		wantNil        bool
		wantRetryable  bool
		wantStatus     int
		wantRetryAfter time.Duration
	}{
		{name: "200", status: 200, wantNil: true},
		{name: "204", status: 204, wantNil: true},
		{name: "500", status: 500, wantRetryable: true, wantStatus: 500},
		{name: "503 with Retry-After", status: 503, header: map[string]string{"Retry-After": "30"}, wantRetryable: true, wantStatus: 503, wantRetryAfter: 30 * time.Second},
		{name: "429 with Retry-After", status: 429, header: map[string]string{"Retry-After": "7"}, wantRetryable: true, wantStatus: 429, wantRetryAfter: 7 * time.Second},
		{name: "408", status: 408, wantRetryable: true, wantStatus: 408},
		{name: "400", status: 400, wantStatus: 400},
		{name: "401", status: 401, wantStatus: 401},
		{name: "404", status: 404, wantStatus: 404},
		{name: "connection refused", refused: true, wantRetryable: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			endpoint := deliverytest.RefusedURL(t)
			if !tt.refused {
				srv, _ := deliverytest.Server(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
					for k, v := range tt.header {
						w.Header().Set(k, v)
					}
					w.WriteHeader(tt.status)
					w.Write(body) // a receiver echoing the payload must not leak it into the error
				})
				endpoint = srv.URL
			}
			err := newSender(t, endpoint, deliverytest.T0).Send(context.Background(), deliverytest.Batch())
			if tt.wantNil {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			var se *forward.SendError
			if !errors.As(err, &se) {
				t.Fatalf("got %T %v, want a *forward.SendError", err, err)
			}
			if se.Retryable != tt.wantRetryable || se.Status != tt.wantStatus || se.RetryAfter != tt.wantRetryAfter {
				t.Errorf("got retryable %v status %d retry-after %v, want %v %d %v", se.Retryable, se.Status, se.RetryAfter, tt.wantRetryable, tt.wantStatus, tt.wantRetryAfter)
			}
			if strings.Contains(se.Message, deliverytest.Email) || strings.Contains(se.Message, "Alice") {
				t.Errorf("got message %q, want no payload content", se.Message)
			}
		})
	}
}

func TestEmptyBatchSendsNothing(t *testing.T) {
	srv, requests := deliverytest.Server(t, nil)
	if err := newSender(t, srv.URL, deliverytest.T0).Send(context.Background(), nil); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if got := len(requests()); got != 0 {
		t.Errorf("got %d requests, want 0", got)
	}
}

func TestFactory(t *testing.T) {
	tests := []struct {
		name     string
		endpoint string
		creds    string
		wantErr  bool
	}{
		{"https", "https://hooks.example.com/custos", `{"secret":"0123456789abcdef"}`, false},
		{"http", "http://127.0.0.1:8080/", `{"secret":"0123456789abcdef"}`, false},
		{"no credentials", "https://hooks.example.com/", "", true},
		{"no secret", "https://hooks.example.com/", `{}`, true},
		{"short secret", "https://hooks.example.com/", `{"secret":"0123456789abcde"}`, true},
		{"unknown field", "https://hooks.example.com/", `{"secret":"0123456789abcdef","key":"x"}`, true},
		{"not JSON", "https://hooks.example.com/", `secret`, true},
		{"ftp endpoint", "ftp://hooks.example.com/", `{"secret":"0123456789abcdef"}`, true},
		{"file endpoint", "file:///tmp/x", `{"secret":"0123456789abcdef"}`, true},
		{"no host", "https:///path", `{"secret":"0123456789abcdef"}`, true},
		{"credentials in the URL", "https://user:pass@hooks.example.com/", `{"secret":"0123456789abcdef"}`, true},
		{"not a URL", "::", `{"secret":"0123456789abcdef"}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var creds []byte
			if tt.creds != "" {
				creds = []byte(tt.creds)
			}
			s, err := webhook.Factory(forward.SenderConfig{
				Destination: cdp.Destination{ID: "dst_1", Type: webhook.Type, Endpoint: tt.endpoint},
				Credentials: creds, HTTPClient: http.DefaultClient,
			})
			if !tt.wantErr {
				if err != nil || s == nil {
					t.Fatalf("got %v, %v, want a sender", s, err)
				}
				if err := s.Close(); err != nil {
					t.Errorf("Close: got %v, want nil", err)
				}
				return
			}
			if s != nil || !cdp.IsKind(err, cdp.Invalid) {
				t.Fatalf("got %v, %v, want no sender and an invalid error", s, err)
			}
			if strings.Contains(err.Error(), "0123456789abcde") || strings.Contains(err.Error(), "pass") {
				t.Errorf("got %q, want an error that does not repeat the credentials", err)
			}
		})
	}
}
