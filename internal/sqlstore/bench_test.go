package sqlstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/sqlstore"
	"github.com/custos-cdp/custos/internal/testenv"
)

// BenchmarkLedgerWrite measures the processor's write path for one event
// of a known person, without and with a consent change in it (the consent
// change appends a ledger entry sealed under the person's key, derives the
// new state and writes an outbox record). The difference is the ledger
// write's cost. PostgreSQL runs when CUSTOS_TEST_POSTGRES_URL is set.
func BenchmarkLedgerWrite(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		for _, withConsent := range []bool{false, true} {
			name := fmt.Sprintf("%s/consent=%v", backend, withConsent)
			b.Run(name, func(b *testing.B) {
				var cfg sqlstore.Config
				if backend == "sqlite" {
					cfg.Path = filepath.Join(b.TempDir(), "custos.db")
				} else {
					cfg.URL = testenv.PostgresURL(b)
				}
				p := newProfiles(b, openDB(b, cfg))
				ctx := context.Background()
				if _, err := p.Consent().PutPurpose(ctx, cdp.Purpose{WorkspaceID: ws, Key: "marketing", Name: "marketing",
					Regime: cdp.OptIn, DocumentVersion: "v4", CreatedAt: t0, UpdatedAt: t0}); err != nil {
					b.Fatal(err)
				}
				const people = 200
				for i := range people { // every person exists before timing
					if _, err := p.Apply(ctx, []cdp.Event{ev(fmt.Sprintf("warm-%d", i), cdp.Identify, ids("user_id", fmt.Sprintf("u%d", i)))}); err != nil {
						b.Fatal(err)
					}
				}
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					e := ev(fmt.Sprintf("m-%d", i), cdp.Track, ids("user_id", fmt.Sprintf("u%d", i%people)), at(time.Duration(i)*time.Millisecond))
					if withConsent {
						e.Consent = []cdp.ConsentSignal{{Vocabulary: cdp.ConsentMParticleGDPR, Key: "marketing", Purpose: "marketing",
							Granted: i%2 == 0, CollectedAt: t0.Add(time.Duration(i) * time.Millisecond), Document: "v4", Location: "example.com"}}
					}
					if _, err := p.Apply(ctx, []cdp.Event{e}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
