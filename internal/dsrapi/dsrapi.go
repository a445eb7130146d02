// Package dsrapi is Custos's OpenDSR processor API under /opendsr/v1:
// brands (controllers) send data subject requests here and read their
// status; every answer is signed with the processor's RSA key. It also
// serves the export downloads, the proofs, and the status callbacks of the
// processors Custos itself sends erasures to.
package dsrapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/dsr"
	"github.com/custos-cdp/custos/internal/opendsr"
)

// Authenticator returns the API token a request carries.
type Authenticator interface {
	Bearer(r *http.Request) (cdp.APIToken, error)
}

// Store reads what the service keeps, for the surfaces that only read.
type Store interface {
	Get(ctx context.Context, ws cdp.WorkspaceID, id string) (cdp.DSR, error)
	List(ctx context.Context, ws cdp.WorkspaceID, status cdp.DSRStatus, limit int) ([]cdp.DSR, error)
	Destinations(ctx context.Context, ws cdp.WorkspaceID, id string) ([]cdp.DSRDestination, error)
	CallbackAttempts(ctx context.Context, ws cdp.WorkspaceID, id string) ([]cdp.DSRCallbackAttempt, error)
	Export(ctx context.Context, token string, now time.Time) (cdp.DSR, []byte, error)
	LiftSuppression(ctx context.Context, ws cdp.WorkspaceID, requestID, by string, at time.Time) (int, error)
}

// Audit is the tamper-evident log.
type Audit interface {
	AppendAudit(ctx context.Context, ws cdp.WorkspaceID, kind, subject string, record json.RawMessage, at time.Time) (cdp.AuditRecord, error)
	Audit(ctx context.Context, ws cdp.WorkspaceID, kind, subject string) ([]cdp.AuditRecord, error)
}

// API serves /opendsr/v1.
type API struct {
	svc   *dsr.Service
	store Store
	audit Audit
	auth  Authenticator
	log   *slog.Logger
	// CertURL is where discovery says the certificate is.
	certURL string
}

// New returns the OpenDSR API.
func New(svc *dsr.Service, store Store, audit Audit, auth Authenticator, log *slog.Logger, baseURL string) *API {
	return &API{svc: svc, store: store, audit: audit, auth: auth, log: log, certURL: strings.TrimSuffix(baseURL, "/") + "/opendsr/v1/cert.pem"}
}

// Register adds the routes; v1 names ("opengdpr_requests") are aliases.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /opendsr/v1/discovery", a.discovery)
	mux.HandleFunc("GET /opendsr/v1/cert.pem", a.cert)
	for _, base := range []string{"/opendsr/v1/requests", "/opendsr/v1/opengdpr_requests"} {
		mux.Handle("POST "+base, a.authed(a.submit))
		mux.Handle("GET "+base, a.authed(a.list))
		mux.Handle("GET "+base+"/{id}", a.authed(a.status))
		mux.Handle("DELETE "+base+"/{id}", a.authed(a.cancel))
		mux.Handle("GET "+base+"/{id}/proof", a.authed(a.proof))
	}
	mux.Handle("POST /opendsr/v1/dry-run", a.authed(a.dryRun))
	mux.Handle("POST /opendsr/v1/requests/{id}/extension", a.authed(a.extend))
	mux.Handle("POST /opendsr/v1/requests/{id}/lift-suppression", a.authed(a.lift))
	mux.Handle("GET /opendsr/v1/requests/{id}/details", a.authed(a.details))
	mux.HandleFunc("GET /opendsr/v1/results/{token}", a.results)
	mux.HandleFunc("POST /opendsr/v1/callbacks/{ws}/{dest}/{id}", a.remoteCallback)
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error

// authed requires a token allowed to handle data subject requests.
func (a *API) authed(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 256<<10)
		tok, err := a.auth.Bearer(r)
		if err == nil && tok.Role != cdp.RoleOwner && tok.Role != cdp.RoleDSR {
			err = cdp.Reason(cdp.Forbidden, "forbidden", "this token may not handle data subject requests")
		}
		if err == nil {
			err = h(w, r, tok)
		}
		if err != nil {
			a.fail(w, r, err)
		}
	})
}

// write sends a signed JSON answer.
func (a *API) write(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":500,"message":"internal error"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	a.svc.Signer().SetHeaders(h, b)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

var statusOf = map[cdp.Kind]int{
	cdp.Invalid: 400, cdp.NotFound: 404, cdp.Conflict: 409, cdp.Unauthenticated: 401, cdp.Forbidden: 403,
	cdp.TooLarge: 413, cdp.Unavailable: 503, cdp.RateLimited: 429,
}

// fail answers in the OpenDSR error shape, never echoing identities.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ve *opendsr.ValidationError
	if errors.As(err, &ve) {
		a.write(w, http.StatusBadRequest, ve.Body())
		return
	}
	var e *cdp.Error
	if !errors.As(err, &e) {
		a.log.ErrorContext(r.Context(), "opendsr internal error", "err", err)
		a.write(w, http.StatusInternalServerError, opendsr.ErrorBody{Error: opendsr.ErrorDetail{Code: 500, Message: "internal error"}})
		return
	}
	status := statusOf[e.Kind]
	if status == 0 {
		a.log.ErrorContext(r.Context(), "opendsr internal error", "err", err)
		status, e = 500, &cdp.Error{Code: "internal", Message: "internal error"}
	}
	a.write(w, status, opendsr.ErrorBody{Error: opendsr.ErrorDetail{Code: status, Message: e.Message,
		Errors: []opendsr.ErrorItem{{Domain: "Validation", Reason: e.Code, Message: e.Message}}}})
}

func (a *API) discovery(w http.ResponseWriter, r *http.Request) {
	d := opendsr.Discovery{APIVersion: opendsr.APIVersion, SupportedSubjectRequestTypes: opendsr.RequestTypes, ProcessorCertificate: a.certURL}
	for _, t := range []string{"controller_customer_id", "email", "android_advertising_id", "android_id", "ios_advertising_id", "ios_vendor_id",
		"fire_advertising_id", "microsoft_advertising_id", "microsoft_publisher_id", "roku_publisher_id", "roku_advertising_id"} {
		for _, f := range []string{"raw", "sha256", "sha1", "md5"} {
			d.SupportedIdentities = append(d.SupportedIdentities, opendsr.IdentitySupport{IdentityType: t, IdentityFormat: f})
		}
	}
	a.write(w, http.StatusOK, d)
}

func (a *API) cert(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(a.svc.Signer().CertificatePEM())
}

func (a *API) submit(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return cdp.Reason(cdp.TooLarge, "body_too_large", "request body too large")
	}
	receipt, created, err := a.svc.Submit(r.Context(), tok.WorkspaceID, body)
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if !created {
		status = http.StatusOK // a resend of the same request: the same receipt
	}
	a.write(w, status, receipt)
	return nil
}

func (a *API) status(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	st, err := a.svc.Status(r.Context(), tok.WorkspaceID, r.PathValue("id"))
	if err != nil {
		return err
	}
	a.write(w, http.StatusOK, st)
	return nil
}

func (a *API) cancel(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	if err := a.svc.Cancel(r.Context(), tok.WorkspaceID, r.PathValue("id")); err != nil {
		return err
	}
	st, err := a.svc.Status(r.Context(), tok.WorkspaceID, r.PathValue("id"))
	if err != nil {
		return err
	}
	a.write(w, http.StatusAccepted, st)
	return nil
}

// requestJSON is a request as the listing and details show it: status,
// deadlines and urgency, never identities.
type requestJSON struct {
	ID              string                   `json:"subject_request_id"`
	Type            string                   `json:"subject_request_type"`
	Regulation      string                   `json:"regulation"`
	Status          string                   `json:"request_status"`
	Identities      string                   `json:"identities"`
	ReceivedAt      time.Time                `json:"received_time"`
	ExpectedAt      time.Time                `json:"expected_completion_time"`
	Deadlines       json.RawMessage          `json:"deadlines"`
	Urgency         string                   `json:"urgency"`
	CompletedAt     *time.Time               `json:"completed_time,omitempty"`
	Outcome         json.RawMessage          `json:"outcome,omitempty"`
	Destinations    []destinationJSON        `json:"destinations,omitempty"`
	CallbackAttempt []cdp.DSRCallbackAttempt `json:"callback_attempts,omitempty"`
}

type destinationJSON struct {
	ID     string    `json:"destination_id"`
	State  string    `json:"state"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"updated_at"`
}

func toJSON(d cdp.DSR, now time.Time) requestJSON {
	j := requestJSON{ID: d.ID, Type: string(d.Type), Regulation: d.Regulation, Status: string(d.Status), Identities: d.IdentitySummary,
		ReceivedAt: d.ReceivedAt, ExpectedAt: d.ExpectedAt, Deadlines: d.Deadlines, Urgency: "closed"}
	if d.Status == cdp.DSRPending || d.Status == cdp.DSRInProgress {
		var dl opendsr.Deadlines
		_ = json.Unmarshal(d.Deadlines, &dl)
		j.Urgency = dl.Urgency(now)
	}
	if !d.CompletedAt.IsZero() {
		t := d.CompletedAt
		j.CompletedAt = &t
	}
	return j
}

// list answers GET /opendsr/v1/requests?status=&urgency=: the workspace's
// requests with their deadlines, near or past ones visible by urgency.
func (a *API) list(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	all, err := a.store.List(r.Context(), tok.WorkspaceID, cdp.DSRStatus(r.URL.Query().Get("status")), 1000)
	if err != nil {
		return err
	}
	now := time.Now()
	out := struct {
		Requests []requestJSON `json:"requests"`
	}{Requests: []requestJSON{}}
	urgency := r.URL.Query().Get("urgency")
	for _, d := range all {
		j := toJSON(d, now)
		if urgency == "" || j.Urgency == urgency {
			out.Requests = append(out.Requests, j)
		}
	}
	a.write(w, http.StatusOK, out)
	return nil
}

// details answers GET /opendsr/v1/requests/{id}/details: the status, each
// destination's state, what was removed and every callback attempt.
func (a *API) details(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	ctx := r.Context()
	d, err := a.store.Get(ctx, tok.WorkspaceID, r.PathValue("id"))
	if err != nil {
		return err
	}
	j := toJSON(d, time.Now())
	j.Outcome = redactOutcome(d.Outcome)
	dests, err := a.store.Destinations(ctx, tok.WorkspaceID, d.ID)
	if err != nil {
		return err
	}
	for _, x := range dests {
		j.Destinations = append(j.Destinations, destinationJSON{ID: string(x.Destination), State: string(x.State), Reason: x.Reason, At: x.UpdatedAt})
	}
	if j.CallbackAttempt, err = a.store.CallbackAttempts(ctx, tok.WorkspaceID, d.ID); err != nil {
		return err
	}
	a.write(w, http.StatusOK, j)
	return nil
}

// redactOutcome drops what must not leave: queued remote request bodies.
func redactOutcome(raw json.RawMessage) json.RawMessage {
	var o map[string]json.RawMessage
	if json.Unmarshal(raw, &o) != nil {
		return nil
	}
	delete(o, "remote")
	b, _ := json.Marshal(o)
	return b
}

func (a *API) dryRun(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return cdp.Reason(cdp.TooLarge, "body_too_large", "request body too large")
	}
	pv, err := a.svc.DryRun(r.Context(), tok.WorkspaceID, body)
	if err != nil {
		return err
	}
	dests := make([]string, len(pv.Destinations))
	for i, d := range pv.Destinations {
		dests[i] = string(d)
	}
	a.write(w, http.StatusOK, map[string]any{"profiles": pv.Profiles, "events": pv.Events, "consent_entries": pv.ConsentEntries,
		"identities": pv.Identities, "destinations": dests})
	return nil
}

func (a *API) extend(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	var in struct {
		Reason     string    `json:"reason"`
		NoticeDate time.Time `json:"notice_date"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		return cdp.Reason(cdp.Invalid, "invalid_json", "body must be {\"reason\": ..., \"notice_date\": RFC 3339}")
	}
	dl, err := a.svc.Extend(r.Context(), tok.WorkspaceID, r.PathValue("id"), in.Reason, in.NoticeDate)
	if err != nil {
		return err
	}
	a.write(w, http.StatusOK, dl)
	return nil
}

// lift answers POST /opendsr/v1/requests/{id}/lift-suppression: data naming
// the erased person's identities is taken in again. Audited.
func (a *API) lift(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	if tok.Role != cdp.RoleOwner {
		return cdp.Reason(cdp.Forbidden, "forbidden", "only an owner may lift a suppression")
	}
	id := r.PathValue("id")
	n, err := a.store.LiftSuppression(r.Context(), tok.WorkspaceID, id, string(tok.ID), time.Now())
	if err != nil {
		return err
	}
	rec, _ := json.Marshal(map[string]any{"step": "suppression_lifted", "request_id": id, "by_token": tok.ID, "identities": n})
	if _, err := a.audit.AppendAudit(r.Context(), tok.WorkspaceID, "dsr", id, rec, time.Now()); err != nil {
		return err
	}
	a.write(w, http.StatusOK, map[string]int{"lifted": n})
	return nil
}

// proof answers GET /opendsr/v1/requests/{id}/proof: what was done, when
// and where, from the tamper-evident log, signed. It holds no personal
// data and survives the erasure it proves.
func (a *API) proof(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	ctx := r.Context()
	d, err := a.store.Get(ctx, tok.WorkspaceID, r.PathValue("id"))
	if err != nil {
		return err
	}
	steps, err := a.audit.Audit(ctx, tok.WorkspaceID, "dsr", d.ID)
	if err != nil {
		return err
	}
	type step struct {
		Seq      int64           `json:"seq"`
		Record   json.RawMessage `json:"record"`
		PrevHash string          `json:"prev_hash"`
		Hash     string          `json:"hash"`
	}
	out := struct {
		RequestID   string          `json:"subject_request_id"`
		Type        string          `json:"subject_request_type"`
		Regulation  string          `json:"regulation"`
		Status      string          `json:"request_status"`
		Identities  string          `json:"identities"`
		ReceivedAt  time.Time       `json:"received_time"`
		CompletedAt *time.Time      `json:"completed_time,omitempty"`
		Deadlines   json.RawMessage `json:"deadlines"`
		Outcome     json.RawMessage `json:"outcome"`
		Steps       []step          `json:"audit_log"`
	}{RequestID: d.ID, Type: string(d.Type), Regulation: d.Regulation, Status: string(d.Status), Identities: d.IdentitySummary,
		ReceivedAt: d.ReceivedAt, Deadlines: d.Deadlines, Outcome: redactOutcome(d.Outcome)}
	if !d.CompletedAt.IsZero() {
		t := d.CompletedAt
		out.CompletedAt = &t
	}
	for _, s := range steps {
		out.Steps = append(out.Steps, step{Seq: s.Seq, Record: s.Record, PrevHash: s.PrevHash, Hash: s.Hash})
	}
	a.write(w, http.StatusOK, out)
	return nil
}

// results answers GET /opendsr/v1/results/{token}: the export zip, while it
// has not expired (410 Gone after).
func (a *API) results(w http.ResponseWriter, r *http.Request) {
	d, zip, err := a.store.Export(r.Context(), r.PathValue("token"), time.Now())
	switch {
	case cdp.IsKind(err, cdp.Conflict):
		a.write(w, http.StatusGone, opendsr.ErrorBody{Error: opendsr.ErrorDetail{Code: 410, Message: "this export has expired"}})
		return
	case err != nil:
		a.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/zip")
	h.Set("Content-Disposition", `attachment; filename="custos-`+d.ID+`.zip"`)
	h.Set("Cache-Control", "no-store")
	a.svc.Signer().SetHeaders(h, zip)
	_, _ = w.Write(zip)
}

// remoteCallback takes a processor's signed status callback for an erasure
// Custos sent it.
func (a *API) remoteCallback(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err == nil {
		err = a.svc.RemoteCallback(r.Context(), cdp.WorkspaceID(r.PathValue("ws")), cdp.DestinationID(r.PathValue("dest")), r.PathValue("id"), r.Header, body)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.write(w, http.StatusOK, map[string]string{"status": "received"})
}
