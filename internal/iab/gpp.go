package iab

import "strings"

// GPP is a decoded GPP string (Global Privacy Platform "Consent String
// Specification", version 1). Every section the header lists appears in
// exactly one of TCFEU, USPrivacy, US or Other, in header order, so
// len(SectionIDs) always equals the number of sections reported.
type GPP struct {
	Version    int   // header version, always 1
	SectionIDs []int // from the header, ascending, as the sections appear
	TCFEU      *TCString
	USPrivacy  *USPrivacy
	// US holds the US national and state sections: usnat (7) and usca (8)
	// parsed with Supported=true, the other states (9..27) listed with ID
	// and Name only.
	US []USSection
	// Other lists sections that are neither TCF EU, US Privacy nor a US
	// section: tcfeuv1 (1), the signal integrity section (4), tcfcav1 (5)
	// and ids no specification assigned yet. None is parsed.
	Other []Section
}

// Section names a GPP section this package does not parse. Name is the
// client-side API prefix, empty when the section has none or the id is
// unknown.
type Section struct {
	ID   int
	Name string
}

// USPrivacy is the uspv1 section (section 6), which is the IAB CCPA / US
// Privacy string unchanged: a version digit and three flags.
type USPrivacy struct {
	Version    int
	Notice     byte // explicit notice / opportunity to opt out: 'Y', 'N' or '-'
	OptOutSale byte // 'Y' the person opted out of sale, 'N' not, '-' not applicable
	LSPA       byte // covered by the Limited Service Provider Agreement: 'Y', 'N' or '-'
}

// GPP section ids ("Section Information" and each section's specification).
const (
	sectionTCFEUv1         = 1
	sectionTCFEUv2         = 2
	sectionHeader          = 3
	sectionSignalIntegrity = 4
	sectionTCFCAv1         = 5
	sectionUSPv1           = 6
	sectionUSNat           = 7
	sectionUSCA            = 8
	lastUSState            = 27 // usri
)

// sectionNames maps a section id to its client-side API prefix.
var sectionNames = map[int]string{
	sectionTCFEUv1: "tcfeuv1", sectionTCFEUv2: "tcfeuv2", sectionTCFCAv1: "tcfcav1",
	sectionUSPv1: "uspv1", sectionUSNat: "usnat", sectionUSCA: "usca",
	9: "usva", 10: "usco", 11: "usut", 12: "usct", 13: "usfl", 14: "usmt", 15: "usor",
	16: "ustx", 17: "usde", 18: "usia", 19: "usne", 20: "usnh", 21: "usnj", 22: "ustn",
	23: "usmn", 24: "usmd", 25: "usin", 26: "usky", 27: "usri",
}

// maxSectionID bounds the ids the header may name. The registry is in the
// twenties; the bound keeps the offset arithmetic of hostile headers far
// from overflow on 32-bit platforms.
const maxSectionID = 1<<16 - 1

// ParseGPP decodes a GPP string: a base64url header, then one string per
// section the header lists, separated by '~'. The header and the number of
// sections must agree. tcfeuv2 is parsed with ParseTCString, uspv1 as a
// US Privacy string, usnat and usca field by field; a failure in any of
// them fails the whole string, since a malformed section must never be
// stored as consent. Sections this package does not parse are listed, not
// refused, but must still be web-safe as the specification requires.
// Errors are *Error.
func ParseGPP(s string) (GPP, error) {
	if len(s) > MaxLen {
		return GPP{}, errorf(ReasonTooLong, "GPP string is longer than 16 KiB")
	}
	header, rest, hasSections := strings.Cut(s, "~")
	sections := 0
	if hasSections {
		sections = strings.Count(rest, "~") + 1
	}
	r, err := newBitReader(header, "header")
	if err != nil {
		return GPP{}, err
	}
	typ := r.int(6, "header Type")
	version := r.int(6, "header Version")
	if r.err != nil {
		return GPP{}, r.err
	}
	// Type is fixed to 3; a TC string, for one, starts with 2 ('C').
	if typ != sectionHeader {
		return GPP{}, errorf(ReasonInvalidHeader, "Type: not a GPP header")
	}
	if version != 1 {
		return GPP{}, errorf(ReasonUnsupportedVersion, "header Version")
	}
	ids, err := r.sectionIDs(sections)
	if err != nil {
		return GPP{}, err
	}
	g := GPP{Version: version, SectionIDs: ids}
	for _, id := range ids {
		var sec string
		sec, rest, _ = strings.Cut(rest, "~")
		if err := g.add(id, sec); err != nil {
			return GPP{}, err
		}
	}
	return g, nil
}

// sectionIDs reads the header's Sections field, a Range(Fibonacci): a
// 12-bit count, then per item a 1-bit group flag and a Fibonacci offset
// from the previous id (0 before the first), and for a group a second
// Fibonacci integer, the distance from its first id to its last. Offsets
// are at least 1, so ids come out strictly ascending, as the specification
// requires. The group flag is 1 for a group: the data type table lists
// Boolean as "0=true, 1=false", but the specification's own header
// examples and every implementation use 1 for true. present is the number of section strings after the header: the
// list may not name more, which also bounds what a group can expand to.
func (r *bitReader) sectionIDs(present int) ([]int, error) {
	const field = "header Sections"
	n := r.int(12, field)
	if r.err != nil {
		return nil, r.err
	}
	ids := make([]int, 0, present)
	last := 0
	for range n {
		group := r.bool(field)
		first := last + r.fibonacci(field)
		end := first
		if first <= maxSectionID && group {
			end = first + r.fibonacci(field)
		}
		if r.err != nil {
			return nil, r.err
		}
		if end > maxSectionID {
			return nil, errorf(ReasonInvalidHeader, field+": section id out of range")
		}
		if first <= sectionHeader && end >= sectionHeader {
			return nil, errorf(ReasonInvalidHeader, field+": section id 3 is the header itself")
		}
		if end-first+1 > present-len(ids) {
			return nil, errorf(ReasonSectionMismatch, "the header lists more sections than the string holds")
		}
		for id := first; id <= end; id++ {
			ids = append(ids, id)
		}
		last = end
	}
	if len(ids) < present {
		return nil, errorf(ReasonSectionMismatch, "the string holds more sections than the header lists")
	}
	return ids, nil
}

// add parses or lists the section with the given id.
func (g *GPP) add(id int, s string) error {
	name := sectionNames[id]
	switch {
	case id == sectionTCFEUv2:
		// "GPP Extension: IAB Europe TCF": the section is the TC string,
		// exactly as the TCF specification produces it.
		tc, err := ParseTCString(s)
		if err != nil {
			return within(err, name)
		}
		g.TCFEU = &tc
	case id == sectionUSPv1:
		u, err := parseUSPrivacy(s)
		if err != nil {
			return within(err, name)
		}
		g.USPrivacy = &u
	case id == sectionUSNat || id == sectionUSCA:
		u, err := parseUS(id, s)
		if err != nil {
			return within(err, name)
		}
		g.US = append(g.US, u)
	case id > sectionUSCA && id <= lastUSState:
		// Every state section is base64url subsections joined by '.', so a
		// state section that is not cannot be one.
		for sub := range strings.SplitSeq(s, ".") {
			if sub == "" {
				return errorf(ReasonInvalidSegment, name+": empty subsection")
			}
			if _, err := newBitReader(sub, name); err != nil {
				return err
			}
		}
		g.US = append(g.US, USSection{ID: id, Name: name})
	default:
		if !webSafe(s) {
			return errorf(ReasonInvalidSegment, "section with a character that is not web-safe")
		}
		g.Other = append(g.Other, Section{ID: id, Name: name})
	}
	return nil
}

// webSafe reports whether s uses only the characters the GPP "Delimiters"
// note allows inside a section: A-Z, a-z, 0-9, '-', '.', '_'.
func webSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if base64URL[s[i]] == invalidChar && s[i] != '.' {
			return false
		}
	}
	return true
}

// parseUSPrivacy reads the uspv1 section ("USPrivacy String Unencoded
// Format", the IAB CCPA Compliance Framework "U.S. Privacy String"): four
// characters, the version digit then Notice, OptOutSale and LSPA, each
// 'Y', 'N' or '-'. Only version 1 exists.
func parseUSPrivacy(s string) (USPrivacy, error) {
	if len(s) < 4 {
		return USPrivacy{}, errorf(ReasonTruncated, "US Privacy string is shorter than 4 characters")
	}
	if len(s) > 4 {
		return USPrivacy{}, errorf(ReasonInvalidField, "US Privacy string is longer than 4 characters")
	}
	if s[0] < '0' || s[0] > '9' {
		return USPrivacy{}, errorf(ReasonInvalidField, "Version: not a digit")
	}
	if s[0] != '1' {
		return USPrivacy{}, errorf(ReasonUnsupportedVersion, "Version")
	}
	for i, field := range [...]string{"Notice", "OptOutSale", "LSPA"} {
		if c := s[i+1]; c != 'Y' && c != 'N' && c != '-' {
			return USPrivacy{}, errorf(ReasonInvalidField, field+": not Y, N or -")
		}
	}
	return USPrivacy{Version: 1, Notice: s[1], OptOutSale: s[2], LSPA: s[3]}, nil
}

// The opt-out summaries below lean toward the person: a "yes" from any one
// section counts even when another section says "no", because honouring an
// opt-out by mistake costs a campaign while ignoring one breaks the law and
// the person's trust.
//
// Two readings go beyond the literal field. The US Privacy string carries
// a single opt-out (of sale); since the CPRA, California's "Do Not Sell or
// Share" choice is one choice, so a 'Y' there also counts for sharing and
// targeted advertising. And a GPC subsection with Gpc=1 counts as an
// opt-out of all three: California, Colorado, Connecticut and the other
// MSPA states treat a Global Privacy Control signal as a valid opt-out of
// sale, sharing and targeted advertising.

// OptedOutOfSale reports whether the person opted out of the sale of their
// personal information in any parsed US section (SaleOptOut = 1 or GPC) or
// in the US Privacy string (OptOutSale = 'Y').
func (g GPP) OptedOutOfSale() bool {
	return g.optedOut(func(u USSection) int { return u.SaleOptOut })
}

// OptedOutOfSharing reports whether the person opted out of sharing in any
// parsed US section (SharingOptOut = 1 or GPC) or in the US Privacy
// string (OptOutSale = 'Y').
func (g GPP) OptedOutOfSharing() bool {
	return g.optedOut(func(u USSection) int { return u.SharingOptOut })
}

// OptedOutOfTargetedAdvertising reports whether the person opted out of
// targeted advertising in any parsed US section (TargetedAdvertisingOptOut
// = 1 or GPC) or in the US Privacy string (OptOutSale = 'Y').
func (g GPP) OptedOutOfTargetedAdvertising() bool {
	return g.optedOut(func(u USSection) int { return u.TargetedAdvertisingOptOut })
}

func (g GPP) optedOut(field func(USSection) int) bool {
	if g.USPrivacy != nil && g.USPrivacy.OptOutSale == 'Y' {
		return true
	}
	for _, u := range g.US {
		if u.Supported && (field(u) == optedOut || (u.GPCPresent && u.GPC)) {
			return true
		}
	}
	return false
}
