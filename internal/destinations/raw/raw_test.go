package raw_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/destinations/internal/deliverytest"
	"github.com/custos-cdp/custos/internal/destinations/raw"
	"github.com/custos-cdp/custos/internal/destinations/webhook"
	"github.com/custos-cdp/custos/internal/eventjson"
	"github.com/custos-cdp/custos/internal/forward"
)

const secret = "0123456789abcdef-raw"

func newSender(t *testing.T, id cdp.DestinationID, endpoint, creds string, now time.Time) *raw.Sender {
	t.Helper()
	var c []byte
	if creds != "" {
		c = []byte(creds)
	}
	s, err := raw.New(forward.SenderConfig{
		Destination: cdp.Destination{ID: id, Type: raw.Type, Endpoint: endpoint},
		Credentials: c, HTTPClient: http.DefaultClient,
		Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// decodeLines reads JSON Lines strictly, one delivery per line.
func decodeLines(t *testing.T, body []byte) []eventjson.Delivery {
	t.Helper()
	if len(body) == 0 || body[len(body)-1] != '\n' {
		t.Fatalf("got a body not ending in a newline: %q", body)
	}
	var out []eventjson.Delivery
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		var d eventjson.Delivery
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("line %d: %v", len(out)+1, err)
		}
		out = append(out, d)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkItems checks that the lines carry the batch's full envelopes.
func checkItems(t *testing.T, got []eventjson.Delivery, batch []cdp.Delivery) {
	t.Helper()
	if len(got) != len(batch) {
		t.Fatalf("got %d lines, want %d", len(got), len(batch))
	}
	for i, d := range batch {
		g := got[i]
		if g.Kind != string(d.Kind) || g.IdempotencyKey != d.Key || g.ProfileID != string(d.Profile) || len(g.Identities) != len(d.Identities) {
			t.Errorf("line %d: got %s %s %s with %d identities, want %s %s %s with %d", i, g.Kind, g.IdempotencyKey, g.ProfileID, len(g.Identities),
				d.Kind, d.Key, d.Profile, len(d.Identities))
		}
		switch d.Kind {
		case cdp.DeliverEvent:
			if g.Event != nil || g.RawEvent == nil || g.RawEvent.MessageID != d.Event.MessageID || g.RawEvent.Format != string(d.Event.Format) {
				t.Errorf("line %d: got event %+v raw %+v, want only the full envelope of %s", i, g.Event, g.RawEvent, d.Event.MessageID)
			}
		case cdp.DeliverConsent:
			if g.Consent == nil || g.Consent.EntryID != string(d.Consent.Entry.ID) || g.Consent.NewState != string(d.Consent.New) {
				t.Errorf("line %d: got consent %+v, want entry %s", i, g.Consent, d.Consent.Entry.ID)
			}
		case cdp.DeliverErasure:
			if g.Erasure == nil || g.Erasure.RequestID != d.Erasure.RequestID {
				t.Errorf("line %d: got erasure %+v, want request %s", i, g.Erasure, d.Erasure.RequestID)
			}
		}
	}
	identify := got[0].RawEvent
	if identify.OriginalTimestamp == nil || identify.SentAt == nil || string(identify.Integrations) != `{"All":true,"Mixpanel":false}` {
		t.Errorf("identify: got original_timestamp %v sent_at %v integrations %s, want the client's clocks and switches",
			identify.OriginalTimestamp, identify.SentAt, identify.Integrations)
	}
}

func TestHTTP(t *testing.T) {
	tests := []struct {
		name          string
		creds         string
		wantSignature bool
	}{
		{"signed", `{"secret":"` + secret + `"}`, true},
		{"unsigned, no credentials", "", false},
		{"unsigned, empty credentials", `{}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := deliverytest.T0.Add(time.Hour)
			srv, requests := deliverytest.Server(t, nil)
			batch := deliverytest.Batch()
			if err := newSender(t, deliverytest.Destination, srv.URL+"/ingest", tt.creds, now).Send(context.Background(), batch); err != nil {
				t.Fatalf("Send: %v", err)
			}
			reqs := requests()
			if len(reqs) != 1 {
				t.Fatalf("got %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Path != "/ingest" || r.Header.Get("Content-Type") != "application/x-ndjson" || r.Header.Get("User-Agent") != "Custos/1 (+raw)" {
				t.Errorf("got %s with Content-Type %q, User-Agent %q, want /ingest, application/x-ndjson, Custos/1 (+raw)",
					r.Path, r.Header.Get("Content-Type"), r.Header.Get("User-Agent"))
			}
			if r.Header.Get("Idempotency-Key") == "" {
				t.Errorf("Idempotency-Key: got none, want one")
			}
			sig := r.Header.Get("X-Custos-Signature")
			if (sig != "") != tt.wantSignature {
				t.Fatalf("signature: got %q, want present %v", sig, tt.wantSignature)
			}
			if tt.wantSignature {
				if err := webhook.Verify(secret, r.Header.Get("X-Custos-Timestamp"), sig, r.Body, now, time.Minute); err != nil {
					t.Errorf("webhook.Verify: got %v, want nil", err)
				}
				tampered := bytes.Replace(r.Body, []byte("Alice"), []byte("Alicf"), 1)
				if err := webhook.Verify(secret, r.Header.Get("X-Custos-Timestamp"), sig, tampered, now, time.Minute); err == nil {
					t.Errorf("webhook.Verify of a tampered body: got nil, want an error")
				}
			}
			checkItems(t, decodeLines(t, r.Body), batch)
			deliverytest.Golden(t, "batch.golden.jsonl", r.Body)
		})
	}
}

func TestHTTPFailures(t *testing.T) {
	tests := []struct {
		name          string
		status        int
		wantRetryable bool
	}{
		{"503", 503, true},
		{"429", 429, true},
		{"400", 400, false},
		{"413", 413, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := deliverytest.Server(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
				w.WriteHeader(tt.status)
				w.Write(body)
			})
			err := newSender(t, deliverytest.Destination, srv.URL, "", deliverytest.T0).Send(context.Background(), deliverytest.Batch())
			var se *forward.SendError
			if !errors.As(err, &se) || se.Retryable != tt.wantRetryable || se.Status != tt.status {
				t.Fatalf("got %v, want a send error with status %d, retryable %v", err, tt.status, tt.wantRetryable)
			}
			if strings.Contains(se.Message, deliverytest.Email) {
				t.Errorf("got message %q, want no payload", se.Message)
			}
		})
	}
	t.Run("connection refused", func(t *testing.T) {
		err := newSender(t, deliverytest.Destination, deliverytest.RefusedURL(t), "", deliverytest.T0).Send(context.Background(), deliverytest.Batch())
		var se *forward.SendError
		if !errors.As(err, &se) || !se.Retryable {
			t.Fatalf("got %v, want a retryable send error", err)
		}
	})
}

var fileName = regexp.MustCompile(`^custos-dst_test-20261128T215532\.123456789Z-[0-9a-f]{8}\.jsonl$`)

func TestDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lake", "custos") // missing: created
	now := deliverytest.T0.Add(time.Hour)
	s := newSender(t, deliverytest.Destination, "file://"+filepath.ToSlash(dir), "", now)
	batch := deliverytest.Batch()
	for range 2 { // the same batch sent again makes a second file
		if err := s.Send(context.Background(), batch); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	if err := s.Send(context.Background(), nil); err != nil {
		t.Fatalf("Send of nothing: %v", err)
	}
	info, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != 0o700 {
		t.Errorf("directory mode: got %o, want 700", got)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Fatalf("got files %v, want 2 (no temporary files, none for an empty batch)", entries)
	}
	var contents [][]byte
	for _, e := range entries {
		if !fileName.MatchString(e.Name()) {
			t.Errorf("file name: got %q, want custos-<destination>-<UTC time>-<8 hex>.jsonl", e.Name())
		}
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode().Perm(); got != 0o600 {
			t.Errorf("%s mode: got %o, want 600", e.Name(), got)
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		checkItems(t, decodeLines(t, b), batch)
		contents = append(contents, b)
	}
	if !bytes.Equal(contents[0], contents[1]) {
		t.Errorf("the same batch twice: got different contents, want the same lines (same idempotency keys)")
	}
	deliverytest.Golden(t, "batch.golden.jsonl", contents[0])
}

// TestDirectoryFilesAppearWhole reads the directory while batches are
// written: every file under a final name must hold a whole batch.
func TestDirectoryFilesAppearWhole(t *testing.T) {
	dir := t.TempDir()
	s := newSender(t, deliverytest.Destination, "file://"+filepath.ToSlash(dir), "", deliverytest.T0)
	batch := deliverytest.Batch()
	want, err := os.ReadFile(filepath.Join("testdata", "batch.golden.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	const writes = 40
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		for range writes {
			if err := s.Send(context.Background(), batch); err != nil {
				t.Errorf("Send: %v", err)
				return
			}
		}
	})
	checked := map[string]bool{}
	check := func() {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".jsonl") || checked[e.Name()] {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, want) {
				t.Errorf("%s: got %d bytes, want the whole batch (%d bytes)", e.Name(), len(b), len(want))
			}
			checked[e.Name()] = true
		}
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		check()
	}
	wg.Wait()
	if len(checked) != writes {
		t.Errorf("got %d files, want %d", len(checked), writes)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != writes {
		t.Errorf("got %d entries, want %d: no temporary file may be left", len(entries), writes)
	}
}

func TestDirectoryFailureIsRetryable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := newSender(t, deliverytest.Destination, "file://"+filepath.ToSlash(file), "", deliverytest.T0).Send(context.Background(), deliverytest.Batch())
	var se *forward.SendError
	if !errors.As(err, &se) || !se.Retryable {
		t.Fatalf("got %v, want a retryable send error", err)
	}
}

func TestFactory(t *testing.T) {
	tests := []struct {
		name     string
		id       cdp.DestinationID
		endpoint string
		creds    string
		wantErr  bool
	}{
		{"https", "dst_1", "https://lake.example.com/ingest", "", false},
		{"https signed", "dst_1", "https://lake.example.com/ingest", `{"secret":"0123456789abcdef"}`, false},
		{"directory", "dst_1", "file:///var/lib/custos/raw", "", false},
		{"directory on localhost", "dst_1", "file://localhost/var/lib/custos/raw", "", false},
		{"short secret", "dst_1", "https://lake.example.com/", `{"secret":"short"}`, true},
		{"unknown credential", "dst_1", "https://lake.example.com/", `{"token":"0123456789abcdef"}`, true},
		{"s3", "dst_1", "s3://bucket/prefix", "", true},
		{"ftp", "dst_1", "ftp://lake.example.com/", "", true},
		{"no scheme", "dst_1", "/var/lib/custos", "", true},
		{"empty", "dst_1", "", "", true},
		{"relative file", "dst_1", "file:relative/dir", "", true},
		{"remote file host", "dst_1", "file://server/share", "", true},
		{"file with a query", "dst_1", "file:///tmp/x?mode=1", "", true},
		{"http without a host", "dst_1", "http:///ingest", "", true},
		{"id unfit for a file name", "../x", "file:///tmp/x", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := raw.Factory(forward.SenderConfig{
				Destination: cdp.Destination{ID: tt.id, Type: raw.Type, Endpoint: tt.endpoint},
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
