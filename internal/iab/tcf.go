package iab

import (
	"slices"
	"strings"
	"time"
)

// TCString is the core segment of a TCF v2 TC string ("Consent string and
// vendor list formats v2", "The Core String"). TCF v2.2 did not change the
// bit layout: it is told apart by PolicyVersion (4 for the v2.2 policies),
// and the field once named UseNonStandardStacks is UseNonStandardTexts.
type TCString struct {
	Version              int       // always 2: other versions are refused
	Created, LastUpdated time.Time // UTC, decisecond precision as encoded
	CmpID, CmpVersion    int
	ConsentScreen        int
	ConsentLanguage      string // ISO 639-1, two upper-case letters
	VendorListVersion    int
	PolicyVersion        int // TcfPolicyVersion: 4 for TCF v2.2
	IsServiceSpecific    bool
	UseNonStandardTexts  bool
	SpecialFeatureOptIns [12]bool // index 0 = special feature 1
	PurposeConsents      [24]bool // index 0 = purpose 1
	// PurposeLegitimateInterests is PurposesLITransparency: true when
	// transparency was established and the person did not object.
	PurposeLegitimateInterests [24]bool
	PurposeOneTreatment        bool
	PublisherCC                string // ISO 3166-1 alpha-2, two upper-case letters
	VendorConsents             []int  // ascending vendor ids, from a bitfield or ranges
	VendorLegitimateInterests  []int  // ascending vendor ids
	PublisherRestrictions      []PublisherRestriction
}

// PublisherRestriction is one PubRestrictionEntry: the publisher restricts
// the legal basis on which the listed vendors may process for PurposeID.
type PublisherRestriction struct {
	PurposeID int
	// Type is RestrictionType: 0 purpose not allowed, 1 require consent,
	// 2 require legitimate interest (3 is undefined and refused).
	Type    int
	Vendors []VendorRange
}

// VendorRange is an inclusive range of vendor ids as encoded; a single id
// has First == Last. Restrictions keep ranges rather than expanding them:
// nothing bounds their sum, so expanding could cost far more memory than
// the string's own length.
type VendorRange struct{ First, Last int }

// PurposeConsent reports consent for purpose n (1..24); out of range is
// false, so a caller that asks about a purpose the TCF does not define
// never reads it as consent.
func (t TCString) PurposeConsent(n int) bool {
	return n >= 1 && n <= len(t.PurposeConsents) && t.PurposeConsents[n-1]
}

// VendorConsent reports whether vendor id has consent.
func (t TCString) VendorConsent(id int) bool {
	_, found := slices.BinarySearch(t.VendorConsents, id)
	return found
}

// Segment types of the segments after the core ("TC String Format"). The
// core has none: it starts with Version.
const (
	segmentCore             = 0 // never valid after the first segment
	segmentDisclosedVendors = 1
	segmentAllowedVendors   = 2
	segmentPublisherTC      = 3
)

// ParseTCString decodes a TC string. The core segment is read field by
// field and must be complete: a string that ends before the publisher
// restrictions count is truncated, whatever it already said. Each later
// segment must be unpadded base64url with a known segment type (disclosed
// vendors, allowed vendors, publisher TC), at most once each; their
// content is not read. Errors are *Error; the result is only meaningful
// when the error is nil.
func ParseTCString(s string) (TCString, error) {
	if len(s) > MaxLen {
		return TCString{}, errorf(ReasonTooLong, "TC string is longer than 16 KiB")
	}
	core, rest, more := strings.Cut(s, ".")
	r, err := newBitReader(core, "core segment")
	if err != nil {
		return TCString{}, err
	}
	t, err := parseCore(r)
	if err != nil {
		return TCString{}, err
	}
	if more {
		if err := checkSegments(rest); err != nil {
			return TCString{}, err
		}
	}
	return t, nil
}

// parseCore reads the fields in the order of the "The Core String" table.
func parseCore(r *bitReader) (TCString, error) {
	var t TCString
	t.Version = r.int(6, "Version")
	if r.err != nil {
		return TCString{}, r.err
	}
	if t.Version != 2 {
		return TCString{}, errorf(ReasonUnsupportedVersion, "Version")
	}
	created := r.uint(36, "Created")
	updated := r.uint(36, "LastUpdated")
	t.CmpID = r.int(12, "CmpId")
	t.CmpVersion = r.int(12, "CmpVersion")
	t.ConsentScreen = r.int(6, "ConsentScreen")
	t.ConsentLanguage = r.letters("ConsentLanguage")
	t.VendorListVersion = r.int(12, "VendorListVersion")
	t.PolicyVersion = r.int(6, "TcfPolicyVersion")
	t.IsServiceSpecific = r.bool("IsServiceSpecific")
	t.UseNonStandardTexts = r.bool("UseNonStandardTexts")
	for i := range t.SpecialFeatureOptIns {
		t.SpecialFeatureOptIns[i] = r.bool("SpecialFeatureOptIns")
	}
	for i := range t.PurposeConsents {
		t.PurposeConsents[i] = r.bool("PurposesConsent")
	}
	for i := range t.PurposeLegitimateInterests {
		t.PurposeLegitimateInterests[i] = r.bool("PurposesLITransparency")
	}
	t.PurposeOneTreatment = r.bool("PurposeOneTreatment")
	t.PublisherCC = r.letters("PublisherCC")
	if r.err != nil {
		return TCString{}, r.err
	}
	// A parser has no clock, so it cannot judge a date as too old or in the
	// future (the specification's own examples carry Created dates from
	// 1991 and 2008). It can refuse what contradicts itself: a string that
	// was never stamped, or one updated before it was created.
	if created == 0 || updated == 0 {
		return TCString{}, errorf(ReasonInvalidField, "Created/LastUpdated: zero")
	}
	if updated < created {
		return TCString{}, errorf(ReasonInvalidField, "LastUpdated: before Created")
	}
	t.Created = deciseconds(created)
	t.LastUpdated = deciseconds(updated)

	t.VendorConsents = r.vendors(&vendorConsentFields)
	t.VendorLegitimateInterests = r.vendors(&vendorLIFields)
	t.PublisherRestrictions = r.publisherRestrictions()
	if r.err != nil {
		return TCString{}, r.err
	}
	return t, nil
}

// deciseconds converts an epoch decisecond count; 36 bits cannot overflow
// the int64 millisecond count.
func deciseconds(v uint64) time.Time {
	return time.UnixMilli(int64(v) * 100).UTC()
}

// letters reads a two-letter code, 6 bits per letter with A = 0 (the TCF
// tables say "a=0..z=25"; GPP's String type says ASCII minus 65, i.e. upper
// case). Values 26..63 are not letters.
func (r *bitReader) letters(field string) string {
	a, b := r.int(6, field), r.int(6, field)
	if r.err != nil {
		return ""
	}
	if a > 25 || b > 25 {
		r.fail(ReasonInvalidField, field+": not two letters A-Z")
		return ""
	}
	return string([]byte{'A' + byte(a), 'A' + byte(b)})
}

// sectionFields names the fields of one vendor list section for error
// details. They are built once: concatenating them at each read would
// allocate for every range entry of every string.
type sectionFields struct {
	maxVendorID, isRangeEncoding, bitField, numEntries string
	isARange, start, end, beyondMax                    string
	startZero, endBeforeStart                          string
}

func newSectionFields(section string) sectionFields {
	return sectionFields{
		maxVendorID:     section + ".MaxVendorId",
		isRangeEncoding: section + ".IsRangeEncoding",
		bitField:        section + ".BitField",
		numEntries:      section + ".NumEntries",
		isARange:        section + ".IsARange",
		start:           section + ".StartOrOnlyVendorId",
		end:             section + ".EndVendorId",
		beyondMax:       section + ".RangeEntry: beyond MaxVendorId",
		startZero:       section + ".StartOrOnlyVendorId: zero",
		endBeforeStart:  section + ".EndVendorId: before StartOrOnlyVendorId",
	}
}

var (
	vendorConsentFields = newSectionFields("VendorConsents")
	vendorLIFields      = newSectionFields("VendorLegitimateInterests")
	restrictionFields   = newSectionFields("PublisherRestrictions")
)

// vendors reads a "Vendor Consent Section" or "Vendor Legitimate Interest
// Section": MaxVendorId (16 bits), IsRangeEncoding (1 bit), then either a
// BitField of MaxVendorId bits (bit i is vendor i+1) or NumEntries (12
// bits) RangeEntry records. Memory is bounded by MaxVendorId <= 65535 ids
// and 4095 range entries.
func (r *bitReader) vendors(f *sectionFields) []int {
	maxID := r.int(16, f.maxVendorID)
	isRange := r.bool(f.isRangeEncoding)
	if r.err != nil {
		return nil
	}
	if !isRange {
		// Checked up front so a hostile MaxVendorId costs nothing.
		if maxID > r.left() {
			r.fail(ReasonTruncated, f.bitField)
			return nil
		}
		return r.ones(maxID)
	}
	n := r.int(12, f.numEntries)
	if r.err != nil || n == 0 {
		return nil
	}
	// Every entry takes at least 17 bits: refusing a count the remaining
	// bits cannot hold keeps a short string from reserving memory.
	if n*17 > r.left() {
		r.fail(ReasonTruncated, f.numEntries)
		return nil
	}
	ranges := make([]VendorRange, 0, n)
	for range n {
		first, last := r.rangeEntry(f)
		if r.err != nil {
			return nil
		}
		// MaxVendorId is "the maximum Vendor ID that is represented in the
		// following bit field or range encoding": an entry beyond it
		// contradicts the section's own header.
		if last > maxID {
			r.fail(ReasonInvalidField, f.beyondMax)
			return nil
		}
		ranges = append(ranges, VendorRange{First: first, Last: last})
	}
	// Entries may come in any order and overlap. Sorting them and skipping
	// what an earlier entry covered makes the work proportional to the ids
	// returned: a hostile string that repeats the range 1-65535 thousands
	// of times costs no more than one that says it once.
	slices.SortFunc(ranges, func(a, b VendorRange) int { return a.First - b.First })
	count, next := 0, 1 // next: the lowest id not yet counted
	for _, rg := range ranges {
		if rg.Last >= next {
			count += rg.Last - max(rg.First, next) + 1
			next = rg.Last + 1
		}
	}
	ids := make([]int, 0, count)
	next = 1
	for _, rg := range ranges {
		for id := max(rg.First, next); id <= rg.Last; id++ {
			ids = append(ids, id)
		}
		next = max(next, rg.Last+1)
	}
	return ids
}

// rangeEntry reads IsARange (1 bit), StartOrOnlyVendorId (16 bits) and, for
// a range, EndVendorId (16 bits). Vendor ids start at 1. The specification
// asks for IsARange=0 when a range holds one id; an explicit range of one
// id means the same thing and is accepted.
func (r *bitReader) rangeEntry(f *sectionFields) (first, last int) {
	isRange := r.bool(f.isARange)
	first = r.int(16, f.start)
	last = first
	if isRange {
		last = r.int(16, f.end)
	}
	if r.err != nil {
		return 0, 0
	}
	if first == 0 {
		r.fail(ReasonInvalidField, f.startZero)
		return 0, 0
	}
	if last < first {
		r.fail(ReasonInvalidField, f.endBeforeStart)
		return 0, 0
	}
	return first, last
}

// publisherRestrictions reads the "Publisher Restrictions Section":
// NumPubRestrictions (12 bits, required even when 0), then per entry
// PurposeId (6), RestrictionType (2), NumEntries (12) and RangeEntry
// records. Every entry takes at least 20 bits and every range entry 17, so
// the slices grow with the input, never beyond it.
func (r *bitReader) publisherRestrictions() []PublisherRestriction {
	const section = "PublisherRestrictions"
	n := r.int(12, section+".NumPubRestrictions")
	var out []PublisherRestriction
	for i := 0; i < n && r.err == nil; i++ {
		p := PublisherRestriction{
			PurposeID: r.int(6, section+".PurposeId"),
			Type:      r.int(2, section+".RestrictionType"),
		}
		entries := r.int(12, section+".NumEntries")
		if r.err != nil {
			return nil
		}
		if p.PurposeID == 0 {
			r.fail(ReasonInvalidField, section+".PurposeId: zero")
			return nil
		}
		if p.Type == 3 {
			r.fail(ReasonInvalidField, section+".RestrictionType: undefined value 3")
			return nil
		}
		for range entries {
			first, last := r.rangeEntry(&restrictionFields)
			if r.err != nil {
				return nil
			}
			p.Vendors = append(p.Vendors, VendorRange{First: first, Last: last})
		}
		out = append(out, p)
	}
	if r.err != nil {
		return nil
	}
	return out
}

// checkSegments validates the segments after the core: each is base64url
// and starts with a 3-bit SegmentType of a segment that may follow the
// core, and none repeats. Their content is not needed by Custos.
func checkSegments(rest string) error {
	var seen [8]bool
	for seg := range strings.SplitSeq(rest, ".") {
		if seg == "" {
			return errorf(ReasonInvalidSegment, "empty segment")
		}
		r, err := newBitReader(seg, "segment")
		if err != nil {
			return err
		}
		typ := r.int(3, "SegmentType")
		if r.err != nil {
			return r.err
		}
		switch {
		case typ == segmentCore:
			return errorf(ReasonInvalidSegment, "SegmentType: core segment after the core")
		case typ > segmentPublisherTC:
			return errorf(ReasonInvalidSegment, "SegmentType: unknown")
		case seen[typ]:
			return errorf(ReasonInvalidSegment, "SegmentType: repeated")
		}
		seen[typ] = true
	}
	return nil
}
