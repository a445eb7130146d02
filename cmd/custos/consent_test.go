package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	mparticle "github.com/mParticle/mparticle-go-sdk/events"
	segment "github.com/segmentio/analytics-go/v3"

	"github.com/custos-cdp/custos/internal/api"
	"github.com/custos-cdp/custos/internal/signing"
)

type consentState struct {
	Purpose string `json:"purpose"`
	State   string `json:"state"`
	Allowed bool   `json:"allowed"`
	Source  string `json:"source"`
	EntryID string `json:"entry_id"`
}

// profileConsent fetches a person's current consent by identity.
func (c *client) profileConsent(t *testing.T, identity string) (string, map[string]consentState) {
	t.Helper()
	status, body := c.do(t, "GET", "/api/v1/profiles?identity="+url.QueryEscape(identity), adminAuth(), nil)
	if status != http.StatusOK {
		return "", nil
	}
	var p struct {
		ID      string         `json:"id"`
		Consent []consentState `json:"consent"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	m := map[string]consentState{}
	for _, s := range p.Consent {
		m[s.Purpose] = s
	}
	return p.ID, m
}

func (c *client) waitConsent(t *testing.T, identity, purpose, state string) (string, consentState) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		id, m := c.profileConsent(t, identity)
		if s, ok := m[purpose]; ok && s.State == state {
			return id, s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s never became %s (now %+v)", identity, purpose, state, m[purpose])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *client) putJSON(t testing.TB, method, path string, v any) (int, []byte) {
	t.Helper()
	b, _ := json.Marshal(v)
	return c.do(t, method, path, adminAuth(), b)
}

// TestConsentEndToEnd drives every way consent arrives, through the HTTP
// surfaces and the official SDKs, and reads the ledger back.
func TestConsentEndToEnd(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		srv := startInProcess(t, be, t.TempDir())
		c := newClient(srv.url)
		for _, p := range []struct{ key, regime string }{{"marketing", "opt_in"}, {"analytics", "opt_in"}} {
			if status, body := c.putJSON(t, "PUT", "/api/v1/purposes/"+p.key, map[string]any{"name": p.key, "regime": p.regime, "document_version": "v4"}); status != http.StatusCreated {
				t.Fatalf("create purpose: %d %s", status, body)
			}
		}
		for path, purpose := range map[string]string{
			"segment_category/Advertising": "marketing",
			"rudder_consent_id/C0002":      "analytics",
			"onetrust/C0004":               "marketing",
		} {
			if status, body := c.putJSON(t, "PUT", "/api/v1/consent-mappings/"+path, map[string]string{"purpose": purpose}); status != http.StatusOK {
				t.Fatalf("mapping %s: %d %s", path, status, body)
			}
		}

		// 1. Segment categories through the Segment library, plus one the
		// workspace never mapped: reported, the rest accepted.
		body := `{"userId":"seg-user","messageId":"cs1","event":"Viewed","context":{"consent":{"categoryPreferences":{"Advertising":true,"Astrology":true}}}}`
		status, resp := c.do(t, "POST", "/v1/track", segmentAuth(), []byte(body))
		if status != http.StatusOK || !strings.Contains(string(resp), `"rejected_consent"`) || !strings.Contains(string(resp), `"unmapped"`) {
			t.Fatalf("track with consent: %d %s", status, resp)
		}
		c.waitConsent(t, "user_id:seg-user", "marketing", "granted")
		cl, _ := segment.NewWithConfig(testWriteKey, segment.Config{Endpoint: srv.url, Interval: 20 * time.Millisecond, BatchSize: 1})
		_ = cl.Enqueue(segment.Track{UserId: "seg-lib", Event: "Consented", Context: &segment.Context{Extra: map[string]any{
			"consent": map[string]any{"categoryPreferences": map[string]bool{"Advertising": false}}}}})
		_ = cl.Close()
		c.waitConsent(t, "user_id:seg-lib", "marketing", "denied")

		// 2. RudderStack consentManagement ids.
		body = `{"batch":[{"type":"identify","userId":"rs-user","messageId":"cs2","context":{"consentManagement":{"provider":"oneTrust","allowedConsentIds":["C0002"],"deniedConsentIds":[]}}}]}`
		if status, resp = c.do(t, "POST", "/v1/batch", segmentAuth(), []byte(body)); status != http.StatusOK {
			t.Fatalf("rudder consent: %d %s", status, resp)
		}
		c.waitConsent(t, "user_id:rs-user", "analytics", "granted")

		// 3. mParticle: GDPR purposes through the mParticle SDK, and CCPA
		// with its inverted polarity in a raw batch.
		cfg := mparticle.NewConfiguration()
		cfg.BasePath = srv.url + "/v2"
		mp := mparticle.NewAPIClient(cfg)
		ctx := context.WithValue(context.Background(), mparticle.ContextBasicAuth, mparticle.BasicAuth{APIKey: testWriteKey, APISecret: testWriteSecret})
		batch := mparticle.Batch{Environment: mparticle.ProductionEnvironment, UserIdentities: &mparticle.UserIdentities{CustomerID: "mp-user"},
			ConsentState: &mparticle.ConsentState{GDPR: map[string]mparticle.GdprConsentState{
				"marketing": {Consented: true, Document: "v4", TimestampUnixtimeMS: time.Now().UnixMilli(), Location: "example.com/signup", HardwareID: "IDFA:abc"}}}}
		if r, err := mp.EventsAPI.UploadEvents(ctx, batch); err != nil || r.StatusCode != http.StatusAccepted {
			t.Fatalf("mparticle sdk consent: %v %v", r, err)
		}
		_, st := c.waitConsent(t, "user_id:mp-user", "marketing", "granted")
		ccpa := `{"environment":"production","user_identities":{"customer_id":"mp-user"},"consent_state":{"ccpa":{"data_sale_opt_out":{"consented":true,"timestamp_unixtime_ms":` + strconv.FormatInt(time.Now().UnixMilli(), 10) + `}}}}`
		if status, resp = c.do(t, "POST", "/v2/events", mparticleAuth(), []byte(ccpa)); status != http.StatusAccepted {
			t.Fatalf("mparticle ccpa: %d %s", status, resp)
		}
		c.waitConsent(t, "user_id:mp-user", "data_sale_opt_out", "denied")

		// 4. Sec-GPC: 1 on any ingestion request: a sticky opt-out of sale
		// and sharing.
		h := segmentAuth()
		h.Set("Sec-GPC", "1")
		if status, _ = c.do(t, "POST", "/v1/track", h, []byte(`{"userId":"gpc-user","event":"Visited"}`)); status != http.StatusOK {
			t.Fatalf("gpc track: %d", status)
		}
		_, sale := c.waitConsent(t, "user_id:gpc-user", "data_sale_opt_out", "denied")
		c.waitConsent(t, "user_id:gpc-user", "sharing_opt_out", "denied")
		if sale.Source != "gpc" || sale.Allowed {
			t.Errorf("gpc sale state %+v, want denied from gpc", sale)
		}

		// 5. Server to server, for a person not seen before.
		req := map[string]any{"identities": []map[string]string{{"type": "email", "value": "New.Person@Example.com"}},
			"purposes": []map[string]any{{"purpose": "analytics", "state": "granted", "document": "v4", "location": "call-centre"}}}
		if status, resp = c.putJSON(t, "POST", "/api/v1/consent", req); status != http.StatusAccepted {
			t.Fatalf("consent api: %d %s", status, resp)
		}
		c.waitConsent(t, "email:new.person@example.com", "analytics", "granted")
		bad := map[string]any{"identities": []map[string]string{{"type": "email", "value": "x@example.com"}},
			"purposes": []map[string]any{{"purpose": "telepathy", "state": "granted"}}}
		if status, resp = c.putJSON(t, "POST", "/api/v1/consent", bad); status != http.StatusBadRequest || !strings.Contains(string(resp), "undefined_purpose") {
			t.Errorf("undefined purpose: %d %s, want 400 undefined_purpose", status, resp)
		}

		// 6. A partner feed, signed.
		status, resp = c.putJSON(t, "POST", "/api/v1/feeds", map[string]string{"name": "onetrust"})
		var feed struct{ ID, URL, Secret string }
		if err := json.Unmarshal(resp, &feed); status != http.StatusCreated || err != nil || feed.Secret == "" {
			t.Fatalf("create feed: %d %s", status, resp)
		}
		payload := []byte(`{"identifier":"feed.person@example.com","consentDate":"` + time.Now().UTC().Format(time.RFC3339) + `","collectionPointVersion":"3",
			"purposes":[{"Id":"C0004","TransactionType":"WITHDRAWN"},{"Id":"C9999","TransactionType":"CONFIRMED"}]}`)
		ts := time.Now().Unix()
		fh := http.Header{"X-Custos-Timestamp": {strconv.FormatInt(ts, 10)}, "X-Custos-Signature": {api.FeedSignature(feed.Secret, ts, payload)}}
		if status, resp = c.do(t, "POST", feed.URL, fh, payload); status != http.StatusAccepted || !strings.Contains(string(resp), "C9999") {
			t.Fatalf("feed: %d %s", status, resp)
		}
		c.waitConsent(t, "email:feed.person@example.com", "marketing", "withdrawn")
		for name, hdr := range map[string]http.Header{
			"wrong secret": {"X-Custos-Timestamp": {strconv.FormatInt(ts, 10)}, "X-Custos-Signature": {api.FeedSignature("nope", ts, payload)}},
			"stale":        {"X-Custos-Timestamp": {strconv.FormatInt(ts-3600, 10)}, "X-Custos-Signature": {api.FeedSignature(feed.Secret, ts-3600, payload)}},
			"unsigned":     {},
		} {
			if status, _ := c.do(t, "POST", feed.URL, hdr, payload); status != http.StatusUnauthorized {
				t.Errorf("feed %s: status %d, want 401", name, status)
			}
		}

		// The ledger keeps history; a receipt verifies with the published key.
		id, _ := c.profileConsent(t, "user_id:mp-user")
		status, resp = c.do(t, "GET", "/api/v1/profiles/"+id+"/consent/history", adminAuth(), nil)
		var hist struct {
			Entries []struct {
				ID, Purpose, State, Location, Source string
				HardwareID                           string `json:"hardware_id"`
			} `json:"entries"`
		}
		if err := json.Unmarshal(resp, &hist); status != http.StatusOK || err != nil || len(hist.Entries) < 2 {
			t.Fatalf("history: %d %s", status, resp)
		}
		if hist.Entries[0].Location != "example.com/signup" || hist.Entries[0].HardwareID != "IDFA:abc" {
			t.Errorf("history entry %+v lacks location and hardware id", hist.Entries[0])
		}
		status, resp = c.do(t, "GET", "/api/v1/profiles/"+id+"/consent/receipt/"+st.EntryID, adminAuth(), nil)
		var rec struct {
			JWS   string `json:"jws"`
			KeyID string `json:"key_id"`
		}
		if err := json.Unmarshal(resp, &rec); status != http.StatusOK || err != nil {
			t.Fatalf("receipt: %d %s", status, resp)
		}
		_, jwksBody := c.do(t, "GET", "/.well-known/custos/jwks.json", nil, nil)
		var jwks struct{ Keys []signing.JWK }
		_ = json.Unmarshal(jwksBody, &jwks)
		var pub ed25519.PublicKey
		for _, k := range jwks.Keys {
			if k.Kid == rec.KeyID {
				pub, _ = base64.RawURLEncoding.DecodeString(k.X)
			}
		}
		claims, err := signing.Verify(pub, rec.JWS)
		if err != nil || !strings.Contains(string(claims), `"marketing"`) || !strings.Contains(string(claims), st.EntryID) {
			t.Fatalf("receipt does not verify with the published key: %v %s", err, claims)
		}

		// Consent changes went through the outbox onto the bus.
		deadline := time.Now().Add(10 * time.Second)
		for {
			n, err := srv.srv.db.Outbox().Len(context.Background())
			s, serr := srv.srv.bus.JetStream().Stream(context.Background(), srv.srv.bus.OutboxStream())
			if err == nil && serr == nil && n == 0 && s.CachedInfo().State.LastSeq > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("outbox not relayed: %d waiting, %v %v", n, err, serr)
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = fmt.Sprint()
	})
}
