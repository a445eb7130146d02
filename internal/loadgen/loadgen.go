// Package loadgen sends realistic tracking traffic to a running Custos
// server, measures acknowledged events per second and request latency, and
// then checks through the admin API that every acknowledged event was
// stored once: nothing acknowledged lost, nothing stored twice.
//
// It is a closed-loop generator: each of Concurrency workers sends its next
// request when the previous one is answered, as SDK flush loops do. Its
// numbers are what BENCHMARKS.md records, so it is built to stay out of the
// server's way (bodies appended into reused buffers, no lock per request,
// fixed-size latency histograms) and to count only what the server
// acknowledged.
package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for zero Config fields.
const (
	DefaultConcurrency   = 64
	DefaultUsers         = 300
	DefaultWarmup        = 2 * time.Second
	DefaultVerifyTimeout = 2 * time.Minute
)

// requestTimeout bounds one HTTP attempt.
const requestTimeout = 30 * time.Second

// drainGrace is how long requests in flight when sending ends may still
// finish before they are cancelled.
const drainGrace = 10 * time.Second

// Config says what traffic to send and where. Zero fields take the
// defaults noted.
type Config struct {
	URL         string // base URL of the server, e.g. http://127.0.0.1:8080
	WriteKey    string
	WriteSecret string // the mParticle format's secret
	AdminToken  string // bearer token for verification; empty skips verification
	Format      string // FormatSegment (default) or FormatMParticle
	// BatchSize is events per request: 1 (default) sends /v1/track or a
	// one-event /v2/events; more sends /v1/batch or /v2/events with that
	// many events.
	BatchSize   int
	Concurrency int // workers, each with its own keep-alive connection (default 64)
	// Duration is the measured window. Sending lasts Warmup + Duration;
	// zero means no time bound (then Requests must be set).
	Duration time.Duration
	// Requests stops sending after this many requests (a retry belongs to
	// its request and does not count again); zero means no count bound.
	Requests int
	Users    int           // distinct users the events spread over, uniformly (default 300)
	Warmup   time.Duration // sent but left out of the numbers (default 2s; negative means none)
	// VerifyTimeout bounds the wait for every acknowledged event to be
	// stored (default 2m).
	VerifyTimeout time.Duration
	Gzip          bool      // send gzip-compressed bodies
	Out           io.Writer // progress lines; nil discards them
	// Rate paces sending to this many requests per second in all (spread
	// evenly over the workers); zero sends as fast as answers come.
	Rate float64
}

// Report is what a run did. The rates, latencies and errors cover the
// measured window only (an attempt belongs to it when its answer arrives
// in it); Acked and the verification cover the whole run.
type Report struct {
	Format      string
	Concurrency int
	BatchSize   int

	Duration       time.Duration // measured window
	Requests       int64         // requests acknowledged in the window
	Events         int64         // events acknowledged in the window
	RequestsPerSec float64
	EventsPerSec   float64
	// Latency of one HTTP attempt, over the acknowledged ones in the window.
	P50, P90, P99, Max time.Duration
	// Errors counts failed attempts in the window by status code ("503")
	// or class ("timeout", "refused", "reset", "transport", "canceled"),
	// and "rejected" counts messages refused inside an acknowledged request.
	Errors map[string]int64

	Acked int64 // acknowledged events in the whole run, warm-up included

	// VerifySkipped says nothing was checked: there was no admin token, or
	// the run ended with an error before verification finished.
	VerifySkipped bool
	Verified      int64 // acknowledged events found stored
	Missing       int64 // acknowledged events never found stored
	Duplicates    int64 // extra stored copies of this run's message ids
	// VerifySeconds is the time from the last acknowledgement until the
	// pass through the events API that found every acknowledged event
	// began, and VerifyAfterSeconds until the pass before it (which missed
	// one) began, or 0: the last event was stored between the two. A pass
	// pages through every event of the run, so on long runs the bracket is
	// seconds wide; the server's histogram (Visible*) is the precise
	// measure. When some were never found VerifySeconds is the time spent
	// looking.
	VerifySeconds      float64
	VerifyAfterSeconds float64

	// From the server's /metrics, over this run: the delay from the
	// gateway receiving an event to its being stored and visible in its
	// profile (estimated from histogram buckets), how many events that
	// covers, and the server's resident memory at the end.
	VisibleP50, VisibleP99 time.Duration
	VisibleSamples         float64
	ServerRSSBytes         float64
}

// run is the state shared by the workers of one Run; it is read-only
// while they work, apart from the atomics and the failure.
type run struct {
	cfg      Config
	client   *http.Client
	endpoint string
	auth     []string // Authorization header value
	runID    string
	seed     uint64

	start        time.Time
	measureStart time.Time
	sendEnd      time.Time // zero: no time bound

	issued   atomic.Int64 // requests started, for the Requests bound
	stopOnce sync.Once
	failure  error
	stop     context.CancelCauseFunc
}

// Run sends the configured traffic, then verifies it when an admin token
// is set. It returns an error, with the report so far, when the
// configuration is invalid, the server refuses a request outright (a 4xx
// other than 408 and 429: wrong key, payload refused), nothing at all is
// acknowledged, the events API cannot be read, or ctx ends. Missing or
// duplicate events are reported in the Report, not as an error.
func Run(ctx context.Context, cfg Config) (Report, error) {
	cfg, err := withDefaults(cfg)
	if err != nil {
		return Report{}, err
	}
	rep := Report{Format: cfg.Format, Concurrency: cfg.Concurrency, BatchSize: cfg.BatchSize, Errors: map[string]int64{}, VerifySkipped: true}
	runID, seed, err := newRunID()
	if err != nil {
		return rep, err
	}
	if err := checkSize(cfg.Format, runID, cfg.Concurrency, cfg.Users, cfg.BatchSize); err != nil {
		return rep, err
	}
	r := newRun(cfg, runID, seed)
	defer r.client.CloseIdleConnections()

	statsBefore := scrapeStats(ctx, r.client, cfg.URL)
	workers, windowEnd := r.send(ctx)
	lastAck := r.summarise(&rep, workers, windowEnd)

	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	if r.failure != nil {
		return rep, r.failure
	}
	if rep.Acked == 0 {
		return rep, noAckError(workers)
	}
	if cfg.AdminToken == "" {
		return rep, nil
	}
	fmt.Fprintf(cfg.Out, "verifying %d acknowledged events through the events API\n", rep.Acked)
	v := verifier{
		client: r.client, url: strings.TrimSuffix(cfg.URL, "/") + "/api/v1/events",
		auth: "Bearer " + cfg.AdminToken, runID: runID, start: r.start,
		timeout: cfg.VerifyTimeout, out: cfg.Out,
	}
	res, err := v.verify(ctx, workers, rep.Acked, lastAck)
	if err != nil {
		return rep, err
	}
	rep.VerifySkipped = false
	rep.Verified, rep.Missing, rep.Duplicates = res.verified, rep.Acked-res.verified, res.duplicates
	rep.VerifySeconds, rep.VerifyAfterSeconds = res.seconds, res.notBefore
	statsAfter := scrapeStats(ctx, r.client, cfg.URL)
	rep.VisibleP50, rep.VisibleSamples = visibleQuantile(statsBefore, statsAfter, 0.5)
	rep.VisibleP99, _ = visibleQuantile(statsBefore, statsAfter, 0.99)
	rep.ServerRSSBytes = statsAfter.rss
	return rep, nil
}

func withDefaults(c Config) (Config, error) {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c, fmt.Errorf("server URL %q is not an http:// or https:// URL", c.URL)
	}
	if c.Format == "" {
		c.Format = FormatSegment
	}
	if c.Format != FormatSegment && c.Format != FormatMParticle {
		return c, fmt.Errorf("format %q is neither %q nor %q", c.Format, FormatSegment, FormatMParticle)
	}
	if c.WriteKey == "" {
		return c, errors.New("a write key is required")
	}
	if c.Format == FormatMParticle && c.WriteSecret == "" {
		return c, errors.New("the mparticle format needs the write secret")
	}
	if c.BatchSize == 0 {
		c.BatchSize = 1
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Users == 0 {
		c.Users = DefaultUsers
	}
	if c.VerifyTimeout == 0 {
		c.VerifyTimeout = DefaultVerifyTimeout
	}
	switch {
	case c.Warmup == 0:
		c.Warmup = DefaultWarmup
	case c.Warmup < 0:
		c.Warmup = 0
	}
	switch {
	case c.BatchSize < 0 || c.Concurrency < 0 || c.Users < 0 || c.Requests < 0 || c.Duration < 0 || c.VerifyTimeout < 0:
		return c, errors.New("batch size, concurrency, users, requests, duration and verify timeout must not be negative")
	case c.Concurrency > 10_000:
		return c, errors.New("concurrency is over 10000")
	case c.Duration == 0 && c.Requests == 0:
		return c, errors.New("set a duration or a number of requests, or both")
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	return c, nil
}

func newRunID() (string, uint64, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", 0, fmt.Errorf("run id: %w", err)
	}
	return "lg" + hex.EncodeToString(b[:6]), binary.LittleEndian.Uint64(b[:]), nil
}

func newRun(cfg Config, runID string, seed uint64) *run {
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		MaxIdleConns:        cfg.Concurrency + 4,
		MaxIdleConnsPerHost: cfg.Concurrency + 4, // + the verifier's
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	r := &run{
		cfg: cfg,
		client: &http.Client{
			Transport: tr,
			Timeout:   requestTimeout,
			// A redirect is a misconfigured URL: report it, do not follow.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		runID: runID,
		seed:  seed,
	}
	base := strings.TrimSuffix(cfg.URL, "/")
	switch {
	case cfg.Format == FormatMParticle:
		r.endpoint = base + "/v2/events"
		r.auth = []string{basicAuth(cfg.WriteKey, cfg.WriteSecret)}
	case cfg.BatchSize == 1:
		r.endpoint = base + "/v1/track"
		r.auth = []string{basicAuth(cfg.WriteKey, "")}
	default:
		r.endpoint = base + "/v1/batch"
		r.auth = []string{basicAuth(cfg.WriteKey, "")}
	}
	return r
}

func basicAuth(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// fail stops sending because of err; the first failure wins.
func (r *run) fail(err error) {
	r.stopOnce.Do(func() {
		r.failure = err
		r.stop(err)
	})
}

var errDrainTimeout = errors.New("requests still in flight after sending ended")

// send runs the workers until the duration or the request count is spent,
// ctx ends, or the server refuses a request outright. It returns the
// workers for their tallies, and the end of the measured window.
func (r *run) send(ctx context.Context) ([]*worker, time.Time) {
	cfg := r.cfg
	sendCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	r.stop = stop

	r.start = time.Now()
	r.measureStart = r.start.Add(cfg.Warmup)
	if cfg.Duration > 0 {
		r.sendEnd = r.measureStart.Add(cfg.Duration)
		drain := time.AfterFunc(time.Until(r.sendEnd)+drainGrace, func() { stop(errDrainTimeout) })
		defer drain.Stop()
	}
	bound := "until ctx ends"
	switch {
	case cfg.Duration > 0 && cfg.Requests > 0:
		bound = fmt.Sprintf("for %s or %d requests", cfg.Duration, cfg.Requests)
	case cfg.Duration > 0:
		bound = "for " + cfg.Duration.String()
	case cfg.Requests > 0:
		bound = fmt.Sprintf("for %d requests", cfg.Requests)
	}
	fmt.Fprintf(cfg.Out, "sending %s, %d events per request, %d workers, to %s %s after %s warm-up (run %s)\n",
		cfg.Format, cfg.BatchSize, cfg.Concurrency, r.endpoint, bound, cfg.Warmup, r.runID)

	workers := make([]*worker, cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range workers {
		workers[i] = newWorker(r, i)
		wg.Go(func() { workers[i].loop(sendCtx) })
	}
	done := make(chan struct{})
	var progress sync.WaitGroup
	progress.Go(func() { r.progress(workers, done) })
	wg.Wait()
	close(done)
	progress.Wait()

	end := time.Now()
	if !r.sendEnd.IsZero() && r.sendEnd.Before(end) {
		end = r.sendEnd
	}
	return workers, end
}

// progress prints a line a second until done is closed.
func (r *run) progress(workers []*worker, done <-chan struct{}) {
	if r.cfg.Out == io.Discard {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var prev int64
	last := r.start
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			var acked, failed int64
			for _, w := range workers {
				acked += w.acked.Load()
				failed += w.failed.Load()
			}
			phase := ""
			if now.Before(r.measureStart) {
				phase = " (warm-up)"
			}
			rate := float64(acked-prev) / now.Sub(last).Seconds()
			fmt.Fprintf(r.cfg.Out, "%6.1fs  %10d events acked  %9.0f events/s  %6d failed attempts%s\n",
				now.Sub(r.start).Seconds(), acked, rate, failed, phase)
			prev, last = acked, now
		}
	}
}

// summarise merges the workers' tallies into rep and returns the time of
// the last acknowledgement.
func (r *run) summarise(rep *Report, workers []*worker, windowEnd time.Time) time.Time {
	var hist histogram
	var lastAck time.Time
	for _, w := range workers {
		rep.Requests += w.requests
		rep.Events += w.events
		rep.Acked += w.acked.Load()
		for k, v := range w.errors {
			rep.Errors[k] += v
		}
		hist.merge(&w.hist)
		if w.lastAck.After(lastAck) {
			lastAck = w.lastAck
		}
	}
	if windowEnd.After(r.measureStart) {
		rep.Duration = windowEnd.Sub(r.measureStart)
		secs := rep.Duration.Seconds()
		rep.RequestsPerSec = float64(rep.Requests) / secs
		rep.EventsPerSec = float64(rep.Events) / secs
	}
	rep.P50, rep.P90, rep.P99, rep.Max = hist.percentile(50), hist.percentile(90), hist.percentile(99), hist.max
	return lastAck
}

func noAckError(workers []*worker) error {
	var attempts int64
	last := ""
	for _, w := range workers {
		attempts += w.attempts
		if w.lastErr != "" {
			last = w.lastErr
		}
	}
	if last == "" {
		return fmt.Errorf("no request was acknowledged in %d attempts", attempts)
	}
	return fmt.Errorf("no request was acknowledged in %d attempts; last failure: %s", attempts, last)
}
