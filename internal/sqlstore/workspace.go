package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/custos-cdp/custos/internal/cdp"
)

// Workspaces stores workspaces and the first-start bootstrap.
type Workspaces struct{ db *DB }

// Workspaces returns the workspace store.
func (db *DB) Workspaces() *Workspaces { return &Workspaces{db: db} }

// Bootstrap is what the first start creates: a workspace, its first source
// and an owner token. Only hashes of the credentials are given.
type Bootstrap struct {
	Workspace    cdp.Workspace
	Source       cdp.Source
	WriteKeyHash []byte
	SecretHash   []byte
	Token        cdp.APIToken
	TokenHash    []byte
}

// Bootstrap creates b unless some process already bootstrapped this
// database; it reports whether it did. Concurrent first starts create
// exactly one bootstrap.
func (s *Workspaces) Bootstrap(ctx context.Context, b Bootstrap) (bool, error) {
	created := false
	err := s.db.tx(ctx, func(tx querier) error {
		res, err := tx.ExecContext(ctx,
			`INSERT INTO bootstrap (id, created_at) VALUES (1, $1) ON CONFLICT (id) DO NOTHING`,
			micros(b.Workspace.CreatedAt))
		if err != nil {
			return s.db.dialect.translate(err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		if err := insertWorkspace(ctx, tx, b.Workspace); err != nil {
			return s.db.dialect.translate(err)
		}
		if err := insertSource(ctx, tx, b.Source, b.WriteKeyHash, b.SecretHash); err != nil {
			return s.db.dialect.translate(err)
		}
		if err := insertToken(ctx, tx, b.Token, b.TokenHash); err != nil {
			return s.db.dialect.translate(err)
		}
		for _, p := range defaultPurposes(b.Workspace.ID, b.Workspace.CreatedAt) {
			if err := insertPurpose(ctx, tx, p); err != nil {
				return s.db.dialect.translate(err)
			}
		}
		created = true
		return nil
	})
	return created, err
}

func insertWorkspace(ctx context.Context, tx querier, w cdp.Workspace) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3)`,
		w.ID, w.Name, micros(w.CreatedAt))
	return err
}

// Get returns a workspace; NotFound if there is none with that id.
func (s *Workspaces) Get(ctx context.Context, id cdp.WorkspaceID) (cdp.Workspace, error) {
	var (
		w       cdp.Workspace
		created int64
	)
	err := s.db.rd().QueryRowContext(ctx, `SELECT id, name, created_at FROM workspaces WHERE id = $1`, id).
		Scan(&w.ID, &w.Name, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return cdp.Workspace{}, cdp.Errorf(cdp.NotFound, "workspace not found")
	}
	if err != nil {
		return cdp.Workspace{}, s.db.dialect.translate(err)
	}
	w.CreatedAt = fromMicros(created)
	return w, nil
}

// List returns every workspace, oldest first.
func (s *Workspaces) List(ctx context.Context) ([]cdp.Workspace, error) {
	rows, err := s.db.rd().QueryContext(ctx, `SELECT id, name, created_at FROM workspaces ORDER BY created_at, id`)
	if err != nil {
		return nil, s.db.dialect.translate(err)
	}
	defer rows.Close()
	var out []cdp.Workspace
	for rows.Next() {
		var (
			w       cdp.Workspace
			created int64
		)
		if err := rows.Scan(&w.ID, &w.Name, &created); err != nil {
			return nil, err
		}
		w.CreatedAt = fromMicros(created)
		out = append(out, w)
	}
	return out, rows.Err()
}
