package iab

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// TCString is a decoded TC string (TCF v2.x core segment).
type TCString struct {
	Version                    int
	Created, LastUpdated       time.Time
	CmpID, CmpVersion          int
	ConsentScreen              int
	ConsentLanguage            string
	VendorListVersion          int
	PolicyVersion              int
	IsServiceSpecific          bool
	UseNonStandardTexts        bool
	SpecialFeatureOptIns       [12]bool // index 0 = special feature 1
	PurposeConsents            [24]bool // index 0 = purpose 1
	PurposeLegitimateInterests [24]bool
	PurposeOneTreatment        bool
	PublisherCC                string
	VendorConsents             []int
	VendorLegitimateInterests  []int
}

// PurposeConsent reports consent for purpose n (1..24).
func (t TCString) PurposeConsent(n int) bool {
	return n >= 1 && n <= 24 && t.PurposeConsents[n-1]
}

// maxVendorID bounds vendor sections (the field is 16 bits).
const maxVendorID = 65535

// ParseTCString decodes a TC string. The core segment is parsed field by
// field; later segments (disclosed vendors, publisher TC) must be valid
// base64url with a known segment type and are otherwise not read.
func ParseTCString(s string) (TCString, error) {
	if len(s) > MaxLen {
		return TCString{}, &Error{Reason: "too_long"}
	}
	if s == "" {
		return TCString{}, &Error{Reason: "truncated", Detail: "empty string"}
	}
	segments := strings.Split(s, ".")
	core, err := decode(segments[0], "core segment")
	if err != nil {
		return TCString{}, err
	}
	t, err := parseCore(core)
	if err != nil {
		return TCString{}, err
	}
	for i, seg := range segments[1:] {
		b, err := decode(seg, "segment")
		if err != nil {
			return TCString{}, err
		}
		r := &bitReader{b: b}
		typ := r.int(3, "segment type")
		if r.err != nil {
			return TCString{}, r.err
		}
		// 1: disclosed vendors, 2: allowed vendors (TCF 2.0), 3: publisher TC.
		if typ < 1 || typ > 3 {
			return TCString{}, &Error{Reason: "invalid_segment", Detail: "unknown segment type in segment " + itoa(i+2)}
		}
	}
	return t, nil
}

// parseCore reads the core segment ("Consent string and vendor list formats
// v2", core string table).
func parseCore(b []byte) (TCString, error) {
	r := &bitReader{b: b}
	var t TCString
	t.Version = r.int(6, "Version")
	if r.err == nil && t.Version != 2 {
		return t, &Error{Reason: "unsupported_version", Detail: "TCF version " + itoa(t.Version)}
	}
	t.Created = deciseconds(r.uint(36, "Created"))
	t.LastUpdated = deciseconds(r.uint(36, "LastUpdated"))
	t.CmpID = r.int(12, "CmpId")
	t.CmpVersion = r.int(12, "CmpVersion")
	t.ConsentScreen = r.int(6, "ConsentScreen")
	t.ConsentLanguage = letters(r, "ConsentLanguage")
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
	t.PublisherCC = letters(r, "PublisherCC")
	t.VendorConsents = vendorSection(r, "vendor consents")
	t.VendorLegitimateInterests = vendorSection(r, "vendor legitimate interests")
	publisherRestrictions(r)
	if r.err != nil {
		return TCString{}, r.err
	}
	if t.ConsentLanguage == "" || t.PublisherCC == "" {
		return TCString{}, &Error{Reason: "invalid_field", Detail: "language or country is not two letters A-Z"}
	}
	if t.Created.IsZero() || t.LastUpdated.Before(t.Created) {
		return TCString{}, &Error{Reason: "invalid_field", Detail: "Created/LastUpdated"}
	}
	return t, nil
}

func deciseconds(v uint64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(v) * 100).UTC()
}

// letters reads two 6-bit letters, 0 = A. Out of A-Z gives "".
func letters(r *bitReader, field string) string {
	a, b := r.int(6, field), r.int(6, field)
	if a > 25 || b > 25 {
		return ""
	}
	return string([]byte{byte('A' + a), byte('A' + b)})
}

// vendorSection reads MaxVendorId, then a bitfield or range entries.
func vendorSection(r *bitReader, field string) []int {
	maxID := r.int(16, field+" MaxVendorId")
	if r.bool(field + " IsRangeEncoding") {
		return rangeEntries(r, field, maxID)
	}
	if r.err != nil {
		return nil
	}
	if maxID > r.left() {
		r.err = &Error{Reason: "truncated", Detail: field + " bitfield"}
		return nil
	}
	var out []int
	for id := 1; id <= maxID; id++ {
		if r.bool(field) {
			out = append(out, id)
		}
	}
	return out
}

// rangeEntries reads NumEntries entries of single ids or [start, end]
// ranges, bounded by maxID.
func rangeEntries(r *bitReader, field string, maxID int) []int {
	n := r.int(12, field+" NumEntries")
	seen := map[int]bool{}
	var out []int
	covered := 0 // ids the ranges name in all, overlaps included: bounds the work
	for i := 0; i < n && r.err == nil; i++ {
		isRange := r.bool(field + " IsARange")
		start := r.int(16, field+" StartOrOnlyVendorId")
		end := start
		if isRange {
			end = r.int(16, field+" EndVendorId")
		}
		if r.err != nil {
			break
		}
		covered += end - start + 1
		if start < 1 || end < start || (maxID > 0 && end > maxID) || end > maxVendorID || covered > 2*maxVendorID {
			r.err = &Error{Reason: "invalid_field", Detail: field + " range"}
			break
		}
		for id := start; id <= end; id++ {
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	slices.Sort(out)
	return out
}

// publisherRestrictions reads (and validates) the restrictions section.
func publisherRestrictions(r *bitReader) {
	n := r.int(12, "NumPubRestrictions")
	for i := 0; i < n && r.err == nil; i++ {
		r.int(6, "PurposeId")
		r.int(2, "RestrictionType")
		rangeEntries(r, "publisher restriction", 0)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
