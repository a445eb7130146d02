package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/consent"
	"github.com/custos-cdp/custos/internal/sqlstore"
)

func withConsent(sigs ...cdp.ConsentSignal) evOpt {
	return func(e *cdp.Event) { e.Consent = append(e.Consent, sigs...) }
}

func gpc() evOpt { return func(e *cdp.Event) { e.GPC = true } }

func signal(purpose string, granted bool, collected time.Duration) cdp.ConsentSignal {
	return cdp.ConsentSignal{Vocabulary: cdp.ConsentMParticleGDPR, Key: purpose, Purpose: cdp.PurposeKey(purpose), Granted: granted,
		CollectedAt: t0.Add(collected), Document: "v4", Location: "loc-canary", HardwareID: "hw-canary"}
}

func addPurpose(t *testing.T, p *sqlstore.Profiles, key string, regime cdp.Regime) {
	t.Helper()
	if _, err := p.Consent().PutPurpose(context.Background(), cdp.Purpose{WorkspaceID: ws, Key: cdp.PurposeKey(key), Name: key,
		Regime: regime, DocumentVersion: "v4", CreatedAt: t0, UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
}

func currentOf(t *testing.T, p *sqlstore.Profiles, id cdp.ProfileID) map[cdp.PurposeKey]cdp.ConsentEntry {
	t.Helper()
	h, err := p.ConsentHistory(context.Background(), ws, id)
	if err != nil {
		t.Fatal(err)
	}
	return consent.Current(h)
}

func TestLedgerAppendsAndDerives(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqlstore.DB) {
		p := newProfiles(t, db)
		addPurpose(t, p, "marketing", cdp.OptIn)
		ctx := context.Background()
		res := apply(t, p,
			ev("c1", cdp.Identify, ids("user_id", "u1"), withConsent(signal("marketing", true, 0))),
			// Older choice arriving later: history only, no change.
			ev("c2", cdp.Identify, ids("user_id", "u1"), withConsent(signal("marketing", false, -time.Hour))),
			ev("c3", cdp.Track, ids("user_id", "u1"), gpc()),
			ev("c4", cdp.Track, ids("user_id", "u1"), gpc()), // sticky: no second entry
		)
		if res.ConsentEntries != 4 || res.ConsentChanges != 3 {
			t.Errorf("got %d entries and %d changes, want 4 (marketing twice, sale and sharing by GPC) and 3", res.ConsentEntries, res.ConsentChanges)
		}
		id := find(t, p, cdp.UserID, "u1")
		hist, err := p.ConsentHistory(ctx, ws, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != 4 {
			t.Fatalf("ledger has %d entries, want 4", len(hist))
		}
		for _, e := range hist {
			if e.MessageID == "c1" && (e.Location != "loc-canary" || e.HardwareID != "hw-canary") {
				t.Errorf("personal fields of an entry did not round-trip: %+v", e)
			}
		}
		cur := consent.Current(hist)
		if cur["marketing"].State != cdp.Granted || cur[cdp.PurposeSale].Source != cdp.SourceGPC || cur[cdp.PurposeSharing].State != cdp.Denied {
			t.Errorf("current: marketing %s, sale %s/%s, sharing %s", cur["marketing"].State, cur[cdp.PurposeSale].State, cur[cdp.PurposeSale].Source, cur[cdp.PurposeSharing].State)
		}
		n, err := db.Outbox().Len(ctx)
		if err != nil || n != 3 {
			t.Errorf("outbox holds %d records (%v), want 3 consent changes", n, err)
		}
		// A purpose with entries cannot be deleted, only retired.
		if err := p.Consent().DeletePurpose(ctx, ws, "marketing"); !cdp.IsKind(err, cdp.Conflict) {
			t.Errorf("delete a purpose in use: %v, want Conflict", err)
		}
		addPurpose(t, p, "unused", cdp.OptIn)
		if err := p.Consent().DeletePurpose(ctx, ws, "unused"); err != nil {
			t.Errorf("delete an unused purpose: %v", err)
		}
	})
}

func TestLedgerMergeAndSplit(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqlstore.DB) {
		p := newProfiles(t, db)
		addPurpose(t, p, "marketing", cdp.OptIn)
		ctx := context.Background()
		apply(t, p,
			// Anonymous device: consents to marketing and sends GPC.
			ev("a1", cdp.Track, ids("anonymous_id", "anon"), withConsent(signal("marketing", true, 0)), gpc()),
			// Known user on another device: allowed sale explicitly, later.
			ev("u1", cdp.Identify, ids("user_id", "user"), withConsent(cdp.ConsentSignal{Vocabulary: cdp.ConsentMParticleCCPA,
				Key: "data_sale_opt_out", Purpose: cdp.PurposeSale, Granted: true, CollectedAt: t0.Add(time.Hour)})),
		)
		anon, user := find(t, p, cdp.AnonymousID, "anon"), find(t, p, cdp.UserID, "user")
		res := apply(t, p, ev("login", cdp.Identify, ids("anonymous_id", "anon", "user_id", "user"), at(2*time.Hour)))
		if res.Merges != 1 {
			t.Fatalf("got %d merges, want 1", res.Merges)
		}
		cur := currentOf(t, p, user)
		if cur["marketing"].State != cdp.Granted {
			t.Errorf("anonymous consent did not carry over: marketing %s", cur["marketing"].State)
		}
		if cur[cdp.PurposeSale].State != cdp.Denied || cur[cdp.PurposeSale].Source != cdp.SourceMerge {
			t.Errorf("sale after merge: %s from %s, want denied carried by the merge (GPC on a linked device)", cur[cdp.PurposeSale].State, cur[cdp.PurposeSale].Source)
		}
		merges, _ := p.Merges(ctx, ws, user)
		if _, err := p.Split(ctx, ws, merges[0].ID); err != nil {
			t.Fatal(err)
		}
		if cur := currentOf(t, p, user); cur[cdp.PurposeSale].State != cdp.Granted || cur["marketing"].State != "" {
			t.Errorf("after split the user has sale %s and marketing %q, want granted and none", cur[cdp.PurposeSale].State, cur["marketing"].State)
		}
		if cur := currentOf(t, p, anon); cur["marketing"].State != cdp.Granted || cur[cdp.PurposeSale].Source != cdp.SourceGPC {
			t.Errorf("after split the device has marketing %s and sale from %s, want granted and gpc", cur["marketing"].State, cur[cdp.PurposeSale].Source)
		}
	})
}
