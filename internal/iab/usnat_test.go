package iab

import (
	"reflect"
	"testing"
)

// usnat2024 sets every field of the 2024 usnat layout to a different value
// where the field allows it.
func usnat2024() USSection {
	return USSection{
		ID: 7, Name: "usnat", Supported: true,
		SharingNotice: 1, SaleOptOutNotice: 2, SharingOptOutNotice: 0, TargetedAdvertisingOptOutNotice: 1,
		SensitiveDataProcessingOptOutNotice: 2, SensitiveDataLimitUseNotice: 1,
		SaleOptOut: 1, SharingOptOut: 2, TargetedAdvertisingOptOut: 0,
		SensitiveDataProcessing:         []int{0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 2, 1, 0, 2},
		KnownChildSensitiveDataConsents: []int{2, 0, 1},
		PersonalDataConsents:            2,
		MspaCoveredTransaction:          1,
		MspaOptOutOptionMode:            2,
		MspaServiceProviderMode:         0,
	}
}

func TestParseUSNat(t *testing.T) {
	v2022 := usnat2024()
	v2022.SensitiveDataProcessing = v2022.SensitiveDataProcessing[:12]
	v2022.KnownChildSensitiveDataConsents = v2022.KnownChildSensitiveDataConsents[:2]
	withGPC := func(u USSection, on bool) USSection {
		u.GPCPresent, u.GPC = true, on
		return u
	}
	// Real strings from sites using OneTrust, decoded by hand.
	oneTrust2024 := USSection{
		ID: 7, Name: "usnat", Supported: true,
		SharingNotice: 1, SaleOptOutNotice: 1, SharingOptOutNotice: 1, TargetedAdvertisingOptOutNotice: 1,
		SaleOptOut: 2, SharingOptOut: 2, TargetedAdvertisingOptOut: 2,
		SensitiveDataProcessing:         make([]int, 16),
		KnownChildSensitiveDataConsents: make([]int, 3),
		PersonalDataConsents:            2,
		MspaCoveredTransaction:          1, MspaOptOutOptionMode: 1, MspaServiceProviderMode: 2,
	}
	oneTrust2022 := oneTrust2024
	oneTrust2022.SensitiveDataProcessing = make([]int, 12)
	oneTrust2022.KnownChildSensitiveDataConsents = make([]int, 2)
	oneTrust2022.MspaCoveredTransaction, oneTrust2022.MspaOptOutOptionMode, oneTrust2022.MspaServiceProviderMode = 2, 1, 0
	// LiveRamp iabconsent's fixture "BqqAqqqqqqA": nothing given notice,
	// everything consented, not a covered transaction.
	allConsent := USSection{
		ID: 7, Name: "usnat", Supported: true,
		SharingNotice: 2, SaleOptOutNotice: 2, SharingOptOutNotice: 2, TargetedAdvertisingOptOutNotice: 2,
		SensitiveDataProcessingOptOutNotice: 2, SensitiveDataLimitUseNotice: 2,
		SensitiveDataProcessing:         []int{2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2},
		KnownChildSensitiveDataConsents: []int{2, 2},
		PersonalDataConsents:            2,
		MspaCoveredTransaction:          2, MspaOptOutOptionMode: 2, MspaServiceProviderMode: 2,
	}
	tests := []struct {
		name string
		in   string
		want USSection
	}{
		{"2022 layout, 60 bits", encodeUSNat(v2022, 1, false), v2022},
		{"2022 layout, 66 bits as the reference encoders pad", encodeUSNat(v2022, 1, true), v2022},
		{"2024 layout under version 1", encodeUSNat(usnat2024(), 1, false), usnat2024()},
		{"2024 layout under version 1, byte aligned", encodeUSNat(usnat2024(), 1, true), usnat2024()},
		{"2024 layout under version 2", encodeUSNat(usnat2024(), 2, false), usnat2024()},
		{"with GPC", encodeUSNat(usnat2024(), 2, false) + "." + gpcSubsection(true), withGPC(usnat2024(), true)},
		{"with GPC false", encodeUSNat(v2022, 1, false) + "." + gpcSubsection(false), withGPC(v2022, false)},
		{"OneTrust 2024", "BVQqAAAAAAJY.QA", withGPC(oneTrust2024, false)},
		{"OneTrust 2024, GPC", "BVQqAAAAAAJY.YA", withGPC(oneTrust2024, true)},
		{"OneTrust 2022", "BVQqAAAACkA.QA", withGPC(oneTrust2022, false)},
		{"LiveRamp fixture", "BqqAqqqqqqA", allConsent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := ParseGPP(gppHeader(sectionUSNat) + "~" + tt.in)
			if err != nil {
				t.Fatalf("got %v, want no error", err)
			}
			if len(g.US) != 1 {
				t.Fatalf("got %d US sections, want 1", len(g.US))
			}
			if !reflect.DeepEqual(g.US[0], tt.want) {
				t.Errorf("got  %+v\nwant %+v", g.US[0], tt.want)
			}
		})
	}
}

func TestParseUSNatRefuses(t *testing.T) {
	v2022 := usnat2024()
	v2022.SensitiveDataProcessing = v2022.SensitiveDataProcessing[:12]
	v2022.KnownChildSensitiveDataConsents = v2022.KnownChildSensitiveDataConsents[:2]
	three := func(edit func(*USSection)) string {
		u := usnat2024()
		edit(&u)
		return encodeUSNat(u, 2, false)
	}
	tests := []struct {
		name, in, reason, detail string
	}{
		{"version 2 with the 2022 layout", encodeUSNat(v2022, 2, true), ReasonTruncated, "usnat: Mspa"},
		{"version 0", encodeUSNat(usnat2024(), 0, false), ReasonUnsupportedVersion, "usnat: Version"},
		{"2022 layout cut short", encodeUSNat(v2022, 1, false)[:9], ReasonTruncated, "usnat: "},
		{"3 in a notice", three(func(u *USSection) { u.SharingNotice = 3 }), ReasonInvalidField, "usnat: SharingNotice"},
		{"3 in sale opt-out", three(func(u *USSection) { u.SaleOptOut = 3 }), ReasonInvalidField, "usnat: SaleOptOut"},
		{"3 in a sensitive data category", three(func(u *USSection) { u.SensitiveDataProcessing[15] = 3 }), ReasonInvalidField, "usnat: SensitiveDataProcessing"},
		{"3 in a child consent", three(func(u *USSection) { u.KnownChildSensitiveDataConsents[2] = 3 }), ReasonInvalidField, "usnat: KnownChildSensitiveDataConsents"},
		{"3 in an Mspa field", three(func(u *USSection) { u.MspaServiceProviderMode = 3 }), ReasonInvalidField, "usnat: MspaServiceProviderMode"},
		{"subsection type 2", encodeUSNat(v2022, 1, false) + "." + (&bitWriter{}).int(2, 2).bool(true).base64(), ReasonInvalidSegment, "usnat: SubsectionType"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseGPP(gppHeader(sectionUSNat) + "~" + tt.in)
			if got := reasonOf(err); got != tt.reason {
				t.Fatalf("reason %q (%v), want %q", got, err, tt.reason)
			}
			if d := err.(*Error).Detail; len(d) < len(tt.detail) || d[:len(tt.detail)] != tt.detail {
				t.Errorf("detail %q, want it to start with %q", d, tt.detail)
			}
		})
	}
}

func TestParseUSCA(t *testing.T) {
	every := USSection{
		ID: 8, Name: "usca", Supported: true,
		SaleOptOutNotice: 1, SharingOptOutNotice: 2, SensitiveDataLimitUseNotice: 1,
		SaleOptOut: 1, SharingOptOut: 1,
		SensitiveDataProcessing:         []int{2, 1, 0, 2, 1, 0, 2, 1, 1},
		KnownChildSensitiveDataConsents: []int{2, 1},
		PersonalDataConsents:            1,
		MspaCoveredTransaction:          2, MspaOptOutOptionMode: 1, MspaServiceProviderMode: 2,
	}
	gpc := every
	gpc.GPCPresent, gpc.GPC = true, true
	fides := USSection{
		ID: 8, Name: "usca", Supported: true,
		SaleOptOutNotice: 1, SharingOptOutNotice: 1,
		SaleOptOut: 2, SharingOptOut: 2,
		SensitiveDataProcessing:         make([]int, 9),
		KnownChildSensitiveDataConsents: make([]int, 2),
		MspaCoveredTransaction:          1, MspaOptOutOptionMode: 2, MspaServiceProviderMode: 0,
		GPCPresent: true,
	}
	tests := []struct {
		name string
		in   string
		want USSection
	}{
		{"every field", encodeUSCA(every), every},
		{"with GPC", encodeUSCA(every) + "." + gpcSubsection(true), gpc},
		{"LiveRamp fixture", "BVoYYZoI", uscaExample()},
		// From the Fides tests, decoded by hand: a one-character GPC
		// subsection.
		{"Fides fixture", "BUoAAABg.Q", fides},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := ParseGPP(gppHeader(sectionUSCA) + "~" + tt.in)
			if err != nil {
				t.Fatalf("got %v, want no error", err)
			}
			if len(g.US) != 1 || !reflect.DeepEqual(g.US[0], tt.want) {
				t.Errorf("got  %+v\nwant %+v", g.US, tt.want)
			}
		})
	}
}
