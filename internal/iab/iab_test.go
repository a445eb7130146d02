package iab

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseTCString(t *testing.T) {
	created := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		opts     tcOpts
		suffix   string
		purposes []int
		vendors  []int
	}{
		{"bitfield vendors", tcOpts{created: created, purposes: []int{1, 3, 4, 10}, vendors: []int{2, 5, 755}}, "", []int{1, 3, 4, 10}, []int{2, 5, 755}},
		{"range vendors", tcOpts{created: created, purposes: []int{1, 24}, vendors: []int{9, 3, 9000}, vendorsAsRange: true}, "", []int{1, 24}, []int{3, 9, 9000}},
		{"no consent", tcOpts{created: created}, "", nil, nil},
		{"with a disclosed-vendors segment", tcOpts{created: created, purposes: []int{2}}, "." + (&bitWriter{}).int(1, 3).int(0, 16).bool(false).String(), []int{2}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc, err := ParseTCString(buildTC(tt.opts) + tt.suffix)
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for p := 1; p <= 24; p++ {
				if tc.PurposeConsent(p) {
					got = append(got, p)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.purposes) {
				t.Errorf("purposes %v, want %v", got, tt.purposes)
			}
			if fmt.Sprint(tc.VendorConsents) != fmt.Sprint(tt.vendors) && !(len(tc.VendorConsents) == 0 && len(tt.vendors) == 0) {
				t.Errorf("vendors %v, want %v", tc.VendorConsents, tt.vendors)
			}
			if tc.Version != 2 || !tc.Created.Equal(created) || !tc.LastUpdated.Equal(created.Add(time.Hour)) ||
				tc.ConsentLanguage != "EN" || tc.PublisherCC != "DE" || tc.CmpID != 7 || tc.CmpVersion != 3 ||
				tc.VendorListVersion != 150 || tc.PolicyVersion != 4 || !tc.SpecialFeatureOptIns[0] {
				t.Errorf("fields %+v", tc)
			}
			if tc.PurposeConsent(0) || tc.PurposeConsent(25) {
				t.Error("out-of-range purpose reported as consented")
			}
		})
	}
}

func TestParseTCStringRefuses(t *testing.T) {
	good := buildTC(tcOpts{purposes: []int{1}})
	tests := []struct {
		name, in, reason string
	}{
		{"empty", "", "truncated"},
		{"too long", strings.Repeat("A", MaxLen+1), "too_long"},
		{"not base64", "CPX!!", "invalid_base64"},
		{"truncated", good[:20], "truncated"},
		{"version 1", buildTC(tcOpts{version: 1}), "unsupported_version"},
		{"bad language", buildTC(tcOpts{lang: "Z["}), "invalid_field"},
		{"updated before created", buildTC(tcOpts{created: time.Unix(1e9, 0), upd: time.Unix(1e8, 0)}), "invalid_field"},
		{"unknown segment type", good + "." + (&bitWriter{}).int(7, 3).String(), "invalid_segment"},
		{"broken later segment", good + ".!!", "invalid_base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTCString(tt.in)
			var e *Error
			if !errors.As(err, &e) || e.Reason != tt.reason {
				t.Errorf("got %v, want reason %s", err, tt.reason)
			}
		})
	}
}

func TestParseGPP(t *testing.T) {
	yes, no := true, false
	tc := buildTC(tcOpts{purposes: []int{1, 2}})
	tests := []struct {
		name                  string
		in                    string
		ids                   []int
		sale, sharing, target bool
		check                 func(t *testing.T, g GPP)
	}{
		{"tcf and uspv1", gppHeader(2, 6) + "~" + tc + "~1YYN", []int{2, 6}, true, false, false, func(t *testing.T, g GPP) {
			if g.TCFEU == nil || !g.TCFEU.PurposeConsent(2) || g.USPrivacy == nil || g.USPrivacy.Notice != 'Y' {
				t.Errorf("sections %+v", g)
			}
		}},
		{"usnat opted out of sharing and targeting", gppHeader(7) + "~" + usnat(2, 1, 1, nil), []int{7}, false, true, true, func(t *testing.T, g GPP) {
			u := g.US[0]
			if !u.Supported || u.Name != "usnat" || u.SaleOptOut != 2 || len(u.SensitiveDataProcessing) != 12 || u.MspaCoveredTransaction != 1 {
				t.Errorf("usnat %+v", u)
			}
		}},
		{"usnat with GPC", gppHeader(7) + "~" + usnat(2, 2, 2, &yes), []int{7}, true, true, false, func(t *testing.T, g GPP) {
			if !g.US[0].GPCPresent || !g.US[0].GPC {
				t.Error("GPC subsection not read")
			}
		}},
		{"usnat GPC off", gppHeader(7) + "~" + usnat(2, 2, 2, &no), []int{7}, false, false, false, nil},
		{"usca opted out of sale", gppHeader(8) + "~" + usca(1, 2), []int{8}, true, false, false, nil},
		{"unknown state section kept unsupported", gppHeader(6, 9) + "~1NNN~" + (&bitWriter{}).int(1, 6).String(), []int{6, 9}, false, false, false, func(t *testing.T, g GPP) {
			if len(g.US) != 1 || g.US[0].Supported || g.US[0].Name != "usva" {
				t.Errorf("us sections %+v", g.US)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := ParseGPP(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(g.SectionIDs, tt.ids) {
				t.Errorf("section ids %v, want %v", g.SectionIDs, tt.ids)
			}
			if g.OptedOutOfSale() != tt.sale || g.OptedOutOfSharing() != tt.sharing || g.OptedOutOfTargetedAdvertising() != tt.target {
				t.Errorf("opt-outs sale=%v sharing=%v targeted=%v, want %v %v %v", g.OptedOutOfSale(), g.OptedOutOfSharing(), g.OptedOutOfTargetedAdvertising(), tt.sale, tt.sharing, tt.target)
			}
			if tt.check != nil {
				tt.check(t, g)
			}
		})
	}
}

func TestParseGPPRefuses(t *testing.T) {
	badType := (&bitWriter{}).int(2, 6).int(1, 6).int(0, 12).String()
	badVersion := (&bitWriter{}).int(3, 6).int(2, 6).int(0, 12).String()
	tests := []struct {
		name, in, reason string
	}{
		{"too long", strings.Repeat("A", MaxLen+1), "too_long"},
		{"header not base64", "!!~1YNN", "invalid_base64"},
		{"header type", badType, "invalid_header"},
		{"header version", badVersion, "unsupported_version"},
		{"fewer sections than the header lists", gppHeader(2, 6) + "~1YNN", "section_mismatch"},
		{"more sections", gppHeader(6) + "~1YNN~1YNN", "section_mismatch"},
		{"bad uspv1", gppHeader(6) + "~2YNN", "invalid_segment"},
		{"uspv1 flags", gppHeader(6) + "~1YXN", "invalid_field"},
		{"truncated usnat", gppHeader(7) + "~" + usnat(1, 1, 1, nil)[:3], "truncated"},
		{"malformed tcf inside", gppHeader(2) + "~!!", "invalid_base64"},
		{"truncated header", "DB", "truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseGPP(tt.in)
			var e *Error
			if !errors.As(err, &e) || e.Reason != tt.reason {
				t.Errorf("got %v, want reason %s", err, tt.reason)
			}
			if err != nil && strings.Contains(err.Error(), tt.in) && len(tt.in) > 8 {
				t.Errorf("error echoes the input: %v", err)
			}
		})
	}
}

func TestFibonacci(t *testing.T) {
	for v := 1; v <= 200; v++ {
		w := (&bitWriter{}).fibonacci(v)
		r := &bitReader{b: decodeBits(w)}
		if got := r.fibonacci("x"); got != v || r.err != nil {
			t.Fatalf("fibonacci(%d) read back %d (%v)", v, got, r.err)
		}
	}
}

func decodeBits(w *bitWriter) []byte {
	b, _ := decode(w.String(), "x")
	return b
}

func FuzzParseTCString(f *testing.F) {
	f.Add(buildTC(tcOpts{purposes: []int{1, 2, 3}, vendors: []int{1, 8}}))
	f.Add(buildTC(tcOpts{vendors: []int{4, 100}, vendorsAsRange: true}))
	f.Add("CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		tc, err := ParseTCString(s)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Reason == "" {
				t.Fatalf("error %v is not an *Error with a reason", err)
			}
			return
		}
		if tc.Version != 2 || len(tc.ConsentLanguage) != 2 || tc.LastUpdated.Before(tc.Created) {
			t.Fatalf("accepted an inconsistent string: %+v", tc)
		}
		if !slices.IsSorted(tc.VendorConsents) {
			t.Fatal("vendors not sorted")
		}
	})
}

func FuzzParseGPP(f *testing.F) {
	yes := true
	f.Add(gppHeader(2, 6) + "~" + buildTC(tcOpts{purposes: []int{1}}) + "~1YYN")
	f.Add(gppHeader(7) + "~" + usnat(1, 2, 0, &yes))
	f.Add(gppHeader(8) + "~" + usca(2, 1))
	f.Add("DBABMA~1YNN")
	f.Fuzz(func(t *testing.T, s string) {
		g, err := ParseGPP(s)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Reason == "" {
				t.Fatalf("error %v is not an *Error with a reason", err)
			}
			return
		}
		if g.Version != 1 || len(g.SectionIDs) != strings.Count(s, "~") {
			t.Fatalf("accepted an inconsistent string: %+v", g)
		}
	})
}
