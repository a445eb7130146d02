package loadgen

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	fakeWriteKey    = "wk_test"
	fakeWriteSecret = "ws_test"
	fakeAdminToken  = "adm_test"
	fakeOldEvents   = 2500 // stored before the run, older than its start
)

// fakeServer plays the three endpoints in memory: it stores what it
// acknowledges (once per message id, like the server), answers some
// requests 503 with Retry-After, and serves the events API newest first
// with cursor paging.
type fakeServer struct {
	fakeOptions

	mu          sync.Mutex
	posts       int
	unavailable int // 503 answers
	acks        int // 2xx answers
	ackedEvents int
	stored      []fakeEvent
	storedIDs   map[string]bool
	refusedAt   map[string]refusal // first id of a body answered 503
	retries     int
	retryGaps   []time.Duration // after Retry-After: 1
	oldPages    int             // later pages that began with an event older than the run
}

type refusal struct {
	at         time.Time
	retryAfter string
}

type fakeOptions struct {
	retryAfterOne bool          // answer the 6th request 503 with Retry-After: 1
	dropOne       bool          // acknowledge one event but never store it
	duplicateOne  bool          // store one event twice
	rejectOne     bool          // reject one message inside a 2xx answer
	lag           time.Duration // stored events show in the events API this much later
}

type fakeEvent struct {
	id                    string
	receivedAt, visibleAt time.Time
}

func newFakeServer(t *testing.T, opts fakeOptions) (*fakeServer, *httptest.Server) {
	t.Helper()
	f := &fakeServer{fakeOptions: opts, storedIDs: map[string]bool{}, refusedAt: map[string]refusal{}}
	old := time.Now().Add(-2 * time.Hour)
	for i := range fakeOldEvents {
		f.stored = append(f.stored, fakeEvent{id: fmt.Sprintf("older-run-%d", i), receivedAt: old, visibleAt: old})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/track", f.ingest(FormatSegment))
	mux.HandleFunc("POST /v1/batch", f.ingest(FormatSegment))
	mux.HandleFunc("POST /v2/events", f.ingest(FormatMParticle))
	mux.HandleFunc("GET /api/v1/events", f.events)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return f, srv
}

// messageIDs reads the ids of a body in either format.
func messageIDs(format string, body []byte) ([]string, error) {
	var ids []string
	if format == FormatMParticle {
		var b mparticleBatch
		err := json.Unmarshal(body, &b)
		for _, e := range b.Events {
			ids = append(ids, e.Data.SourceMessageID)
		}
		return ids, err
	}
	var b struct {
		MessageID string `json:"messageId"`
		Batch     []struct {
			MessageID string `json:"messageId"`
		} `json:"batch"`
	}
	err := json.Unmarshal(body, &b)
	if b.MessageID != "" {
		ids = append(ids, b.MessageID)
	}
	for _, m := range b.Batch {
		ids = append(ids, m.MessageID)
	}
	return ids, err
}

func (f *fakeServer) ingest(format string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key, secret, ok := r.BasicAuth()
		if !ok || key != fakeWriteKey || (format == FormatMParticle && secret != fakeWriteSecret) || (format == FormatSegment && secret != "") {
			http.Error(w, `{"error":{"code":"invalid_write_key"}}`, http.StatusUnauthorized)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, "bad gzip", http.StatusBadRequest)
				return
			}
			body = zr
		}
		b, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		ids, err := messageIDs(format, b)
		if err != nil || len(ids) == 0 || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		now := time.Now()

		f.mu.Lock()
		defer f.mu.Unlock()
		f.posts++
		if ref, ok := f.refusedAt[ids[0]]; ok {
			f.retries++
			if ref.retryAfter == "1" {
				f.retryGaps = append(f.retryGaps, now.Sub(ref.at))
			}
			delete(f.refusedAt, ids[0])
		}
		switch {
		case f.retryAfterOne && f.posts == 6:
			f.refuse(w, ids[0], "1", now)
			return
		case f.posts%7 == 3:
			f.refuse(w, ids[0], "0", now)
			return
		}
		var rejected string // the second message of the third acknowledged request
		if f.rejectOne && len(ids) > 1 && f.acks == 2 {
			rejected = ids[1]
		}
		for _, id := range ids {
			if id == rejected || f.storedIDs[id] {
				continue
			}
			f.ackedEvents++
			if f.dropOne && f.ackedEvents == 4 {
				continue
			}
			copies := 1
			if f.duplicateOne && f.ackedEvents == 5 {
				copies = 2
			}
			for range copies {
				f.stored = append(f.stored, fakeEvent{id: id, receivedAt: now, visibleAt: now.Add(f.lag)})
			}
			f.storedIDs[id] = true
		}
		f.acks++
		w.Header().Set("Content-Type", "application/json")
		rejection := ""
		if rejected != "" {
			rejection = `"rejected":[{"index":1,"code":"invalid_event","message":"event_name has the wrong JSON type"}]`
		}
		switch {
		case format == FormatMParticle:
			w.WriteHeader(http.StatusAccepted)
			io.WriteString(w, "{"+rejection+"}")
		case rejection != "":
			io.WriteString(w, `{"success":true,`+rejection+"}")
		default:
			io.WriteString(w, `{"success":true}`)
		}
	}
}

func (f *fakeServer) refuse(w http.ResponseWriter, firstID, retryAfter string, now time.Time) {
	f.unavailable++
	f.refusedAt[firstID] = refusal{now, retryAfter}
	w.Header().Set("Retry-After", retryAfter)
	http.Error(w, `{"error":{"code":"overloaded"}}`, http.StatusServiceUnavailable)
}

func (f *fakeServer) events(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+fakeAdminToken {
		http.Error(w, `{"error":{"code":"unauthenticated"}}`, http.StatusUnauthorized)
		return
	}
	limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil || limit < 1 || limit > 1000 {
		http.Error(w, "bad limit", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	before := len(f.stored)
	c := r.URL.Query().Get("cursor")
	if c != "" {
		if before, err = strconv.Atoi(c); err != nil {
			http.Error(w, "bad cursor", http.StatusBadRequest)
			return
		}
	}
	type event struct {
		MessageID  string    `json:"message_id"`
		SourceID   string    `json:"source_id"`
		Type       string    `json:"type"`
		ReceivedAt time.Time `json:"received_at"`
	}
	var resp struct {
		Events     []event `json:"events"`
		NextCursor string  `json:"next_cursor,omitempty"`
	}
	resp.Events = []event{}
	now := time.Now()
	i := before - 1
	for ; i >= 0 && len(resp.Events) < limit; i-- {
		if e := f.stored[i]; !e.visibleAt.After(now) {
			resp.Events = append(resp.Events, event{MessageID: e.id, SourceID: "src_1", Type: "track", ReceivedAt: e.receivedAt})
		}
	}
	if i >= 0 {
		resp.NextCursor = strconv.Itoa(i + 1)
	}
	if c != "" && len(resp.Events) > 0 && strings.HasPrefix(resp.Events[0].MessageID, "older-run-") {
		f.oldPages++
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

func TestRunVerifiesWhatWasAcknowledged(t *testing.T) {
	tests := []struct {
		name           string
		format         string
		batch          int
		gzip           bool
		fake           fakeOptions
		verifyTimeout  time.Duration
		wantMissing    int64
		wantDuplicates int64
		wantRejected   int64
	}{
		{name: "segment track", format: FormatSegment, batch: 1, fake: fakeOptions{lag: 100 * time.Millisecond}},
		{name: "segment batch gzip", format: FormatSegment, batch: 5, gzip: true},
		{name: "mparticle one event", format: FormatMParticle, batch: 1, fake: fakeOptions{lag: 100 * time.Millisecond}},
		{name: "mparticle batch", format: FormatMParticle, batch: 7},
		{name: "retry waits Retry-After", format: FormatSegment, batch: 3, fake: fakeOptions{retryAfterOne: true}},
		{name: "rejected message", format: FormatSegment, batch: 4, fake: fakeOptions{rejectOne: true}, wantRejected: 1},
		{name: "rejected mparticle event", format: FormatMParticle, batch: 4, fake: fakeOptions{rejectOne: true}, wantRejected: 1},
		{name: "lost event", format: FormatSegment, batch: 5, fake: fakeOptions{dropOne: true}, verifyTimeout: 300 * time.Millisecond, wantMissing: 1},
		{name: "stored twice", format: FormatMParticle, batch: 3, fake: fakeOptions{duplicateOne: true}, wantDuplicates: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, srv := newFakeServer(t, tt.fake)
			var out bytes.Buffer
			verifyTimeout := tt.verifyTimeout
			if verifyTimeout == 0 {
				verifyTimeout = 10 * time.Second
			}
			rep, err := Run(context.Background(), Config{
				URL: srv.URL, WriteKey: fakeWriteKey, WriteSecret: fakeWriteSecret, AdminToken: fakeAdminToken,
				Format: tt.format, BatchSize: tt.batch, Concurrency: 4, Requests: 60, Users: 20,
				Warmup: -1, VerifyTimeout: verifyTimeout, Gzip: tt.gzip, Out: &out,
			})
			if err != nil {
				t.Fatalf("Run: %v\n%s", err, out.String())
			}
			f.mu.Lock()
			defer f.mu.Unlock()

			if rep.Acked != int64(f.ackedEvents) {
				t.Errorf("Acked %d, want the %d events the fake acknowledged", rep.Acked, f.ackedEvents)
			}
			stored := len(f.stored) - fakeOldEvents
			if want := f.ackedEvents - int(tt.wantMissing) + int(tt.wantDuplicates); stored != want {
				t.Errorf("the fake stored %d events, want %d", stored, want)
			}
			if rep.Missing != tt.wantMissing || rep.Duplicates != tt.wantDuplicates {
				t.Errorf("Missing %d, Duplicates %d; want %d, %d", rep.Missing, rep.Duplicates, tt.wantMissing, tt.wantDuplicates)
			}
			if rep.Verified != rep.Acked-tt.wantMissing {
				t.Errorf("Verified %d, want %d", rep.Verified, rep.Acked-tt.wantMissing)
			}
			// No warm-up and a count bound: the window holds the whole run.
			if rep.Requests != int64(f.acks) || rep.Events != rep.Acked {
				t.Errorf("window: %d requests, %d events; want %d, %d", rep.Requests, rep.Events, f.acks, rep.Acked)
			}
			if want := int64(60*tt.batch) - tt.wantRejected; rep.Acked > want || rep.Acked < want-int64(3*tt.batch) {
				// Every request is acknowledged unless refused three times.
				t.Errorf("Acked %d, want about %d", rep.Acked, want)
			}
			if rep.Errors["503"] != int64(f.unavailable) || f.unavailable == 0 {
				t.Errorf("Errors[503] = %d, want the fake's %d (> 0)", rep.Errors["503"], f.unavailable)
			}
			if rep.Errors["rejected"] != tt.wantRejected {
				t.Errorf("Errors[rejected] = %d, want %d", rep.Errors["rejected"], tt.wantRejected)
			}
			if f.retries == 0 {
				t.Errorf("no body was resent after a 503, want retries with the same message ids")
			}
			if tt.fake.retryAfterOne {
				if len(f.retryGaps) != 1 || f.retryGaps[0] < time.Second {
					t.Errorf("retry gaps after Retry-After: 1: got %v, want one of at least 1s", f.retryGaps)
				}
			}
			if f.oldPages != 0 {
				t.Errorf("%d pages began with events older than the run, want paging to stop at the run's start", f.oldPages)
			}
			if !(0 < rep.P50 && rep.P50 <= rep.P90 && rep.P90 <= rep.P99 && rep.P99 <= rep.Max) {
				t.Errorf("latency p50 %v p90 %v p99 %v max %v, want 0 < p50 <= p90 <= p99 <= max", rep.P50, rep.P90, rep.P99, rep.Max)
			}
			if rep.VerifySkipped || rep.VerifySeconds < 0 || rep.VerifyAfterSeconds < 0 || rep.VerifyAfterSeconds > rep.VerifySeconds {
				t.Errorf("VerifySkipped %v, last stored %v-%vs after the last ack", rep.VerifySkipped, rep.VerifyAfterSeconds, rep.VerifySeconds)
			}
		})
	}
}

// TestRunDurationWindow runs by time with a warm-up: the window is the
// configured duration, the rates are over it, and warm-up acknowledgements
// count in Acked only.
func TestRunDurationWindow(t *testing.T) {
	_, srv := newFakeServer(t, fakeOptions{})
	rep, err := Run(context.Background(), Config{
		URL: srv.URL, WriteKey: fakeWriteKey, Format: FormatSegment, Concurrency: 2,
		Duration: 300 * time.Millisecond, Warmup: 150 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rep.Duration != 300*time.Millisecond {
		t.Errorf("Duration %v, want 300ms", rep.Duration)
	}
	if rep.Events == 0 || rep.Acked <= rep.Events {
		t.Errorf("Events %d, Acked %d: want events in the window and more acknowledged with the warm-up", rep.Events, rep.Acked)
	}
	if want := float64(rep.Events) / 0.3; rep.EventsPerSec != want {
		t.Errorf("EventsPerSec %v, want %v", rep.EventsPerSec, want)
	}
	if !rep.VerifySkipped || rep.Verified != 0 {
		t.Errorf("VerifySkipped %v, Verified %d: want verification skipped without an admin token", rep.VerifySkipped, rep.Verified)
	}
}

func TestRunFailures(t *testing.T) {
	_, srv := newFakeServer(t, fakeOptions{})
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	base := Config{URL: srv.URL, WriteKey: fakeWriteKey, WriteSecret: fakeWriteSecret, AdminToken: fakeAdminToken,
		Concurrency: 2, Requests: 4, Warmup: -1, VerifyTimeout: 5 * time.Second}
	tests := []struct {
		name    string
		change  func(*Config)
		wantErr string
	}{
		{"wrong write key", func(c *Config) { c.WriteKey = "nope" }, "refused POST " + srv.URL + "/v1/track with 401"},
		{"wrong write secret", func(c *Config) { c.Format, c.WriteSecret = FormatMParticle, "nope" }, "with 401"},
		{"wrong admin token", func(c *Config) { c.AdminToken = "nope" }, "events API answered 401"},
		{"no server", func(c *Config) { c.URL = closed.URL }, "no request was acknowledged"},
		{"no bound", func(c *Config) { c.Requests = 0 }, "set a duration or a number of requests"},
		{"unknown format", func(c *Config) { c.Format = "rudder" }, `format "rudder"`},
		{"not a URL", func(c *Config) { c.URL = "127.0.0.1:8080" }, "not an http"},
		{"mparticle without secret", func(c *Config) { c.Format, c.WriteSecret = FormatMParticle, "" }, "write secret"},
		{"batch too large", func(c *Config) { c.BatchSize = 3000 }, "over the Segment limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			tt.change(&cfg)
			_, err := Run(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestRunStopsWithContext(t *testing.T) {
	_, srv := newFakeServer(t, fakeOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	rep, err := Run(ctx, Config{URL: srv.URL, WriteKey: fakeWriteKey, Concurrency: 2, Duration: time.Hour, Warmup: -1})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got error %v, want context.Canceled", err)
	}
	if rep.Acked == 0 || rep.Duration <= 0 || rep.Duration >= time.Hour || !rep.VerifySkipped {
		t.Errorf("Acked %d, Duration %v, VerifySkipped %v: want the partial run reported, unverified", rep.Acked, rep.Duration, rep.VerifySkipped)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"2", 2 * time.Second, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{now.Add(3 * time.Second).Format(http.TimeFormat), 3 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := parseRetryAfter(tt.in, now)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("got %v %v, want %v %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
	if d := retryDelay("120", 1, now); d != maxRetryWait {
		t.Errorf("Retry-After 120: waits %v, want the bound %v", d, maxRetryWait)
	}
	if d := retryDelay("", 2, now); d != 100*time.Millisecond {
		t.Errorf("no Retry-After, second retry: waits %v, want 100ms", d)
	}
}

func TestReportString(t *testing.T) {
	base := Report{Format: FormatSegment, Concurrency: 8, BatchSize: 1, Duration: 2 * time.Second,
		Requests: 100, Events: 100, RequestsPerSec: 50, EventsPerSec: 50,
		P50: 800 * time.Microsecond, P90: 2 * time.Millisecond, P99: 15 * time.Millisecond, Max: 1500 * time.Millisecond,
		Errors: map[string]int64{"503": 2, "timeout": 1}, Acked: 120, Verified: 120, VerifySeconds: 0.25, VerifyAfterSeconds: 0.1}
	tests := []struct {
		name   string
		change func(*Report)
		want   []string
	}{
		{"verified", func(*Report) {}, []string{"events       100 acknowledged, 50.0/s", "p50 800µs  p90 2.00ms  p99 15.00ms  max 1.500s", "503: 2, timeout: 1", "all 120 stored once; the last stored 0.10-0.25s after"}},
		{"missing", func(r *Report) { r.Verified, r.Missing = 119, 1 }, []string{"FAILED: 119 of 120 acknowledged stored, 1 missing"}},
		{"skipped", func(r *Report) { r.VerifySkipped = true }, []string{"not checked"}},
		{"all warm-up", func(r *Report) { r.Duration = 0; r.Errors = nil }, []string{"nothing measured", "errors       none"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base
			tt.change(&r)
			s := r.String()
			for _, w := range tt.want {
				if !strings.Contains(s, w) {
					t.Errorf("report lacks %q:\n%s", w, s)
				}
			}
		})
	}
}

func TestRejections(t *testing.T) {
	tests := []struct {
		name   string
		answer string
		n      int
		want   []int
		wantOK bool
	}{
		{"none", `{"success":true,"rejected":[]}`, 3, []int{}, true},
		{"two", `{"success":true,"rejected":[{"index":0,"code":"invalid_event"},{"index":2,"code":"missing_event"}]}`, 3, []int{0, 2}, true},
		{"mparticle", `{"rejected":[{"index":1,"code":"invalid_event","message":"x"}]}`, 2, []int{1}, true},
		{"index out of range", `{"rejected":[{"index":3}]}`, 3, nil, false},
		{"negative index", `{"rejected":[{"index":-1}]}`, 3, nil, false},
		{"no index", `{"rejected":[{"code":"invalid_event"}]}`, 3, nil, false},
		{"not JSON", `{"rejected":[`, 3, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := rejections([]byte(tt.answer), tt.n)
			if ok != tt.wantOK || fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %v %v, want %v %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
