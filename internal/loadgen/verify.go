package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

const (
	verifyPageSize = 1000
	// verifyMargin is how far before the run's start a pass keeps paging,
	// for clock skew between this machine and the server beyond what the
	// Date header shows.
	verifyMargin = time.Minute
	// verifyMaxInterval bounds the wait between two passes.
	verifyMaxInterval = time.Second
)

// verifier pages through GET /api/v1/events, newest first, looking for the
// message ids of one run.
type verifier struct {
	client  *http.Client
	url     string
	auth    string
	runID   string
	start   time.Time
	timeout time.Duration
	out     io.Writer

	cutoff time.Time // received_at below which a pass stops; set by the first page
	counts [][]uint8 // per worker and seq: copies seen in the current pass
}

type verification struct {
	verified, duplicates int64
	seconds              float64
	// notBefore is when the pass before the one that found every event
	// began, less the last acknowledgement (0 when the first pass did):
	// that pass missed an event, so the last event was stored after it.
	notBefore float64
}

// verify repeats passes from the newest event until one finds every
// acknowledged event of the workers' ledgers or the timeout passes. The
// result is that of the last complete pass: stored events do not go away,
// so it is the most complete. Duplicates count every copy beyond the
// first of any message id of this run, acknowledged or not.
func (v *verifier) verify(ctx context.Context, workers []*worker, acked int64, lastAck time.Time) (verification, error) {
	began := time.Now()
	vctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	v.counts = make([][]uint8, len(workers))
	for i, w := range workers {
		v.counts[i] = make([]uint8, len(w.ledger))
	}
	var res verification
	complete := false
	interval := 50 * time.Millisecond
	var prevStart time.Time
	for pass := 1; ; pass++ {
		passStart := time.Now()
		pages, err := v.pass(vctx)
		if err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			if errors.Is(err, context.DeadlineExceeded) && vctx.Err() != nil {
				break
			}
			return res, err
		}
		complete = true
		res = v.tally(workers)
		if res.verified == acked {
			res.seconds = max(passStart.Sub(lastAck), 0).Seconds()
			if !prevStart.IsZero() {
				res.notBefore = max(prevStart.Sub(lastAck), 0).Seconds()
			}
			fmt.Fprintf(v.out, "pass %d (%d pages): all %d acknowledged events stored, %d duplicates\n", pass, pages, acked, res.duplicates)
			return res, nil
		}
		fmt.Fprintf(v.out, "pass %d (%d pages): %d of %d acknowledged events stored so far\n", pass, pages, res.verified, acked)
		prevStart = passStart
		t := time.NewTimer(interval)
		select {
		case <-t.C:
		case <-vctx.Done():
			t.Stop()
		}
		if vctx.Err() != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			break
		}
		interval = min(2*interval, verifyMaxInterval)
	}
	if !complete {
		return res, fmt.Errorf("verification: no complete pass through the events API in %s", v.timeout)
	}
	res.seconds = time.Since(began).Seconds()
	return res, nil
}

// tally counts the acknowledged events seen and the extra copies.
func (v *verifier) tally(workers []*worker) verification {
	var res verification
	for i, w := range workers {
		for seq, c := range v.counts[i] {
			if c > 0 && w.ledger[seq] == ledgerAcked {
				res.verified++
			}
			if c > 1 {
				res.duplicates += int64(c - 1)
			}
		}
	}
	return res
}

// pass pages from the newest event down to the run's start (less the
// margin) or the oldest event, counting this run's message ids. Cursors
// point below a position, so events stored during the pass do not shift
// its pages; the next pass sees them.
func (v *verifier) pass(ctx context.Context) (pages int, err error) {
	for _, c := range v.counts {
		clear(c)
	}
	cursor := ""
	for {
		page, err := v.page(ctx, cursor)
		if err != nil {
			return pages, err
		}
		pages++
		for _, e := range page.Events {
			w, seq, ok := parseMessageID(e.MessageID, v.runID)
			if ok && w >= 0 && w < len(v.counts) && seq < uint64(len(v.counts[w])) && v.counts[w][seq] < 255 {
				v.counts[w][seq]++
			}
		}
		if page.NextCursor == "" || len(page.Events) == 0 || page.Events[len(page.Events)-1].ReceivedAt.Before(v.cutoff) {
			return pages, nil
		}
		cursor = page.NextCursor
	}
}

type eventsPage struct {
	Events []struct {
		MessageID  string    `json:"message_id"`
		ReceivedAt time.Time `json:"received_at"`
	} `json:"events"`
	NextCursor string `json:"next_cursor"`
}

// page fetches one page, retrying an overloaded server until ctx ends.
func (v *verifier) page(ctx context.Context, cursor string) (eventsPage, error) {
	q := url.Values{"limit": {fmt.Sprint(verifyPageSize)}}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	u := v.url + "?" + q.Encode()
	for attempt := 1; ; attempt++ {
		page, retryAfter, err := v.get(ctx, u)
		if err == nil {
			return page, nil
		}
		var se statusError
		if ctx.Err() != nil || (errors.As(err, &se) && !retryable(se.status)) {
			return page, err
		}
		t := time.NewTimer(retryDelay(retryAfter, min(attempt, 5), time.Now()))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return page, ctx.Err()
		}
	}
}

type statusError struct {
	status int
	body   string
}

func (e statusError) Error() string {
	return fmt.Sprintf("events API answered %d: %s", e.status, e.body)
}

func (v *verifier) get(ctx context.Context, u string) (eventsPage, string, error) {
	var page eventsPage
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return page, "", err
	}
	req.Header.Set("Authorization", v.auth)
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return page, "", fmt.Errorf("events API: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return page, resp.Header.Get("Retry-After"), statusError{resp.StatusCode, snippet(b)}
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&page); err != nil {
		return page, "", fmt.Errorf("events API: decode page: %w", err)
	}
	if v.cutoff.IsZero() {
		// Compare received_at on the server's clock: the Date header
		// tells how far it is from ours (to the second).
		var skew time.Duration
		if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
			skew = d.Sub(time.Now())
		}
		v.cutoff = v.start.Add(skew).Add(-verifyMargin)
	}
	return page, "", nil
}
