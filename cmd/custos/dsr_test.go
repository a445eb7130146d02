package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos-cdp/custos/internal/opendsr"
)

// controllerStub plays the brand: it receives status callbacks and checks
// each one's signature against the certificate the processor publishes.
type controllerStub struct {
	srv      *httptest.Server
	cert     []byte
	mu       sync.Mutex
	statuses map[string][]string // request id -> statuses called back, in order
	bad      int
}

func newControllerStub(t *testing.T) *controllerStub {
	c := &controllerStub{statuses: map[string][]string{}}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		defer c.mu.Unlock()
		if err := opendsr.Verify(c.cert, r.Header, body); err != nil {
			c.bad++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var st opendsr.Status
		_ = json.Unmarshal(body, &st)
		c.statuses[st.SubjectRequestID] = append(c.statuses[st.SubjectRequestID], st.RequestStatus)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *controllerStub) seen(id string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.statuses[id]...)
}

// dsrClient talks to /opendsr/v1 and checks every answer's signature.
type dsrClient struct {
	*client
	cert []byte
}

func (d *dsrClient) call(t *testing.T, method, path string, body []byte) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, d.url+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if err := opendsr.Verify(d.cert, resp.Header, b); err != nil {
		t.Fatalf("%s %s: answer not signed by the published certificate: %v", method, path, err)
	}
	if resp.Header.Get("X-OpenGDPR-Signature") == "" || resp.Header.Get("X-OpenDSR-Processor-Domain") == "" {
		t.Errorf("%s %s: signature header aliases missing", method, path)
	}
	return resp.StatusCode, b
}

func requestBody(id, typ, regulation string, callback string, ids ...[2]string) []byte {
	var sb strings.Builder
	for i, id := range ids {
		if i > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, `{"identity_type":%q,"identity_value":%q,"identity_format":"raw"}`, id[0], id[1])
	}
	return []byte(fmt.Sprintf(`{"regulation":%q,"subject_request_id":%q,"subject_request_type":%q,"submitted_time":%q,
		"subject_identities":[%s],"status_callback_urls":[%q]}`, regulation, id, typ, time.Now().UTC().Format(time.RFC3339), sb.String(), callback))
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// TestDataSubjectRequestsEndToEnd drives access, portability and erasure
// through the OpenDSR API with a controller stub that verifies signatures.
func TestDataSubjectRequestsEndToEnd(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		dir := t.TempDir()
		srv := startInProcess(t, be, dir)
		c := newClient(srv.url)
		stub := newControllerStub(t)
		_, cert := c.do(t, "GET", "/opendsr/v1/cert.pem", nil, nil)
		stub.cert = cert
		d := &dsrClient{client: c, cert: cert}

		status, disc := d.call(t, "GET", "/opendsr/v1/discovery", nil)
		if status != 200 || !strings.Contains(string(disc), `"processor_certificate"`) || !strings.Contains(string(disc), `"erasure"`) {
			t.Fatalf("discovery: %d %s", status, disc)
		}

		// A person with data everywhere: events, consent, a destination.
		if status, body := c.putJSON(t, "PUT", "/api/v1/purposes/marketing", map[string]any{"name": "Marketing", "regime": "opt_in"}); status != http.StatusCreated {
			t.Fatalf("purpose: %d %s", status, body)
		}
		hook, hookSrv := newReceiver(t, "secret-dsr-0123456789")
		createDestination(t, c, map[string]any{"name": "crm", "type": "webhook", "endpoint": hookSrv.URL,
			"credentials": map[string]string{"secret": hook.secret}, "consent": map[string]any{"purposes": []string{"marketing"}}})
		const email = "dsr.canary.person@example.org"
		send := func(body string) {
			t.Helper()
			if status, resp := c.do(t, "POST", "/v1/batch", segmentAuth(), []byte(body)); status != http.StatusOK {
				t.Fatalf("batch: %d %s", status, resp)
			}
		}
		send(`{"batch":[{"type":"identify","userId":"dsr-user","messageId":"d0","traits":{"email":"` + email + `","favourite":"dsr-trait-canary"},
			"context":{"consent":{"categoryPreferences":{"marketing":true}}}},
			{"type":"track","userId":"dsr-user","messageId":"d1","event":"Bought","properties":{"sku":"dsr-prop-canary"}},
			{"type":"track","userId":"someone-else","messageId":"o1","event":"Bought"}]}`)
		waitUntil(t, "the crm received the person's events", 30*time.Second, func() bool {
			ev, _ := hook.messages()
			return len(ev) >= 2
		})

		// Validation: the spec's error shape, never echoing identities.
		status, body := d.call(t, "POST", "/opendsr/v1/requests", []byte(`{"regulation":"gdpr","subject_request_type":"erasure","subject_identities":[{"identity_type":"email","identity_value":"`+email+`","identity_format":"raw"}]}`))
		if status != 400 || strings.Contains(string(body), email) || !strings.Contains(string(body), `"domain":"Validation"`) {
			t.Errorf("invalid request: %d %s", status, body)
		}
		status, body = d.call(t, "POST", "/opendsr/v1/requests", requestBody("0d4f6c2e-7b8a-4e2f-9c1d-3a5b7c9d1e2f", "erasure", "gdpr", stub.srv.URL, [2]string{"fax_number", "x"}))
		if status != 400 {
			t.Errorf("unsupported identity type: %d %s", status, body)
		}

		// Dry run: what an erasure would touch.
		status, body = d.call(t, "POST", "/opendsr/v1/dry-run", requestBody("11111111-2222-4333-8444-555555555555", "erasure", "gdpr", stub.srv.URL, [2]string{"email", email}))
		if status != 200 || !strings.Contains(string(body), `"profiles":1`) {
			t.Errorf("dry run: %d %s", status, body)
		}

		// Access and portability, by a hashed identity for one of them.
		for _, tt := range []struct {
			typ, id string
			ident   [2]string
			format  string
		}{
			{"access", "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", [2]string{"email", email}, "raw"},
			{"portability", "b1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", [2]string{"email", sha256Hex(email)}, "sha256"},
		} {
			req := requestBody(tt.id, tt.typ, "gdpr", stub.srv.URL, tt.ident)
			req = bytes.Replace(req, []byte(`"identity_format":"raw"`), []byte(`"identity_format":"`+tt.format+`"`), 1)
			status, receipt := d.call(t, "POST", "/opendsr/v1/requests", req)
			if status != http.StatusCreated || !strings.Contains(string(receipt), `"expected_completion_time"`) {
				t.Fatalf("%s: %d %s", tt.typ, status, receipt)
			}
			if status, again := d.call(t, "POST", "/opendsr/v1/requests", req); status != http.StatusOK || !bytes.Equal(again, receipt) {
				t.Errorf("%s resent: %d, same receipt %v", tt.typ, status, bytes.Equal(again, receipt))
			}
			if status, _ := d.call(t, "POST", "/opendsr/v1/requests", requestBody(tt.id, "erasure", "gdpr", stub.srv.URL, [2]string{"email", email})); status != http.StatusConflict {
				t.Errorf("%s: same id, another body: %d, want 409", tt.typ, status)
			}
			var st opendsr.Status
			waitUntil(t, tt.typ+" completed", 30*time.Second, func() bool {
				_, b := d.call(t, "GET", "/opendsr/v1/requests/"+tt.id, nil)
				_ = json.Unmarshal(b, &st)
				return st.RequestStatus == "completed"
			})
			if st.ResultsURL == "" || st.ResultsCount == nil || *st.ResultsCount < 4 {
				t.Fatalf("%s: results %q count %v", tt.typ, st.ResultsURL, st.ResultsCount)
			}
			u, _ := url.Parse(st.ResultsURL)
			status, zipped := c.do(t, "GET", u.Path, nil, nil)
			if status != 200 {
				t.Fatalf("%s: download %d", tt.typ, status)
			}
			files := unzip(t, zipped)
			var manifest struct {
				Files []struct{ Name, SHA256 string }
			}
			_ = json.Unmarshal(files["manifest.json"], &manifest)
			for _, f := range manifest.Files {
				h := sha256.Sum256(files[f.Name])
				if hex.EncodeToString(h[:]) != f.SHA256 {
					t.Errorf("%s: checksum of %s does not match the manifest", tt.typ, f.Name)
				}
			}
			for _, name := range []string{"identities.jsonl", "identities.csv", "events.jsonl", "consent.csv", "recipients.jsonl", "traits.jsonl"} {
				if _, ok := files[name]; !ok {
					t.Errorf("%s: export lacks %s", tt.typ, name)
				}
			}
			if !bytes.Contains(files["identities.jsonl"], []byte(email)) || !bytes.Contains(files["events.jsonl"], []byte("dsr-prop-canary")) ||
				bytes.Contains(files["events.jsonl"], []byte("someone-else")) {
				t.Errorf("%s: export does not hold exactly the person's data", tt.typ)
			}
			_, hasHTML := files["index.html"]
			if hasHTML != (tt.typ == "access") {
				t.Errorf("%s: index.html present %v", tt.typ, hasHTML)
			}
			waitUntil(t, tt.typ+" callbacks", 20*time.Second, func() bool {
				s := stub.seen(tt.id)
				return len(s) >= 3 && s[len(s)-1] == "completed"
			})
		}

		// Erasure.
		const erasureID = "c1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
		status, body = d.call(t, "POST", "/opendsr/v1/requests", requestBody(erasureID, "erasure", "gdpr", stub.srv.URL, [2]string{"email", email}))
		if status != http.StatusCreated {
			t.Fatalf("erasure: %d %s", status, body)
		}
		waitUntil(t, "erasure completed", 60*time.Second, func() bool {
			_, b := d.call(t, "GET", "/opendsr/v1/requests/"+erasureID, nil)
			return strings.Contains(string(b), `"request_status":"completed"`)
		})
		// The crm got a deletion notice.
		hook.mu.Lock()
		gotNotice := false
		for _, it := range hook.items {
			gotNotice = gotNotice || it["kind"] == "erasure"
		}
		hook.mu.Unlock()
		if !gotNotice {
			t.Error("the destination that received the person's data got no erasure notice")
		}
		// Nothing about the person can be read back.
		if status, _ := c.do(t, "GET", "/api/v1/profiles?identity="+url.QueryEscape("email:"+email), adminAuth(), nil); status != http.StatusNotFound {
			t.Errorf("profile by e-mail after erasure: %d, want 404", status)
		}
		for _, e := range c.allEvents(t) {
			if e.MessageID == "d0" || e.MessageID == "d1" {
				t.Errorf("event %s still listed", e.MessageID)
			}
		}
		// New data naming the person is suppressed; others' still flows.
		send(`{"batch":[{"type":"identify","userId":"new-id","messageId":"d2","traits":{"email":"` + email + `"}},
			{"type":"track","userId":"dsr-user","messageId":"d3","event":"Back"},
			{"type":"track","userId":"someone-else","messageId":"o2","event":"Sentinel"}]}`)
		c.waitForEvents(t, "the sentinel", 20*time.Second, func(evs []listedEvent) bool { return countByMessageID(evs)["o2"] == 1 })
		if n := countByMessageID(c.allEvents(t)); n["d2"]+n["d3"] != 0 {
			t.Errorf("events naming the erased person were stored: %v", n)
		}
		// The proof: signed, complete, without personal data.
		status, proof := d.call(t, "GET", "/opendsr/v1/requests/"+erasureID+"/proof", nil)
		if status != 200 || !strings.Contains(string(proof), `"removed"`) || !strings.Contains(string(proof), `"completed"`) ||
			strings.Contains(string(proof), email) || strings.Contains(string(proof), "dsr-user") {
			t.Errorf("proof: %d %s", status, proof)
		}
		waitUntil(t, "erasure callbacks", 20*time.Second, func() bool {
			s := stub.seen(erasureID)
			return len(s) >= 3 && s[len(s)-1] == "completed"
		})
		if stub.bad != 0 {
			t.Errorf("%d callbacks had bad signatures", stub.bad)
		}

		// At rest: no trace of the person in any file or table.
		if err := srv.stop(t); err != nil {
			t.Fatal(err)
		}
		old := canaries
		canaries = []string{email, "dsr-trait-canary", "dsr-prop-canary"}
		defer func() { canaries = old }()
		for _, hit := range scanAtRest(t, be, dir) {
			t.Errorf("after erasure %q found in %s", hit.canary, hit.where)
		}
	})
}

func unzip(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("export is not a zip: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		out[f.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	return out
}

// TestErasureSurvivesRestore erases a person, restores a copy of the
// database taken before, runs "custos dsr reapply", and shows the person
// does not come back.
func TestErasureSurvivesRestore(t *testing.T) {
	be := backend{name: "embedded", natsPrefix: "custos"}
	dir := t.TempDir()
	srv := startInProcess(t, be, dir)
	c := newClient(srv.url)
	const email = "restore.canary@example.org"
	if status, _ := c.do(t, "POST", "/v1/identify", segmentAuth(), []byte(`{"userId":"r-user","messageId":"r1","traits":{"email":"`+email+`"}}`)); status != 200 {
		t.Fatal("identify")
	}
	c.waitForEvents(t, "the event", 20*time.Second, func(evs []listedEvent) bool { return len(evs) == 1 })
	if err := srv.stop(t); err != nil {
		t.Fatal(err)
	}
	backup := t.TempDir()
	for _, f := range []string{"custos.db", "custos.db-wal", "custos.db-shm"} {
		if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
			_ = os.WriteFile(filepath.Join(backup, f), b, 0o600)
		}
	}

	srv = startInProcess(t, be, dir)
	c = newClient(srv.url)
	_, cert := c.do(t, "GET", "/opendsr/v1/cert.pem", nil, nil)
	d := &dsrClient{client: c, cert: cert}
	const id = "d1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
	if status, body := d.call(t, "POST", "/opendsr/v1/requests", requestBody(id, "erasure", "ccpa", "https://controller.example/cb", [2]string{"email", email})); status != http.StatusCreated {
		t.Fatalf("erasure: %d %s", status, body)
	}
	waitUntil(t, "erasure completed", 60*time.Second, func() bool {
		_, b := d.call(t, "GET", "/opendsr/v1/requests/"+id, nil)
		return strings.Contains(string(b), `"completed"`)
	})
	if err := srv.stop(t); err != nil {
		t.Fatal(err)
	}

	// The backup comes back: the person with it.
	for _, f := range []string{"custos.db", "custos.db-wal", "custos.db-shm"} {
		_ = os.Remove(filepath.Join(dir, f))
		if b, err := os.ReadFile(filepath.Join(backup, f)); err == nil {
			_ = os.WriteFile(filepath.Join(dir, f), b, 0o600)
		}
	}
	var out bytes.Buffer
	if code := run([]string{"dsr", "reapply", "--data-dir", dir}, &out, io.Discard); code != 0 {
		t.Fatalf("dsr reapply exited %d: %s", code, out.String())
	}
	if !strings.Contains(out.String(), "re-applied 1 erasures: 1 profiles") {
		t.Errorf("reapply said %q", out.String())
	}
	srv = startInProcess(t, be, dir)
	c = newClient(srv.url)
	if status, _ := c.do(t, "GET", "/api/v1/profiles?identity="+url.QueryEscape("email:"+email), adminAuth(), nil); status != http.StatusNotFound {
		t.Errorf("after restore and reapply the person is back: %d", status)
	}
	if status, _ := c.do(t, "POST", "/v1/identify", segmentAuth(), []byte(`{"userId":"r-user","messageId":"r2","traits":{"email":"`+email+`"}}`)); status != 200 {
		t.Fatal("identify")
	}
	if status, _ := c.do(t, "POST", "/v1/track", segmentAuth(), []byte(`{"userId":"other","messageId":"r3","event":"Sentinel"}`)); status != 200 {
		t.Fatal("track")
	}
	evs := c.waitForEvents(t, "the sentinel", 20*time.Second, func(evs []listedEvent) bool { return countByMessageID(evs)["r3"] == 1 })
	if n := countByMessageID(evs); n["r1"]+n["r2"] != 0 {
		t.Errorf("erased person's events visible after restore: %v", n)
	}
	_ = context.Background()
}
