package consent

import (
	"testing"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
)

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func entry(id string, p cdp.PurposeKey, s cdp.ConsentState, collected, received time.Duration, opts ...func(*cdp.ConsentEntry)) cdp.ConsentEntry {
	e := cdp.ConsentEntry{ID: cdp.ConsentEntryID(id), Purpose: p, State: s, CollectedAt: t0.Add(collected), ReceivedAt: t0.Add(received), Source: cdp.SourceSDK}
	for _, o := range opts {
		o(&e)
	}
	return e
}

func doc(v string) func(*cdp.ConsentEntry) { return func(e *cdp.ConsentEntry) { e.Document = v } }

func source(s cdp.ConsentSource) func(*cdp.ConsentEntry) {
	return func(e *cdp.ConsentEntry) { e.Source = s }
}

var purposes = map[cdp.PurposeKey]cdp.Purpose{
	"marketing":        {Key: "marketing", Regime: cdp.OptIn, DocumentVersion: "v4"},
	"analytics":        {Key: "analytics", Regime: cdp.OptIn},
	"personalization":  {Key: "personalization", Regime: cdp.OptIn, DocumentVersion: "v2", RequireCurrentDocument: true},
	cdp.PurposeSale:    {Key: cdp.PurposeSale, Regime: cdp.OptOut},
	cdp.PurposeSharing: {Key: cdp.PurposeSharing, Regime: cdp.OptOut},
}

func TestCurrentLatestCollectedWins(t *testing.T) {
	ledger := []cdp.ConsentEntry{
		entry("a", "marketing", cdp.Granted, 0, 0),
		entry("b", "marketing", cdp.Withdrawn, 10*time.Minute, 10*time.Minute),
		// Collected before b but received after it: history only.
		entry("c", "marketing", cdp.Granted, 5*time.Minute, 20*time.Minute),
		// Same collected-at as d, received later: wins the tie.
		entry("d", "analytics", cdp.Denied, time.Minute, time.Minute),
		entry("e", "analytics", cdp.Granted, time.Minute, 2*time.Minute),
	}
	cur := Current(ledger)
	if got := cur["marketing"].ID; got != "b" {
		t.Errorf("marketing: current entry %s, want b", got)
	}
	if got := cur["analytics"].ID; got != "e" {
		t.Errorf("analytics: current entry %s, want e (tie goes to the later arrival)", got)
	}
	if got := StateOf(cur, "personalization"); got != cdp.Unknown {
		t.Errorf("no entries: %s, want unknown", got)
	}
	// As of before b arrived, a was current.
	if got := At(ledger, t0.Add(9*time.Minute))["marketing"].ID; got != "a" {
		t.Errorf("state at 9m: entry %s, want a", got)
	}
	old, nw, changed := Change(cur, entry("f", "marketing", cdp.Granted, time.Minute, 30*time.Minute))
	if changed || old != cdp.Withdrawn || nw != cdp.Withdrawn {
		t.Errorf("late old entry: %s -> %s changed=%v, want no change", old, nw, changed)
	}
	old, nw, changed = Change(cur, entry("g", "marketing", cdp.Granted, time.Hour, time.Hour))
	if !changed || old != cdp.Withdrawn || nw != cdp.Granted {
		t.Errorf("new grant: %s -> %s changed=%v, want withdrawn -> granted", old, nw, changed)
	}
}

func TestDecide(t *testing.T) {
	granted := func(p cdp.PurposeKey, opts ...func(*cdp.ConsentEntry)) cdp.ConsentEntry {
		return entry("x", p, cdp.Granted, 0, 0, opts...)
	}
	tests := []struct {
		name   string
		rule   Rule
		ledger []cdp.ConsentEntry
		allow  bool
		reason string
	}{
		{"granted", Rule{Purposes: []cdp.PurposeKey{"marketing"}}, []cdp.ConsentEntry{granted("marketing")}, true, ""},
		{"unknown is not granted", Rule{Purposes: []cdp.PurposeKey{"marketing"}}, nil, false, "purpose_not_granted"},
		{"denied", Rule{Purposes: []cdp.PurposeKey{"marketing"}}, []cdp.ConsentEntry{entry("x", "marketing", cdp.Denied, 0, 0)}, false, "purpose_denied"},
		{"withdrawn", Rule{Purposes: []cdp.PurposeKey{"marketing"}},
			[]cdp.ConsentEntry{granted("marketing"), entry("y", "marketing", cdp.Withdrawn, time.Hour, time.Hour)}, false, "purpose_withdrawn"},
		{"undefined purpose fails closed", Rule{Purposes: []cdp.PurposeKey{"telepathy"}}, []cdp.ConsentEntry{granted("telepathy")}, false, "purpose_unknown"},
		{"all of: one missing", Rule{Purposes: []cdp.PurposeKey{"marketing", "analytics"}, Mode: All}, []cdp.ConsentEntry{granted("marketing")}, false, "purpose_not_granted"},
		{"all of: both", Rule{Purposes: []cdp.PurposeKey{"marketing", "analytics"}, Mode: All}, []cdp.ConsentEntry{granted("marketing"), granted("analytics")}, true, ""},
		{"any of: one", Rule{Purposes: []cdp.PurposeKey{"marketing", "analytics"}, Mode: Any}, []cdp.ConsentEntry{granted("analytics")}, true, ""},
		{"any of: none", Rule{Purposes: []cdp.PurposeKey{"marketing", "analytics"}, Mode: Any}, nil, false, "no_purpose_granted"},
		{"expired document", Rule{Purposes: []cdp.PurposeKey{"personalization"}}, []cdp.ConsentEntry{granted("personalization", doc("v1"))}, false, "document_expired"},
		{"current document", Rule{Purposes: []cdp.PurposeKey{"personalization"}}, []cdp.ConsentEntry{granted("personalization", doc("v2"))}, true, ""},
		{"old document without renewal needed", Rule{Purposes: []cdp.PurposeKey{"marketing"}}, []cdp.ConsentEntry{granted("marketing", doc("v1"))}, true, ""},
		{"sale allowed by default", Rule{SaleOrShare: true}, nil, true, ""},
		{"ccpa opt-out blocks a sale", Rule{SaleOrShare: true, Purposes: []cdp.PurposeKey{"marketing"}},
			[]cdp.ConsentEntry{granted("marketing"), entry("s", cdp.PurposeSale, cdp.Denied, 0, 0)}, false, "data_sale_opt_out"},
		{"sharing opt-out blocks a share", Rule{SaleOrShare: true}, []cdp.ConsentEntry{entry("s", cdp.PurposeSharing, cdp.Denied, 0, 0)}, false, "sharing_opt_out"},
		{"gpc blocks a sale", Rule{SaleOrShare: true}, []cdp.ConsentEntry{entry("g", cdp.PurposeSale, cdp.Denied, 0, 0, source(cdp.SourceGPC))}, false, "gpc"},
		{"gpc does not block a non-sale", Rule{Purposes: []cdp.PurposeKey{"marketing"}},
			[]cdp.ConsentEntry{granted("marketing"), entry("g", cdp.PurposeSale, cdp.Denied, 0, 0, source(cdp.SourceGPC))}, true, ""},
		{"opt-out purpose required and not opted out", Rule{Purposes: []cdp.PurposeKey{cdp.PurposeSale}}, nil, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(tt.rule, Person{Current: Current(tt.ledger), Purposes: purposes})
			if d.Allowed != tt.allow || d.Reason != tt.reason {
				t.Errorf("got allowed=%v reason=%q, want allowed=%v reason=%q", d.Allowed, d.Reason, tt.allow, tt.reason)
			}
		})
	}
}

func TestMergeCarryOver(t *testing.T) {
	at := t0.Add(24 * time.Hour)
	tests := []struct {
		name             string
		survivor, merged []cdp.ConsentEntry
		wantSale         cdp.ConsentState // after appending the carried entries
		wantMarketing    cdp.ConsentState
		carried          int
	}{
		{
			name:          "opt-out on the other device applies to the person",
			survivor:      []cdp.ConsentEntry{entry("s1", cdp.PurposeSale, cdp.Granted, 2*time.Hour, 2*time.Hour)},
			merged:        []cdp.ConsentEntry{entry("m1", cdp.PurposeSale, cdp.Denied, time.Hour, time.Hour, source(cdp.SourceGPC))},
			wantSale:      cdp.Denied,
			wantMarketing: cdp.Unknown,
			carried:       1,
		},
		{
			name:          "anonymous consent carries over",
			survivor:      nil,
			merged:        []cdp.ConsentEntry{entry("m1", "marketing", cdp.Granted, time.Hour, time.Hour)},
			wantSale:      cdp.Unknown,
			wantMarketing: cdp.Granted,
		},
		{
			name:          "already most restrictive: nothing to add",
			survivor:      []cdp.ConsentEntry{entry("s1", cdp.PurposeSale, cdp.Denied, 2*time.Hour, 2*time.Hour)},
			merged:        []cdp.ConsentEntry{entry("m1", cdp.PurposeSale, cdp.Granted, 3*time.Hour, 3*time.Hour)},
			wantSale:      cdp.Denied,
			wantMarketing: cdp.Unknown,
			carried:       1, // the merged profile's later grant would win the combined ledger
		},
		{
			name:          "opt-in: the latest choice wins across devices",
			survivor:      []cdp.ConsentEntry{entry("s1", "marketing", cdp.Granted, time.Hour, time.Hour)},
			merged:        []cdp.ConsentEntry{entry("m1", "marketing", cdp.Withdrawn, 2*time.Hour, 2*time.Hour)},
			wantSale:      cdp.Unknown,
			wantMarketing: cdp.Withdrawn,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			carried := MergeCarryOver(tt.survivor, tt.merged, purposes, at)
			if len(carried) != tt.carried {
				t.Fatalf("carried %d entries, want %d", len(carried), tt.carried)
			}
			all := append(append(append([]cdp.ConsentEntry{}, tt.survivor...), tt.merged...), carried...)
			cur := Current(all)
			if got := StateOf(cur, cdp.PurposeSale); got != tt.wantSale {
				t.Errorf("sale: %s, want %s", got, tt.wantSale)
			}
			if got := StateOf(cur, "marketing"); got != tt.wantMarketing {
				t.Errorf("marketing: %s, want %s", got, tt.wantMarketing)
			}
			for _, c := range carried {
				if c.Source != cdp.SourceMerge || !c.CollectedAt.Equal(at) {
					t.Errorf("carried entry %+v: want source merge collected at the merge", c)
				}
			}
		})
	}
	// GPC carried by a merge still reads as GPC.
	survivor := []cdp.ConsentEntry{entry("s1", cdp.PurposeSale, cdp.Granted, time.Hour, time.Hour)}
	merged := []cdp.ConsentEntry{entry("m1", cdp.PurposeSale, cdp.Denied, 0, 0, source(cdp.SourceGPC))}
	carried := MergeCarryOver(survivor, merged, purposes, at)
	all := append(append(survivor, merged...), carried...)
	if d := Decide(Rule{SaleOrShare: true}, Person{Current: Current(all), Purposes: purposes}); d.Reason != "gpc" {
		t.Errorf("merged gpc: reason %q, want gpc", d.Reason)
	}
}
