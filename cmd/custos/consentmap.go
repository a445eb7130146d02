package main

import (
	"context"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/ingest"
	"github.com/custos-cdp/custos/internal/sqlstore"
)

// consentMapper gives the gateway each workspace's consent vocabulary.
type consentMapper struct{ store *sqlstore.Consent }

var _ ingest.ConsentMapper = consentMapper{}

func (m consentMapper) MapConsent(ctx context.Context, ws cdp.WorkspaceID, signals []cdp.ConsentSignal) ([]cdp.ConsentSignal, []ingest.ConsentProblem, error) {
	voc, err := m.store.Vocabulary(ctx, ws)
	if err != nil {
		return nil, nil, err
	}
	mapped, rejected := voc.Resolve(signals)
	problems := make([]ingest.ConsentProblem, len(rejected))
	for i, r := range rejected {
		problems[i] = ingest.ConsentProblem{Vocabulary: string(r.Vocabulary), Key: r.Key, Reason: r.Reason, Detail: r.Detail}
	}
	return mapped, problems, nil
}
