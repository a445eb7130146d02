package consent

import (
	"fmt"
	"sort"
	"testing"

	"github.com/custos-cdp/custos/internal/cdp"
)

// Real strings from the IAB specifications' examples.
const (
	tcPurposes123 = "COvFyGBOvFyGBAbAAAENAPCAAOAAAAAAAAAAAEEUACCKAAA" // purposes 1, 2 and 3 consented
	tcNoPurposes  = "CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA"    // no purpose consented
	gppUSNat      = "DBABLA~BVVqAAEABCA"                              // usnat: did not opt out of sale or sharing
	gppUSNatGPC   = "DBABLA~BVVqAAEABCA.YA"                           // the same with the GPC subsection on
)

var vocab = Vocabulary{
	Purposes: map[cdp.PurposeKey]cdp.Purpose{
		"marketing": {Key: "marketing", Regime: cdp.OptIn}, "analytics": {Key: "analytics", Regime: cdp.OptIn},
		"old":           {Key: "old", Regime: cdp.OptIn, Retired: true},
		cdp.PurposeSale: {Key: cdp.PurposeSale, Regime: cdp.OptOut}, cdp.PurposeSharing: {Key: cdp.PurposeSharing, Regime: cdp.OptOut},
	},
	Mappings: map[cdp.ConsentVocabulary]map[string]cdp.PurposeKey{
		cdp.ConsentSegmentCategory: {"Advertising": "marketing", "Legacy": "old", "Ghost": "telepathy"},
		cdp.ConsentRudderID:        {"C0002": "analytics"},
		cdp.ConsentTCF:             {"1": "analytics", "4": "marketing"},
	},
}

func describe(sigs []cdp.ConsentSignal) []string {
	var out []string
	for _, s := range sigs {
		out = append(out, fmt.Sprintf("%s=%v", s.Purpose, s.Granted))
	}
	sort.Strings(out)
	return out
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name     string
		in       []cdp.ConsentSignal
		want     []string
		rejected []string // reasons
	}{
		{"mapped category", []cdp.ConsentSignal{{Vocabulary: cdp.ConsentSegmentCategory, Key: "Advertising", Granted: true}}, []string{"marketing=true"}, nil},
		{"category spelled as a purpose key", []cdp.ConsentSignal{{Vocabulary: cdp.ConsentSegmentCategory, Key: "Analytics", Granted: false}}, []string{"analytics=false"}, nil},
		{"unmapped is reported, never granted", []cdp.ConsentSignal{{Vocabulary: cdp.ConsentSegmentCategory, Key: "Astrology", Granted: true}}, nil, []string{"unmapped"}},
		{"mapped to an undefined purpose", []cdp.ConsentSignal{{Vocabulary: cdp.ConsentSegmentCategory, Key: "Ghost", Granted: true}}, nil, []string{"undefined_purpose"}},
		{"mapped to a retired purpose", []cdp.ConsentSignal{{Vocabulary: cdp.ConsentSegmentCategory, Key: "Legacy", Granted: true}}, nil, []string{"retired_purpose"}},
		{"rudderstack id", []cdp.ConsentSignal{{Vocabulary: cdp.ConsentRudderID, Key: "C0002", Granted: true}}, []string{"analytics=true"}, nil},
		{"mparticle ccpa", []cdp.ConsentSignal{{Vocabulary: cdp.ConsentMParticleCCPA, Key: "data_sale_opt_out", Granted: false}}, []string{"data_sale_opt_out=false"}, nil},
		{"tcf purposes through mappings", []cdp.ConsentSignal{{Vocabulary: cdp.ConsentTCF, Key: tcPurposes123}}, []string{"analytics=true", "marketing=false"}, nil},
		{"tcf without consent", []cdp.ConsentSignal{{Vocabulary: cdp.ConsentTCF, Key: tcNoPurposes}}, []string{"analytics=false", "marketing=false"}, nil},
		{"malformed tcf recorded nowhere", []cdp.ConsentSignal{{Vocabulary: cdp.ConsentTCF, Key: "not-a-tc-string!"}}, nil, []string{"invalid_tcf"}},
		{"gpp usnat: no opt-out", []cdp.ConsentSignal{{Vocabulary: cdp.ConsentGPP, Key: gppUSNat}}, []string{"data_sale_opt_out=true", "sharing_opt_out=true"}, nil},
		{"gpp usnat with GPC: opted out", []cdp.ConsentSignal{{Vocabulary: cdp.ConsentGPP, Key: gppUSNatGPC}}, []string{"data_sale_opt_out=false", "sharing_opt_out=false"}, nil},
		{"malformed gpp", []cdp.ConsentSignal{{Vocabulary: cdp.ConsentGPP, Key: "DBABLA~%%%"}}, nil, []string{"invalid_gpp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, rej := vocab.Resolve(tt.in)
			if fmt.Sprint(describe(got)) != fmt.Sprint(tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
				t.Errorf("got %v, want %v", describe(got), tt.want)
			}
			var reasons []string
			for _, r := range rej {
				reasons = append(reasons, r.Reason)
				if len(r.Key) > 64 || (r.Vocabulary == cdp.ConsentTCF && r.Key == tt.in[0].Key) {
					t.Errorf("rejection echoes the client's string: %+v", r)
				}
			}
			if fmt.Sprint(reasons) != fmt.Sprint(tt.rejected) && !(len(reasons) == 0 && len(tt.rejected) == 0) {
				t.Errorf("rejections %v, want %v", reasons, tt.rejected)
			}
		})
	}
}
