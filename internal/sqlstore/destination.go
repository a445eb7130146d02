package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
)

// Destinations stores a workspace's destinations.
type Destinations struct {
	db *DB

	mu    sync.Mutex
	cache map[cdp.WorkspaceID]cachedDestinations
}

type cachedDestinations struct {
	list  []cdp.Destination
	until time.Time
}

func newDestinations(db *DB) *Destinations {
	return &Destinations{db: db, cache: map[cdp.WorkspaceID]cachedDestinations{}}
}

// destinationConfig is the stored JSON of everything about a destination
// but its identity, endpoint and credentials.
type destinationConfig struct {
	Settings struct {
		BatchSize   int      `json:"batch_size,omitempty"`
		MaxAttempts int      `json:"max_attempts,omitempty"`
		MaxAge      int64    `json:"max_age_ms,omitempty"`
		Timeout     int64    `json:"timeout_ms,omitempty"`
		PinSHA256   []string `json:"pin_sha256,omitempty"`
		OpenDSRURL  string   `json:"opendsr_url,omitempty"`
	} `json:"settings"`
	Sources         []string `json:"sources,omitempty"`
	IncludeTypes    []string `json:"include_types,omitempty"`
	ExcludeTypes    []string `json:"exclude_types,omitempty"`
	IncludeEvents   []string `json:"include_events,omitempty"`
	ExcludeEvents   []string `json:"exclude_events,omitempty"`
	AllowTraits     []string `json:"allow_traits,omitempty"`
	DenyTraits      []string `json:"deny_traits,omitempty"`
	AllowProperties []string `json:"allow_properties,omitempty"`
	DenyProperties  []string `json:"deny_properties,omitempty"`
	DropIP          bool     `json:"drop_ip,omitempty"`
	HashEmail       bool     `json:"hash_email,omitempty"`
	SaleOrShare     bool     `json:"sale_or_share,omitempty"`
	ConsentPurposes []string `json:"consent_purposes,omitempty"`
	ConsentMode     string   `json:"consent_mode,omitempty"`
}

func strs[T ~string](in []T) []string {
	out := make([]string, len(in))
	for i, v := range in {
		out[i] = string(v)
	}
	return out
}

func typed[T ~string](in []string) []T {
	if len(in) == 0 {
		return nil
	}
	out := make([]T, len(in))
	for i, v := range in {
		out[i] = T(v)
	}
	return out
}

func toConfig(d *cdp.Destination) destinationConfig {
	var c destinationConfig
	c.Settings.BatchSize, c.Settings.MaxAttempts = d.Settings.BatchSize, d.Settings.MaxAttempts
	c.Settings.MaxAge, c.Settings.Timeout = d.Settings.MaxAge.Milliseconds(), d.Settings.Timeout.Milliseconds()
	c.Settings.PinSHA256, c.Settings.OpenDSRURL = d.Settings.PinSHA256, d.Settings.OpenDSRURL
	c.Sources = strs(d.Sources)
	c.IncludeTypes, c.ExcludeTypes = strs(d.Filter.IncludeTypes), strs(d.Filter.ExcludeTypes)
	c.IncludeEvents, c.ExcludeEvents = d.Filter.IncludeEvents, d.Filter.ExcludeEvents
	m := d.Minimisation
	c.AllowTraits, c.DenyTraits, c.AllowProperties, c.DenyProperties = m.AllowTraits, m.DenyTraits, m.AllowProperties, m.DenyProperties
	c.DropIP, c.HashEmail, c.SaleOrShare = m.DropIP, m.HashEmail, d.SaleOrShare
	c.ConsentPurposes, c.ConsentMode = strs(d.ConsentPurposes), string(d.ConsentMode)
	return c
}

func (c destinationConfig) apply(d *cdp.Destination) {
	d.Settings = cdp.DestinationSettings{BatchSize: c.Settings.BatchSize, MaxAttempts: c.Settings.MaxAttempts,
		MaxAge: time.Duration(c.Settings.MaxAge) * time.Millisecond, Timeout: time.Duration(c.Settings.Timeout) * time.Millisecond,
		PinSHA256: c.Settings.PinSHA256, OpenDSRURL: c.Settings.OpenDSRURL}
	d.Sources = typed[cdp.SourceID](c.Sources)
	d.Filter = cdp.EventFilter{IncludeTypes: typed[cdp.EventType](c.IncludeTypes), ExcludeTypes: typed[cdp.EventType](c.ExcludeTypes),
		IncludeEvents: c.IncludeEvents, ExcludeEvents: c.ExcludeEvents}
	d.Minimisation = cdp.Minimisation{AllowTraits: c.AllowTraits, DenyTraits: c.DenyTraits, AllowProperties: c.AllowProperties,
		DenyProperties: c.DenyProperties, DropIP: c.DropIP, HashEmail: c.HashEmail}
	d.SaleOrShare = c.SaleOrShare
	d.ConsentPurposes, d.ConsentMode = typed[cdp.PurposeKey](c.ConsentPurposes), cdp.ConsentMode(c.ConsentMode)
}

const destinationColumns = `id, workspace_id, name, type, enabled, endpoint, credentials_sealed, config, created_at, updated_at`

func scanDestination(row interface{ Scan(...any) error }) (cdp.Destination, error) {
	var (
		d                cdp.Destination
		enabled          int64
		cfg              string
		created, updated int64
	)
	if err := row.Scan(&d.ID, &d.WorkspaceID, &d.Name, &d.Type, &enabled, &d.Endpoint, &d.CredentialsSealed, &cfg, &created, &updated); err != nil {
		return d, err
	}
	var c destinationConfig
	if err := json.Unmarshal([]byte(cfg), &c); err != nil {
		return d, err
	}
	c.apply(&d)
	d.Enabled, d.CreatedAt, d.UpdatedAt = enabled != 0, fromMicros(created), fromMicros(updated)
	return d, nil
}

// Create stores a new destination.
func (s *Destinations) Create(ctx context.Context, d cdp.Destination) error {
	cfg, err := json.Marshal(toConfig(&d))
	if err != nil {
		return err
	}
	_, err = s.db.wr().ExecContext(ctx, `INSERT INTO destinations (`+destinationColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		d.ID, d.WorkspaceID, d.Name, string(d.Type), boolInt(d.Enabled), d.Endpoint, d.CredentialsSealed, string(cfg), micros(d.CreatedAt), micros(d.UpdatedAt))
	s.forget(d.WorkspaceID)
	return s.db.dialect.translate(err)
}

// Update replaces a destination's settings; credentials change only when
// d.CredentialsSealed is non-nil. NotFound if the workspace has no such
// destination.
func (s *Destinations) Update(ctx context.Context, d cdp.Destination) error {
	cfg, err := json.Marshal(toConfig(&d))
	if err != nil {
		return err
	}
	res, err := s.db.wr().ExecContext(ctx,
		`UPDATE destinations SET name = $1, enabled = $2, endpoint = $3, credentials_sealed = COALESCE($4, credentials_sealed), config = $5, updated_at = $6
		 WHERE id = $7 AND workspace_id = $8`,
		d.Name, boolInt(d.Enabled), d.Endpoint, d.CredentialsSealed, string(cfg), micros(d.UpdatedAt), d.ID, d.WorkspaceID)
	s.forget(d.WorkspaceID)
	if err != nil {
		return s.db.dialect.translate(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return cdp.Errorf(cdp.NotFound, "destination not found")
	}
	return nil
}

// Get returns a destination; NotFound if the workspace has none by id.
func (s *Destinations) Get(ctx context.Context, ws cdp.WorkspaceID, id cdp.DestinationID) (cdp.Destination, error) {
	d, err := scanDestination(s.db.rd().QueryRowContext(ctx, `SELECT `+destinationColumns+` FROM destinations WHERE id = $1 AND workspace_id = $2`, id, ws))
	if errors.Is(err, sql.ErrNoRows) {
		return d, cdp.Errorf(cdp.NotFound, "destination not found")
	}
	return d, s.db.dialect.translate(err)
}

// List returns a workspace's destinations, oldest first; All those of every
// workspace.
func (s *Destinations) List(ctx context.Context, ws cdp.WorkspaceID) ([]cdp.Destination, error) {
	return s.query(ctx, `SELECT `+destinationColumns+` FROM destinations WHERE workspace_id = $1 ORDER BY created_at, id`, ws)
}

// All returns every destination of every workspace.
func (s *Destinations) All(ctx context.Context) ([]cdp.Destination, error) {
	return s.query(ctx, `SELECT `+destinationColumns+` FROM destinations ORDER BY created_at, id`)
}

func (s *Destinations) query(ctx context.Context, q string, args ...any) ([]cdp.Destination, error) {
	rows, err := s.db.rd().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.db.dialect.translate(err)
	}
	defer rows.Close()
	var out []cdp.Destination
	for rows.Next() {
		d, err := scanDestination(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Delete removes a destination and its delivery records; NotFound if there
// is none.
func (s *Destinations) Delete(ctx context.Context, ws cdp.WorkspaceID, id cdp.DestinationID) error {
	err := s.db.tx(ctx, func(tx querier) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM destinations WHERE id = $1 AND workspace_id = $2`, id, ws)
		if err != nil {
			return s.db.dialect.translate(err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return cdp.Errorf(cdp.NotFound, "destination not found")
		}
		for _, q := range []string{`DELETE FROM deliveries WHERE destination_id = $1`, `DELETE FROM dead_letters WHERE destination_id = $1`} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return s.db.dialect.translate(err)
			}
		}
		return nil
	})
	s.forget(ws)
	return err
}

func (s *Destinations) forget(ws cdp.WorkspaceID) {
	s.mu.Lock()
	delete(s.cache, ws)
	s.mu.Unlock()
}

// forWorkspace is List cached for a few seconds, for the processor.
func (s *Destinations) forWorkspace(ctx context.Context, ws cdp.WorkspaceID) ([]cdp.Destination, error) {
	s.mu.Lock()
	c, ok := s.cache[ws]
	s.mu.Unlock()
	if ok && s.db.cached(c.until) {
		return c.list, nil
	}
	list, err := s.List(ctx, ws)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.cache[ws] = cachedDestinations{list: list, until: time.Now().Add(2 * time.Second)}
	s.mu.Unlock()
	return list, nil
}
