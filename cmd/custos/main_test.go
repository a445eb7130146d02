package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/custos-cdp/custos/internal/testenv"
)

// TestMain lets the test binary stand in for the custos binary: with
// CUSTOS_TEST_RUN_MAIN=1 it runs main instead of the tests. The crash tests
// start it as a child process and kill it.
func TestMain(m *testing.M) {
	if os.Getenv("CUSTOS_TEST_RUN_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// credentials fixed for every test server.
const (
	testWriteKey    = "cwk_testwritekeytestwritekey"
	testWriteSecret = "cws_testwritesecrettestwritesecret"
	testAdminToken  = "cat_testadmintokentestadmintoken"
)

// backend names where a test server keeps its data.
type backend struct {
	name        string
	databaseURL string // empty: SQLite in the data dir
	natsURL     string // empty: embedded
	natsPrefix  string
}

// eachBackend runs test on the embedded defaults and on PostgreSQL +
// external NATS.
func eachBackend(t *testing.T, test func(t *testing.T, be backend)) {
	t.Helper()
	t.Run("embedded", func(t *testing.T) {
		test(t, backend{name: "embedded", natsPrefix: "custos"})
	})
	t.Run("external", func(t *testing.T) {
		be := backend{name: "external", databaseURL: testenv.PostgresURL(t), natsURL: testenv.NATSURL(t),
			natsPrefix: "t" + testenv.RandomName()}
		t.Cleanup(func() { deleteStreams(t, be) })
		test(t, be)
	})
}

// deleteStreams removes the test's streams from the shared NATS server.
func deleteStreams(t testing.TB, be backend) {
	nc, err := nats.Connect(be.natsURL)
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	names := js.StreamNames(ctx)
	var doomed []string
	for name := range names.Name() {
		if strings.HasPrefix(name, be.natsPrefix+"_") {
			doomed = append(doomed, name)
		}
	}
	for _, name := range doomed {
		_ = js.DeleteStream(ctx, name)
	}
}

func (be backend) args(dataDir, addr string) []string {
	a := []string{"--data-dir", dataDir, "--addr", addr, "--nats-prefix", be.natsPrefix, "--log-ack-wait", "2s", "--allow-private-networks", "--forward-max-retry-delay", "1s"}
	if be.databaseURL != "" {
		a = append(a, "--database-url", be.databaseURL)
	}
	if be.natsURL != "" {
		a = append(a, "--nats-url", be.natsURL)
	}
	return a
}

func fixedEnv(key string) string {
	switch key {
	case envBootstrapWriteKey:
		return testWriteKey
	case envBootstrapWriteSecret:
		return testWriteSecret
	case envBootstrapAdminToken:
		return testAdminToken
	}
	return ""
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// inProcess is a server started in the test process.
type inProcess struct {
	srv            *server
	url            string
	stdout, stderr *syncBuffer
	cancel         context.CancelFunc
	done           chan error
}

// startInProcess starts a server on be in dataDir and waits until it serves.
func startInProcess(t testing.TB, be backend, dataDir string) *inProcess {
	t.Helper()
	p := &inProcess{stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cfg, err := parseConfig("serve", be.args(dataDir, "127.0.0.1:0"), fixedEnv, p.stderr)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	s, err := start(ctx, cfg, newLogger("debug", p.stderr), p.stdout)
	if err != nil {
		cancel()
		t.Fatalf("start: %v\n%s", err, p.stderr)
	}
	go func() { p.done <- s.run(ctx) }()
	<-s.ready
	p.url = "http://" + s.listener.Addr().String()
	p.srv = s
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop sends the equivalent of SIGTERM and returns run's error.
func (p *inProcess) stop(t testing.TB) error {
	t.Helper()
	if p.cancel == nil {
		return nil
	}
	p.cancel()
	p.cancel = nil
	select {
	case err := <-p.done:
		return err
	case <-time.After(60 * time.Second):
		t.Fatal("server did not stop within 60s")
		return nil
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// client is what tests use to talk to a server over HTTP.
type client struct {
	url  string
	http *http.Client
}

func newClient(url string) *client {
	return &client{url: url, http: &http.Client{Timeout: 30 * time.Second}}
}

func (c *client) do(t testing.TB, method, path string, header http.Header, body []byte) (int, []byte) {
	t.Helper()
	status, b, err := c.try(method, path, header, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return status, b
}

func (c *client) try(method, path string, header http.Header, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, c.url+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func segmentAuth() http.Header {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(testWriteKey, "")
	return req.Header
}

func mparticleAuth() http.Header {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(testWriteKey, testWriteSecret)
	return req.Header
}

func adminAuth() http.Header {
	return http.Header{"Authorization": {"Bearer " + testAdminToken}}
}

type listedEvent struct {
	MessageID  string `json:"message_id"`
	Type       string `json:"type"`
	Event      string `json:"event"`
	Identities []struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	} `json:"identities"`
	Timestamp time.Time `json:"timestamp"`
}

// allEvents pages through GET /api/v1/events.
func (c *client) allEvents(t *testing.T) []listedEvent {
	t.Helper()
	var out []listedEvent
	cursor := ""
	for range 10000 {
		status, body := c.do(t, "GET", "/api/v1/events?limit=1000&cursor="+cursor, adminAuth(), nil)
		if status != http.StatusOK {
			t.Fatalf("list events: status %d: %s", status, body)
		}
		var page struct {
			Events     []listedEvent `json:"events"`
			NextCursor string        `json:"next_cursor"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatalf("list events: %v", err)
		}
		out = append(out, page.Events...)
		if page.NextCursor == "" {
			return out
		}
		cursor = page.NextCursor
	}
	t.Fatal("list events: too many pages")
	return nil
}

// waitForEvents polls until cond holds for the stored events, or fails
// after the deadline.
func (c *client) waitForEvents(t *testing.T, what string, timeout time.Duration, cond func([]listedEvent) bool) []listedEvent {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		evs := c.allEvents(t)
		if cond(evs) {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s (have %d events)", timeout, what, len(evs))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func countByMessageID(evs []listedEvent) map[string]int {
	m := make(map[string]int, len(evs))
	for _, e := range evs {
		m[e.MessageID]++
	}
	return m
}

func segmentTrack(mid, user string) []byte {
	return fmt.Appendf(nil, `{"userId":%q,"messageId":%q,"event":"Order Completed","properties":{"order_id":"o-%s","revenue":42.5},"context":{"ip":"203.0.113.9"}}`, user, mid, mid)
}

func segmentBatch(mids []string, user string) []byte {
	var b strings.Builder
	b.WriteString(`{"batch":[`)
	for i, mid := range mids {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"type":"track","userId":%q,"messageId":%q,"event":"Clicked","properties":{"i":%d}}`, user, mid, i)
	}
	b.WriteString(`],"sentAt":"` + time.Now().UTC().Format(time.RFC3339Nano) + `"}`)
	return []byte(b.String())
}
