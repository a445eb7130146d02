package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custos-cdp/custos/internal/destinations/webhook"
)

// receiver is a webhook endpoint that verifies signatures and records each
// idempotency key once, in order of first arrival.
type receiver struct {
	secret string
	status atomic.Int32 // answer; 0 means 200
	mu     sync.Mutex
	keys   []string
	seen   map[string]int
	items  []map[string]any
	bad    int
}

func newReceiver(t testing.TB, secret string) (*receiver, *httptest.Server) {
	r := &receiver{secret: secret, seen: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if code := r.status.Load(); code != 0 {
			w.WriteHeader(int(code))
			return
		}
		if err := webhook.Verify(r.secret, req.Header.Get("X-Custos-Timestamp"), req.Header.Get("X-Custos-Signature"), body, time.Now(), 5*time.Minute); err != nil {
			r.mu.Lock()
			r.bad++
			r.mu.Unlock()
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var b struct {
			Batch []map[string]any `json:"batch"`
		}
		if err := json.Unmarshal(body, &b); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, it := range b.Batch {
			k, _ := it["idempotency_key"].(string)
			if r.seen[k] == 0 {
				r.keys = append(r.keys, k)
				r.items = append(r.items, it)
			}
			r.seen[k]++
		}
		r.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return r, srv
}

// messages returns, in order of first arrival, the message ids of the events
// received and the purposes and new states of consent changes.
func (r *receiver) messages() (events []string, consent []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, it := range r.items {
		switch it["kind"] {
		case "event":
			ev, _ := it["event"].(map[string]any)
			events = append(events, ev["message_id"].(string))
		case "consent":
			c, _ := it["consent"].(map[string]any)
			consent = append(consent, c["purpose"].(string)+":"+c["new_state"].(string))
		}
	}
	return events, consent
}

func waitUntil(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func createDestination(t testing.TB, c *client, body map[string]any) string {
	t.Helper()
	status, resp := c.putJSON(t, "POST", "/api/v1/destinations", body)
	var d struct{ ID string }
	if err := json.Unmarshal(resp, &d); status != http.StatusCreated || err != nil {
		t.Fatalf("create destination: %d %s", status, resp)
	}
	if strings.Contains(string(resp), "secret-") {
		t.Fatalf("the API returned credentials: %s", resp)
	}
	return d.ID
}

// TestForwardingEndToEnd: consent decides per person who gets what; a
// destination that keeps failing does not hold up another; a withdrawal
// reaches the tool; dead letters can be replayed; a destination can be
// replayed from a point in time; the activity view says what happened.
func TestForwardingEndToEnd(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		srv := startInProcess(t, be, t.TempDir())
		c := newClient(srv.url)
		if status, body := c.putJSON(t, "PUT", "/api/v1/purposes/marketing", map[string]any{"name": "Marketing", "regime": "opt_in"}); status != http.StatusCreated {
			t.Fatalf("purpose: %d %s", status, body)
		}
		good, goodSrv := newReceiver(t, "secret-good-0123456789")
		down, downSrv := newReceiver(t, "secret-down-0123456789")
		down.status.Store(http.StatusServiceUnavailable)
		rawDir := filepath.Join(t.TempDir(), "lake")
		goodID := createDestination(t, c, map[string]any{"name": "crm", "type": "webhook", "endpoint": goodSrv.URL,
			"credentials": map[string]string{"secret": good.secret}, "settings": map[string]any{"batch_size": 10},
			"consent": map[string]any{"purposes": []string{"marketing"}}, "minimisation": map[string]any{"drop_ip": true}})
		downID := createDestination(t, c, map[string]any{"name": "slow", "type": "webhook", "endpoint": downSrv.URL,
			"credentials": map[string]string{"secret": down.secret}})
		createDestination(t, c, map[string]any{"name": "lake", "type": "raw", "endpoint": "file://" + rawDir})
		if status, body := c.putJSON(t, "POST", "/api/v1/destinations", map[string]any{"name": "meta", "type": "webhook",
			"endpoint": "http://169.254.169.254/latest", "credentials": map[string]string{"secret": "0123456789abcdef"}}); status != http.StatusBadRequest {
			t.Errorf("a destination at the cloud metadata address: %d %s, want 400", status, body)
		}

		// Ada consents to marketing; Bob refuses.
		send := func(body string) {
			t.Helper()
			if status, resp := c.do(t, "POST", "/v1/batch", segmentAuth(), []byte(body)); status != http.StatusOK {
				t.Fatalf("batch: %d %s", status, resp)
			}
		}
		send(`{"batch":[
			{"type":"identify","userId":"ada","messageId":"a0","context":{"consent":{"categoryPreferences":{"marketing":true}},"ip":"198.51.100.1"}},
			{"type":"identify","userId":"bob","messageId":"b0","context":{"consent":{"categoryPreferences":{"marketing":false}}}},
			{"type":"track","userId":"ada","messageId":"a1","event":"Viewed"},
			{"type":"track","userId":"bob","messageId":"b1","event":"Viewed"},
			{"type":"track","userId":"ada","messageId":"a2","event":"Bought"}]}`)
		waitUntil(t, "ada's events at the working destination", 30*time.Second, func() bool {
			ev, _ := good.messages()
			return len(ev) >= 3
		})
		events, consentSeen := good.messages()
		if strings.Join(events, ",") != "a0,a1,a2" {
			t.Errorf("working destination got %v, want ada's a0,a1,a2 in order and nothing of bob", events)
		}
		if strings.Join(consentSeen, ",") != "marketing:granted" {
			t.Errorf("working destination got consent changes %v, want marketing:granted", consentSeen)
		}
		if down.bad != 0 || good.bad != 0 {
			t.Errorf("signatures did not verify: %d bad", good.bad+down.bad)
		}
		// The IP was dropped for this destination.
		good.mu.Lock()
		raw, _ := json.Marshal(good.items)
		good.mu.Unlock()
		if strings.Contains(string(raw), "198.51.100.1") {
			t.Error("the IP address reached a destination that drops it")
		}

		// The activity view: per event, per destination.
		bobID, _ := c.profileConsent(t, "user_id:bob")
		status, body := c.do(t, "GET", "/api/v1/profiles/"+bobID+"/events", adminAuth(), nil)
		if status != http.StatusOK || !strings.Contains(string(body), `"consent:purpose_denied:marketing"`) {
			t.Errorf("bob's timeline does not say why the crm got nothing: %s", body)
		}
		adaID, _ := c.profileConsent(t, "user_id:ada")
		waitUntil(t, "delivered and retrying outcomes in ada's timeline", 20*time.Second, func() bool {
			_, b := c.do(t, "GET", "/api/v1/profiles/"+adaID+"/events", adminAuth(), nil)
			return strings.Contains(string(b), `"status":"delivered"`) && strings.Contains(string(b), `"status":"retrying"`)
		})

		// Ada withdraws: the crm learns it although it no longer gets her events.
		send(`{"batch":[{"type":"track","userId":"ada","messageId":"a3","event":"Left","context":{"consent":{"categoryPreferences":{"marketing":false}}}},
			{"type":"track","userId":"ada","messageId":"a4","event":"After"}]}`)
		waitUntil(t, "the withdrawal at the crm", 20*time.Second, func() bool {
			_, cs := good.messages()
			return len(cs) == 2
		})
		if _, cs := good.messages(); cs[1] != "marketing:denied" {
			t.Errorf("consent changes %v, want the withdrawal last", cs)
		}
		if ev, _ := good.messages(); len(ev) != 3 {
			t.Errorf("events after the withdrawal reached the crm: %v", ev)
		}

		// The raw lake gets everything as files.
		waitUntil(t, "files in the raw lake", 20*time.Second, func() bool {
			files, _ := filepath.Glob(filepath.Join(rawDir, "*.jsonl"))
			return len(files) > 0
		})

		// The failing destination now answers 400: its deliveries go to
		// dead letters; once fixed, a replay delivers them.
		down.status.Store(http.StatusBadRequest)
		var dead struct {
			DeadLetters []struct{ ID, LastError string } `json:"dead_letters"`
		}
		waitUntil(t, "dead letters", 60*time.Second, func() bool {
			_, b := c.do(t, "GET", "/api/v1/destinations/"+downID+"/dead-letters", adminAuth(), nil)
			_ = json.Unmarshal(b, &dead)
			return len(dead.DeadLetters) >= 7
		})
		down.status.Store(0)
		status, body = c.putJSON(t, "POST", "/api/v1/destinations/"+downID+"/dead-letters/replay", map[string]bool{"all": true})
		if status != http.StatusOK || !strings.Contains(string(body), `"queued":`) {
			t.Fatalf("replay dead letters: %d %s", status, body)
		}
		waitUntil(t, "replayed dead letters delivered", 30*time.Second, func() bool {
			ev, _ := down.messages()
			return len(ev) >= 7
		})

		// Replay the crm from the start: consent is checked again, now.
		before, _ := good.messages()
		status, body = c.putJSON(t, "POST", "/api/v1/destinations/"+goodID+"/replay", map[string]string{"since": time.Now().Add(-time.Hour).Format(time.RFC3339)})
		if status != http.StatusOK {
			t.Fatalf("replay: %d %s", status, body)
		}
		var rr struct{ Queued, Filtered int }
		_ = json.Unmarshal(body, &rr)
		if rr.Queued != 0 || rr.Filtered == 0 {
			t.Errorf("replay after ada withdrew queued %d and filtered %d, want nothing queued", rr.Queued, rr.Filtered)
		}
		if after, _ := good.messages(); len(after) != len(before) {
			t.Errorf("replay sent events without consent")
		}
		_ = os.Remove(rawDir)
	})
}
