package iab

import "strings"

// USSection is a US national or state GPP section. Only usnat (7) and usca
// (8) are parsed (Supported); for the other states ID and Name are set and
// every other field is zero.
//
// The 2-bit fields hold the value exactly as encoded, so no meaning is
// lost in translation: 0 is not applicable; for notices 1 is provided and
// 2 not provided; for opt-outs 1 is opted out and 2 did not opt out; for
// consents 1 is no consent and 2 consent; for the Mspa fields 1 is yes and
// 2 no. The value 3 is undefined everywhere and refused. A field a section
// does not have (usca has no SharingNotice, TargetedAdvertising* or
// SensitiveDataProcessingOptOutNotice) is 0.
type USSection struct {
	ID        int
	Name      string // client-side API prefix: "usnat", "usca", "usva", ...
	Supported bool

	SharingNotice                       int
	SaleOptOutNotice                    int
	SharingOptOutNotice                 int
	TargetedAdvertisingOptOutNotice     int
	SensitiveDataProcessingOptOutNotice int
	SensitiveDataLimitUseNotice         int
	SaleOptOut                          int
	SharingOptOut                       int
	TargetedAdvertisingOptOut           int
	// SensitiveDataProcessing has one entry per data category of the
	// section's specification: 12 (usnat 2022) or 16 (usnat 2024) entries
	// with consent semantics (1 no consent, 2 consent), 9 for usca with
	// opt-out semantics (1 opted out, 2 did not opt out).
	SensitiveDataProcessing []int
	// KnownChildSensitiveDataConsents: 2 (usnat 2022, usca) or 3 (usnat
	// 2024) entries, 1 no consent, 2 consent.
	KnownChildSensitiveDataConsents []int
	PersonalDataConsents            int
	MspaCoveredTransaction          int
	MspaOptOutOptionMode            int
	MspaServiceProviderMode         int

	GPCPresent bool // the section carries a GPC subsection
	GPC        bool // its Gpc flag: the browser sent Global Privacy Control
}

// optedOut is the value of an opt-out field meaning "opted out".
const optedOut = 1

// Bit lengths of the usnat core segment. The December 2022 layout has 12
// SensitiveDataProcessing and 2 KnownChildSensitiveDataConsents entries
// (60 bits); the August 2024 revision has 16 and 3 (70 bits).
const (
	usnatBits2022 = 60
	usnatBits2024 = 70
)

// parseUS reads a usnat or usca section: the core subsection, then
// optionally a GPC subsection, joined by '.'.
func parseUS(id int, s string) (USSection, error) {
	core, rest, more := strings.Cut(s, ".")
	r, err := newBitReader(core, "core subsection")
	if err != nil {
		return USSection{}, err
	}
	u := USSection{ID: id, Name: sectionNames[id], Supported: true}
	if id == sectionUSNat {
		err = u.readUSNat(r)
	} else {
		err = u.readUSCA(r)
	}
	if err != nil {
		return USSection{}, err
	}
	if more {
		if err := u.readGPC(rest); err != nil {
			return USSection{}, err
		}
	}
	return u, nil
}

// readUSNat reads the usnat core subsection ("IAB Privacy's Multi-State
// Privacy Agreement (MSPA) US National Technical Specification", "Core
// Segment"; the 2022 edition is "IAB Privacy's National Privacy Technical
// Specification").
//
// The section Version cannot tell the two layouts apart: the reference
// encoders (iabgpp-es, iabgpp-java) kept writing Version 1 after the 2024
// revision added four sensitive data categories and a third child consent,
// and those strings are in the wild. The reference decoders choose the
// layout by length, and so does this one: a 2022 string is 60 bits, at
// most 66 once padded to whole bytes and 6-bit characters, a 2024 string
// needs 70. Version 2 only exists with the 2024 layout.
func (u *USSection) readUSNat(r *bitReader) error {
	version := r.int(6, "Version")
	if r.err != nil {
		return r.err
	}
	if version != 1 && version != 2 {
		return errorf(ReasonUnsupportedVersion, "Version")
	}
	sensitive, child := 16, 3
	if version == 1 && r.n < usnatBits2024 {
		sensitive, child = 12, 2
	}
	u.SharingNotice = r.twoBits("SharingNotice")
	u.SaleOptOutNotice = r.twoBits("SaleOptOutNotice")
	u.SharingOptOutNotice = r.twoBits("SharingOptOutNotice")
	u.TargetedAdvertisingOptOutNotice = r.twoBits("TargetedAdvertisingOptOutNotice")
	u.SensitiveDataProcessingOptOutNotice = r.twoBits("SensitiveDataProcessingOptOutNotice")
	u.SensitiveDataLimitUseNotice = r.twoBits("SensitiveDataLimitUseNotice")
	u.SaleOptOut = r.twoBits("SaleOptOut")
	u.SharingOptOut = r.twoBits("SharingOptOut")
	u.TargetedAdvertisingOptOut = r.twoBits("TargetedAdvertisingOptOut")
	u.SensitiveDataProcessing = r.twoBitList(sensitive, "SensitiveDataProcessing")
	u.KnownChildSensitiveDataConsents = r.twoBitList(child, "KnownChildSensitiveDataConsents")
	u.PersonalDataConsents = r.twoBits("PersonalDataConsents")
	u.readMspa(r)
	return r.err
}

// readUSCA reads the usca core subsection ("GPP Extension: California
// Privacy Technical Specification", "Core Sub-section", version 1): 46
// bits.
func (u *USSection) readUSCA(r *bitReader) error {
	version := r.int(6, "Version")
	if r.err != nil {
		return r.err
	}
	if version != 1 {
		return errorf(ReasonUnsupportedVersion, "Version")
	}
	u.SaleOptOutNotice = r.twoBits("SaleOptOutNotice")
	u.SharingOptOutNotice = r.twoBits("SharingOptOutNotice")
	u.SensitiveDataLimitUseNotice = r.twoBits("SensitiveDataLimitUseNotice")
	u.SaleOptOut = r.twoBits("SaleOptOut")
	u.SharingOptOut = r.twoBits("SharingOptOut")
	u.SensitiveDataProcessing = r.twoBitList(9, "SensitiveDataProcessing")
	u.KnownChildSensitiveDataConsents = r.twoBitList(2, "KnownChildSensitiveDataConsents")
	u.PersonalDataConsents = r.twoBits("PersonalDataConsents")
	u.readMspa(r)
	return r.err
}

func (u *USSection) readMspa(r *bitReader) {
	u.MspaCoveredTransaction = r.twoBits("MspaCoveredTransaction")
	u.MspaOptOutOptionMode = r.twoBits("MspaOptOutOptionMode")
	u.MspaServiceProviderMode = r.twoBits("MspaServiceProviderMode")
}

// readGPC reads what follows the core: at most one GPC subsection,
// SubsectionType (2 bits, 1 = GPC) then Gpc (1 bit). The specifications
// define no other subsection, so anything else is refused rather than
// skipped: it would be a string this parser does not understand.
func (u *USSection) readGPC(rest string) error {
	if strings.Contains(rest, ".") {
		return errorf(ReasonInvalidSegment, "more than one subsection after the core")
	}
	if rest == "" {
		return errorf(ReasonInvalidSegment, "empty subsection")
	}
	r, err := newBitReader(rest, "GPC subsection")
	if err != nil {
		return err
	}
	typ := r.int(2, "SubsectionType")
	gpc := r.bool("Gpc")
	if r.err != nil {
		return r.err
	}
	if typ != 1 {
		return errorf(ReasonInvalidSegment, "SubsectionType: not GPC")
	}
	u.GPCPresent, u.GPC = true, gpc
	return nil
}

// twoBits reads an Int(2) field whose specification defines 0, 1 and 2.
func (r *bitReader) twoBits(field string) int {
	v := r.int(2, field)
	if v == 3 {
		r.fail(ReasonInvalidField, field+": undefined value 3")
	}
	return v
}

// twoBitList reads an N-Bitfield(2, n): n Int(2) values.
func (r *bitReader) twoBitList(n int, field string) []int {
	if r.err != nil {
		return nil
	}
	out := make([]int, n)
	for i := range out {
		out[i] = r.twoBits(field)
	}
	return out
}
