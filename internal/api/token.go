package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/custos-cdp/custos/internal/auth"
	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/httpjson"
)

// TokenStore keeps API tokens by the hash of their secret.
type TokenStore interface {
	Create(ctx context.Context, t cdp.APIToken, hash []byte) error
	List(ctx context.Context, ws cdp.WorkspaceID) ([]cdp.APIToken, error)
	Revoke(ctx context.Context, ws cdp.WorkspaceID, id cdp.TokenID, at time.Time) error
}

// AuditLog is the tamper-evident log of operator changes and DSR steps.
type AuditLog interface {
	AppendAudit(ctx context.Context, ws cdp.WorkspaceID, kind, subject string, record json.RawMessage, at time.Time) (cdp.AuditRecord, error)
	AuditLog(ctx context.Context, ws cdp.WorkspaceID, after int64, limit int) ([]cdp.AuditRecord, error)
	VerifyAudit(ctx context.Context) error
}

type tokenJSON struct {
	ID        cdp.TokenID `json:"id"`
	Name      string      `json:"name"`
	Role      cdp.Role    `json:"role"`
	Token     string      `json:"token,omitempty"`
	CreatedAt time.Time   `json:"created_at"`
}

// createToken answers POST /api/v1/tokens with {"name", "role"}: owner
// (the whole admin API) or dsr (the OpenDSR API only, for a controller's
// integration). The secret is in this answer only; Custos keeps its hash.
func (a *API) createToken(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	var in struct {
		Name string   `json:"name"`
		Role cdp.Role `json:"role"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || len(in.Name) > 200 {
		return cdp.Reason(cdp.Invalid, "invalid_name", "name is required (at most 200 bytes)")
	}
	if in.Role != cdp.RoleOwner && in.Role != cdp.RoleDSR {
		return cdp.Reason(cdp.Invalid, "invalid_role", `role must be "owner" or "dsr"`)
	}
	secret := auth.NewSecret("cat_")
	t := cdp.APIToken{ID: cdp.TokenID(auth.NewID("tok_")), WorkspaceID: tok.WorkspaceID, Name: in.Name, Role: in.Role, CreatedAt: time.Now().UTC()}
	if err := a.deps.Tokens.Create(r.Context(), t, auth.Hash(secret)); err != nil {
		return err
	}
	httpjson.Write(w, http.StatusCreated, tokenJSON{ID: t.ID, Name: t.Name, Role: t.Role, Token: secret, CreatedAt: t.CreatedAt})
	return nil
}

// listTokens answers GET /api/v1/tokens: the live tokens, without secrets.
func (a *API) listTokens(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	list, err := a.deps.Tokens.List(r.Context(), tok.WorkspaceID)
	if err != nil {
		return err
	}
	out := struct {
		Tokens []tokenJSON `json:"tokens"`
	}{Tokens: []tokenJSON{}}
	for _, t := range list {
		out.Tokens = append(out.Tokens, tokenJSON{ID: t.ID, Name: t.Name, Role: t.Role, CreatedAt: t.CreatedAt})
	}
	httpjson.Write(w, http.StatusOK, out)
	return nil
}

// revokeToken answers DELETE /api/v1/tokens/{id}. A token cannot revoke
// itself, so an operator cannot lock the workspace out by mistake.
func (a *API) revokeToken(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	id := cdp.TokenID(r.PathValue("id"))
	if id == tok.ID {
		return cdp.Reason(cdp.Conflict, "cannot_revoke_self", "a token cannot revoke itself; use another owner token")
	}
	if err := a.deps.Tokens.Revoke(r.Context(), tok.WorkspaceID, id, time.Now()); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type auditJSON struct {
	Seq       int64           `json:"seq"`
	Kind      string          `json:"kind"`
	Subject   string          `json:"subject"`
	Record    json.RawMessage `json:"record"`
	PrevHash  string          `json:"prev_hash"`
	Hash      string          `json:"hash"`
	CreatedAt time.Time       `json:"created_at"`
}

// listAudit answers GET /api/v1/audit: the workspace's audit log, oldest
// first, paged with the opaque next_cursor.
func (a *API) listAudit(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	limit, err := pageLimit(r)
	if err != nil {
		return err
	}
	var after int64
	if c := r.URL.Query().Get("cursor"); c != "" {
		v, err := decodeCursor(c, 1)
		if err != nil {
			return err
		}
		after = v[0]
	}
	page, err := a.deps.Audit.AuditLog(r.Context(), tok.WorkspaceID, after, limit+1)
	if err != nil {
		return err
	}
	out := struct {
		Records    []auditJSON `json:"records"`
		NextCursor string      `json:"next_cursor,omitempty"`
	}{Records: []auditJSON{}}
	if len(page) > limit {
		page = page[:limit]
		out.NextCursor = encodeCursor(page[limit-1].Seq)
	}
	for _, rec := range page {
		out.Records = append(out.Records, auditJSON{Seq: rec.Seq, Kind: rec.Kind, Subject: rec.Subject, Record: rec.Record,
			PrevHash: rec.PrevHash, Hash: rec.Hash, CreatedAt: rec.CreatedAt})
	}
	httpjson.Write(w, http.StatusOK, out)
	return nil
}

// verifyAudit answers GET /api/v1/audit/verify: it walks the whole hash
// chain and answers 200 when intact, 409 audit_tampered naming the first
// broken record when not.
func (a *API) verifyAudit(w http.ResponseWriter, r *http.Request, _ cdp.APIToken) error {
	if err := a.deps.Audit.VerifyAudit(r.Context()); err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"intact": true, "checked_at": time.Now().UTC().Format(time.RFC3339)})
	return nil
}
