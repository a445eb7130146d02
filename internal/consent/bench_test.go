package consent

import (
	"testing"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
)

// BenchmarkDecide is the cost of one consent decision: a person with a
// realistic ledger (a dozen entries over four purposes), a rule requiring
// two purposes on a sale/share destination.
func BenchmarkDecide(b *testing.B) {
	var ledger []cdp.ConsentEntry
	for i := range 12 {
		p := []cdp.PurposeKey{"marketing", "analytics", cdp.PurposeSale, cdp.PurposeSharing}[i%4]
		ledger = append(ledger, entry("e", p, cdp.Granted, time.Duration(i)*time.Minute, time.Duration(i)*time.Minute))
	}
	person := Person{Current: Current(ledger), Purposes: purposes}
	rule := Rule{Purposes: []cdp.PurposeKey{"marketing", "analytics"}, Mode: All, SaleOrShare: true}
	b.ReportAllocs()
	for b.Loop() {
		if !Decide(rule, person).Allowed {
			b.Fatal("denied")
		}
	}
}

// BenchmarkCurrent is deriving the current state from that ledger.
func BenchmarkCurrent(b *testing.B) {
	var ledger []cdp.ConsentEntry
	for i := range 12 {
		ledger = append(ledger, entry("e", []cdp.PurposeKey{"marketing", "analytics", "personalization"}[i%3], cdp.Granted, time.Duration(i)*time.Minute, 0))
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = Current(ledger)
	}
}
