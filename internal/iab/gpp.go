package iab

import (
	"strings"
)

// GPP is a decoded GPP string.
type GPP struct {
	Version    int
	SectionIDs []int
	TCFEU      *TCString   // section 2 (tcfeuv2)
	USPrivacy  *USPrivacy  // section 6 (uspv1)
	US         []USSection // US sections, 7 and up; 7 (usnat) and 8 (usca) parsed
}

// USPrivacy is the IAB CCPA / US Privacy string ("1YNN").
type USPrivacy struct {
	Version                  int
	Notice, OptOutSale, LSPA byte // 'Y', 'N' or '-'
}

// USSection is a US state or national section. The 2-bit fields hold what
// the string encodes: 0 not applicable; for opt-outs 1 opted out and 2 did
// not opt out; for notices 1 provided and 2 not provided; for consents 1
// no consent and 2 consent.
type USSection struct {
	ID        int
	Name      string
	Supported bool

	SharingNotice, SaleOptOutNotice, SharingOptOutNotice, TargetedAdvertisingOptOutNotice int
	SensitiveDataProcessingOptOutNotice, SensitiveDataLimitUseNotice                      int
	SaleOptOut, SharingOptOut, TargetedAdvertisingOptOut                                  int
	SensitiveDataProcessing                                                               []int
	KnownChildSensitiveDataConsents                                                       []int
	PersonalDataConsents                                                                  int
	MspaCoveredTransaction, MspaOptOutOptionMode, MspaServiceProviderMode                 int
	GPC, GPCPresent                                                                       bool
}

// sectionNames are the GPP section ids of the section list.
var sectionNames = map[int]string{
	2: "tcfeuv2", 3: "gpp header", 5: "tcfcav1", 6: "uspv1", 7: "usnat", 8: "usca", 9: "usva", 10: "usco",
	11: "usut", 12: "usct", 13: "usfl", 14: "usmt", 15: "usor", 16: "ustx", 17: "usde", 18: "usia",
	19: "usne", 20: "usnh", 21: "usnj", 22: "ustn", 23: "usmn",
}

// ParseGPP decodes a GPP string: a header naming the sections, then one
// string per section, separated by '~'.
func ParseGPP(s string) (GPP, error) {
	if len(s) > MaxLen {
		return GPP{}, &Error{Reason: "too_long"}
	}
	parts := strings.Split(s, "~")
	hb, err := decode(parts[0], "header")
	if err != nil {
		return GPP{}, err
	}
	r := &bitReader{b: hb}
	typ := r.int(6, "header type")
	g := GPP{Version: r.int(6, "header version")}
	if r.err != nil {
		return GPP{}, r.err
	}
	if typ != 3 {
		return GPP{}, &Error{Reason: "invalid_header", Detail: "header type is not 3"}
	}
	if g.Version != 1 {
		return GPP{}, &Error{Reason: "unsupported_version", Detail: "GPP version " + itoa(g.Version)}
	}
	g.SectionIDs = fibonacciRange(r, "section ids")
	if r.err != nil {
		return GPP{}, r.err
	}
	if len(g.SectionIDs) != len(parts)-1 {
		return GPP{}, &Error{Reason: "section_mismatch", Detail: "the header lists " + itoa(len(g.SectionIDs)) + " sections, the string has " + itoa(len(parts)-1)}
	}
	for i, id := range g.SectionIDs {
		sec := parts[i+1]
		switch {
		case id == 2:
			tc, err := ParseTCString(sec)
			if err != nil {
				return GPP{}, err
			}
			g.TCFEU = &tc
		case id == 6:
			u, err := parseUSPrivacy(sec)
			if err != nil {
				return GPP{}, err
			}
			g.USPrivacy = &u
		case id == 7 || id == 8:
			us, err := parseUS(id, sec)
			if err != nil {
				return GPP{}, err
			}
			g.US = append(g.US, us)
		case id >= 9:
			if _, err := decode(strings.Split(sec, ".")[0], sectionNames[id]); err != nil {
				return GPP{}, err
			}
			g.US = append(g.US, USSection{ID: id, Name: sectionNames[id]})
		}
	}
	return g, nil
}

// fibonacciRange reads the header's section list: a 12-bit count, then per
// entry a range flag and Fibonacci-coded ids, each an offset from the
// previous id, as the GPP specification encodes it.
func fibonacciRange(r *bitReader, field string) []int {
	n := r.int(12, field+" count")
	var out []int
	last := 0
	for i := 0; i < n && r.err == nil; i++ {
		isRange := r.bool(field + " range flag")
		start := last + r.fibonacci(field)
		end := start
		if isRange {
			end = start + r.fibonacci(field)
		}
		if r.err != nil {
			break
		}
		if end-start > 64 || end > 1000 || (len(out) > 0 && start <= out[len(out)-1]) {
			r.err = &Error{Reason: "invalid_header", Detail: field}
			break
		}
		for id := start; id <= end; id++ {
			out = append(out, id)
		}
		last = end
	}
	return out
}

func parseUSPrivacy(s string) (USPrivacy, error) {
	if len(s) != 4 || s[0] != '1' {
		return USPrivacy{}, &Error{Reason: "invalid_segment", Detail: "uspv1 string"}
	}
	for _, c := range s[1:] {
		if c != 'Y' && c != 'N' && c != '-' {
			return USPrivacy{}, &Error{Reason: "invalid_field", Detail: "uspv1 flags"}
		}
	}
	return USPrivacy{Version: 1, Notice: s[1], OptOutSale: s[2], LSPA: s[3]}, nil
}

// parseUS reads the core segment of usnat (7) or usca (8), versions 1 and
// 2 where they differ, and the optional GPC subsection.
func parseUS(id int, s string) (USSection, error) {
	segs := strings.Split(s, ".")
	b, err := decode(segs[0], sectionNames[id])
	if err != nil {
		return USSection{}, err
	}
	r := &bitReader{b: b}
	u := USSection{ID: id, Name: sectionNames[id], Supported: true}
	version := r.int(6, "Version")
	if r.err == nil && version != 1 && version != 2 {
		return USSection{}, &Error{Reason: "unsupported_version", Detail: sectionNames[id] + " version " + itoa(version)}
	}
	two := func(field string) int { return r.int(2, field) }
	list := func(n int, field string) []int {
		out := make([]int, n)
		for i := range out {
			out[i] = two(field)
		}
		return out
	}
	if id == 7 {
		u.SharingNotice = two("SharingNotice")
		u.SaleOptOutNotice = two("SaleOptOutNotice")
		u.SharingOptOutNotice = two("SharingOptOutNotice")
		u.TargetedAdvertisingOptOutNotice = two("TargetedAdvertisingOptOutNotice")
		u.SensitiveDataProcessingOptOutNotice = two("SensitiveDataProcessingOptOutNotice")
		u.SensitiveDataLimitUseNotice = two("SensitiveDataLimitUseNotice")
		u.SaleOptOut = two("SaleOptOut")
		u.SharingOptOut = two("SharingOptOut")
		u.TargetedAdvertisingOptOut = two("TargetedAdvertisingOptOut")
		n, k := 12, 2
		if version == 2 {
			n, k = 16, 3
		}
		u.SensitiveDataProcessing = list(n, "SensitiveDataProcessing")
		u.KnownChildSensitiveDataConsents = list(k, "KnownChildSensitiveDataConsents")
	} else {
		u.SaleOptOutNotice = two("SaleOptOutNotice")
		u.SharingOptOutNotice = two("SharingOptOutNotice")
		u.SensitiveDataLimitUseNotice = two("SensitiveDataLimitUseNotice")
		u.SaleOptOut = two("SaleOptOut")
		u.SharingOptOut = two("SharingOptOut")
		u.SensitiveDataProcessing = list(9, "SensitiveDataProcessing")
		u.KnownChildSensitiveDataConsents = list(2, "KnownChildSensitiveDataConsents")
	}
	u.PersonalDataConsents = two("PersonalDataConsents")
	u.MspaCoveredTransaction = two("MspaCoveredTransaction")
	u.MspaOptOutOptionMode = two("MspaOptOutOptionMode")
	u.MspaServiceProviderMode = two("MspaServiceProviderMode")
	if r.err != nil {
		return USSection{}, r.err
	}
	for _, v := range []int{u.SaleOptOut, u.SharingOptOut, u.TargetedAdvertisingOptOut} {
		if v == 3 {
			return USSection{}, &Error{Reason: "invalid_field", Detail: sectionNames[id] + " opt-out value 3"}
		}
	}
	for _, sub := range segs[1:] {
		sb, err := decode(sub, sectionNames[id]+" subsection")
		if err != nil {
			return USSection{}, err
		}
		sr := &bitReader{b: sb}
		if t := sr.int(2, "SubsectionType"); sr.err == nil && t == 1 {
			u.GPCPresent, u.GPC = true, sr.bool("Gpc")
		}
		if sr.err != nil {
			return USSection{}, sr.err
		}
	}
	return u, nil
}

// OptedOutOfSale reports whether any US section or the US Privacy string
// says the person opted out of sale.
func (g GPP) OptedOutOfSale() bool {
	for _, u := range g.US {
		if u.Supported && (u.SaleOptOut == 1 || (u.GPCPresent && u.GPC)) {
			return true
		}
	}
	return g.USPrivacy != nil && g.USPrivacy.OptOutSale == 'Y'
}

// OptedOutOfSharing reports whether any US section says the person opted
// out of sharing.
func (g GPP) OptedOutOfSharing() bool {
	for _, u := range g.US {
		if u.Supported && (u.SharingOptOut == 1 || (u.GPCPresent && u.GPC)) {
			return true
		}
	}
	return false
}

// OptedOutOfTargetedAdvertising reports whether any US section says the
// person opted out of targeted advertising.
func (g GPP) OptedOutOfTargetedAdvertising() bool {
	for _, u := range g.US {
		if u.Supported && u.TargetedAdvertisingOptOut == 1 {
			return true
		}
	}
	return false
}
