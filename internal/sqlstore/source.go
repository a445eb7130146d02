package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/custos-cdp/custos/internal/cdp"
)

// Sources stores event sources and their hashed credentials.
type Sources struct{ db *DB }

// Sources returns the source store.
func (db *DB) Sources() *Sources { return &Sources{db: db} }

func insertSource(ctx context.Context, tx querier, src cdp.Source, writeKeyHash, secretHash []byte) error {
	_, err := tx.ExecContext(ctx,
		`INSERT INTO sources (id, workspace_id, name, write_key_hash, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		src.ID, src.WorkspaceID, src.Name, writeKeyHash, secretHash, micros(src.CreatedAt))
	return err
}

// Create adds a source with the given credential hashes. A write key hash
// that is already in use is a Conflict.
func (s *Sources) Create(ctx context.Context, src cdp.Source, writeKeyHash, secretHash []byte) error {
	return s.db.tx(ctx, func(tx querier) error {
		return s.db.dialect.translate(insertSource(ctx, tx, src, writeKeyHash, secretHash))
	})
}

// ByWriteKeyHash returns the source whose write key hashes to h, and the
// hash of its secret. NotFound when none does.
func (s *Sources) ByWriteKeyHash(ctx context.Context, h []byte) (cdp.Source, []byte, error) {
	var (
		src     cdp.Source
		secret  []byte
		created int64
	)
	err := s.db.rd().QueryRowContext(ctx,
		`SELECT id, workspace_id, name, secret_hash, created_at FROM sources WHERE write_key_hash = $1`, h).
		Scan(&src.ID, &src.WorkspaceID, &src.Name, &secret, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return cdp.Source{}, nil, cdp.Errorf(cdp.NotFound, "source not found")
	}
	if err != nil {
		return cdp.Source{}, nil, s.db.dialect.translate(err)
	}
	src.CreatedAt = fromMicros(created)
	return src, secret, nil
}
