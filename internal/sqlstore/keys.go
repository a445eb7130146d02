package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/vault"
)

// Keys stores each workspace's encrypted keys for the vault.
type Keys struct{ db *DB }

// Keys returns the workspace key store.
func (db *DB) Keys() *Keys { return &Keys{db: db} }

var _ vault.KeyStore = (*Keys)(nil)

// WorkspaceKeys returns a workspace's key record; NotFound if it has none.
func (s *Keys) WorkspaceKeys(ctx context.Context, ws cdp.WorkspaceID) (vault.WorkspaceKeyRecord, error) {
	var rec vault.WorkspaceKeyRecord
	err := s.db.rd().QueryRowContext(ctx, `SELECT master_keyset, index_key FROM workspace_keys WHERE workspace_id = $1`, ws).
		Scan(&rec.MasterKeyset, &rec.IndexKey)
	if errors.Is(err, sql.ErrNoRows) {
		return rec, cdp.Errorf(cdp.NotFound, "workspace has no keys")
	}
	return rec, s.db.dialect.translate(err)
}

// CreateWorkspaceKeys stores rec unless the workspace has keys already, and
// returns what is stored: concurrent first uses agree on one record.
func (s *Keys) CreateWorkspaceKeys(ctx context.Context, ws cdp.WorkspaceID, rec vault.WorkspaceKeyRecord) (vault.WorkspaceKeyRecord, error) {
	_, err := s.db.wr().ExecContext(ctx,
		`INSERT INTO workspace_keys (workspace_id, master_keyset, index_key, updated_at) VALUES ($1, $2, $3, $4)
		 ON CONFLICT (workspace_id) DO NOTHING`, ws, rec.MasterKeyset, rec.IndexKey, micros(time.Now()))
	if err != nil {
		return rec, s.db.dialect.translate(err)
	}
	return s.WorkspaceKeys(ctx, ws)
}

// UpdateMasterKeyset replaces a workspace's encrypted master keyset.
func (s *Keys) UpdateMasterKeyset(ctx context.Context, ws cdp.WorkspaceID, keyset []byte) error {
	res, err := s.db.wr().ExecContext(ctx, `UPDATE workspace_keys SET master_keyset = $1, updated_at = $2 WHERE workspace_id = $3`,
		keyset, micros(time.Now()), ws)
	if err != nil {
		return s.db.dialect.translate(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return cdp.Errorf(cdp.NotFound, "workspace has no keys")
	}
	return nil
}

// SystemKey returns a sealed process-wide key; NotFound if none.
func (s *Keys) SystemKey(ctx context.Context, name string) ([]byte, error) {
	var sealed []byte
	err := s.db.rd().QueryRowContext(ctx, `SELECT sealed FROM system_keys WHERE name = $1`, name).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, cdp.Errorf(cdp.NotFound, "no such system key")
	}
	return sealed, s.db.dialect.translate(err)
}

// CreateSystemKey stores a sealed key unless one of that name exists, and
// returns the one stored now.
func (s *Keys) CreateSystemKey(ctx context.Context, name string, sealed []byte) ([]byte, error) {
	if _, err := s.db.wr().ExecContext(ctx, `INSERT INTO system_keys (name, sealed, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`,
		name, sealed, micros(time.Now())); err != nil {
		return nil, s.db.dialect.translate(err)
	}
	return s.SystemKey(ctx, name)
}
