package forward

import (
	"encoding/json"
	"testing"

	"github.com/custos-cdp/custos/internal/cdp"
)

// BenchmarkDecide is the added cost of forwarding rules per event per
// destination: source, enabled, filter and consent.
func BenchmarkDecide(b *testing.B) {
	ev := &cdp.Event{SourceID: "web", Type: cdp.Track, Name: "Order Completed"}
	d := cdp.Destination{Enabled: true, Sources: []cdp.SourceID{"app", "web"}, ConsentPurposes: []cdp.PurposeKey{"marketing"},
		Filter: cdp.EventFilter{ExcludeEvents: []string{"Heartbeat"}}, SaleOrShare: true}
	p := person(grant("marketing", cdp.Granted, cdp.SourceSDK))
	b.ReportAllocs()
	for b.Loop() {
		if !Decide(&d, ev, p).Forward {
			b.Fatal("not forwarded")
		}
	}
}

// BenchmarkMinimise is the cost of data minimisation on a ~500-byte event
// with a deny list, IP dropping and e-mail hashing.
func BenchmarkMinimise(b *testing.B) {
	ev := cdp.Event{IP: "203.0.113.5", Identities: []cdp.Identity{{Type: cdp.Email, Value: "ada@example.com"}, {Type: cdp.UserID, Value: "u1"}},
		Properties: json.RawMessage(`{"order_id":"o-123","revenue":42.5,"currency":"EUR","products":[{"id":"p1","price":19.99},{"id":"p2","price":5.5}],"coupon":"X"}`),
		Context:    json.RawMessage(`{"ip":"203.0.113.5","library":{"name":"analytics.js","version":"5.2.0"},"userAgent":"Mozilla/5.0"}`)}
	m := cdp.Minimisation{DenyProperties: []string{"coupon"}, DropIP: true, HashEmail: true}
	b.ReportAllocs()
	for b.Loop() {
		_ = Minimise(&m, ev)
	}
}
