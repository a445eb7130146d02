package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/identity"
)

// IdentityRules stores each workspace's identity resolution rules.
type IdentityRules struct {
	db *DB

	mu    sync.Mutex
	cache map[cdp.WorkspaceID]cachedRules
}

type cachedRules struct {
	rules identity.Rules
	until time.Time
}

// rulesJSON is the stored form of identity.Rules.
type rulesJSON struct {
	Unique       []string       `json:"unique"`
	Limits       map[string]int `json:"limits"`
	DefaultLimit int            `json:"default_limit"`
	Blocked      []string       `json:"blocked"`
}

func toRulesJSON(r identity.Rules) rulesJSON {
	j := rulesJSON{Limits: map[string]int{}, DefaultLimit: r.DefaultLimit, Blocked: r.Blocked}
	for _, t := range r.Unique {
		j.Unique = append(j.Unique, string(t))
	}
	for t, n := range r.Limits {
		j.Limits[string(t)] = n
	}
	return j
}

func (j rulesJSON) rules() identity.Rules {
	r := identity.Rules{Limits: map[cdp.IdentityType]int{}, DefaultLimit: j.DefaultLimit, Blocked: j.Blocked}
	for _, t := range j.Unique {
		r.Unique = append(r.Unique, cdp.IdentityType(t))
	}
	for t, n := range j.Limits {
		r.Limits[cdp.IdentityType(t)] = n
	}
	return r
}

// Get returns a workspace's rules, or the defaults if it never set any.
// Rules are cached for a few seconds.
func (s *IdentityRules) Get(ctx context.Context, ws cdp.WorkspaceID) (identity.Rules, error) {
	s.mu.Lock()
	c, ok := s.cache[ws]
	s.mu.Unlock()
	if ok && s.db.cached(c.until) {
		return c.rules, nil
	}
	var raw string
	err := s.db.rd().QueryRowContext(ctx, `SELECT rules FROM identity_rules WHERE workspace_id = $1`, ws).Scan(&raw)
	rules := identity.DefaultRules()
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return rules, s.db.dialect.translate(err)
	default:
		var j rulesJSON
		if err := json.Unmarshal([]byte(raw), &j); err != nil {
			return rules, err
		}
		rules = j.rules()
	}
	s.mu.Lock()
	s.cache[ws] = cachedRules{rules: rules, until: time.Now().Add(5 * time.Second)}
	s.mu.Unlock()
	return rules, nil
}

// Set validates and stores a workspace's rules.
func (s *IdentityRules) Set(ctx context.Context, ws cdp.WorkspaceID, r identity.Rules) error {
	if err := r.Validate(); err != nil {
		return err
	}
	b, err := json.Marshal(toRulesJSON(r))
	if err != nil {
		return err
	}
	_, err = s.db.wr().ExecContext(ctx,
		`INSERT INTO identity_rules (workspace_id, rules, updated_at) VALUES ($1, $2, $3)
		 ON CONFLICT (workspace_id) DO UPDATE SET rules = excluded.rules, updated_at = excluded.updated_at`,
		ws, string(b), micros(time.Now()))
	if err != nil {
		return s.db.dialect.translate(err)
	}
	s.mu.Lock()
	delete(s.cache, ws)
	s.mu.Unlock()
	return nil
}
