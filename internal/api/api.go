package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/httpjson"
	"github.com/custos-cdp/custos/internal/identity"
)

// Authenticator returns the API token a request carries.
type Authenticator interface {
	Bearer(r *http.Request) (cdp.APIToken, error)
}

// Profiles is what the API reads and changes of profiles.
type Profiles interface {
	Find(ctx context.Context, ws cdp.WorkspaceID, id cdp.Identity) (cdp.ProfileID, error)
	Get(ctx context.Context, ws cdp.WorkspaceID, id cdp.ProfileID) (cdp.Profile, error)
	Live(ctx context.Context, ws cdp.WorkspaceID, id cdp.ProfileID) (cdp.ProfileID, error)
	Timeline(ctx context.Context, ws cdp.WorkspaceID, id cdp.ProfileID, f cdp.TimelineFilter, after cdp.TimelineCursor, limit int) ([]cdp.StoredEvent, error)
	AllEvents(ctx context.Context, ws cdp.WorkspaceID, before int64, limit int) ([]cdp.StoredEvent, error)
	Merges(ctx context.Context, ws cdp.WorkspaceID, id cdp.ProfileID) ([]cdp.Merge, error)
	Split(ctx context.Context, ws cdp.WorkspaceID, id cdp.MergeID) (cdp.Merge, error)
}

// IdentityRules reads and sets a workspace's identity resolution rules.
type IdentityRules interface {
	Get(ctx context.Context, ws cdp.WorkspaceID) (identity.Rules, error)
	Set(ctx context.Context, ws cdp.WorkspaceID, r identity.Rules) error
}

// Config holds the API's settings.
type Config struct {
	Logger *slog.Logger
	// MaxBodyBytes bounds request bodies. Default 1 MiB.
	MaxBodyBytes int64
	// Timeout bounds each request. Default 30s.
	Timeout time.Duration
}

// Deps are the stores the API works on.
type Deps struct {
	Auth     Authenticator
	Profiles Profiles
	Rules    IdentityRules
	Consent  ConsentStore
	Ledger   Ledger
	Log      Log
	Receipts Receipts
	Sealer   Sealer

	Destinations DestinationStore
	Deliveries   DeliveryStore
	Forwarding   Forwarding

	Tokens TokenStore
	Audit  AuditLog
}

// API serves /api/v1.
type API struct {
	cfg  Config
	deps Deps
}

// New returns the admin API.
func New(cfg Config, deps Deps) *API {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	return &API{cfg: cfg, deps: deps}
}

// handlerFunc is an API handler: it returns an error instead of writing one.
type handlerFunc func(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error

// authed wraps h with the body limit, the deadline, token authentication
// (the admin API takes owner tokens only), the one error mapping, and the
// audit log: every change an operator makes (a successful request that is
// not a read) is appended to the tamper-evident log before the answer goes
// out. If that append fails the operator is told so (500), never left to
// believe the change went unrecorded.
func (a *API) authed(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), a.cfg.Timeout)
		defer cancel()
		r = r.WithContext(ctx)
		r.Body = http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes)
		tok, err := a.deps.Auth.Bearer(r)
		if err == nil && tok.Role != cdp.RoleOwner {
			err = cdp.Reason(cdp.Forbidden, "wrong_role", "this token may not use the admin API")
		}
		if err != nil {
			httpjson.Error(ctx, a.cfg.Logger, w, err)
			return
		}
		if r.Method == http.MethodGet || r.Method == http.MethodHead || a.deps.Audit == nil {
			if err := h(w, r, tok); err != nil {
				httpjson.Error(ctx, a.cfg.Logger, w, err)
			}
			return
		}
		rec := &bufferedResponse{header: w.Header(), status: http.StatusOK}
		if err := h(rec, r, tok); err != nil {
			httpjson.Error(ctx, a.cfg.Logger, w, err)
			return
		}
		if rec.status < 400 {
			if err := a.audit(ctx, r, tok, rec.status); err != nil {
				httpjson.Error(ctx, a.cfg.Logger, w, cdp.Wrap(cdp.Internal, "audit_failed", err, "the change was made but could not be recorded in the audit log"))
				return
			}
		}
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.body.Bytes())
	})
}

// operatorRecord is an audit log entry for an operator's change. It names
// the route and the ids in its path, never the request body, so it holds
// no personal data.
type operatorRecord struct {
	Token  cdp.TokenID `json:"token"`
	Method string      `json:"method"`
	Route  string      `json:"route"`
	Path   string      `json:"path"`
	Status int         `json:"status"`
}

func (a *API) audit(ctx context.Context, r *http.Request, tok cdp.APIToken, status int) error {
	rec, err := json.Marshal(operatorRecord{Token: tok.ID, Method: r.Method, Route: r.Pattern, Path: r.URL.Path, Status: status})
	if err != nil {
		return err
	}
	// The change is made: record it even if the client has gone away.
	ctx = context.WithoutCancel(ctx)
	_, err = a.deps.Audit.AppendAudit(ctx, tok.WorkspaceID, "operator", r.Pattern, json.RawMessage(rec), time.Now())
	return err
}

// bufferedResponse holds a handler's answer until the audit record is
// written.
type bufferedResponse struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }
func (b *bufferedResponse) Write(p []byte) (int, error) {
	b.wrote = true
	return b.body.Write(p)
}
func (b *bufferedResponse) WriteHeader(code int) {
	if !b.wrote {
		b.status, b.wrote = code, true
	}
}

// decodeBody parses a JSON body already read, tolerating fields this API
// does not use (partner payloads carry many).
func decodeBody(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return cdp.Wrap(cdp.Invalid, "invalid_json", err, "request body is not the JSON this endpoint takes")
	}
	return nil
}

// decodeJSON reads a JSON request body into v, refusing unknown fields and
// trailing data.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return cdp.Reason(cdp.TooLarge, "body_too_large", "request body too large")
		}
		if errors.Is(err, io.EOF) {
			return cdp.Reason(cdp.Invalid, "empty_body", "a JSON body is required")
		}
		return cdp.Wrap(cdp.Invalid, "invalid_json", err, "request body is not the JSON this endpoint takes")
	}
	if dec.More() {
		return cdp.Reason(cdp.Invalid, "invalid_json", "trailing data after the JSON body")
	}
	return nil
}
