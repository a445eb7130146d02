package ingest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/custos-cdp/custos/internal/cdp"
)

var testSource = cdp.Source{ID: "src-1", WorkspaceID: "ws-1", Name: "web"}

const (
	goodWriteKey = "wk-good"
	downWriteKey = "wk-down" // the authenticator's store is unavailable
	mpKey        = "mp-key"
	mpSecret     = "mp-secret"
)

type fakeAuth struct {
	mu    sync.Mutex
	calls int
}

func (a *fakeAuth) SourceByWriteKey(_ context.Context, key string) (cdp.Source, error) {
	a.mu.Lock()
	a.calls++
	a.mu.Unlock()
	switch key {
	case goodWriteKey:
		return testSource, nil
	case downWriteKey:
		return cdp.Source{}, cdp.Reason(cdp.Unavailable, "store_down", "source store unavailable")
	}
	return cdp.Source{}, cdp.Reason(cdp.Unauthenticated, "some_code", "no such key")
}

func (a *fakeAuth) SourceByKeySecret(_ context.Context, key, secret string) (cdp.Source, error) {
	a.mu.Lock()
	a.calls++
	a.mu.Unlock()
	if key == mpKey && secret == mpSecret {
		return testSource, nil
	}
	return cdp.Source{}, cdp.Reason(cdp.Unauthenticated, "some_code", "bad secret")
}

// fakeLog records appended events; err, when set, is returned instead.
type fakeLog struct {
	mu     sync.Mutex
	calls  int
	events []cdp.Event
	err    error
}

func (l *fakeLog) Append(_ context.Context, events []cdp.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	if l.err != nil {
		return l.err
	}
	l.events = append(l.events, events...)
	return nil
}

type testServer struct {
	mux  *http.ServeMux
	auth *fakeAuth
	log  *fakeLog
	reg  *prometheus.Registry
}

func newTestServer(t testing.TB) *testServer {
	t.Helper()
	s := &testServer{mux: http.NewServeMux(), auth: &fakeAuth{}, log: &fakeLog{}, reg: prometheus.NewRegistry()}
	cfg := Config{Now: func() time.Time { return receivedAt }, Registerer: s.reg, Logger: slog.New(slog.DiscardHandler)}
	New(cfg, s.auth, s.log).Register(s.mux)
	return s
}

func (s *testServer) do(t testing.TB, path string, header http.Header, body io.Reader) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, path, body)
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	s.mux.ServeHTTP(w, r)
	return w
}

func basic(user, pass string) http.Header {
	return http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))}}
}

func with(h http.Header, kv ...string) http.Header {
	out := h.Clone()
	if out == nil {
		out = http.Header{}
	}
	for i := 0; i < len(kv); i += 2 {
		out.Set(kv[i], kv[i+1])
	}
	return out
}

// answer is the union of the JSON bodies the endpoints write.
type answer struct {
	Success bool `json:"success"`
	Error   struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	} `json:"error"`
	Errors []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
	Rejected []Rejection `json:"rejected"`
}

func readAnswer(t testing.TB, w *httptest.ResponseRecorder) answer {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("got Content-Type %q, want application/json", ct)
	}
	var a answer
	if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
		t.Fatalf("answer %q is not JSON: %v", w.Body, err)
	}
	return a
}

const (
	trackBody = `{"userId":"u-1","messageId":"m-1","event":"Order Completed","properties":{"revenue":42.5}}`
	mpBody    = `{"mpid":7,"source_request_id":"req-1","events":[{"event_type":"custom_event","data":{"event_name":"Played"}}]}`
)

func TestHandlerSegment(t *testing.T) {
	auth := basic(goodWriteKey, "")
	tests := []struct {
		name       string
		path       string
		header     http.Header
		body       string
		wantStatus int
		wantCode   string // "" for success
		wantEvents int
	}{
		{"track with basic auth", "/v1/track", auth, trackBody, 200, "", 1},
		{"basic auth password ignored", "/v1/track", basic(goodWriteKey, "anything"), trackBody, 200, "", 1},
		{"write key in the body", "/v1/identify", nil, `{"writeKey":"wk-good","userId":"u-1"}`, 200, "", 1},
		{"batch", "/v1/batch", auth, `{"batch":[{"type":"track","userId":"u","event":"A"},{"type":"page","userId":"u"}]}`, 200, "", 2},
		{"import is batch", "/v1/import", auth, `{"batch":[{"type":"track","userId":"u","event":"A"}]}`, 200, "", 1},
		{"empty batch appends nothing", "/v1/batch", auth, `{"batch":[]}`, 200, "", 0},
		{"json with charset", "/v1/track", with(auth, "Content-Type", "application/json; charset=utf-8"), trackBody, 200, "", 1},
		{"text/plain beacon", "/v1/track", with(auth, "Content-Type", "text/plain;charset=UTF-8"), trackBody, 200, "", 1},
		{"vendor json", "/v1/track", with(auth, "Content-Type", "application/vnd.custos+json"), trackBody, 200, "", 1},
		{"identity encoding", "/v1/track", with(auth, "Content-Encoding", "identity"), trackBody, 200, "", 1},
		{"unknown key in basic auth", "/v1/track", basic("wk-unknown", ""), trackBody, 401, "invalid_write_key", 0},
		{"unknown key in the body", "/v1/track", nil, `{"writeKey":"wk-unknown","userId":"u-1","event":"E"}`, 401, "invalid_write_key", 0},
		{"unknown key beats a bad message", "/v1/track", nil, `{"writeKey":"wk-unknown","event":"E"}`, 401, "invalid_write_key", 0},
		{"no credentials", "/v1/track", nil, trackBody, 401, "invalid_write_key", 0},
		{"no credentials and a bad message", "/v1/track", nil, `{"event":"E"}`, 401, "invalid_write_key", 0},
		{"no credentials and a bad batch", "/v1/batch", nil, `{"batch":7}`, 401, "invalid_write_key", 0},
		{"no credentials and malformed json", "/v1/track", nil, `{"writeKey":"wk-good",`, 400, "invalid_json", 0},
		{"bearer is no write key", "/v1/track", http.Header{"Authorization": {"Bearer wk-good"}}, trackBody, 401, "invalid_write_key", 0},
		{"authenticator down", "/v1/track", basic(downWriteKey, ""), trackBody, 503, "store_down", 0},
		{"xml", "/v1/track", with(auth, "Content-Type", "application/xml"), trackBody, 415, "unsupported_content_type", 0},
		{"form", "/v1/track", with(auth, "Content-Type", "application/x-www-form-urlencoded"), trackBody, 415, "unsupported_content_type", 0},
		{"garbled content type", "/v1/track", with(auth, "Content-Type", "/json"), trackBody, 415, "unsupported_content_type", 0},
		{"brotli", "/v1/track", with(auth, "Content-Encoding", "br"), trackBody, 415, "unsupported_content_encoding", 0},
		{"bad gzip", "/v1/track", with(auth, "Content-Encoding", "gzip"), "not gzip", 400, "invalid_gzip", 0},
		{"empty gzip", "/v1/track", with(auth, "Content-Encoding", "gzip"), "", 400, "invalid_gzip", 0},
		{"malformed json", "/v1/track", auth, `{"userId":`, 400, "invalid_json", 0},
		{"malformed batch", "/v1/batch", auth, `{"batch":[`, 400, "invalid_json", 0},
		{"single message without identity", "/v1/track", auth, `{"event":"E"}`, 400, "missing_identity", 0},
		{"all messages rejected", "/v1/batch", auth, `{"batch":[{"type":"track","event":"E"},{"type":"x"}]}`, 400, "all_messages_rejected", 0},
		{"single message over 32 KB", "/v1/track", auth, `{"userId":"u","event":"E","p":"` + strings.Repeat("x", 32<<10) + `"}`, 413, "message_too_large", 0},
		{"batch over 500 KB", "/v1/batch", auth, `{"batch":[],"p":"` + strings.Repeat("x", 500<<10) + `"}`, 413, "body_too_large", 0},
		{"too many messages", "/v1/batch", auth, `{"batch":[` + strings.TrimSuffix(strings.Repeat(`{},`, 2501), ",") + `]}`, 413, "too_many_messages", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t)
			w := s.do(t, tt.path, tt.header, strings.NewReader(tt.body))
			if w.Code != tt.wantStatus {
				t.Fatalf("got status %d, want %d: %s", w.Code, tt.wantStatus, w.Body)
			}
			a := readAnswer(t, w)
			if tt.wantCode == "" {
				if !a.Success {
					t.Errorf("got %s, want success true", w.Body)
				}
			} else if a.Error.Code != tt.wantCode || a.Error.Message == "" {
				t.Errorf("got error %q (%q), want code %q with a message", a.Error.Code, a.Error.Message, tt.wantCode)
			}
			if tt.wantEvents == 0 && s.log.calls != 0 {
				t.Errorf("got %d Append calls, want none", s.log.calls)
			}
			if tt.wantEvents > 0 && s.log.calls != 1 {
				t.Errorf("got %d Append calls, want exactly 1", s.log.calls)
			}
			if len(s.log.events) != tt.wantEvents {
				t.Errorf("got %d appended events, want %d", len(s.log.events), tt.wantEvents)
			}
			for _, ev := range s.log.events {
				if ev.WorkspaceID != testSource.WorkspaceID || ev.SourceID != testSource.ID {
					t.Errorf("got event of %s/%s, want %s/%s", ev.WorkspaceID, ev.SourceID, testSource.WorkspaceID, testSource.ID)
				}
			}
		})
	}
}

func TestHandlerSegmentUnknownKeyIsRefusedBeforeReadingTheBody(t *testing.T) {
	s := newTestServer(t)
	body := &countingReader{r: strings.NewReader(trackBody)}
	w := s.do(t, "/v1/track", basic("wk-unknown", ""), body)
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("got status %d, want 401", w.Code)
	}
	if body.n != 0 {
		t.Errorf("got %d body bytes read, want 0", body.n)
	}
	if s.log.calls != 0 {
		t.Errorf("got %d Append calls, want none", s.log.calls)
	}
}

func TestHandlerSegmentPartialRejection(t *testing.T) {
	s := newTestServer(t)
	w := s.do(t, "/v1/batch", basic(goodWriteKey, ""), strings.NewReader(
		`{"batch":[{"type":"track","userId":"u","event":"A"},{"type":"track","userId":"u"},{"type":"identify"}]}`))
	if w.Code != http.StatusOK {
		t.Fatalf("got status %d, want 200: %s", w.Code, w.Body)
	}
	a := readAnswer(t, w)
	if !a.Success {
		t.Errorf("got success false, want true")
	}
	assertRejections(t, a.Rejected, []Rejection{{Index: 1, Code: "missing_event"}, {Index: 2, Code: "missing_identity"}})
	if len(s.log.events) != 1 {
		t.Errorf("got %d appended events, want 1", len(s.log.events))
	}

	w = s.do(t, "/v1/batch", basic(goodWriteKey, ""), strings.NewReader(`{"batch":[{"type":"track","userId":"u"}]}`))
	a = readAnswer(t, w)
	if w.Code != http.StatusBadRequest || a.Error.Code != "all_messages_rejected" {
		t.Errorf("got %d %s, want 400 all_messages_rejected", w.Code, a.Error.Code)
	}
	assertRejections(t, a.Rejected, []Rejection{{Index: 0, Code: "missing_event"}})
}

func TestHandlerSegmentGzip(t *testing.T) {
	for _, enc := range []string{"gzip", "GZip", "x-gzip"} {
		t.Run(enc, func(t *testing.T) {
			s := newTestServer(t)
			body := gzipBytes(t, []byte(`{"batch":[{"type":"track","userId":"u","event":"A"}],"writeKey":"wk-good"}`))
			w := s.do(t, "/v1/batch", http.Header{"Content-Encoding": {enc}}, bytes.NewReader(body))
			if w.Code != http.StatusOK {
				t.Fatalf("got status %d, want 200: %s", w.Code, w.Body)
			}
			if len(s.log.events) != 1 || s.log.events[0].Name != "A" {
				t.Errorf("got events %+v, want one track A", s.log.events)
			}
		})
	}
}

// countingReader counts the bytes the handler pulled off the wire.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestHandlerRefusesGzipBomb(t *testing.T) {
	// 20 MiB of zeros compress to about 20 KiB; the handler must stop after
	// inflating just over the 500 KB limit, which takes well under 1 KiB of
	// compressed input (plus one buffered read).
	bomb := gzipBytes(t, make([]byte, 20<<20))
	if len(bomb) < 16<<10 {
		t.Fatalf("bomb is %d bytes, want at least 16 KiB for the test to mean something", len(bomb))
	}
	s := newTestServer(t)
	body := &countingReader{r: bytes.NewReader(bomb)}
	w := s.do(t, "/v1/batch", with(basic(goodWriteKey, ""), "Content-Encoding", "gzip"), body)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("got status %d, want 413: %s", w.Code, w.Body)
	}
	if a := readAnswer(t, w); a.Error.Code != "body_too_large" {
		t.Errorf("got code %q, want body_too_large", a.Error.Code)
	}
	if body.n > 8<<10 {
		t.Errorf("got %d compressed bytes read of %d, want at most 8 KiB: the bomb was inflated past the limit", body.n, len(bomb))
	}
	if s.log.calls != 0 {
		t.Errorf("got %d Append calls, want none", s.log.calls)
	}
}

func TestHandlerRefusesByContentLength(t *testing.T) {
	s := newTestServer(t)
	body := &countingReader{r: strings.NewReader("{}")}
	r := httptest.NewRequest(http.MethodPost, "/v2/events", body)
	r.Header = basic(mpKey, mpSecret)
	r.ContentLength = 129 << 10
	w := httptest.NewRecorder()
	s.mux.ServeHTTP(w, r)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("got status %d, want 413", w.Code)
	}
	if n := body.n; n != 0 {
		t.Errorf("got %d bytes read, want 0", n)
	}
}

func TestHandlerGPC(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   bool
	}{
		{"1", []string{"1"}, true},
		{"0", []string{"0"}, false},
		{"true", []string{"true"}, false},
		{"1 with junk", []string{"1 "}, false},
		{"absent", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t)
			h := basic(goodWriteKey, "")
			if tt.values != nil {
				h["Sec-Gpc"] = tt.values
			}
			w := s.do(t, "/v1/batch", h, strings.NewReader(`{"batch":[{"type":"track","userId":"u","event":"A"},{"type":"identify","userId":"u"}]}`))
			if w.Code != http.StatusOK {
				t.Fatalf("got status %d, want 200", w.Code)
			}
			for i, ev := range s.log.events {
				if ev.GPC != tt.want {
					t.Errorf("event %d: got GPC %v, want %v", i, ev.GPC, tt.want)
				}
			}
		})
	}
}

func TestHandlerIP(t *testing.T) {
	tests := []struct {
		name, path string
		header     http.Header
		body       string
		want       string
	}{
		{"segment: connection", "/v1/track", basic(goodWriteKey, ""), trackBody, "192.0.2.1"},
		{"segment: context.ip", "/v1/track", basic(goodWriteKey, ""), `{"userId":"u","event":"E","context":{"ip":"203.0.113.9"}}`, "203.0.113.9"},
		{"segment: X-Forwarded-For is not read", "/v1/track", with(basic(goodWriteKey, ""), "X-Forwarded-For", "198.51.100.1"), trackBody, "192.0.2.1"},
		{"mparticle: connection", "/v2/events", basic(mpKey, mpSecret), mpBody, "192.0.2.1"},
		{"mparticle: batch ip", "/v2/events", basic(mpKey, mpSecret), `{"mpid":7,"ip":"2001:db8::1","events":[{"event_type":"first_run","data":{}}]}`, "2001:db8::1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t)
			if w := s.do(t, tt.path, tt.header, strings.NewReader(tt.body)); w.Code >= 300 {
				t.Fatalf("got status %d, want success: %s", w.Code, w.Body)
			}
			if len(s.log.events) != 1 || s.log.events[0].IP != tt.want {
				t.Errorf("got events %+v, want one with IP %s", s.log.events, tt.want)
			}
		})
	}
}

func TestHandlerLogFailure(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantCode   string
		wantMP     string
	}{
		{"overloaded", cdp.Reason(cdp.Unavailable, "overloaded", "too many events waiting to be stored; retry later"), 503, "overloaded", "SERVICE_UNAVAILABLE"},
		{"internal", errors.New("disk on fire at /var/lib/custos"), 500, "internal", "INTERNAL_SERVER_ERROR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, c := range []struct {
				path   string
				header http.Header
				body   string
			}{
				{"/v1/track", basic(goodWriteKey, ""), trackBody},
				{"/v2/events", basic(mpKey, mpSecret), mpBody},
			} {
				s := newTestServer(t)
				s.log.err = tt.err
				w := s.do(t, c.path, c.header, strings.NewReader(c.body))
				if w.Code != tt.wantStatus {
					t.Fatalf("%s: got status %d, want %d", c.path, w.Code, tt.wantStatus)
				}
				a := readAnswer(t, w)
				if a.Error.Code != tt.wantCode {
					t.Errorf("%s: got code %q, want %q", c.path, a.Error.Code, tt.wantCode)
				}
				if strings.Contains(w.Body.String(), "disk on fire") {
					t.Errorf("%s: got internal text in the answer: %s", c.path, w.Body)
				}
				if tt.wantStatus == 503 && w.Header().Get("Retry-After") == "" {
					t.Errorf("%s: got no Retry-After, want one", c.path)
				}
				if tt.wantStatus == 500 && a.Error.RequestID == "" {
					t.Errorf("%s: got no request id, want one", c.path)
				}
				if c.path == "/v2/events" && (len(a.Errors) != 1 || a.Errors[0].Code != tt.wantMP) {
					t.Errorf("%s: got errors %+v, want one %s", c.path, a.Errors, tt.wantMP)
				}
			}
		})
	}
}

func TestHandlerMParticle(t *testing.T) {
	auth := basic(mpKey, mpSecret)
	tests := []struct {
		name       string
		path       string
		header     http.Header
		body       string
		wantStatus int
		wantCode   string // "" for success
		wantMP     string
		wantEvents int
	}{
		{"events", "/v2/events", auth, mpBody, 202, "", "", 1},
		{"bulk", "/v2/bulkevents", auth, "[" + mpBody + "," + mpBody + "]", 202, "", "", 2},
		{"gzip", "/v2/events", with(auth, "Content-Encoding", "gzip"), string(gzipBytes(t, []byte(mpBody))), 202, "", "", 1},
		{"no credentials", "/v2/events", nil, mpBody, 401, "invalid_credentials", "UNAUTHORIZED", 0},
		{"wrong secret", "/v2/events", basic(mpKey, "wrong"), mpBody, 401, "invalid_credentials", "UNAUTHORIZED", 0},
		{"write key alone", "/v2/events", basic(goodWriteKey, ""), mpBody, 401, "invalid_credentials", "UNAUTHORIZED", 0},
		{"xml", "/v2/events", with(auth, "Content-Type", "text/xml"), mpBody, 415, "unsupported_content_type", "BAD_REQUEST", 0},
		{"bad gzip", "/v2/events", with(auth, "Content-Encoding", "gzip"), mpBody, 400, "invalid_gzip", "BAD_REQUEST", 0},
		{"malformed", "/v2/events", auth, `{"mpid":`, 400, "invalid_json", "BAD_REQUEST", 0},
		{"no identity", "/v2/events", auth, `{"events":[{"event_type":"first_run","data":{}}]}`, 400, "missing_identity", "BAD_REQUEST", 0},
		{"every event rejected", "/v2/events", auth, `{"mpid":7,"events":[{"event_type":"nope","data":{}}]}`, 400, "all_messages_rejected", "BAD_REQUEST", 0},
		{"batch over 128 KB", "/v2/events", auth, `{"mpid":7,"p":"` + strings.Repeat("x", 128<<10) + `"}`, 413, "body_too_large", "BAD_REQUEST", 0},
		{"bulk over 256 KB", "/v2/bulkevents", auth, `[{"mpid":7,"p":"` + strings.Repeat("x", 256<<10) + `"}]`, 413, "body_too_large", "BAD_REQUEST", 0},
		{"bulk over 100 batches", "/v2/bulkevents", auth, "[" + strings.TrimSuffix(strings.Repeat(`{"mpid":7},`, 101), ",") + "]", 413, "too_many_batches", "BAD_REQUEST", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t)
			w := s.do(t, tt.path, tt.header, strings.NewReader(tt.body))
			if w.Code != tt.wantStatus {
				t.Fatalf("got status %d, want %d: %s", w.Code, tt.wantStatus, w.Body)
			}
			if tt.wantCode == "" {
				if got := strings.TrimSpace(w.Body.String()); got != "{}" {
					t.Errorf("got body %s, want {}", got)
				}
			} else {
				a := readAnswer(t, w)
				if a.Error.Code != tt.wantCode {
					t.Errorf("got error code %q, want %q", a.Error.Code, tt.wantCode)
				}
				if len(a.Errors) != 1 || a.Errors[0].Code != tt.wantMP || a.Errors[0].Message == "" {
					t.Errorf("got errors %+v, want one %s with a message", a.Errors, tt.wantMP)
				}
			}
			if len(s.log.events) != tt.wantEvents {
				t.Errorf("got %d appended events, want %d", len(s.log.events), tt.wantEvents)
			}
			if tt.wantEvents == 0 && s.log.calls != 0 {
				t.Errorf("got %d Append calls, want none", s.log.calls)
			}
		})
	}
}

func TestHandlerMParticleBulkWithOneBadBatch(t *testing.T) {
	s := newTestServer(t)
	w := s.do(t, "/v2/bulkevents", basic(mpKey, mpSecret), strings.NewReader(
		`[`+mpBody+`,{"events":[]},{"mpid":8,"events":[{"event_type":"x","data":{}},{"event_type":"first_run","data":{"source_message_id":"sm"}}]}]`))
	if w.Code != http.StatusAccepted {
		t.Fatalf("got status %d, want 202: %s", w.Code, w.Body)
	}
	a := readAnswer(t, w)
	assertRejections(t, a.Rejected, []Rejection{{Index: 1, Code: "missing_identity"}, {Index: 0, BatchIndex: intp(2), Code: "unknown_event_type"}})
	if len(s.log.events) != 2 || s.log.calls != 1 {
		t.Errorf("got %d events in %d Append calls, want 2 in 1", len(s.log.events), s.log.calls)
	}
}

func TestHandlerMetrics(t *testing.T) {
	s := newTestServer(t)
	s.do(t, "/v1/batch", basic(goodWriteKey, ""), strings.NewReader(
		`{"batch":[{"type":"track","userId":"u","event":"A"},{"type":"track","userId":"u","event":"B"},{"type":"identify","userId":"u"},{"type":"track","userId":"u"}]}`))
	s.do(t, "/v1/track", basic("wk-unknown", ""), strings.NewReader(trackBody))
	s.do(t, "/v2/events", basic(mpKey, mpSecret), strings.NewReader(mpBody))

	tests := []struct {
		name   string
		metric string
		labels map[string]string
		want   float64
	}{
		{"segment track events", "custos_ingest_events_total", map[string]string{"format": "segment", "type": "track"}, 2},
		{"segment identify events", "custos_ingest_events_total", map[string]string{"format": "segment", "type": "identify"}, 1},
		{"mparticle track events", "custos_ingest_events_total", map[string]string{"format": "mparticle", "type": "track"}, 1},
		{"missing_event rejections", "custos_ingest_rejections_total", map[string]string{"format": "segment", "reason": "missing_event"}, 1},
		{"invalid_write_key rejections", "custos_ingest_rejections_total", map[string]string{"format": "segment", "reason": "invalid_write_key"}, 1},
		{"segment 200s", "custos_ingest_requests_total", map[string]string{"format": "segment", "status": "200"}, 1},
		{"segment 401s", "custos_ingest_requests_total", map[string]string{"format": "segment", "status": "401"}, 1},
		{"mparticle 202s", "custos_ingest_requests_total", map[string]string{"format": "mparticle", "status": "202"}, 1},
		{"segment acks", "custos_ingest_ack_seconds", map[string]string{"format": "segment"}, 1},
		{"mparticle acks", "custos_ingest_ack_seconds", map[string]string{"format": "mparticle"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := metricValue(t, s.reg, tt.metric, tt.labels); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// metricValue returns a counter's value, or a histogram's sample count, for
// the series with exactly the given labels; 0 when there is none.
func metricValue(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue series
				}
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func TestNewSharesARegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := New(Config{Registerer: reg}, &fakeAuth{}, &fakeLog{})
	b := New(Config{Registerer: reg}, &fakeAuth{}, &fakeLog{})
	if a.metrics.events != b.metrics.events {
		t.Errorf("got two event counters, want the second handler to reuse the first's")
	}
}

func TestHandlerRoutes(t *testing.T) {
	s := newTestServer(t)
	for _, path := range []string{"/v1/identify", "/v1/track", "/v1/page", "/v1/screen", "/v1/group", "/v1/alias", "/v1/batch", "/v1/import", "/v2/events", "/v2/bulkevents"} {
		t.Run(path, func(t *testing.T) {
			if w := s.do(t, path, nil, strings.NewReader(`{}`)); w.Code != http.StatusUnauthorized {
				t.Errorf("POST: got status %d, want 401", w.Code)
			}
			r := httptest.NewRequest(http.MethodGet, path, nil)
			w := httptest.NewRecorder()
			s.mux.ServeHTTP(w, r)
			if w.Code != http.StatusMethodNotAllowed {
				t.Errorf("GET: got status %d, want 405", w.Code)
			}
		})
	}
}
