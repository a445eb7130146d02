package forward

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/consent"
)

var purposes = map[cdp.PurposeKey]cdp.Purpose{
	"marketing":        {Key: "marketing", Regime: cdp.OptIn},
	cdp.PurposeSale:    {Key: cdp.PurposeSale, Regime: cdp.OptOut},
	cdp.PurposeSharing: {Key: cdp.PurposeSharing, Regime: cdp.OptOut},
}

func person(entries ...cdp.ConsentEntry) consent.Person {
	return consent.Person{Current: consent.Current(entries), Purposes: purposes}
}

func grant(p cdp.PurposeKey, s cdp.ConsentState, src cdp.ConsentSource) cdp.ConsentEntry {
	return cdp.ConsentEntry{ID: "e-" + cdp.ConsentEntryID(p), Purpose: p, State: s, Source: src, CollectedAt: time.Unix(1, 0)}
}

func TestDecideOrder(t *testing.T) {
	ev := &cdp.Event{SourceID: "web", Type: cdp.Track, Name: "Order Completed"}
	base := cdp.Destination{ID: "d", Enabled: true, ConsentPurposes: []cdp.PurposeKey{"marketing"}}
	granted := person(grant("marketing", cdp.Granted, cdp.SourceSDK))
	tests := []struct {
		name   string
		mod    func(*cdp.Destination)
		person consent.Person
		want   string // "" means forwarded
	}{
		{"forwarded", nil, granted, ""},
		{"source not connected comes first", func(d *cdp.Destination) { d.Sources = []cdp.SourceID{"app"}; d.Enabled = false }, granted, "source_not_connected"},
		{"paused before filters", func(d *cdp.Destination) { d.Enabled = false; d.Filter.ExcludeTypes = []cdp.EventType{cdp.Track} }, granted, "paused"},
		{"excluded type", func(d *cdp.Destination) { d.Filter.ExcludeTypes = []cdp.EventType{cdp.Track} }, granted, "event_type_excluded"},
		{"not in include types", func(d *cdp.Destination) { d.Filter.IncludeTypes = []cdp.EventType{cdp.Identify} }, granted, "event_type_excluded"},
		{"excluded name", func(d *cdp.Destination) { d.Filter.ExcludeEvents = []string{"Order Completed"} }, granted, "event_name_excluded"},
		{"filter before consent", func(d *cdp.Destination) { d.Filter.ExcludeEvents = []string{"Order Completed"} }, person(), "event_name_excluded"},
		{"no consent: fail closed", nil, person(), "consent:purpose_not_granted"},
		{"withdrawn", nil, person(grant("marketing", cdp.Withdrawn, cdp.SourceSDK)), "consent:purpose_withdrawn"},
		{"sale blocked by ccpa opt-out", func(d *cdp.Destination) { d.SaleOrShare = true },
			person(grant("marketing", cdp.Granted, cdp.SourceSDK), grant(cdp.PurposeSale, cdp.Denied, cdp.SourceSDK)), "consent:data_sale_opt_out"},
		{"sale blocked by gpc", func(d *cdp.Destination) { d.SaleOrShare = true },
			person(grant("marketing", cdp.Granted, cdp.SourceSDK), grant(cdp.PurposeSharing, cdp.Denied, cdp.SourceGPC)), "consent:gpc"},
		{"gpc does not block a non-sale", nil,
			person(grant("marketing", cdp.Granted, cdp.SourceSDK), grant(cdp.PurposeSale, cdp.Denied, cdp.SourceGPC)), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := base
			if tt.mod != nil {
				tt.mod(&d)
			}
			got := Decide(&d, ev, tt.person)
			if got.Forward != (tt.want == "") || got.Reason != tt.want {
				t.Errorf("got forward=%v reason=%q, want reason %q", got.Forward, got.Reason, tt.want)
			}
		})
	}
}

func TestDecideConsentChange(t *testing.T) {
	withdrawn := &cdp.ConsentChange{Entry: grant("marketing", cdp.Withdrawn, cdp.SourceSDK), Old: cdp.Granted, New: cdp.Withdrawn}
	afterWithdrawal := person(grant("marketing", cdp.Withdrawn, cdp.SourceSDK))
	neverAsked := &cdp.ConsentChange{Entry: grant("marketing", cdp.Denied, cdp.SourceSDK), Old: cdp.Unknown, New: cdp.Denied}
	afterDenial := person(grant("marketing", cdp.Denied, cdp.SourceSDK))
	granted := &cdp.ConsentChange{Entry: grant("marketing", cdp.Granted, cdp.SourceSDK), Old: cdp.Unknown, New: cdp.Granted}
	afterGrant := person(grant("marketing", cdp.Granted, cdp.SourceSDK))
	optOut := &cdp.ConsentChange{Entry: grant(cdp.PurposeSale, cdp.Denied, cdp.SourceSDK), Old: cdp.Unknown, New: cdp.Denied}
	afterOptOut := person(grant(cdp.PurposeSale, cdp.Denied, cdp.SourceSDK))
	marketing := cdp.Destination{Enabled: true, ConsentPurposes: []cdp.PurposeKey{"marketing"}}
	tests := []struct {
		name   string
		d      cdp.Destination
		change *cdp.ConsentChange
		person consent.Person
		want   bool
	}{
		{"covered purpose: withdrawal delivered", marketing, withdrawn, afterWithdrawal, true},
		{"grant delivered", marketing, granted, afterGrant, true},
		{"never consented: the tool does not learn of the person", marketing, neverAsked, afterDenial, false},
		{"other purpose", cdp.Destination{Enabled: true, ConsentPurposes: []cdp.PurposeKey{"analytics"}}, withdrawn, afterWithdrawal, false},
		{"raw takes every change", cdp.Destination{Enabled: true, Type: cdp.DestinationRaw}, neverAsked, afterDenial, true},
		{"paused", cdp.Destination{ConsentPurposes: []cdp.PurposeKey{"marketing"}}, withdrawn, afterWithdrawal, false},
		{"opt-out of sale reaches a sale destination", cdp.Destination{Enabled: true, SaleOrShare: true}, optOut, afterOptOut, true},
		{"opt-out of sale is not a plain destination's business", cdp.Destination{Enabled: true}, optOut, afterOptOut, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DecideConsentChange(&tt.d, tt.change, "web", tt.person).Forward; got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMinimise(t *testing.T) {
	ev := cdp.Event{
		IP:         "203.0.113.5",
		Identities: []cdp.Identity{{Type: cdp.Email, Value: "ada@example.com"}, {Type: cdp.UserID, Value: "u1"}},
		Traits:     json.RawMessage(`{"email":"ada@example.com","plan":"pro","ssn":"123"}`),
		Properties: json.RawMessage(`{"order_id":"o1","revenue":9.5,"card":"4111"}`),
		Context:    json.RawMessage(`{"ip":"203.0.113.5","locale":"en"}`),
		Consent:    []cdp.ConsentSignal{{Key: "marketing"}},
	}
	m := cdp.Minimisation{DenyTraits: []string{"ssn"}, AllowProperties: []string{"order_id", "revenue"}, DropIP: true, HashEmail: true}
	got := Minimise(&m, ev)
	for _, leak := range []string{"ada@example.com", "203.0.113.5", "4111", "123"} {
		for _, part := range []json.RawMessage{got.Traits, got.Properties, got.Context} {
			if strings.Contains(string(part), leak) {
				t.Errorf("%q left in %s", leak, part)
			}
		}
	}
	if got.IP != "" || got.Identities[0].Value != HashEmail("ada@example.com") || got.Identities[1].Value != "u1" || got.Consent != nil {
		t.Errorf("minimised envelope %+v", got)
	}
	if !strings.Contains(string(got.Properties), `"order_id"`) || !strings.Contains(string(got.Traits), `"plan"`) {
		t.Errorf("allowed fields were dropped: %s %s", got.Properties, got.Traits)
	}
	if ev.IP == "" || strings.Contains(string(ev.Properties), "card") == false {
		t.Error("Minimise changed its input")
	}
	if DeliveryKey("d1", cdp.DeliverEvent, "s", "m", "") == DeliveryKey("d2", cdp.DeliverEvent, "s", "m", "") ||
		DeliveryKey("d1", cdp.DeliverEvent, "s", "m", "") != DeliveryKey("d1", cdp.DeliverEvent, "s", "m", "") ||
		DeliveryKey("d1", cdp.DeliverEvent, "s", "m", "") == DeliveryKey("d1", cdp.DeliverEvent, "s", "m", "replay") {
		t.Error("delivery keys are not stable per destination and item, distinct per replay")
	}
}
