package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestServeEndToEnd sends events in both wire formats through a running
// server and reads them back through the admin API, then drains it.
func TestServeEndToEnd(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		dir := t.TempDir()
		srv := startInProcess(t, be, dir)
		c := newClient(srv.url)

		const canaryEmail = "canary.person@example.org"
		status, body := c.do(t, "POST", "/v1/track", segmentAuth(), segmentTrack("seg-1", "user-1"))
		if status != http.StatusOK {
			t.Fatalf("track: status %d: %s", status, body)
		}
		identify := []byte(`{"writeKey":"` + testWriteKey + `","userId":"user-1","messageId":"seg-2","traits":{"email":"` + canaryEmail + `"}}`)
		h := http.Header{"Content-Encoding": {"gzip"}}
		if status, body = c.do(t, "POST", "/v1/identify", h, gzipped(t, identify)); status != http.StatusOK {
			t.Fatalf("gzip identify with writeKey in body: status %d: %s", status, body)
		}
		mp := []byte(`{"environment":"production","source_request_id":"req-1","mpid":42,
			"user_identities":{"customer_id":"user-1"},
			"events":[{"event_type":"custom_event","data":{"event_name":"Played","custom_event_type":"media","source_message_id":"mp-1"}}]}`)
		if status, body = c.do(t, "POST", "/v2/events", mparticleAuth(), mp); status != http.StatusAccepted {
			t.Fatalf("mparticle: status %d: %s", status, body)
		}
		// A retry of the same track is acknowledged and not stored twice.
		if status, _ = c.do(t, "POST", "/v1/track", segmentAuth(), segmentTrack("seg-1", "user-1")); status != http.StatusOK {
			t.Fatalf("retried track: status %d", status)
		}

		evs := c.waitForEvents(t, "three events", 20*time.Second, func(evs []listedEvent) bool { return len(evs) >= 3 })
		counts := countByMessageID(evs)
		for _, mid := range []string{"seg-1", "seg-2", "mp-1"} {
			if counts[mid] != 1 {
				t.Errorf("message %s stored %d times, want 1", mid, counts[mid])
			}
		}
		if len(evs) != 3 {
			t.Errorf("stored %d events, want 3", len(evs))
		}
		for _, e := range evs {
			if e.MessageID == "mp-1" && (e.Type != "track" || e.Event != "Played") {
				t.Errorf("mParticle event stored as %s %q, want track \"Played\"", e.Type, e.Event)
			}
		}

		// Paging: one event per page, three pages, newest first.
		status, body = c.do(t, "GET", "/api/v1/events?limit=1", adminAuth(), nil)
		var page struct {
			Events     []listedEvent `json:"events"`
			NextCursor string        `json:"next_cursor"`
		}
		if err := json.Unmarshal(body, &page); err != nil || status != 200 || len(page.Events) != 1 || page.NextCursor == "" {
			t.Fatalf("first page: status %d, %d events, cursor %q, err %v", status, len(page.Events), page.NextCursor, err)
		}

		for path, want := range map[string]int{"/healthz": 200, "/readyz": 200} {
			if status, body := c.do(t, "GET", path, nil, nil); status != want {
				t.Errorf("%s: status %d, want %d: %s", path, status, want, body)
			}
		}
		_, metrics := c.do(t, "GET", "/metrics", nil, nil)
		for _, name := range []string{"custos_ingest_events_total", "custos_ingest_ack_seconds", "custos_log_queue_depth", "custos_processor_events_total", "custos_processor_retries_total"} {
			if !strings.Contains(string(metrics), name) {
				t.Errorf("metrics lack %s", name)
			}
		}
		if status, _ := c.do(t, "GET", "/api/v1/events", nil, nil); status != http.StatusUnauthorized {
			t.Errorf("events without a token: status %d, want 401", status)
		}

		if err := srv.stop(t); err != nil {
			t.Fatalf("drain: %v", err)
		}
		out := srv.stdout.String()
		if strings.Count(out, testAdminToken) != 1 || strings.Count(out, testWriteSecret) != 1 {
			t.Errorf("first start printed the credentials %d/%d times, want once each", strings.Count(out, testAdminToken), strings.Count(out, testWriteSecret))
		}
		logs := srv.stderr.String()
		for _, secret := range []string{testWriteKey, testWriteSecret, testAdminToken, canaryEmail, "203.0.113.9", "user-1"} {
			if strings.Contains(logs, secret) {
				t.Errorf("logs contain %q", secret)
			}
		}
		if !strings.Contains(logs, `"msg":"stopped cleanly"`) {
			t.Errorf("logs lack the clean stop line")
		}

		// A second start on the same data: no new credentials, events kept,
		// and a resent message is still deduplicated.
		srv2 := startInProcess(t, be, dir)
		if out := srv2.stdout.String(); strings.Contains(out, testAdminToken) {
			t.Errorf("second start printed credentials again")
		}
		c2 := newClient(srv2.url)
		if status, _ = c2.do(t, "POST", "/v1/track", segmentAuth(), segmentTrack("seg-1", "user-1")); status != http.StatusOK {
			t.Fatalf("track after restart: status %d", status)
		}
		if status, _ = c2.do(t, "POST", "/v1/track", segmentAuth(), segmentTrack("seg-4", "user-1")); status != http.StatusOK {
			t.Fatalf("track after restart: status %d", status)
		}
		evs = c2.waitForEvents(t, "the new event", 20*time.Second, func(evs []listedEvent) bool { return countByMessageID(evs)["seg-4"] == 1 })
		if n := countByMessageID(evs)["seg-1"]; n != 1 {
			t.Errorf("after restart seg-1 stored %d times, want 1", n)
		}
	})
}

func TestIngestRejectsBadInput(t *testing.T) {
	srv := startInProcess(t, backend{name: "embedded", natsPrefix: "custos"}, t.TempDir())
	c := newClient(srv.url)
	tests := []struct {
		name     string
		path     string
		header   http.Header
		body     []byte
		want     int
		wantCode string
	}{
		{"unknown write key", "/v1/track", http.Header{"Authorization": {"Basic dW5rbm93bjo="}}, segmentTrack("x", "u"), 401, "invalid_write_key"},
		{"malformed json", "/v1/track", segmentAuth(), []byte(`{"userId":`), 400, "invalid_json"},
		{"wrong content type", "/v1/track", http.Header{"Authorization": segmentAuth()["Authorization"], "Content-Type": {"application/xml"}}, segmentTrack("x", "u"), 415, "unsupported_content_type"},
		{"bad gzip", "/v1/track", http.Header{"Authorization": segmentAuth()["Authorization"], "Content-Encoding": {"gzip"}}, []byte("not gzip"), 400, "invalid_gzip"},
		{"too large", "/v1/batch", segmentAuth(), bytes.Repeat([]byte(" "), 600<<10), 413, "body_too_large"},
		{"mparticle bad secret", "/v2/events", http.Header{"Authorization": {"Basic " + "Y3drX3Rlc3R3cml0ZWtleXRlc3R3cml0ZWtleTp3cm9uZw=="}}, []byte(`{}`), 401, "invalid_credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := c.do(t, "POST", tt.path, tt.header, tt.body)
			if status != tt.want {
				t.Fatalf("status %d, want %d: %s", status, tt.want, body)
			}
			var e struct {
				Error struct {
					Code string `json:"code"`
				} `json:"error"`
			}
			if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != tt.wantCode {
				t.Errorf("error code %q (err %v), want %q: %s", e.Error.Code, err, tt.wantCode, body)
			}
		})
	}
	if evs := c.allEvents(t); len(evs) != 0 {
		t.Errorf("bad input stored %d events, want 0", len(evs))
	}
}
