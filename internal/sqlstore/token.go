package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
)

// Tokens stores admin API tokens by hash.
type Tokens struct{ db *DB }

// Tokens returns the API token store.
func (db *DB) Tokens() *Tokens { return &Tokens{db: db} }

func insertToken(ctx context.Context, tx querier, t cdp.APIToken, hash []byte) error {
	_, err := tx.ExecContext(ctx,
		`INSERT INTO api_tokens (id, workspace_id, name, role, token_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		t.ID, t.WorkspaceID, t.Name, string(t.Role), hash, micros(t.CreatedAt))
	return err
}

// Create adds a token with the given hash.
func (s *Tokens) Create(ctx context.Context, t cdp.APIToken, hash []byte) error {
	return s.db.tx(ctx, func(tx querier) error {
		return s.db.dialect.translate(insertToken(ctx, tx, t, hash))
	})
}

// ByHash returns the live token whose secret hashes to h; NotFound when
// none does or it was revoked.
func (s *Tokens) ByHash(ctx context.Context, h []byte) (cdp.APIToken, error) {
	var (
		t       cdp.APIToken
		role    string
		created int64
	)
	err := s.db.rd().QueryRowContext(ctx,
		`SELECT id, workspace_id, name, role, created_at FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL`, h).
		Scan(&t.ID, &t.WorkspaceID, &t.Name, &role, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return cdp.APIToken{}, cdp.Errorf(cdp.NotFound, "token not found")
	}
	if err != nil {
		return cdp.APIToken{}, s.db.dialect.translate(err)
	}
	t.Role = cdp.Role(role)
	t.CreatedAt = fromMicros(created)
	return t, nil
}

// List returns a workspace's live tokens, oldest first (never their
// secrets, which are not stored).
func (s *Tokens) List(ctx context.Context, ws cdp.WorkspaceID) ([]cdp.APIToken, error) {
	rows, err := s.db.rd().QueryContext(ctx,
		`SELECT id, name, role, created_at FROM api_tokens WHERE workspace_id = $1 AND revoked_at IS NULL ORDER BY created_at, id`, ws)
	if err != nil {
		return nil, s.db.dialect.translate(err)
	}
	defer rows.Close()
	var out []cdp.APIToken
	for rows.Next() {
		t := cdp.APIToken{WorkspaceID: ws}
		var (
			role    string
			created int64
		)
		if err := rows.Scan(&t.ID, &t.Name, &role, &created); err != nil {
			return nil, err
		}
		t.Role, t.CreatedAt = cdp.Role(role), fromMicros(created)
		out = append(out, t)
	}
	return out, rows.Err()
}

// Revoke ends a token at once; NotFound when the workspace has no such
// live token.
func (s *Tokens) Revoke(ctx context.Context, ws cdp.WorkspaceID, id cdp.TokenID, at time.Time) error {
	return s.db.tx(ctx, func(tx querier) error {
		res, err := tx.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = $1 WHERE workspace_id = $2 AND id = $3 AND revoked_at IS NULL`, micros(at), ws, id)
		if err != nil {
			return s.db.dialect.translate(err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return cdp.Reason(cdp.NotFound, "token_not_found", "no such token")
		}
		return nil
	})
}
