package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/consent"
)

// Consent stores each workspace's purposes, vocabulary mappings and
// partner feeds. Ledger entries are written by Profiles.Apply, in the same
// transaction as the event that carried them.
type Consent struct {
	db *DB

	mu    sync.Mutex
	cache map[cdp.WorkspaceID]cachedVocabulary
}

type cachedVocabulary struct {
	v     consent.Vocabulary
	until time.Time
}

func newConsent(db *DB) *Consent {
	return &Consent{db: db, cache: map[cdp.WorkspaceID]cachedVocabulary{}}
}

// defaultPurposes are the purposes every workspace has from the start.
func defaultPurposes(ws cdp.WorkspaceID, at time.Time) []cdp.Purpose {
	return []cdp.Purpose{
		{WorkspaceID: ws, Key: cdp.PurposeSale, Name: "Sale of personal information",
			Description: "CCPA/CPRA: selling the person's data. Granted means sale is allowed; denied means the person opted out.",
			Regime:      cdp.OptOut, CreatedAt: at, UpdatedAt: at},
		{WorkspaceID: ws, Key: cdp.PurposeSharing, Name: "Sharing for cross-context behavioural advertising",
			Description: "CPRA: sharing the person's data for cross-context behavioural advertising. Denied means the person opted out.",
			Regime:      cdp.OptOut, CreatedAt: at, UpdatedAt: at},
	}
}

func insertPurpose(ctx context.Context, q querier, p cdp.Purpose) error {
	_, err := q.ExecContext(ctx,
		`INSERT INTO purposes (workspace_id, key, name, description, regime, document_version, require_current_document, retired, created_at, updated_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		p.WorkspaceID, p.Key, p.Name, p.Description, string(p.Regime), p.DocumentVersion, boolInt(p.RequireCurrentDocument), boolInt(p.Retired),
		micros(p.CreatedAt), micros(p.UpdatedAt))
	return err
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

const purposeColumns = `workspace_id, key, name, description, regime, document_version, require_current_document, retired, created_at, updated_at`

func scanPurpose(row interface{ Scan(...any) error }) (cdp.Purpose, error) {
	var (
		p                cdp.Purpose
		regime           string
		reqDoc, retired  int64
		created, updated int64
	)
	if err := row.Scan(&p.WorkspaceID, &p.Key, &p.Name, &p.Description, &regime, &p.DocumentVersion, &reqDoc, &retired, &created, &updated); err != nil {
		return p, err
	}
	p.Regime, p.RequireCurrentDocument, p.Retired = cdp.Regime(regime), reqDoc != 0, retired != 0
	p.CreatedAt, p.UpdatedAt = fromMicros(created), fromMicros(updated)
	return p, nil
}

// Purposes lists a workspace's purposes, retired ones included.
func (s *Consent) Purposes(ctx context.Context, ws cdp.WorkspaceID) ([]cdp.Purpose, error) {
	rows, err := s.db.rd().QueryContext(ctx, `SELECT `+purposeColumns+` FROM purposes WHERE workspace_id = $1 ORDER BY key`, ws)
	if err != nil {
		return nil, s.db.dialect.translate(err)
	}
	defer rows.Close()
	var out []cdp.Purpose
	for rows.Next() {
		p, err := scanPurpose(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Purpose returns one purpose; NotFound if the workspace has none by key.
func (s *Consent) Purpose(ctx context.Context, ws cdp.WorkspaceID, key cdp.PurposeKey) (cdp.Purpose, error) {
	p, err := scanPurpose(s.db.rd().QueryRowContext(ctx, `SELECT `+purposeColumns+` FROM purposes WHERE workspace_id = $1 AND key = $2`, ws, key))
	if errors.Is(err, sql.ErrNoRows) {
		return p, cdp.Errorf(cdp.NotFound, "purpose not found")
	}
	return p, s.db.dialect.translate(err)
}

// PutPurpose creates a purpose or updates its name, description, document
// version, renewal flag and retirement. The regime of an existing purpose
// cannot change: it would rewrite what the ledger's history means
// (Conflict). It reports whether it created the purpose.
func (s *Consent) PutPurpose(ctx context.Context, p cdp.Purpose) (bool, error) {
	created := false
	err := s.db.tx(ctx, func(tx querier) error {
		cur, err := scanPurpose(tx.QueryRowContext(ctx, `SELECT `+purposeColumns+` FROM purposes WHERE workspace_id = $1 AND key = $2`+s.db.dialect.lockUpdate(), p.WorkspaceID, p.Key))
		if errors.Is(err, sql.ErrNoRows) {
			created = true
			return s.db.dialect.translate(insertPurpose(ctx, tx, p))
		}
		if err != nil {
			return s.db.dialect.translate(err)
		}
		if cur.Regime != p.Regime {
			return cdp.Reason(cdp.Conflict, "regime_change", "the regime of an existing purpose cannot change; create a new purpose")
		}
		_, err = tx.ExecContext(ctx,
			`UPDATE purposes SET name = $1, description = $2, document_version = $3, require_current_document = $4, retired = $5, updated_at = $6
			 WHERE workspace_id = $7 AND key = $8`,
			p.Name, p.Description, p.DocumentVersion, boolInt(p.RequireCurrentDocument), boolInt(p.Retired), micros(p.UpdatedAt), p.WorkspaceID, p.Key)
		return s.db.dialect.translate(err)
	})
	s.forget(p.WorkspaceID)
	return created, err
}

// DeletePurpose deletes a purpose no ledger entry refers to. Conflict if
// one does (retire it instead); NotFound if there is none; Invalid for the
// built-in CCPA purposes.
func (s *Consent) DeletePurpose(ctx context.Context, ws cdp.WorkspaceID, key cdp.PurposeKey) error {
	if key == cdp.PurposeSale || key == cdp.PurposeSharing {
		return cdp.Reason(cdp.Invalid, "builtin_purpose", "the CCPA opt-out purposes cannot be deleted")
	}
	err := s.db.tx(ctx, func(tx querier) error {
		var n int64
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM consent_ledger WHERE workspace_id = $1 AND purpose = $2`, ws, key).Scan(&n); err != nil {
			return s.db.dialect.translate(err)
		}
		if n > 0 {
			return cdp.Reason(cdp.Conflict, "purpose_in_use", "ledger entries refer to this purpose; retire it instead")
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM purposes WHERE workspace_id = $1 AND key = $2`, ws, key)
		if err != nil {
			return s.db.dialect.translate(err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return cdp.Errorf(cdp.NotFound, "purpose not found")
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM consent_mappings WHERE workspace_id = $1 AND purpose = $2`, ws, key)
		return s.db.dialect.translate(err)
	})
	s.forget(ws)
	return err
}

// Mappings lists a workspace's vocabulary mappings.
func (s *Consent) Mappings(ctx context.Context, ws cdp.WorkspaceID) ([]cdp.ConsentMapping, error) {
	rows, err := s.db.rd().QueryContext(ctx, `SELECT vocabulary, external, purpose FROM consent_mappings WHERE workspace_id = $1 ORDER BY vocabulary, external`, ws)
	if err != nil {
		return nil, s.db.dialect.translate(err)
	}
	defer rows.Close()
	var out []cdp.ConsentMapping
	for rows.Next() {
		var m cdp.ConsentMapping
		if err := rows.Scan(&m.Vocabulary, &m.External, &m.Purpose); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// PutMapping maps an external name to a purpose, replacing an earlier
// mapping of that name. Invalid if the purpose does not exist.
func (s *Consent) PutMapping(ctx context.Context, ws cdp.WorkspaceID, m cdp.ConsentMapping) error {
	if _, err := s.Purpose(ctx, ws, m.Purpose); err != nil {
		if cdp.IsKind(err, cdp.NotFound) {
			return cdp.Reason(cdp.Invalid, "undefined_purpose", "the mapping names a purpose this workspace does not define")
		}
		return err
	}
	_, err := s.db.wr().ExecContext(ctx,
		`INSERT INTO consent_mappings (workspace_id, vocabulary, external, purpose) VALUES ($1, $2, $3, $4)
		 ON CONFLICT (workspace_id, vocabulary, external) DO UPDATE SET purpose = excluded.purpose`,
		ws, string(m.Vocabulary), m.External, m.Purpose)
	s.forget(ws)
	return s.db.dialect.translate(err)
}

// DeleteMapping removes a mapping; NotFound if there is none.
func (s *Consent) DeleteMapping(ctx context.Context, ws cdp.WorkspaceID, voc cdp.ConsentVocabulary, external string) error {
	res, err := s.db.wr().ExecContext(ctx, `DELETE FROM consent_mappings WHERE workspace_id = $1 AND vocabulary = $2 AND external = $3`, ws, string(voc), external)
	if err != nil {
		return s.db.dialect.translate(err)
	}
	s.forget(ws)
	if n, _ := res.RowsAffected(); n == 0 {
		return cdp.Errorf(cdp.NotFound, "mapping not found")
	}
	return nil
}

func (s *Consent) forget(ws cdp.WorkspaceID) {
	s.mu.Lock()
	delete(s.cache, ws)
	s.mu.Unlock()
}

// Vocabulary returns a workspace's purposes and mappings, cached for a few
// seconds: the gateway and the processor read it for every event.
func (s *Consent) Vocabulary(ctx context.Context, ws cdp.WorkspaceID) (consent.Vocabulary, error) {
	s.mu.Lock()
	c, ok := s.cache[ws]
	s.mu.Unlock()
	if ok && s.db.cached(c.until) {
		return c.v, nil
	}
	purposes, err := s.Purposes(ctx, ws)
	if err != nil {
		return consent.Vocabulary{}, err
	}
	mappings, err := s.Mappings(ctx, ws)
	if err != nil {
		return consent.Vocabulary{}, err
	}
	v := consent.Vocabulary{Purposes: map[cdp.PurposeKey]cdp.Purpose{}, Mappings: map[cdp.ConsentVocabulary]map[string]cdp.PurposeKey{}}
	for _, p := range purposes {
		v.Purposes[p.Key] = p
	}
	for _, m := range mappings {
		if v.Mappings[m.Vocabulary] == nil {
			v.Mappings[m.Vocabulary] = map[string]cdp.PurposeKey{}
		}
		v.Mappings[m.Vocabulary][m.External] = m.Purpose
	}
	s.mu.Lock()
	s.cache[ws] = cachedVocabulary{v: v, until: time.Now().Add(5 * time.Second)}
	s.mu.Unlock()
	return v, nil
}

// CreateFeed registers a partner feed. Conflict if the workspace has a feed
// of that name.
func (s *Consent) CreateFeed(ctx context.Context, f cdp.ConsentFeed) error {
	_, err := s.db.wr().ExecContext(ctx, `INSERT INTO consent_feeds (id, workspace_id, name, secret_sealed, created_at) VALUES ($1, $2, $3, $4, $5)`,
		f.ID, f.WorkspaceID, f.Name, f.SecretSealed, micros(f.CreatedAt))
	return s.db.dialect.translate(err)
}

// Feed returns a feed by id; NotFound if there is none.
func (s *Consent) Feed(ctx context.Context, id string) (cdp.ConsentFeed, error) {
	var (
		f       cdp.ConsentFeed
		created int64
	)
	err := s.db.rd().QueryRowContext(ctx, `SELECT id, workspace_id, name, secret_sealed, created_at FROM consent_feeds WHERE id = $1`, id).
		Scan(&f.ID, &f.WorkspaceID, &f.Name, &f.SecretSealed, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return f, cdp.Errorf(cdp.NotFound, "feed not found")
	}
	f.CreatedAt = fromMicros(created)
	return f, s.db.dialect.translate(err)
}

// Feeds lists a workspace's feeds (secrets sealed).
func (s *Consent) Feeds(ctx context.Context, ws cdp.WorkspaceID) ([]cdp.ConsentFeed, error) {
	rows, err := s.db.rd().QueryContext(ctx, `SELECT id, workspace_id, name, secret_sealed, created_at FROM consent_feeds WHERE workspace_id = $1 ORDER BY name`, ws)
	if err != nil {
		return nil, s.db.dialect.translate(err)
	}
	defer rows.Close()
	var out []cdp.ConsentFeed
	for rows.Next() {
		var (
			f       cdp.ConsentFeed
			created int64
		)
		if err := rows.Scan(&f.ID, &f.WorkspaceID, &f.Name, &f.SecretSealed, &created); err != nil {
			return nil, err
		}
		f.CreatedAt = fromMicros(created)
		out = append(out, f)
	}
	return out, rows.Err()
}

// DeleteFeed removes a workspace's feed; NotFound if there is none.
func (s *Consent) DeleteFeed(ctx context.Context, ws cdp.WorkspaceID, id string) error {
	res, err := s.db.wr().ExecContext(ctx, `DELETE FROM consent_feeds WHERE workspace_id = $1 AND id = $2`, ws, id)
	if err != nil {
		return s.db.dialect.translate(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return cdp.Errorf(cdp.NotFound, "feed not found")
	}
	return nil
}

// SigningKey returns the workspace's signing key id, public key and sealed
// private key; NotFound if it has none.
func (s *Consent) SigningKey(ctx context.Context, ws cdp.WorkspaceID) (string, []byte, []byte, error) {
	var (
		id          string
		pub, sealed []byte
	)
	err := s.db.rd().QueryRowContext(ctx, `SELECT key_id, public_key, private_sealed FROM signing_keys WHERE workspace_id = $1`, ws).
		Scan(&id, &pub, &sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil, nil, cdp.Errorf(cdp.NotFound, "no signing key")
	}
	return id, pub, sealed, s.db.dialect.translate(err)
}

// CreateSigningKey stores a key unless the workspace has one already, and
// returns the stored one.
func (s *Consent) CreateSigningKey(ctx context.Context, ws cdp.WorkspaceID, id string, pub, sealed []byte) (string, []byte, []byte, error) {
	if _, err := s.db.wr().ExecContext(ctx,
		`INSERT INTO signing_keys (workspace_id, key_id, public_key, private_sealed, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (workspace_id) DO NOTHING`,
		ws, id, pub, sealed, micros(time.Now())); err != nil {
		return "", nil, nil, s.db.dialect.translate(err)
	}
	return s.SigningKey(ctx, ws)
}

// PublicKeys returns every workspace's signing key id and public key.
func (s *Consent) PublicKeys(ctx context.Context) (map[string][]byte, error) {
	rows, err := s.db.rd().QueryContext(ctx, `SELECT key_id, public_key FROM signing_keys ORDER BY created_at`)
	if err != nil {
		return nil, s.db.dialect.translate(err)
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var (
			id  string
			pub []byte
		)
		if err := rows.Scan(&id, &pub); err != nil {
			return nil, err
		}
		out[id] = pub
	}
	return out, rows.Err()
}
