package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custos-cdp/custos/internal/opendsr"
	"github.com/custos-cdp/custos/internal/testenv"
)

// End-to-end benchmarks on the real stack (embedded SQLite and JetStream,
// or PostgreSQL and an external NATS when CUSTOS_BENCH_EXTERNAL=1 and the
// test service variables are set). Each does a fixed amount of work once
// and reports its own metrics; run them with -benchtime 1x. BENCHMARKS.md
// records the numbers.

// benchBackends is the embedded backend, and the external one when asked.
func benchBackends() []backend {
	out := []backend{{name: "embedded", natsPrefix: "custos"}}
	if os.Getenv("CUSTOS_BENCH_EXTERNAL") == "1" && os.Getenv("CUSTOS_TEST_POSTGRES_URL") != "" && os.Getenv("CUSTOS_TEST_NATS_URL") != "" {
		out = append(out, backend{name: "external", natsURL: os.Getenv("CUSTOS_TEST_NATS_URL")})
	}
	return out
}

// prepare gives an external backend its own database and stream prefix.
func (be backend) prepare(b *testing.B) backend {
	if be.natsURL == "" {
		return be
	}
	be.databaseURL, be.natsPrefix = testenv.PostgresURL(b), "b"+testenv.RandomName()
	b.Cleanup(func() { deleteStreams(b, be) })
	return be
}

// sink is a fast webhook receiver: it counts distinct idempotency keys and
// duplicates, and can play a destination that is down.
type sink struct {
	down        atomic.Bool
	mu          sync.Mutex
	seen        map[string]int
	dups        int
	first, last time.Time
	requests    int
}

func newSink(b testing.TB) (*sink, *httptest.Server) {
	s := &sink{seen: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if s.down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var batch struct {
			Batch []struct {
				Key string `json:"idempotency_key"`
			} `json:"batch"`
		}
		if err := json.Unmarshal(body, &batch); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		now := time.Now()
		s.mu.Lock()
		if s.first.IsZero() {
			s.first = now
		}
		s.last = now
		s.requests++
		for _, it := range batch.Batch {
			if s.seen[it.Key]++; s.seen[it.Key] > 1 {
				s.dups++
			}
		}
		s.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	b.Cleanup(srv.Close)
	return s, srv
}

func (s *sink) distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

// metricSum adds up every sample of a Prometheus metric family.
func metricSum(b testing.TB, c *client, name string) float64 {
	_, body := c.do(b, "GET", "/metrics", nil, nil)
	var sum float64
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		if v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil {
			sum += v
		}
	}
	return sum
}

// sendEvents posts n track events in batches of 100 from 8 clients,
// spread over users people (or all for one user when people is 1).
func sendEvents(b testing.TB, c *client, prefix string, n, people int) {
	var wg sync.WaitGroup
	batches := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for start := range batches {
				mids := make([]string, 0, 100)
				for i := start; i < min(start+100, n); i++ {
					mids = append(mids, fmt.Sprintf("%s-%d", prefix, i))
				}
				user := fmt.Sprintf("%s-user-%d", prefix, (start/100)%people)
				if people == 1 {
					user = prefix + "-user"
				}
				if status, body := c.do(b, "POST", "/v1/batch", segmentAuth(), segmentBatch(mids, user)); status != http.StatusOK {
					b.Errorf("batch: %d %s", status, body)
					return
				}
			}
		}()
	}
	for start := 0; start < n; start += 100 {
		batches <- start
	}
	close(batches)
	wg.Wait()
}

func waitFor(b testing.TB, what string, timeout time.Duration, cond func() bool) {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// BenchmarkForwardWebhook: 20,000 events wait in a webhook destination's
// queue while the destination is down; once it is back, the time until
// every one is delivered (each once) is the router's throughput: queue,
// open the person's sealed delivery, sign, POST, mark delivered.
func BenchmarkForwardWebhook(b *testing.B) {
	const events = 20000
	for _, be := range benchBackends() {
		for _, batch := range []int{1, 20, 100} {
			b.Run(fmt.Sprintf("%s/batch=%d", be.name, batch), func(b *testing.B) {
				for range b.N {
					srv := startInProcess(b, be.prepare(b), b.TempDir())
					c := newClient(srv.url)
					s, hook := newSink(b)
					s.down.Store(true)
					// Enough attempts that nothing is dead-lettered while the
					// destination is down (the test servers cap the backoff at 1s).
					destID := createDestination(b, c, map[string]any{"name": "hook", "type": "webhook", "endpoint": hook.URL,
						"credentials": map[string]string{"secret": "bench-secret-0123456789"}, "settings": map[string]any{"batch_size": batch, "max_attempts": 1000}})
					sendEvents(b, c, fmt.Sprintf("fw%d", batch), events, 500)
					waitFor(b, "processing", 10*time.Minute, func() bool { return metricSum(b, c, "custos_processor_events_total") >= events })
					time.Sleep(benchSettle) // the outbox relay hands the last deliveries to the queue
					s.down.Store(false)
					deadline := time.Now().Add(benchDeliveryTimeout)
					for s.distinct() < events {
						if time.Now().After(deadline) {
							var warnings []string
							for _, l := range strings.Split(srv.stderr.String(), "\n") {
								if strings.Contains(l, `"level":"WARN"`) || strings.Contains(l, `"level":"ERROR"`) {
									warnings = append(warnings, l)
								}
							}
							_, dead := c.do(b, "GET", "/api/v1/destinations/"+destID+"/dead-letters?limit=1", adminAuth(), nil)
							b.Logf("dead letters: %.300s", dead)
							b.Fatalf("delivered %d of %d in %v; server warnings (last 20 of %d):\n%s", s.distinct(), events, benchDeliveryTimeout,
								len(warnings), strings.Join(warnings[max(0, len(warnings)-20):], "\n"))
						}
						time.Sleep(20 * time.Millisecond)
					}
					s.mu.Lock()
					elapsed := s.last.Sub(s.first)
					b.ReportMetric(float64(events)/elapsed.Seconds(), "events/s")
					b.ReportMetric(float64(s.requests), "requests")
					b.ReportMetric(float64(s.dups), "duplicates")
					s.mu.Unlock()
				}
			})
		}
	}
}

// BenchmarkDSRPersonWithTenThousandEvents: one person with 10,000 events
// forwarded to 5 webhook destinations; an access request, then an
// erasure. Reported: the time from the "started" step to the export being
// stored, and to the person being erased from every store of Custos with
// notices queued to the 5 destinations (not counting the destinations'
// own work), and to completion with every destination confirmed.
func BenchmarkDSRPersonWithTenThousandEvents(b *testing.B) {
	const events = 10000
	for _, be := range benchBackends() {
		b.Run(be.name, func(b *testing.B) {
			for range b.N {
				srv := startInProcess(b, be.prepare(b), b.TempDir())
				c := newClient(srv.url)
				s, hook := newSink(b)
				for i := range 5 {
					createDestination(b, c, map[string]any{"name": fmt.Sprintf("tool-%d", i), "type": "webhook", "endpoint": hook.URL,
						"credentials": map[string]string{"secret": "bench-secret-0123456789"}, "settings": map[string]any{"batch_size": 100}})
				}
				ident := `{"batch":[{"type":"identify","userId":"dsr-user","messageId":"id-0","traits":{"email":"bench.person@example.org","plan":"pro"}}]}`
				if status, body := c.do(b, "POST", "/v1/batch", segmentAuth(), []byte(ident)); status != http.StatusOK {
					b.Fatalf("identify: %d %s", status, body)
				}
				sendEvents(b, c, "dsr", events, 1)
				waitFor(b, "processing", 10*time.Minute, func() bool { return metricSum(b, c, "custos_processor_events_total") >= events+1 })
				waitFor(b, "forwarding", 10*time.Minute, func() bool { return s.distinct() >= 5*(events+1) })

				run := func(id, typ string) (map[string]time.Time, opendsr.Status) {
					body := fmt.Sprintf(`{"regulation":"gdpr","subject_request_id":%q,"subject_request_type":%q,"submitted_time":%q,
						"subject_identities":[{"identity_type":"email","identity_value":"bench.person@example.org","identity_format":"raw"}]}`,
						id, typ, time.Now().UTC().Format(time.RFC3339))
					if status, resp := c.do(b, "POST", "/opendsr/v1/requests", adminAuth(), []byte(body)); status != http.StatusCreated {
						b.Fatalf("%s: %d %s", typ, status, resp)
					}
					var st opendsr.Status
					waitFor(b, typ+" completed", 10*time.Minute, func() bool {
						_, resp := c.do(b, "GET", "/opendsr/v1/requests/"+id, adminAuth(), nil)
						_ = json.Unmarshal(resp, &st)
						return st.RequestStatus == "completed"
					})
					_, resp := c.do(b, "GET", "/opendsr/v1/requests/"+id+"/proof", adminAuth(), nil)
					var proof struct {
						Steps []struct {
							Record struct {
								Step string    `json:"step"`
								At   time.Time `json:"at"`
							} `json:"record"`
						} `json:"audit_log"`
					}
					if err := json.Unmarshal(resp, &proof); err != nil {
						b.Fatalf("proof: %v %s", err, resp)
					}
					at := map[string]time.Time{}
					for _, s := range proof.Steps {
						if _, ok := at[s.Record.Step]; !ok {
							at[s.Record.Step] = s.Record.At
						}
					}
					return at, st
				}
				at, st := run("0a1b2c3d-0000-4000-8000-000000000001", "access")
				b.ReportMetric(float64(at["exported"].Sub(at["started"]).Milliseconds()), "export-ms")
				if st.ResultsCount != nil {
					b.ReportMetric(float64(*st.ResultsCount), "export-records")
				}
				u, _ := url.Parse(st.ResultsURL)
				_, zipped := c.do(b, "GET", u.Path, nil, nil)
				b.ReportMetric(float64(len(zipped))/1024, "export-KiB")
				at, _ = run("0a1b2c3d-0000-4000-8000-000000000002", "erasure")
				b.ReportMetric(float64(at["erased"].Sub(at["started"]).Milliseconds()), "erase-ms")
				b.ReportMetric(float64(at["completed"].Sub(at["started"]).Milliseconds()), "erase-complete-ms")
			}
		})
	}
}

var benchSettle = func() time.Duration {
	d, err := time.ParseDuration(os.Getenv("CUSTOS_BENCH_SETTLE"))
	if err != nil {
		return 2 * time.Second
	}
	return d
}()

var benchDeliveryTimeout = func() time.Duration {
	d, err := time.ParseDuration(os.Getenv("CUSTOS_BENCH_DELIVERY_TIMEOUT"))
	if err != nil {
		return 10 * time.Minute
	}
	return d
}()
