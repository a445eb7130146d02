package sqlstore

import (
	"context"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/consent"
	"github.com/custos-cdp/custos/internal/identity"
	"github.com/custos-cdp/custos/internal/vault"
)

// settings is what a write transaction needs of a workspace's cached
// settings: its keys, identity rules, consent vocabulary and destinations.
// It is loaded before the transaction begins, because inside one no store
// may take a second connection from the pool: on PostgreSQL, once every
// pooled connection is held by a transaction waiting for one more, nothing
// ever moves again, and on SQLite the one writer connection is the
// transaction's own.
type settings struct {
	keys  *vault.Keys
	rules identity.Rules
	voc   consent.Vocabulary
	dests []cdp.Destination
}

// settings loads a workspace's settings from the caches (or the database).
// It must not be called inside a transaction.
func (s *Profiles) settings(ctx context.Context, ws cdp.WorkspaceID) (*settings, error) {
	var (
		st  settings
		err error
	)
	if st.keys, err = s.vault.Keys(ctx, ws); err != nil {
		return nil, err
	}
	if st.rules, err = s.rules.Get(ctx, ws); err != nil {
		return nil, err
	}
	if st.voc, err = s.consent.Vocabulary(ctx, ws); err != nil {
		return nil, err
	}
	if st.dests, err = s.dests.forWorkspace(ctx, ws); err != nil {
		return nil, err
	}
	return &st, nil
}

// settingsOf loads the settings of every workspace of events.
func (s *Profiles) settingsOf(ctx context.Context, events []cdp.Event) (map[cdp.WorkspaceID]*settings, error) {
	out := map[cdp.WorkspaceID]*settings{}
	for i := range events {
		ws := events[i].WorkspaceID
		if out[ws] != nil {
			continue
		}
		st, err := s.settings(ctx, ws)
		if err != nil {
			return nil, err
		}
		out[ws] = st
	}
	return out, nil
}
