package iab

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// fullTC sets every core field to a value distinct from its neighbours, so
// a field read from the wrong offset shows.
func fullTC() TCString {
	t := TCString{
		Version:                   2,
		Created:                   time.Date(2024, 5, 1, 10, 11, 12, 300e6, time.UTC),
		LastUpdated:               time.Date(2026, 11, 28, 21, 27, 0, 900e6, time.UTC),
		CmpID:                     4095,
		CmpVersion:                1234,
		ConsentScreen:             63,
		ConsentLanguage:           "FR",
		VendorListVersion:         3001,
		PolicyVersion:             4,
		IsServiceSpecific:         true,
		UseNonStandardTexts:       true,
		PurposeOneTreatment:       true,
		PublisherCC:               "ZA",
		VendorConsents:            []int{1, 2, 3, 10, 11, 500, 755, 65535},
		VendorLegitimateInterests: []int{4, 5, 6, 7, 1000},
		PublisherRestrictions: []PublisherRestriction{
			{PurposeID: 2, Type: 0, Vendors: []VendorRange{{First: 8, Last: 8}, {First: 20, Last: 40}}},
			{PurposeID: 24, Type: 2, Vendors: []VendorRange{{First: 65535, Last: 65535}}},
			{PurposeID: 7, Type: 1},
		},
	}
	t.SpecialFeatureOptIns[0], t.SpecialFeatureOptIns[2], t.SpecialFeatureOptIns[11] = true, true, true
	for i := range t.PurposeConsents {
		t.PurposeConsents[i] = true
		t.PurposeLegitimateInterests[i] = i%3 == 1
	}
	return t
}

func TestParseTCStringFields(t *testing.T) {
	base := func(edit func(*TCString)) TCString {
		tc := TCString{
			Version:         2,
			Created:         time.Date(2026, 11, 1, 10, 0, 0, 100e6, time.UTC),
			LastUpdated:     time.Date(2026, 11, 1, 10, 0, 0, 100e6, time.UTC),
			CmpID:           7,
			CmpVersion:      3,
			ConsentScreen:   1,
			ConsentLanguage: "EN",
			PolicyVersion:   4,
			PublisherCC:     "DE",
		}
		edit(&tc)
		return tc
	}
	tests := []struct {
		name string
		want TCString
	}{
		{"every field set", fullTC()},
		{"nothing consented", base(func(*TCString) {})},
		{"all 24 purposes, no legitimate interest", base(func(t *TCString) {
			for i := range t.PurposeConsents {
				t.PurposeConsents[i] = true
			}
		})},
		{"odd purposes consented, even ones by legitimate interest", base(func(t *TCString) {
			for i := range t.PurposeConsents {
				t.PurposeConsents[i] = i%2 == 0
				t.PurposeLegitimateInterests[i] = i%2 == 1
			}
		})},
		{"purpose 24 only", base(func(t *TCString) { t.PurposeConsents[23] = true })},
		{"every special feature", base(func(t *TCString) {
			for i := range t.SpecialFeatureOptIns {
				t.SpecialFeatureOptIns[i] = true
			}
		})},
		{"special feature 12 only", base(func(t *TCString) { t.SpecialFeatureOptIns[11] = true })},
		{"language and country at A", base(func(t *TCString) { t.ConsentLanguage, t.PublisherCC = "AA", "AA" })},
		{"language and country at Z", base(func(t *TCString) { t.ConsentLanguage, t.PublisherCC = "ZZ", "ZZ" })},
		{"a decisecond apart", base(func(t *TCString) { t.LastUpdated = t.Created.Add(100 * time.Millisecond) })},
		{"latest 36-bit date", base(func(t *TCString) { t.LastUpdated = time.UnixMilli((1<<36 - 1) * 100).UTC() })},
		{"policy version 5", base(func(t *TCString) { t.PolicyVersion = 5 })},
		{"vendor 1 only", base(func(t *TCString) { t.VendorConsents = []int{1} })},
		{"highest vendor id", base(func(t *TCString) { t.VendorLegitimateInterests = []int{65535} })},
		{"contiguous vendors", base(func(t *TCString) { t.VendorConsents = []int{100, 101, 102, 103} })},
	}
	for _, tt := range tests {
		for _, ranges := range []bool{false, true} {
			name := tt.name + "/bitfield"
			if ranges {
				name = tt.name + "/ranges"
			}
			t.Run(name, func(t *testing.T) {
				got, err := ParseTCString(encodeTC(tt.want, ranges))
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("got  %+v\nwant %+v", got, tt.want)
				}
			})
		}
	}
}

func TestParseTCStringVendorRanges(t *testing.T) {
	tests := []struct {
		name   string
		maxID  int
		ranges []VendorRange
		want   []int
	}{
		{"no entries", 0, nil, nil},
		{"no entries under a MaxVendorId", 500, nil, nil},
		{"out of order", 30, []VendorRange{{First: 30, Last: 30}, {First: 2, Last: 2}, {First: 10, Last: 12}}, []int{2, 10, 11, 12, 30}},
		{"overlapping ranges merge", 9, []VendorRange{{First: 1, Last: 5}, {First: 3, Last: 9}, {First: 4, Last: 4}}, []int{1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{"a range of one id", 7, []VendorRange{{First: 7, Last: 7}}, []int{7}},
		{"the whole id space", 65535, []VendorRange{{First: 1, Last: 65535}}, nil},
		{"MaxVendorId above the last entry", 900, []VendorRange{{First: 4, Last: 6}}, []int{4, 5, 6}},
		{"across a 64-bit word boundary", 200, []VendorRange{{First: 62, Last: 65}}, []int{62, 63, 64, 65}},
		{"a word's first and last bit", 200, []VendorRange{{First: 64, Last: 64}, {First: 127, Last: 127}, {First: 128, Last: 128}}, []int{64, 127, 128}},
		{"exactly one word", 200, []VendorRange{{First: 64, Last: 127}}, seq(64, 127)},
		{"three words", 200, []VendorRange{{First: 1, Last: 191}}, seq(1, 191)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := tcPrefix()
			w.encodeRanges(tt.maxID, tt.ranges)
			w.encodeRanges(0, nil) // legitimate interests
			w.int(0, 12)           // publisher restrictions
			got, err := ParseTCString(w.base64())
			if err != nil {
				t.Fatalf("got %v, want no error", err)
			}
			want := tt.want
			if tt.name == "the whole id space" {
				want = seq(1, 65535)
			}
			if !slices.Equal(got.VendorConsents, want) {
				t.Errorf("got %d ids %v, want %d ids", len(got.VendorConsents), head(got.VendorConsents), len(want))
			}
		})
	}
}

// tcPrefix writes a valid core segment up to and excluding the vendor
// consent section.
func tcPrefix() *bitWriter {
	w := &bitWriter{}
	w.int(2, 6).uint(17_000_000_000, 36).uint(17_000_000_000, 36)
	w.int(10, 12).int(1, 12).int(1, 6).letters("EN").int(100, 12).int(4, 6)
	w.bool(false).bool(false).int(0, 12).int(0xFFFFFF, 24).int(0, 24).bool(false).letters("FR")
	return w
}

func head(ids []int) []int { return ids[:min(len(ids), 10)] }

// seq returns first..last.
func seq(first, last int) []int {
	var out []int
	for id := first; id <= last; id++ {
		out = append(out, id)
	}
	return out
}

// hostileRanges is the most work a TC string under MaxLen can ask of the
// range decoder: both vendor sections repeat the range 1-65535 as often as
// the length allows.
func hostileRanges() string {
	w := tcPrefix()
	entries := (MaxLen*6 - len(w.bits) - 2*29 - 12) / (2 * 33)
	full := make([]VendorRange, entries)
	for i := range full {
		full[i] = VendorRange{First: 1, Last: 65535}
	}
	w.encodeRanges(65535, full)
	w.encodeRanges(65535, full)
	w.int(0, 12)
	return w.base64()
}

// TestParseTCStringSpecExamples decodes the example strings of "Consent
// string and vendor list formats v2" and the GPP specification. The
// expected values were decoded independently, by hand from the bit tables.
func TestParseTCStringSpecExamples(t *testing.T) {
	type want struct {
		created, updated     string
		cmp, cmpVer, screen  int
		lang, cc             string
		vlv, policy          int
		serviceSpecific      bool
		specialFeatures      []int
		purposes, purposesLI []int
		vendors, vendorsLI   []int
	}
	tests := []struct {
		name string
		in   string
		want want
	}{
		{
			"TC String Format: all four segments",
			"COw4XqLOw4XqLAAAAAENAXCAAAAAAAAAAAAAAAAAAAAA.IFukWSQgAIQwgI0QEByFAAAAeIAACAIgSAAQAIAgEQACEABAAAgAQFAEAIAAAGBAAgAAAAQAIFAAMCQAAgAAQiRAEQAAAAANAAIAAggAIYQFAAARmggBC3ZCYzU2yIA.QFukWSQgAIQwgI0QEByFAAAAeIAACAIgSAAQAIAgEQACEABAAAgAQFAEAIAAAGBAAgAAAAQAIFAAMCQAAgAAQiRAEQAAAAANAAIAAggAIYQFAAARmggBC3ZCYzU2yIA.YAAAAAAAAAAAAAAAAAA",
			want{created: "2020-03-26T18:21:27.5Z", updated: "2020-03-26T18:21:27.5Z", lang: "EN", cc: "AA", vlv: 23, policy: 2},
		},
		{
			"TC String Format: service-specific with publisher TC",
			"CLcVDxRMWfGmWAVAHCENAXCkAKDAADnAABRgA5mdfCKZuYJez-NQm0TBMYA4oCAAGQYIAAAAAAEAIAEgAA.argAC0gAAAAAAAAAAAA",
			want{
				created: "2008-12-07T10:04:17.7Z", updated: "2012-01-10T17:10:13.4Z",
				cmp: 21, cmpVer: 7, screen: 2, lang: "EN", cc: "KM", vlv: 23, policy: 2, serviceSpecific: true,
				specialFeatures: []int{2}, purposes: []int{1, 3, 9, 10}, purposesLI: []int{3, 4, 5, 8, 9, 10},
				vendors: []int{2, 3, 6, 7, 8, 10, 12, 13, 14, 15, 16, 21, 25, 27, 30, 31, 34, 35, 37, 38, 39, 42, 43, 49,
					52, 54, 55, 56, 57, 59, 60, 63, 64, 65, 66, 67, 68, 69, 73, 74, 76, 78, 83, 86, 87, 89, 90, 92, 96, 99,
					100, 106, 109, 110, 114, 115},
				vendorsLI: []int{1, 9, 26, 27, 30, 36, 37, 43, 86, 97, 110, 113},
			},
		},
		{
			"Signaling OOB, example 3: core, disclosed and allowed vendors",
			"CGL23UdMFJzvuA9ACCENAXCEAC0AAGrAAA5YA5ht7-_d_7_vd-f-nrf4_4A4hM4JCKoK4YhmAqABgAEgAA.IFut_a83_Ma_t-_SvB3v4-IAeIAACAIgSAAQAIAgEQACEABAAAgAQFAEAIAAAGBAAgAAAAQAIFAAMCQAAgAAQiRAEQAAAAANAAIAAggAIYQFAAARmggBC3ZCYzU2yIA.QFulWfTw4obx_Z2zUj6XkNIAeIAACAIgSAAQAIAgEQACEABAAAgAQFAEAIAAAGBAAgAAAAQAIFAAMCQAAgAAQiRAEQAAAAANAAIAAggAIYQFAAARmggBC3ZCYzU2yIA",
			want{
				created: "1991-01-17T18:51:08.5Z", updated: "2011-02-08T03:32:01.4Z",
				cmp: 61, cmpVer: 2, screen: 2, lang: "EN", cc: "HL", vlv: 23, policy: 2,
				specialFeatures: []int{2}, purposes: []int{3, 5, 6, 8}, purposesLI: []int{2, 3, 5, 7, 9, 10},
				vendors: []int{4, 5, 7, 8, 10, 11, 12, 13, 15, 16, 17, 18, 19, 20, 21, 23, 24, 25, 26, 27, 28, 30, 31, 32,
					34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 45, 46, 47, 48, 49, 50, 51, 52, 53, 55, 56, 57, 58, 60, 61, 62,
					64, 65, 66, 67, 68, 69, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 83, 86, 87, 88, 89, 91, 93, 94, 96,
					97, 98, 99, 100, 101, 102, 103, 107, 108, 109, 110, 111, 112, 113, 114, 115},
				vendorsLI: []int{4, 7, 8, 11, 12, 13, 19, 22, 27, 31, 33, 35, 37, 43, 45, 47, 48, 49, 54, 55, 59, 64, 65,
					68, 69, 77, 79, 81, 94, 95, 110, 113},
			},
		},
		{
			"Signaling OOB, example 1: core only",
			"COvFyGBOvFyGBAbAAAENAPCAAOAAAAAAAAAAAEEUACCKAAA",
			want{created: "2020-02-20T23:57:39.3Z", updated: "2020-02-20T23:57:39.3Z", cmp: 27, lang: "EN", cc: "AA",
				vlv: 15, policy: 2, purposes: []int{1, 2, 3}, vendors: []int{2, 6, 8}, vendorsLI: []int{2, 6, 8}},
		},
		{
			"GPP String Example 1: the tcfeuv2 section",
			"CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA",
			want{created: "2022-04-20T22:00:00Z", updated: "2022-04-20T22:00:00Z", cmp: 31, cmpVer: 640, screen: 1,
				lang: "EN", cc: "DE", vlv: 126, policy: 2, serviceSpecific: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc, err := ParseTCString(tt.in)
			if err != nil {
				t.Fatalf("got %v, want no error", err)
			}
			w := tt.want
			checks := []struct {
				field     string
				got, want any
			}{
				{"Version", tc.Version, 2},
				{"Created", tc.Created.Format(time.RFC3339Nano), w.created},
				{"LastUpdated", tc.LastUpdated.Format(time.RFC3339Nano), w.updated},
				{"CmpID", tc.CmpID, w.cmp},
				{"CmpVersion", tc.CmpVersion, w.cmpVer},
				{"ConsentScreen", tc.ConsentScreen, w.screen},
				{"ConsentLanguage", tc.ConsentLanguage, w.lang},
				{"PublisherCC", tc.PublisherCC, w.cc},
				{"VendorListVersion", tc.VendorListVersion, w.vlv},
				{"PolicyVersion", tc.PolicyVersion, w.policy},
				{"IsServiceSpecific", tc.IsServiceSpecific, w.serviceSpecific},
				{"SpecialFeatureOptIns", numbered(tc.SpecialFeatureOptIns[:]), w.specialFeatures},
				{"PurposeConsents", numbered(tc.PurposeConsents[:]), w.purposes},
				{"PurposeLegitimateInterests", numbered(tc.PurposeLegitimateInterests[:]), w.purposesLI},
				{"VendorConsents", tc.VendorConsents, w.vendors},
				{"VendorLegitimateInterests", tc.VendorLegitimateInterests, w.vendorsLI},
				{"PublisherRestrictions", len(tc.PublisherRestrictions), 0},
			}
			for _, c := range checks {
				if !reflect.DeepEqual(c.got, c.want) {
					t.Errorf("%s: got %v, want %v", c.field, c.got, c.want)
				}
			}
		})
	}
}

// numbered lists the 1-based positions of the true flags, nil for none.
func numbered(flags []bool) []int {
	var out []int
	for i, f := range flags {
		if f {
			out = append(out, i+1)
		}
	}
	return out
}

func TestParseTCStringRefuses(t *testing.T) {
	good := encodeTC(fullTC(), false)
	core := func(edit func(*TCString)) string {
		tc := fullTC()
		edit(&tc)
		return encodeTC(tc, false)
	}
	vendorsThen := func(write func(w *bitWriter)) string {
		w := tcPrefix()
		write(w)
		return w.base64()
	}
	segment := func(typ int) string { return (&bitWriter{}).int(typ, 3).int(0, 16).bool(false).base64() }
	// Letters are 6 bits, so 26..63 can be written but are not letters.
	badLanguage := &bitWriter{}
	badLanguage.int(2, 6).uint(17_000_000_000, 36).uint(17_000_000_000, 36).int(1, 12).int(1, 12).int(1, 6)
	badLanguage.int(4, 6).int(26, 6).int(0, 200)
	badCountry := tcPrefix()
	badCountry.bits = badCountry.bits[:len(badCountry.bits)-12] // drop PublisherCC
	badCountry.int(3, 6).int(63, 6)
	badCountry.encodeBitField(0, nil)
	badCountry.encodeBitField(0, nil)
	badCountry.int(0, 12)
	tests := []struct {
		name, in, reason string
	}{
		{"over 16 KiB", good + "." + segment(1) + strings.Repeat("A", MaxLen), ReasonTooLong},
		{"padding", good + "==", ReasonInvalidBase64},
		{"standard base64 alphabet", strings.Replace(good, good[5:6], "+", 1), ReasonInvalidBase64},
		{"bad character in a later segment", good + ".I!A", ReasonInvalidBase64},
		{"empty", "", ReasonTruncated},
		{"version only", "C", ReasonTruncated},
		{"cut in the purposes", good[:30], ReasonTruncated},
		{"cut before the publisher restrictions count", vendorsThen(func(w *bitWriter) {
			w.encodeBitField(3, []int{1})
			w.encodeBitField(0, nil)
		}), ReasonTruncated},
		{"MaxVendorId beyond the bits left", vendorsThen(func(w *bitWriter) {
			w.int(65535, 16).bool(false).int(0, 40)
		}), ReasonTruncated},
		{"cut in a range entry", vendorsThen(func(w *bitWriter) {
			w.int(10, 16).bool(true).int(2, 12).bool(false).int(3, 16).bool(true).int(4, 8)
		}), ReasonTruncated},
		{"TCF v1 string", "BOEFEAyOEFEAyAHABDENAI4AAAB9vABAASA", ReasonUnsupportedVersion},
		{"version 3", core(func(t *TCString) { t.Version = 3 }), ReasonUnsupportedVersion},
		{"a GPP header, type 3", "DBABMA", ReasonUnsupportedVersion},
		{"a whole GPP string", "DBABMA~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA", ReasonInvalidBase64},
		{"language letter 26", badLanguage.base64(), ReasonInvalidField},
		{"country letter 63", badCountry.base64(), ReasonInvalidField},
		{"created never stamped", core(func(t *TCString) { t.Created = time.UnixMilli(0) }), ReasonInvalidField},
		{"updated before created", core(func(t *TCString) { t.LastUpdated = t.Created.Add(-100 * time.Millisecond) }), ReasonInvalidField},
		{"range entry starting at 0", vendorsThen(func(w *bitWriter) {
			w.encodeRanges(5, []VendorRange{{First: 0, Last: 3}})
		}), ReasonInvalidField},
		{"range ending before it starts", vendorsThen(func(w *bitWriter) {
			w.encodeRanges(9, []VendorRange{{First: 9, Last: 2}})
		}), ReasonInvalidField},
		{"range entry beyond MaxVendorId", vendorsThen(func(w *bitWriter) {
			w.encodeRanges(10, []VendorRange{{First: 5, Last: 11}})
		}), ReasonInvalidField},
		{"restriction type 3", core(func(t *TCString) { t.PublisherRestrictions[1].Type = 3 }), ReasonInvalidField},
		{"restriction for purpose 0", core(func(t *TCString) { t.PublisherRestrictions[0].PurposeID = 0 }), ReasonInvalidField},
		{"trailing dot", good + ".", ReasonInvalidSegment},
		{"empty segment between two", good + ".." + segment(3), ReasonInvalidSegment},
		{"core segment type after the core", good + "." + segment(0), ReasonInvalidSegment},
		{"unknown segment type", good + "." + segment(4), ReasonInvalidSegment},
		{"segment type 7", good + "." + segment(7), ReasonInvalidSegment},
		{"repeated segment type", good + "." + segment(3) + "." + segment(3), ReasonInvalidSegment},
		{
			// The specification's third OOB example calls its last segment
			// AllowedVendors, but "PVAfDObdrA" starts with SegmentType 1: the
			// string holds two DisclosedVendors segments.
			"spec OOB example 2+3, mislabelled segment",
			"COvFyGBOvFyGBAbAAAENAPCAAOAAAAAAAAAAAEEUACCKAAA.IFoEUQQgAIQwgIwQABAEAAAAOIAACAIAAAAQAIAgEAACEAAAAAgAQBAAAAAAAGBAAgAAAAAAAFAAECAAAgAAQARAEQAAAAAJAAIAAgAAAYQEAAAQmAgBC3ZAYzUw.PVAfDObdrA",
			ReasonInvalidSegment,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc, err := ParseTCString(tt.in)
			if got := reasonOf(err); got != tt.reason {
				t.Fatalf("reason %q (%v), want %q", got, err, tt.reason)
			}
			if !reflect.DeepEqual(tc, TCString{}) {
				t.Errorf("got a partial result %+v with the error, want the zero value", tc)
			}
			if len(tt.in) >= 8 && strings.Contains(err.Error(), tt.in[:8]) {
				t.Errorf("error %q quotes the input", err)
			}
		})
	}
}

func TestTCStringAccessors(t *testing.T) {
	tc := fullTC()
	tc.PurposeConsents = [24]bool{}
	tc.PurposeConsents[0], tc.PurposeConsents[23] = true, true
	tests := []struct {
		name string
		got  bool
		want bool
	}{
		{"purpose 1", tc.PurposeConsent(1), true},
		{"purpose 2", tc.PurposeConsent(2), false},
		{"purpose 24", tc.PurposeConsent(24), true},
		{"purpose 0 is out of range", tc.PurposeConsent(0), false},
		{"purpose 25 is out of range", tc.PurposeConsent(25), false},
		{"purpose -1 is out of range", tc.PurposeConsent(-1), false},
		{"vendor 755", tc.VendorConsent(755), true},
		{"vendor 65535", tc.VendorConsent(65535), true},
		{"vendor 4 has legitimate interest only", tc.VendorConsent(4), false},
		{"vendor 0", tc.VendorConsent(0), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

// realisticTC is a string as CMPs send them today: bitfields over the
// ~1,500 ids of the current vendor list, three restrictions, a disclosed
// vendors segment.
func realisticTC() string {
	tc := fullTC()
	tc.VendorConsents, tc.VendorLegitimateInterests = nil, nil
	for id := 1; id <= 1500; id++ {
		if id%3 == 0 {
			tc.VendorConsents = append(tc.VendorConsents, id)
		}
		if id%7 == 0 {
			tc.VendorLegitimateInterests = append(tc.VendorLegitimateInterests, id)
		}
	}
	return encodeTC(tc, false) + ".IFoEUQQgAIQwgIwQABAEAAAAOIAACAIAAAAQAIAgEAACEAAAAAgAQBAAAAAAAGBAAgAAAAAAAFAAECAAAgAAQARAEQAAAAAJAAIAAgAAAYQEAAAQmAgBC3ZAYzUw"
}

func BenchmarkParseTCStringHostileRanges(b *testing.B) {
	s := hostileRanges()
	if len(s) > MaxLen {
		b.Fatalf("hostile string is %d bytes, over MaxLen", len(s))
	}
	tc, err := ParseTCString(s)
	if err != nil || len(tc.VendorConsents) != 65535 {
		b.Fatalf("got %d vendors, %v; want 65535, no error", len(tc.VendorConsents), err)
	}
	b.SetBytes(int64(len(s)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseTCString(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseTCString(b *testing.B) {
	s := realisticTC()
	if _, err := ParseTCString(s); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(s)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseTCString(s); err != nil {
			b.Fatal(err)
		}
	}
}
