package iab

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// The seed corpora live in testdata/fuzz/<FuzzName>: the specifications'
// examples, real strings, strings from the test encoder and broken ones,
// plus every input the fuzzers found that once failed.

var knownReasons = []string{
	ReasonTooLong, ReasonInvalidBase64, ReasonTruncated, ReasonUnsupportedVersion,
	ReasonInvalidField, ReasonInvalidSegment, ReasonSectionMismatch, ReasonInvalidHeader,
}

// checkError fails unless err is an *Error with a known reason.
func checkError(t *testing.T, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got %T %v, want *Error", err, err)
	}
	if !slices.Contains(knownReasons, e.Reason) {
		t.Fatalf("got reason %q, want one of %v", e.Reason, knownReasons)
	}
}

func FuzzParseTCString(f *testing.F) {
	f.Add(encodeTC(fullTC(), false))
	f.Add(encodeTC(fullTC(), true))
	f.Fuzz(func(t *testing.T, s string) {
		tc, err := ParseTCString(s)
		if err != nil {
			checkError(t, err)
			if !reflect.DeepEqual(tc, TCString{}) {
				t.Fatalf("got a partial result with error %v", err)
			}
			return
		}
		checkTC(t, tc)
		// What was read must be what was written: encode the result again,
		// both ways, and read it back.
		for _, ranges := range []bool{false, true} {
			again := encodeTC(tc, ranges)
			if len(again) > MaxLen {
				continue // two full bitfields; the ranges pass covers it
			}
			got, err := ParseTCString(again)
			if err != nil {
				t.Fatalf("re-encoded string (ranges %v) refused: %v", ranges, err)
			}
			if !reflect.DeepEqual(got, tc) {
				t.Fatalf("round trip (ranges %v)\ngot  %+v\nwant %+v", ranges, got, tc)
			}
		}
	})
}

// checkTC holds a parsed TC string to what the parser promises.
func checkTC(t *testing.T, tc TCString) {
	t.Helper()
	if tc.Version != 2 {
		t.Fatalf("Version %d, want 2", tc.Version)
	}
	if tc.Created.UnixMilli() <= 0 || tc.LastUpdated.Before(tc.Created) {
		t.Fatalf("Created %v, LastUpdated %v: want stamped and in order", tc.Created, tc.LastUpdated)
	}
	for _, code := range []string{tc.ConsentLanguage, tc.PublisherCC} {
		if len(code) != 2 || code[0] < 'A' || code[0] > 'Z' || code[1] < 'A' || code[1] > 'Z' {
			t.Fatalf("code %q, want two letters A-Z", code)
		}
	}
	for _, ids := range [][]int{tc.VendorConsents, tc.VendorLegitimateInterests} {
		for i, id := range ids {
			if id < 1 || id > 65535 || (i > 0 && id <= ids[i-1]) {
				t.Fatalf("vendor ids %v: want strictly ascending in 1..65535", head(ids[max(0, i-5):]))
			}
		}
	}
	for _, p := range tc.PublisherRestrictions {
		if p.PurposeID < 1 || p.PurposeID > 63 || p.Type < 0 || p.Type > 2 {
			t.Fatalf("restriction %+v: want purpose 1..63 and type 0..2", p)
		}
		for _, r := range p.Vendors {
			if r.First < 1 || r.Last < r.First || r.Last > 65535 {
				t.Fatalf("restriction range %+v: want 1 <= First <= Last <= 65535", r)
			}
		}
	}
}

func FuzzParseGPP(f *testing.F) {
	f.Add(gppHeader(2, 6, 7, 8, 9) + "~" + encodeTC(fullTC(), true) + "~1YNN~" +
		encodeUSNat(usnat2024(), 2, false) + "." + gpcSubsection(true) + "~" + encodeUSCA(uscaExample()) + "~BVoYYYI")
	f.Fuzz(func(t *testing.T, s string) {
		g, err := ParseGPP(s)
		if err != nil {
			checkError(t, err)
			if !reflect.DeepEqual(g, GPP{}) {
				t.Fatalf("got a partial result with error %v", err)
			}
			return
		}
		if g.Version != 1 {
			t.Fatalf("Version %d, want 1", g.Version)
		}
		if n := strings.Count(s, "~"); len(g.SectionIDs) != n {
			t.Fatalf("%d section ids for %d sections", len(g.SectionIDs), n)
		}
		reported := len(g.US) + len(g.Other)
		if g.TCFEU != nil {
			reported++
			checkTC(t, *g.TCFEU)
		}
		if g.USPrivacy != nil {
			reported++
			if u := g.USPrivacy; u.Version != 1 || !strings.ContainsRune("YN-", rune(u.Notice)) ||
				!strings.ContainsRune("YN-", rune(u.OptOutSale)) || !strings.ContainsRune("YN-", rune(u.LSPA)) {
				t.Fatalf("US Privacy %+v: want version 1 and flags Y, N or -", u)
			}
		}
		if reported != len(g.SectionIDs) {
			t.Fatalf("%d section ids, %d sections reported", len(g.SectionIDs), reported)
		}
		for i, id := range g.SectionIDs {
			if id < 1 || id == sectionHeader || id > maxSectionID || (i > 0 && id <= g.SectionIDs[i-1]) {
				t.Fatalf("section ids %v: want ascending, in range, without 3", g.SectionIDs)
			}
		}
		if (g.TCFEU != nil) != slices.Contains(g.SectionIDs, sectionTCFEUv2) {
			t.Fatalf("TCFEU %v for section ids %v", g.TCFEU != nil, g.SectionIDs)
		}
		if (g.USPrivacy != nil) != slices.Contains(g.SectionIDs, sectionUSPv1) {
			t.Fatalf("USPrivacy %v for section ids %v", g.USPrivacy != nil, g.SectionIDs)
		}
		for _, u := range g.US {
			checkUS(t, u)
		}
		for _, o := range g.Other {
			if o.ID == sectionTCFEUv2 || o.ID == sectionUSPv1 || (o.ID >= sectionUSNat && o.ID <= lastUSState) {
				t.Fatalf("section %d listed as other", o.ID)
			}
		}
		// The summaries must agree with the fields they summarise.
		sale := g.USPrivacy != nil && g.USPrivacy.OptOutSale == 'Y'
		for _, u := range g.US {
			sale = sale || (u.Supported && (u.SaleOptOut == 1 || u.GPC))
		}
		if g.OptedOutOfSale() != sale {
			t.Fatalf("OptedOutOfSale %v, want %v", !sale, sale)
		}
	})
}

// checkUS holds a US section to what the parser promises.
func checkUS(t *testing.T, u USSection) {
	t.Helper()
	if u.ID < sectionUSNat || u.ID > lastUSState || u.Name != sectionNames[u.ID] {
		t.Fatalf("US section %d %q", u.ID, u.Name)
	}
	if u.Supported != (u.ID == sectionUSNat || u.ID == sectionUSCA) {
		t.Fatalf("section %d Supported %v", u.ID, u.Supported)
	}
	if !u.Supported {
		if !reflect.DeepEqual(u, USSection{ID: u.ID, Name: u.Name}) {
			t.Fatalf("unsupported section %d has fields set: %+v", u.ID, u)
		}
		return
	}
	values := []int{u.SharingNotice, u.SaleOptOutNotice, u.SharingOptOutNotice, u.TargetedAdvertisingOptOutNotice,
		u.SensitiveDataProcessingOptOutNotice, u.SensitiveDataLimitUseNotice, u.SaleOptOut, u.SharingOptOut,
		u.TargetedAdvertisingOptOut, u.PersonalDataConsents, u.MspaCoveredTransaction, u.MspaOptOutOptionMode,
		u.MspaServiceProviderMode}
	values = append(values, u.SensitiveDataProcessing...)
	values = append(values, u.KnownChildSensitiveDataConsents...)
	for _, v := range values {
		if v < 0 || v > 2 {
			t.Fatalf("section %d: a 2-bit field is %d, want 0..2", u.ID, v)
		}
	}
	sensitive, child := len(u.SensitiveDataProcessing), len(u.KnownChildSensitiveDataConsents)
	switch {
	case u.ID == sectionUSCA && (sensitive != 9 || child != 2),
		u.ID == sectionUSNat && !(sensitive == 12 && child == 2) && !(sensitive == 16 && child == 3):
		t.Fatalf("section %d: %d sensitive data and %d child entries", u.ID, sensitive, child)
	}
	if u.GPC && !u.GPCPresent {
		t.Fatalf("section %d: GPC set without a GPC subsection", u.ID)
	}
}
