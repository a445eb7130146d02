package dsr

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/opendsr"
)

// Store is where requests and the data they are about live.
type Store interface {
	Create(ctx context.Context, d cdp.DSR) (cdp.DSR, bool, error)
	Get(ctx context.Context, ws cdp.WorkspaceID, id string) (cdp.DSR, error)
	List(ctx context.Context, ws cdp.WorkspaceID, status cdp.DSRStatus, limit int) ([]cdp.DSR, error)
	Open(ctx context.Context) ([]cdp.DSR, error)
	Cancel(ctx context.Context, ws cdp.WorkspaceID, id string, at time.Time) error
	ClaimDue(ctx context.Context, now time.Time, limit int) ([]cdp.DSR, error)
	InProgress(ctx context.Context) ([]cdp.DSR, error)
	SetDeadlines(ctx context.Context, ws cdp.WorkspaceID, id string, deadlines json.RawMessage, expected time.Time) error
	SetOutcome(ctx context.Context, ws cdp.WorkspaceID, id string, outcome json.RawMessage) error
	Complete(ctx context.Context, ws cdp.WorkspaceID, id string, at time.Time, outcome json.RawMessage, export, tokenHash []byte, expires time.Time, count int) error
	Export(ctx context.Context, token string, now time.Time) (cdp.DSR, []byte, error)
	SetDestination(ctx context.Context, ws cdp.WorkspaceID, id string, d cdp.DSRDestination) error
	Destinations(ctx context.Context, ws cdp.WorkspaceID, id string) ([]cdp.DSRDestination, error)
	AddCallbacks(ctx context.Context, cbs []cdp.DSRCallback) error
	DueCallbacks(ctx context.Context, now time.Time, limit int) ([]cdp.DSRCallback, error)
	CallbackAttempt(ctx context.Context, id string, attempt int, at time.Time, httpStatus int, errText string, done bool, next time.Time) error
	Resolve(ctx context.Context, ws cdp.WorkspaceID, ids []cdp.DSRIdentity) ([]cdp.ProfileID, error)
	Preview(ctx context.Context, ws cdp.WorkspaceID, live []cdp.ProfileID) (cdp.DSRPreview, error)
	Recipients(ctx context.Context, ws cdp.WorkspaceID, live []cdp.ProfileID) ([]cdp.Recipient, error)
	Collect(ctx context.Context, ws cdp.WorkspaceID, live []cdp.ProfileID) (cdp.DSRBundle, error)
	ErasureIdentities(ctx context.Context, ws cdp.WorkspaceID, live []cdp.ProfileID) ([]cdp.Identity, error)
	Erase(ctx context.Context, ws cdp.WorkspaceID, requestID string, live []cdp.ProfileID, at time.Time) (cdp.ErasureCounts, [][]byte, error)
}

// Audit is the tamper-evident log.
type Audit interface {
	AppendAudit(ctx context.Context, ws cdp.WorkspaceID, kind, subject string, record json.RawMessage, at time.Time) (cdp.AuditRecord, error)
	Audit(ctx context.Context, ws cdp.WorkspaceID, kind, subject string) ([]cdp.AuditRecord, error)
}

// Destinations are the workspace's destinations.
type Destinations interface {
	Get(ctx context.Context, ws cdp.WorkspaceID, id cdp.DestinationID) (cdp.Destination, error)
}

// Notices queue erasure notices to destinations and tell how they went.
type Notices interface {
	QueueErasure(ctx context.Context, d cdp.Destination, requestID string, profile cdp.ProfileID, e cdp.Erasure, at time.Time) (string, error)
	DeliveryState(ctx context.Context, dest cdp.DestinationID, key string) (cdp.DeliveryRecord, error)
}

// ErasureLog keeps, outside the database, the keyed hashes of every erased
// identity, so erasures can be applied again after a database restore.
type ErasureLog interface {
	Record(ctx context.Context, ws cdp.WorkspaceID, requestID string, blinds [][]byte, at time.Time) error
}

// Credentials opens a destination's credentials (for its OpenDSR token).
type Credentials interface {
	Open(ctx context.Context, d cdp.Destination) ([]byte, error)
}

// Config tunes the service.
type Config struct {
	// WaitingPeriod passes between receipt and the start of work, during
	// which a request can be cancelled. Default 0.
	WaitingPeriod time.Duration
	// ResultsTTL is how long an export can be downloaded. Default 7 days.
	ResultsTTL time.Duration
	// BaseURL is where this deployment is reached from outside, for
	// results and callback URLs (e.g. https://cdp.example.com).
	BaseURL string
	// CallbackAttempts bound the retries of a status callback. Default 12
	// (about a day with the backoff).
	CallbackAttempts int
	// DestinationAttempts bound the retries of an OpenDSR request to a
	// destination. Default 12.
	DestinationAttempts int
	// Poll is how often work is looked for. Default 1s.
	Poll time.Duration
	Now  func() time.Time
}

// Service runs data subject requests.
type Service struct {
	cfg      Config
	store    Store
	audit    Audit
	dests    Destinations
	notices  Notices
	erasures ErasureLog
	creds    Credentials
	signer   *opendsr.Signer
	client   *http.Client // guarded outbound client
	log      *slog.Logger
	wake     chan struct{}
	metrics  *metrics
}

// Deps are what the service works with.
type Deps struct {
	Store        Store
	Audit        Audit
	Destinations Destinations
	Notices      Notices
	Erasures     ErasureLog
	Credentials  Credentials
	Signer       *opendsr.Signer
	Client       *http.Client
	Log          *slog.Logger
	Registerer   prometheus.Registerer
}

// New returns the service.
func New(cfg Config, d Deps) *Service {
	if cfg.ResultsTTL <= 0 {
		cfg.ResultsTTL = 7 * 24 * time.Hour
	}
	if cfg.CallbackAttempts <= 0 {
		cfg.CallbackAttempts = 12
	}
	if cfg.DestinationAttempts <= 0 {
		cfg.DestinationAttempts = 12
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	return &Service{cfg: cfg, store: d.Store, audit: d.Audit, dests: d.Destinations, notices: d.Notices, erasures: d.Erasures,
		creds: d.Credentials, signer: d.Signer, client: d.Client, log: d.Log, wake: make(chan struct{}, 1), metrics: newMetrics(d.Registerer)}
}

// Signer is the processor's signer, for the HTTP surface.
func (s *Service) Signer() *opendsr.Signer { return s.signer }

// deadlinesOf reads a request's stored deadlines.
func deadlinesOf(d cdp.DSR) opendsr.Deadlines {
	var dl opendsr.Deadlines
	_ = json.Unmarshal(d.Deadlines, &dl)
	return dl
}

func (s *Service) wakeUp() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Submit takes a request body in: it is validated, its deadlines computed
// at receipt, and it is stored pending. Resending the same request returns
// the same receipt; a different request with the same id is a Conflict.
func (s *Service) Submit(ctx context.Context, ws cdp.WorkspaceID, body []byte) (opendsr.Receipt, bool, error) {
	now := s.cfg.Now().UTC()
	req, err := opendsr.ParseRequest(body, now)
	if err != nil {
		return opendsr.Receipt{}, false, err
	}
	d := cdp.DSR{WorkspaceID: ws, ID: req.SubjectRequestID, Regulation: req.Regulation, Type: cdp.DSRType(req.SubjectRequestType),
		Status: cdp.DSRPending, Fingerprint: opendsr.Fingerprint(req), CallbackURLs: req.StatusCallbackURLs,
		SubmittedAt: req.SubmittedTime.UTC(), ReceivedAt: now, StartAfter: now.Add(s.cfg.WaitingPeriod)}
	for _, id := range req.SubjectIdentities {
		t, ok := opendsr.CustosType(id.IdentityType)
		if !ok {
			return opendsr.Receipt{}, false, cdp.Reason(cdp.Invalid, "invalid_identity_type", "unsupported identity type")
		}
		format := id.IdentityFormat
		if format == "" {
			format = "raw"
		}
		d.Identities = append(d.Identities, cdp.DSRIdentity{Type: t, RequestType: id.IdentityType, Format: format,
			Value: opendsr.Normalised(t, format, id.IdentityValue)})
	}
	summary := make([]string, len(d.Identities))
	for i, id := range d.Identities {
		summary[i] = id.RequestType + ":" + id.Format
	}
	d.IdentitySummary = strings.Join(summary, ",")
	dl := opendsr.ComputeDeadlines(req.Regulation, now)
	d.Deadlines, _ = json.Marshal(dl)
	d.ExpectedAt = s.expected(now, dl)
	stored, created, err := s.store.Create(ctx, d)
	if err != nil {
		return opendsr.Receipt{}, false, err
	}
	if !created && stored.Fingerprint != d.Fingerprint {
		return opendsr.Receipt{}, false, cdp.Reason(cdp.Conflict, "duplicate_request_id", "a different request with this subject_request_id exists")
	}
	receipt := opendsr.Receipt{ControllerID: string(ws), ExpectedCompletionTime: stored.ExpectedAt, ReceivedTime: stored.ReceivedAt,
		EncodedRequest: base64.StdEncoding.EncodeToString(body), SubjectRequestID: stored.ID}
	if created {
		s.step(ctx, stored, "received", map[string]any{"type": stored.Type, "regulation": stored.Regulation,
			"identities": stored.IdentitySummary, "identity_hashes": identityHashes(stored.Identities), "deadline": dl.Due()})
		if err := s.notify(ctx, stored); err != nil {
			return opendsr.Receipt{}, false, err
		}
		s.metrics.received.WithLabelValues(string(stored.Type), stored.Regulation).Inc()
		s.wakeUp()
	}
	return receipt, created, nil
}

// expected is a real estimate: work starts after the waiting period and an
// export or erasure of Custos's own data takes minutes; destinations may
// take longer, never past the legal deadline.
func (s *Service) expected(received time.Time, dl opendsr.Deadlines) time.Time {
	e := received.Add(s.cfg.WaitingPeriod).Add(time.Hour)
	if due := dl.Due(); !due.IsZero() && due.Before(e) {
		return due
	}
	return e.UTC().Truncate(time.Second)
}

// identityHashes are SHA-256 digests of the request's identities as
// recorded in proofs: they let an auditor check which identities a request
// covered, given the identities, without the proof holding them.
func identityHashes(ids []cdp.DSRIdentity) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		h := sha256.Sum256([]byte(id.RequestType + ":" + id.Format + ":" + id.Value))
		out[i] = hex.EncodeToString(h[:])
	}
	return out
}

// Status answers a request's current status.
func (s *Service) Status(ctx context.Context, ws cdp.WorkspaceID, id string) (opendsr.Status, error) {
	d, err := s.store.Get(ctx, ws, id)
	if err != nil {
		return opendsr.Status{}, err
	}
	return s.statusOf(d), nil
}

func (s *Service) statusOf(d cdp.DSR) opendsr.Status {
	st := opendsr.Status{ControllerID: string(d.WorkspaceID), ExpectedCompletionTime: d.ExpectedAt, SubjectRequestID: d.ID,
		RequestStatus: string(d.Status), APIVersion: opendsr.APIVersion}
	if d.Status == cdp.DSRCompleted && d.Type != cdp.DSRErasure {
		var o outcome
		_ = json.Unmarshal(d.Outcome, &o)
		st.ResultsURL = o.ResultsURL
		n := d.ResultsCount
		st.ResultsCount = &n
	}
	return st
}

// Cancel cancels a pending request.
func (s *Service) Cancel(ctx context.Context, ws cdp.WorkspaceID, id string) error {
	if err := s.store.Cancel(ctx, ws, id, s.cfg.Now()); err != nil {
		return err
	}
	d, err := s.store.Get(ctx, ws, id)
	if err != nil {
		return err
	}
	s.step(ctx, d, "cancelled", nil)
	return s.notify(ctx, d)
}

// Extend records the one extension the law allows, with its reason and the
// date the person was told.
func (s *Service) Extend(ctx context.Context, ws cdp.WorkspaceID, id, reason string, notice time.Time) (opendsr.Deadlines, error) {
	d, err := s.store.Get(ctx, ws, id)
	if err != nil {
		return opendsr.Deadlines{}, err
	}
	if d.Status == cdp.DSRCompleted || d.Status == cdp.DSRCancelled {
		return opendsr.Deadlines{}, cdp.Reason(cdp.Conflict, "closed", "the request is closed")
	}
	dl, err := deadlinesOf(d).Extend(d.Regulation, reason, notice)
	if err != nil {
		return opendsr.Deadlines{}, err
	}
	raw, _ := json.Marshal(dl)
	expected := d.ExpectedAt
	if expected.After(dl.Due()) {
		expected = dl.Due()
	}
	if err := s.store.SetDeadlines(ctx, ws, id, raw, expected); err != nil {
		return opendsr.Deadlines{}, err
	}
	s.step(ctx, d, "extended", map[string]any{"reason": reason, "notice": notice, "deadline": dl.Due()})
	return dl, nil
}

// DryRun previews what a request would touch, changing nothing.
func (s *Service) DryRun(ctx context.Context, ws cdp.WorkspaceID, body []byte) (cdp.DSRPreview, error) {
	req, err := opendsr.ParseRequest(body, s.cfg.Now())
	if err != nil {
		return cdp.DSRPreview{}, err
	}
	var ids []cdp.DSRIdentity
	for _, id := range req.SubjectIdentities {
		t, _ := opendsr.CustosType(id.IdentityType)
		f := id.IdentityFormat
		if f == "" {
			f = "raw"
		}
		ids = append(ids, cdp.DSRIdentity{Type: t, RequestType: id.IdentityType, Format: f, Value: opendsr.Normalised(t, f, id.IdentityValue)})
	}
	live, err := s.store.Resolve(ctx, ws, ids)
	if err != nil {
		return cdp.DSRPreview{}, err
	}
	return s.store.Preview(ctx, ws, live)
}

// step appends a step of a request to the tamper-evident log. Records hold
// no personal data.
func (s *Service) step(ctx context.Context, d cdp.DSR, what string, detail map[string]any) {
	rec := map[string]any{"step": what, "request_id": d.ID, "at": s.cfg.Now().UTC()}
	for k, v := range detail {
		rec[k] = v
	}
	b, _ := json.Marshal(rec)
	if _, err := s.audit.AppendAudit(ctx, d.WorkspaceID, "dsr", d.ID, b, s.cfg.Now()); err != nil {
		s.log.Error("audit log append failed", "request", d.ID, "step", what, "err", err)
	}
}

// notify queues a status callback to every callback URL of the request.
func (s *Service) notify(ctx context.Context, d cdp.DSR) error {
	var cbs []cdp.DSRCallback
	for _, u := range d.CallbackURLs {
		st := s.statusOf(d)
		st.StatusCallbackURL = u
		body, err := json.Marshal(st)
		if err != nil {
			return err
		}
		cbs = append(cbs, cdp.DSRCallback{ID: newID("cb_"), WorkspaceID: d.WorkspaceID, RequestID: d.ID, URL: u, Status: d.Status, Body: body, NextAt: s.cfg.Now()})
	}
	if len(cbs) == 0 {
		return nil
	}
	return s.store.AddCallbacks(ctx, cbs)
}

func newID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}
