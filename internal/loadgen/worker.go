package loadgen

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// maxAttempts bounds the sends of one body: the first and two retries.
	maxAttempts = 3
	// maxRetryWait bounds the wait a Retry-After header can ask for.
	maxRetryWait = time.Second
	// maxResponseBytes bounds how much of an answer is read.
	maxResponseBytes = 1 << 20
)

// Ledger values: one byte per message sent by a worker, indexed by seq.
const (
	ledgerSent  = 0
	ledgerAcked = 1
)

// worker is one closed-loop sender with its own buffers and tallies; only
// the two atomics are read by another goroutine while it runs.
type worker struct {
	r      *run
	id     int
	gen    *generator
	header http.Header

	bodyCap int    // capacity for the next body sent
	raw     []byte // uncompressed body, with Gzip
	zw      *gzip.Writer
	resp    bytes.Buffer

	seq    uint64
	ledger []byte // per seq: ledgerSent or ledgerAcked

	// In the measured window.
	requests, events int64
	errors           map[string]int64
	hist             histogram

	// The whole run.
	acked    atomic.Int64 // events
	failed   atomic.Int64 // attempts
	attempts int64
	lastAck  time.Time
	lastErr  string
}

func newWorker(r *run, id int) *worker {
	w := &worker{
		r: r, id: id,
		gen:    newGenerator(r.cfg.Format, r.runID, r.seed, id, r.cfg.Users),
		errors: map[string]int64{},
		header: http.Header{
			"Authorization": r.auth,
			"Content-Type":  {"application/json"},
			"User-Agent":    {"custos-bench"},
		},
	}
	if r.cfg.Gzip {
		w.header["Content-Encoding"] = []string{"gzip"}
		// The generator shares the machine with the server: cheap compression.
		w.zw, _ = gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
	}
	return w
}

func (w *worker) loop(ctx context.Context) {
	n := w.r.cfg.BatchSize
	var (
		next     time.Time
		interval time.Duration
	)
	if rate := w.r.cfg.Rate; rate > 0 {
		// Each worker sends every Concurrency/Rate seconds, the workers
		// offset from each other, so the total is Rate.
		interval = time.Duration(float64(w.r.cfg.Concurrency) / rate * float64(time.Second))
		next = time.Now().Add(time.Duration(w.id) * interval / time.Duration(max(w.r.cfg.Concurrency, 1)))
	}
	for w.mayStart(ctx) {
		if interval > 0 {
			if d := time.Until(next); d > 0 && !w.pause(ctx, d) {
				return
			}
			next = next.Add(interval)
		}
		first := w.seq
		w.seq += uint64(n)
		for range n {
			w.ledger = append(w.ledger, ledgerSent)
		}
		w.deliver(ctx, w.prepare(first, n), first, n)
	}
}

func (w *worker) mayStart(ctx context.Context) bool {
	r := w.r
	switch {
	case ctx.Err() != nil:
		return false
	case !r.sendEnd.IsZero() && !time.Now().Before(r.sendEnd):
		return false
	case r.cfg.Requests > 0 && r.issued.Add(1) > int64(r.cfg.Requests):
		return false
	}
	return true
}

// prepare builds the body of a new request. Each body sent gets its own
// buffer, sized from the last one: the transport may still be writing a
// body when the answer arrives, and net/http writes headers and body in
// one syscall only for a plain *bytes.Reader, which cannot tell when it is
// done. The uncompressed body of a gzip request is never sent, so its
// buffer is reused.
func (w *worker) prepare(first uint64, n int) []byte {
	if w.zw == nil {
		body := w.gen.build(make([]byte, 0, w.bodyCap), first, n, time.Now())
		w.bodyCap = len(body) + len(body)/8
		return body
	}
	w.raw = w.gen.build(w.raw[:0], first, n, time.Now())
	z := bytes.NewBuffer(make([]byte, 0, w.bodyCap))
	w.zw.Reset(z)
	// Writes into a bytes.Buffer cannot fail.
	_, _ = w.zw.Write(w.raw)
	_ = w.zw.Close()
	w.bodyCap = z.Len() + z.Len()/8
	return z.Bytes()
}

// deliver sends one body until it is acknowledged, refused, or out of
// attempts. Retries resend the same bytes, so the same message ids, as
// SDKs do.
func (w *worker) deliver(ctx context.Context, body []byte, first uint64, n int) {
	r := w.r
	for attempt := 1; ; attempt++ {
		start := time.Now()
		status, retryAfter, err := w.attempt(ctx, body)
		end := time.Now()
		w.attempts++
		inWindow := !end.Before(r.measureStart) && (r.sendEnd.IsZero() || !end.After(r.sendEnd))
		if err == nil && status >= 200 && status < 300 {
			acked, rejected := w.acknowledge(first, n)
			w.acked.Add(int64(acked))
			w.lastAck = end
			if inWindow {
				w.requests++
				w.events += int64(acked)
				w.hist.record(end.Sub(start))
				if rejected > 0 {
					w.errors["rejected"] += int64(rejected)
				}
			}
			return
		}
		if err != nil && ctx.Err() != nil {
			return // stopping: not the server's failure
		}
		class := strconv.Itoa(status)
		if err != nil {
			class = errorClass(err)
			w.lastErr = err.Error()
		} else {
			w.lastErr = "HTTP " + class
		}
		w.failed.Add(1)
		if inWindow {
			w.errors[class]++
		}
		if err == nil && !retryable(status) {
			r.fail(fmt.Errorf("the server refused POST %s with %d: %s", r.endpoint, status, snippet(w.resp.Bytes())))
			return
		}
		if attempt == maxAttempts || !w.pause(ctx, retryDelay(retryAfter, attempt, time.Now())) {
			return
		}
	}
}

// attempt sends body once and reads the whole answer into w.resp.
func (w *worker) attempt(ctx context.Context, body []byte) (status int, retryAfter string, err error) {
	// A POST without an Idempotency-Key is not replayed by the transport
	// once anything of it was written: retries are this worker's, counted.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.r.endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header = w.header
	resp, err := w.r.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	w.resp.Reset()
	if _, err := w.resp.ReadFrom(io.LimitReader(resp.Body, maxResponseBytes)); err != nil {
		// The answer was cut off: not an acknowledgement.
		return 0, "", err
	}
	return resp.StatusCode, resp.Header.Get("Retry-After"), nil
}

// acknowledge marks the messages of an acknowledged request in the ledger
// and returns how many were acknowledged and how many the server rejected
// inside its 2xx answer. A rejection list that cannot be read makes the
// whole request count as rejected.
func (w *worker) acknowledge(first uint64, n int) (acked, rejected int) {
	var rejectedAt []int
	if bytes.Contains(w.resp.Bytes(), []byte(`"rejected"`)) {
		at, ok := rejections(w.resp.Bytes(), n)
		if !ok {
			return 0, n
		}
		rejectedAt = at
	}
	for i := range n {
		w.ledger[first+uint64(i)] = ledgerAcked
	}
	for _, i := range rejectedAt {
		if w.ledger[first+uint64(i)] == ledgerAcked {
			w.ledger[first+uint64(i)] = ledgerSent
			rejected++
		}
	}
	return n - rejected, rejected
}

// rejections reads the "rejected" list of an answer: each entry names a
// message by its index in the request's batch (for mParticle, in the
// batch's events).
func rejections(answer []byte, n int) ([]int, bool) {
	var ans struct {
		Rejected []struct {
			Index *int `json:"index"`
		} `json:"rejected"`
	}
	if err := json.Unmarshal(answer, &ans); err != nil {
		return nil, false
	}
	at := make([]int, 0, len(ans.Rejected))
	for _, r := range ans.Rejected {
		if r.Index == nil || *r.Index < 0 || *r.Index >= n {
			return nil, false
		}
		at = append(at, *r.Index)
	}
	return at, true
}

// pause waits d before a retry. It answers false when ctx ends or the
// retry would start after sending has ended.
func (w *worker) pause(ctx context.Context, d time.Duration) bool {
	if end := w.r.sendEnd; !end.IsZero() && time.Now().Add(d).After(end) {
		return false
	}
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// retryable reports whether an SDK retries after this status.
func retryable(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
}

// retryDelay is the wait before attempt+1: the Retry-After the server
// asked for, up to maxRetryWait, or else an exponential back-off from 50ms.
func retryDelay(retryAfter string, attempt int, now time.Time) time.Duration {
	if d, ok := parseRetryAfter(retryAfter, now); ok {
		return min(d, maxRetryWait)
	}
	return min(50*time.Millisecond<<(attempt-1), maxRetryWait)
}

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP date.
func parseRetryAfter(s string, now time.Time) (time.Duration, bool) {
	if s == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(min(n, 1<<20)) * time.Second, true
	}
	t, err := http.ParseTime(s)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// errorClass names a transport failure for the report.
func errorClass(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "reset"
	}
	return "transport"
}

// snippet is the start of an answer, for an error message.
func snippet(b []byte) string {
	const max = 200
	b = bytes.TrimSpace(b)
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}
