package dsr

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/opendsr"
)

// outcome is what a request did, kept (without personal data) on the
// request and in its proof.
type outcome struct {
	Profiles       int                       `json:"profiles"`
	Counts         *cdp.ErasureCounts        `json:"removed,omitempty"`
	IdentityHashes []string                  `json:"identity_hashes,omitempty"`
	Suppressed     int                       `json:"suppressed_identities,omitempty"`
	Destinations   map[string]*destOutcome   `json:"destinations,omitempty"`
	ResultsURL     string                    `json:"results_url,omitempty"`
	ResultsCount   int                       `json:"results_count,omitempty"`
	Files          map[string]string         `json:"files,omitempty"` // name -> sha256
	Errors         []string                  `json:"errors,omitempty"`
	Remote         map[string]*remoteRequest `json:"remote,omitempty"`
}

// destOutcome is how a destination took an erasure.
type destOutcome struct {
	Type   string   `json:"type"`
	Via    string   `json:"via"` // "notice", "opendsr", "none"
	Keys   []string `json:"delivery_keys,omitempty"`
	State  string   `json:"state"`
	Reason string   `json:"reason,omitempty"`
}

// remoteRequest is an OpenDSR request Custos sent as controller.
type remoteRequest struct {
	RequestID   string    `json:"request_id"`
	Attempts    int       `json:"attempts"`
	Certificate string    `json:"certificate,omitempty"`
	NextAt      time.Time `json:"next_at"`
	Body        []byte    `json:"body,omitempty"` // the request, with identities: dropped when final
}

func (s *Service) saveOutcome(ctx context.Context, d cdp.DSR, o *outcome) {
	raw, _ := json.Marshal(o)
	if err := s.store.SetOutcome(ctx, d.WorkspaceID, d.ID, raw); err != nil {
		s.log.Error("saving a request's progress failed", "request", d.ID, "err", err)
	}
}

// Run works on requests until ctx ends: it starts due requests, moves
// erasures along as destinations confirm, sends status callbacks, and
// watches deadlines.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.Poll)
	defer t.Stop()
	for {
		s.tick(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}

func (s *Service) tick(ctx context.Context) {
	due, err := s.store.ClaimDue(ctx, s.cfg.Now(), 10)
	if err != nil && ctx.Err() == nil {
		s.log.Warn("claiming data subject requests failed", "err", err)
	}
	for _, d := range due {
		s.notifyOrLog(ctx, d)
		s.step(ctx, d, "started", nil)
		if err := s.start(ctx, d); err != nil {
			s.log.Error("data subject request failed; it will be retried", "request", d.ID, "err", err)
		}
	}
	open, err := s.store.InProgress(ctx)
	if err != nil {
		return
	}
	for _, d := range open {
		if err := s.advance(ctx, d); err != nil && ctx.Err() == nil {
			s.log.Warn("advancing a data subject request failed", "request", d.ID, "err", err)
		}
	}
	s.sendCallbacks(ctx)
	s.watchDeadlines(ctx)
}

func (s *Service) notifyOrLog(ctx context.Context, d cdp.DSR) {
	if err := s.notify(ctx, d); err != nil {
		s.log.Error("queueing status callbacks failed", "request", d.ID, "err", err)
	}
}

// start does the part of a request that is Custos's own: the export, or the
// erasure of its own data with the notices to destinations.
func (s *Service) start(ctx context.Context, d cdp.DSR) error {
	live, err := s.store.Resolve(ctx, d.WorkspaceID, d.Identities)
	if err != nil {
		return err
	}
	o := &outcome{Profiles: len(live), IdentityHashes: identityHashes(d.Identities)}
	if d.Type != cdp.DSRErasure {
		return s.export(ctx, d, live, o)
	}
	return s.erase(ctx, d, live, o)
}

func (s *Service) export(ctx context.Context, d cdp.DSR, live []cdp.ProfileID, o *outcome) error {
	b, err := s.store.Collect(ctx, d.WorkspaceID, live)
	if err != nil {
		return err
	}
	zip, count, files, err := BuildExport(d, b, s.cfg.Now())
	if err != nil {
		return err
	}
	token := newToken()
	h := sha256.Sum256([]byte(token))
	o.ResultsURL, o.ResultsCount, o.Files = s.cfg.BaseURL+"/opendsr/v1/results/"+token, count, files
	raw, _ := json.Marshal(o)
	now := s.cfg.Now()
	if err := s.store.Complete(ctx, d.WorkspaceID, d.ID, now, raw, zip, h[:], now.Add(s.cfg.ResultsTTL), count); err != nil {
		return err
	}
	s.step(ctx, d, "exported", map[string]any{"records": count, "files": files, "expires": now.Add(s.cfg.ResultsTTL)})
	return s.finish(ctx, d)
}

func newToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// erase removes the person from Custos and tells every destination that
// received their data: a notice through its queue (webhook, raw,
// warehouse), an OpenDSR request when it speaks OpenDSR, nothing where
// neither is possible (recorded as not applicable, with the reason).
func (s *Service) erase(ctx context.Context, d cdp.DSR, live []cdp.ProfileID, o *outcome) error {
	recipients, err := s.store.Recipients(ctx, d.WorkspaceID, live)
	if err != nil {
		return err
	}
	ids, err := s.store.ErasureIdentities(ctx, d.WorkspaceID, live)
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	o.Destinations, o.Remote = map[string]*destOutcome{}, map[string]*remoteRequest{}
	for _, r := range recipients {
		dest, err := s.dests.Get(ctx, d.WorkspaceID, r.Destination)
		if cdp.IsKind(err, cdp.NotFound) {
			o.Destinations[string(r.Destination)] = &destOutcome{Via: "none", State: string(cdp.DSRDestNotApplicable), Reason: "destination deleted"}
			continue
		}
		if err != nil {
			return err
		}
		do := &destOutcome{Type: string(dest.Type)}
		o.Destinations[string(dest.ID)] = do
		switch {
		case dest.Settings.OpenDSRURL != "":
			body, err := s.controllerRequest(d, dest, ids)
			if err != nil {
				return err
			}
			do.Via, do.State = "opendsr", string(cdp.DSRDestPending)
			o.Remote[string(dest.ID)] = &remoteRequest{RequestID: d.ID, NextAt: now, Body: body}
		case dest.Type == cdp.DestinationWebhook || dest.Type == cdp.DestinationRaw || dest.Type == cdp.DestinationWarehouse:
			do.Via, do.State = "notice", string(cdp.DSRDestSent)
			for _, p := range live {
				key, err := s.notices.QueueErasure(ctx, dest, d.ID, p, cdp.Erasure{RequestID: d.ID, Regulation: d.Regulation, Identities: ids}, now)
				if err != nil {
					return err
				}
				do.Keys = append(do.Keys, key)
			}
		default:
			do.Via, do.State = "none", string(cdp.DSRDestNotApplicable)
			do.Reason = "the Segment tracking spec has no deletion call; give the destination an OpenDSR URL or erase there directly"
		}
		_ = s.store.SetDestination(ctx, d.WorkspaceID, d.ID, cdp.DSRDestination{Destination: dest.ID, State: cdp.DSRDestinationState(do.State), Reason: do.Reason, UpdatedAt: now})
	}
	counts, blinds, err := s.store.Erase(ctx, d.WorkspaceID, d.ID, live, now)
	if err != nil {
		return err
	}
	if err := s.erasures.Record(ctx, d.WorkspaceID, d.ID, blinds, now); err != nil {
		return fmt.Errorf("record erasure outside the database: %w", err)
	}
	o.Counts, o.Suppressed = &counts, len(blinds)
	s.saveOutcome(ctx, d, o)
	s.metrics.erased.Add(float64(counts.Profiles))
	s.step(ctx, d, "erased", map[string]any{"removed": counts, "suppressed_identities": len(blinds), "recipients": len(recipients)})
	s.wakeUp()
	return nil
}

// advance moves an erasure's destinations along and completes the request
// once every one is confirmed, failed or not applicable.
func (s *Service) advance(ctx context.Context, d cdp.DSR) error {
	if d.Type != cdp.DSRErasure {
		return nil // exports complete in start; one left here failed: retry
	}
	var o outcome
	if err := json.Unmarshal(d.Outcome, &o); err != nil || o.Counts == nil {
		// Custos's own part did not finish (a crash, a database error): do it again.
		return s.start(ctx, d)
	}
	now := s.cfg.Now()
	final := true
	for id, do := range o.Destinations {
		switch cdp.DSRDestinationState(do.State) {
		case cdp.DSRDestConfirmed, cdp.DSRDestFailed, cdp.DSRDestNotApplicable:
			continue
		}
		switch do.Via {
		case "notice":
			s.checkNotices(ctx, cdp.DestinationID(id), do)
		case "opendsr":
			s.driveRemote(ctx, d, cdp.DestinationID(id), do, o.Remote[id])
		}
		switch cdp.DSRDestinationState(do.State) {
		case cdp.DSRDestConfirmed, cdp.DSRDestFailed, cdp.DSRDestNotApplicable:
			s.step(ctx, d, "destination_"+do.State, map[string]any{"destination": id, "via": do.Via, "reason": do.Reason})
			if r := o.Remote[id]; r != nil {
				r.Body = nil
			}
		default:
			final = false
		}
		_ = s.store.SetDestination(ctx, d.WorkspaceID, d.ID, cdp.DSRDestination{Destination: cdp.DestinationID(id), State: cdp.DSRDestinationState(do.State), Reason: do.Reason, UpdatedAt: now})
	}
	if !final {
		s.saveOutcome(ctx, d, &o)
		return nil
	}
	raw, _ := json.Marshal(&o)
	if err := s.store.Complete(ctx, d.WorkspaceID, d.ID, now, raw, nil, nil, time.Time{}, 0); err != nil {
		return err
	}
	s.step(ctx, d, "completed", map[string]any{"destinations": o.Destinations})
	return s.finish(ctx, d)
}

func (s *Service) finish(ctx context.Context, d cdp.DSR) error {
	done, err := s.store.Get(ctx, d.WorkspaceID, d.ID)
	if err != nil {
		return err
	}
	s.metrics.completed.WithLabelValues(string(done.Type)).Inc()
	return s.notify(ctx, done)
}

// checkNotices reads how the queued notices went: all delivered is
// confirmed; any dead-lettered is failed, with the destination's reason.
func (s *Service) checkNotices(ctx context.Context, dest cdp.DestinationID, do *destOutcome) {
	delivered := 0
	for _, k := range do.Keys {
		rec, err := s.notices.DeliveryState(ctx, dest, k)
		if err != nil {
			return
		}
		switch rec.Status {
		case cdp.DeliveryDelivered:
			delivered++
		case cdp.DeliveryDeadLettered, cdp.DeliveryFiltered:
			do.State, do.Reason = string(cdp.DSRDestFailed), "notice not delivered: "+rec.Reason
			return
		}
	}
	if delivered == len(do.Keys) {
		do.State = string(cdp.DSRDestConfirmed)
	}
}

// sendCallbacks posts due status callbacks, signed, retrying with backoff
// until acknowledged (2xx) or out of attempts; every attempt is recorded.
func (s *Service) sendCallbacks(ctx context.Context) {
	due, err := s.store.DueCallbacks(ctx, s.cfg.Now(), 50)
	if err != nil {
		return
	}
	for _, cb := range due {
		attempt := cb.Attempts + 1
		status, errText := s.post(ctx, cb.URL, cb.Body)
		ok := status >= 200 && status < 300
		done := ok || attempt >= s.cfg.CallbackAttempts
		next := s.cfg.Now().Add(backoff(attempt))
		if err := s.store.CallbackAttempt(ctx, cb.ID, attempt, s.cfg.Now(), status, errText, done, next); err != nil {
			s.log.Warn("recording a callback attempt failed", "err", err)
		}
		if ok {
			s.metrics.callbacks.WithLabelValues("acknowledged").Inc()
		} else if done {
			s.metrics.callbacks.WithLabelValues("gave_up").Inc()
		} else {
			s.metrics.callbacks.WithLabelValues("retried").Inc()
		}
	}
}

// backoff is exponential with jitter, from 2s to an hour.
func backoff(attempt int) time.Duration {
	d := 2 * time.Second << min(attempt-1, 11)
	d = min(d, time.Hour)
	return d/2 + time.Duration(mrand.Int64N(int64(d/2)+1))
}

// post sends a signed JSON body and returns the status (0 when there was no
// answer) and a safe error text.
func (s *Service) post(ctx context.Context, url string, body []byte) (int, string) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, "invalid callback URL"
	}
	req.Header.Set("Content-Type", "application/json")
	s.signer.SetHeaders(req.Header, body)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, "no answer: " + errClass(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 300 {
		return resp.StatusCode, "answered " + resp.Status
	}
	return resp.StatusCode, ""
}

func errClass(err error) string {
	type timeout interface{ Timeout() bool }
	if t, ok := err.(timeout); ok && t.Timeout() {
		return "timeout"
	}
	if bytes.Contains([]byte(err.Error()), []byte("blocked")) {
		return "address not allowed"
	}
	return "connection failed"
}

// watchDeadlines publishes how many open requests are on track, due soon
// or overdue.
func (s *Service) watchDeadlines(ctx context.Context) {
	open, err := s.store.Open(ctx)
	if err != nil {
		return
	}
	counts := map[string]int{"on_track": 0, "due_soon": 0, "overdue": 0}
	now := s.cfg.Now()
	for _, d := range open {
		counts[deadlinesOf(d).Urgency(now)]++
	}
	for k, n := range counts {
		s.metrics.open.WithLabelValues(k).Set(float64(n))
	}
}

var _ = opendsr.APIVersion
