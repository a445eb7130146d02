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
	"sync"
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

	buf      []byte        // the current body, uncompressed
	zbuf     *bytes.Buffer // the current body, compressed
	zw       *gzip.Writer
	resp     bytes.Buffer
	inflight []*sentBody // bodies the transport may still be reading

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
		w.zbuf = new(bytes.Buffer)
		// The generator shares the machine with the server: cheap compression.
		w.zw, _ = gzip.NewWriterLevel(w.zbuf, gzip.BestSpeed)
	}
	return w
}

func (w *worker) loop(ctx context.Context) {
	n := w.r.cfg.BatchSize
	for w.mayStart(ctx) {
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

// prepare builds the body of a new request, reusing the buffers once the
// transport is done with the previous body.
func (w *worker) prepare(first uint64, n int) []byte {
	w.settle()
	w.buf = w.gen.build(w.buf[:0], first, n, time.Now())
	if w.zw == nil {
		return w.buf
	}
	w.zbuf.Reset()
	w.zw.Reset(w.zbuf)
	// Writes into a bytes.Buffer cannot fail.
	_, _ = w.zw.Write(w.buf)
	_ = w.zw.Close()
	return w.zbuf.Bytes()
}

// settle waits until the transport has closed every body sent from the
// current buffers. It may still be writing one when an answer arrives
// early; one that is still open after a second keeps the old buffers, and
// the worker takes new ones.
func (w *worker) settle() {
	for _, b := range w.inflight {
		select {
		case <-b.done:
			continue
		default:
		}
		t := time.NewTimer(time.Second)
		select {
		case <-b.done:
			t.Stop()
			continue
		case <-t.C:
		}
		w.buf = nil
		if w.zbuf != nil {
			w.zbuf = new(bytes.Buffer)
		}
		break
	}
	clear(w.inflight)
	w.inflight = w.inflight[:0]
}

// sentBody is a request body that tells when the transport closed it.
type sentBody struct {
	bytes.Reader
	once sync.Once
	done chan struct{}
}

func (b *sentBody) Close() error {
	b.once.Do(func() { close(b.done) })
	return nil
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
	sb := &sentBody{done: make(chan struct{})}
	sb.Reset(body)
	w.inflight = append(w.inflight, sb)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.r.endpoint, sb)
	if err != nil {
		sb.Close()
		return 0, "", err
	}
	// A body type net/http does not know: set the length, and there is no
	// GetBody, so the transport never replays it on its own.
	req.ContentLength = int64(len(body))
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
// inside its 200 answer. A rejection that names no message of this
// request makes the whole request count as rejected.
func (w *worker) acknowledge(first uint64, n int) (acked, rejected int) {
	var rejectedSeqs []uint64
	if w.r.cfg.Format == FormatSegment && bytes.Contains(w.resp.Bytes(), []byte(`"rejected"`)) {
		seqs, ok := w.rejections(first, n)
		if !ok {
			return 0, n
		}
		rejectedSeqs = seqs
	}
	for i := range n {
		w.ledger[first+uint64(i)] = ledgerAcked
	}
	for _, s := range rejectedSeqs {
		if w.ledger[s] == ledgerAcked {
			w.ledger[s] = ledgerSent
			rejected++
		}
	}
	return n - rejected, rejected
}

// rejections reads the "rejected" list of a Segment answer. Each entry
// names a message by id ("messageId" or "message_id", or the bare id) or
// by its "index" in the request.
func (w *worker) rejections(first uint64, n int) ([]uint64, bool) {
	var ans struct {
		Rejected []json.RawMessage `json:"rejected"`
	}
	if err := json.Unmarshal(w.resp.Bytes(), &ans); err != nil {
		return nil, false
	}
	seqs := make([]uint64, 0, len(ans.Rejected))
	for _, raw := range ans.Rejected {
		var entry struct {
			MessageID  string `json:"messageId"`
			MessageID2 string `json:"message_id"`
			Index      *int   `json:"index"`
		}
		var id string
		switch {
		case json.Unmarshal(raw, &id) == nil:
		case json.Unmarshal(raw, &entry) == nil:
			id = entry.MessageID + entry.MessageID2
			if id == "" && entry.Index != nil && *entry.Index >= 0 && *entry.Index < n {
				seqs = append(seqs, first+uint64(*entry.Index))
				continue
			}
		default:
			return nil, false
		}
		wk, seq, ok := parseMessageID(id, w.r.runID)
		if !ok || wk != w.id || seq < first || seq >= first+uint64(n) {
			return nil, false
		}
		seqs = append(seqs, seq)
	}
	return seqs, true
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
