package sqlstore

import (
	"context"

	"github.com/custos-cdp/custos/internal/cdp"
)

// RewrapKeys re-encrypts every live profile's data key of a workspace under
// the current master key version, in transactions of 500 keys so that the
// processor keeps running beside it. A key that changed meanwhile (a merge, an
// erasure) is left as it is. It returns how many keys it rewrapped.
func (s *Profiles) RewrapKeys(ctx context.Context, ws cdp.WorkspaceID) (int, error) {
	keys, err := s.vault.Keys(ctx, ws)
	if err != nil {
		return 0, err
	}
	type row struct {
		id      string
		wrapped []byte
	}
	done, after := 0, ""
	for {
		rows, err := s.db.rd().QueryContext(ctx,
			`SELECT id, data_key FROM profiles WHERE workspace_id = $1 AND data_key IS NOT NULL AND id > $2 ORDER BY id LIMIT 500`, ws, after)
		if err != nil {
			return done, s.db.dialect.translate(err)
		}
		var batch []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.wrapped); err != nil {
				rows.Close()
				return done, err
			}
			batch = append(batch, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return done, s.db.dialect.translate(err)
		}
		if len(batch) == 0 {
			return done, nil
		}
		rewrapped := make([][]byte, len(batch))
		for i, r := range batch {
			if rewrapped[i], err = keys.RewrapDataKey(ctx, r.id, r.wrapped); err != nil {
				return done, err
			}
		}
		// One transaction per batch: on SQLite a commit per key would wait
		// for a log fsync per key. On PostgreSQL a batch may deadlock with a
		// merge re-pointing tombstones; it is tried again.
		n := 0
		_, err = s.db.retryTx(ctx, 10, func(tx querier) error {
			n = 0
			for i, r := range batch {
				res, err := tx.ExecContext(ctx, `UPDATE profiles SET data_key = $1 WHERE id = $2 AND data_key = $3`, rewrapped[i], r.id, r.wrapped)
				if err != nil {
					return s.db.dialect.translate(err)
				}
				if k, _ := res.RowsAffected(); k == 1 {
					n++
				}
			}
			return nil
		})
		if err != nil {
			return done, err
		}
		done += n
		after = batch[len(batch)-1].id
	}
}

// DestroyKey crypto-shreds a profile: its wrapped data key, and those of
// the profiles merged into it, are deleted, so everything sealed under them
// (in this database, in backups of it, in queued deliveries and dead
// letters) can no longer be decrypted by anyone. Rows are left for the
// caller to delete. NotFound if the workspace has no such live profile.
func (s *Profiles) DestroyKey(ctx context.Context, ws cdp.WorkspaceID, id cdp.ProfileID) error {
	var merged []cdp.ProfileID
	err := s.db.tx(ctx, func(tx querier) error {
		rows, err := tx.QueryContext(ctx, `SELECT id FROM profiles WHERE merged_into = $1 AND workspace_id = $2`, id, ws)
		if err != nil {
			return s.db.dialect.translate(err)
		}
		for rows.Next() {
			var p cdp.ProfileID
			if err := rows.Scan(&p); err != nil {
				rows.Close()
				return err
			}
			merged = append(merged, p)
		}
		rows.Close()
		res, err := tx.ExecContext(ctx, `UPDATE profiles SET data_key = NULL WHERE id = $1 AND workspace_id = $2 AND data_key IS NOT NULL AND merged_into IS NULL`, id, ws)
		if err != nil {
			return s.db.dialect.translate(err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return cdp.Errorf(cdp.NotFound, "profile not found")
		}
		_, err = tx.ExecContext(ctx, `UPDATE profiles SET data_key = NULL WHERE merged_into = $1 AND workspace_id = $2`, id, ws)
		return s.db.dialect.translate(err)
	})
	s.keys.drop(append(merged, id)...)
	return err
}
