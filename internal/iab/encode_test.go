package iab

// A small encoder, for the tests only: it writes strings field by field in
// the order the specifications' tables give, so the parsers are checked
// against values chosen here rather than against their own output.

const testAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

type bitWriter struct {
	bits []byte // one 0 or 1 per bit
}

func (w *bitWriter) uint(v uint64, n int) *bitWriter {
	for i := n - 1; i >= 0; i-- {
		w.bits = append(w.bits, byte(v>>uint(i)&1))
	}
	return w
}

func (w *bitWriter) int(v, n int) *bitWriter { return w.uint(uint64(v), n) }

func (w *bitWriter) bool(b bool) *bitWriter {
	if b {
		return w.int(1, 1)
	}
	return w.int(0, 1)
}

func (w *bitWriter) bools(bs []bool) *bitWriter {
	for _, b := range bs {
		w.bool(b)
	}
	return w
}

// fibonacci writes v >= 1 as a Fibonacci code word: the Zeckendorf digits
// for 1, 2, 3, 5, 8, ..., least significant first, then a closing 1.
func (w *bitWriter) fibonacci(v int) *bitWriter {
	fib := []int{1, 2}
	for fib[len(fib)-1] <= v {
		fib = append(fib, fib[len(fib)-1]+fib[len(fib)-2])
	}
	digits := make([]byte, len(fib))
	top := 0
	for i, rest := len(fib)-1, v; i >= 0; i-- {
		if fib[i] <= rest {
			digits[i] = 1
			rest -= fib[i]
			top = max(top, i)
		}
	}
	w.bits = append(w.bits, digits[:top+1]...)
	w.bits = append(w.bits, 1)
	return w
}

// letters writes a two-letter code, A = 0.
func (w *bitWriter) letters(s string) *bitWriter {
	return w.int(int(s[0]-'A'), 6).int(int(s[1]-'A'), 6)
}

// base64 pads with zero bits to a multiple of 6, as both specifications
// ask, and writes one base64url character per 6 bits.
func (w *bitWriter) base64() string {
	bits := w.bits
	for len(bits)%6 != 0 {
		bits = append(bits, 0)
	}
	out := make([]byte, 0, len(bits)/6)
	for i := 0; i < len(bits); i += 6 {
		v := 0
		for _, b := range bits[i : i+6] {
			v = v<<1 | int(b)
		}
		out = append(out, testAlphabet[v])
	}
	return string(out)
}

// base64Bytes pads to whole bytes first, as the iabgpp reference encoders
// do, then to 6 bits: a 60-bit usnat core becomes 66 bits, 11 characters.
func (w *bitWriter) base64Bytes() string {
	for len(w.bits)%8 != 0 {
		w.bits = append(w.bits, 0)
	}
	return w.base64()
}

// encodeTC writes the core segment of t ("The Core String" table), with
// the vendor lists as bitfields or as ranges.
func encodeTC(t TCString, vendorRanges bool) string {
	w := &bitWriter{}
	w.int(t.Version, 6)
	w.uint(uint64(t.Created.UnixMilli()/100), 36)
	w.uint(uint64(t.LastUpdated.UnixMilli()/100), 36)
	w.int(t.CmpID, 12).int(t.CmpVersion, 12).int(t.ConsentScreen, 6)
	w.letters(t.ConsentLanguage).int(t.VendorListVersion, 12).int(t.PolicyVersion, 6)
	w.bool(t.IsServiceSpecific).bool(t.UseNonStandardTexts)
	w.bools(t.SpecialFeatureOptIns[:]).bools(t.PurposeConsents[:]).bools(t.PurposeLegitimateInterests[:])
	w.bool(t.PurposeOneTreatment).letters(t.PublisherCC)
	for _, ids := range [][]int{t.VendorConsents, t.VendorLegitimateInterests} {
		maxID := 0
		if len(ids) > 0 {
			maxID = ids[len(ids)-1]
		}
		if vendorRanges {
			w.encodeRanges(maxID, runs(ids))
		} else {
			w.encodeBitField(maxID, ids)
		}
	}
	w.int(len(t.PublisherRestrictions), 12)
	for _, p := range t.PublisherRestrictions {
		w.int(p.PurposeID, 6).int(p.Type, 2).int(len(p.Vendors), 12)
		for _, r := range p.Vendors {
			w.rangeEntry(r)
		}
	}
	return w.base64()
}

func (w *bitWriter) encodeBitField(maxID int, ids []int) {
	w.int(maxID, 16).bool(false)
	set := map[int]bool{}
	for _, id := range ids {
		set[id] = true
	}
	for id := 1; id <= maxID; id++ {
		w.bool(set[id])
	}
}

// encodeRanges writes a range-encoded vendor section with the entries as
// given: they may overlap, repeat or come in any order.
func (w *bitWriter) encodeRanges(maxID int, ranges []VendorRange) {
	w.int(maxID, 16).bool(true).int(len(ranges), 12)
	for _, r := range ranges {
		w.rangeEntry(r)
	}
}

// rangeEntry writes a single id with IsARange=0, anything longer as a range.
func (w *bitWriter) rangeEntry(r VendorRange) {
	if r.First == r.Last {
		w.bool(false).int(r.First, 16)
		return
	}
	w.bool(true).int(r.First, 16).int(r.Last, 16)
}

// runs turns ascending ids into maximal ranges of consecutive ids.
func runs(ids []int) []VendorRange {
	var out []VendorRange
	for _, id := range ids {
		if n := len(out); n > 0 && out[n-1].Last == id-1 {
			out[n-1].Last = id
			continue
		}
		out = append(out, VendorRange{First: id, Last: id})
	}
	return out
}

// gppHeader writes a version 1 GPP header listing ascending ids, with runs
// of consecutive ids as groups, as the reference encoders do.
func gppHeader(ids ...int) string {
	w := &bitWriter{}
	w.int(sectionHeader, 6).int(1, 6)
	groups := runs(ids)
	w.int(len(groups), 12)
	last := 0
	for _, g := range groups {
		if g.First == g.Last {
			w.bool(false).fibonacci(g.First - last)
		} else {
			w.bool(true).fibonacci(g.First - last).fibonacci(g.Last - g.First)
		}
		last = g.Last
	}
	return w.base64()
}

// encodeUSNat writes a usnat core subsection. The layout follows the length
// of u.SensitiveDataProcessing (12: 2022, 16: 2024); version is written as
// given so tests can pair either layout with either version number.
// byteAligned pads like the reference encoders.
func encodeUSNat(u USSection, version int, byteAligned bool) string {
	w := &bitWriter{}
	w.int(version, 6)
	for _, v := range []int{u.SharingNotice, u.SaleOptOutNotice, u.SharingOptOutNotice,
		u.TargetedAdvertisingOptOutNotice, u.SensitiveDataProcessingOptOutNotice,
		u.SensitiveDataLimitUseNotice, u.SaleOptOut, u.SharingOptOut, u.TargetedAdvertisingOptOut} {
		w.int(v, 2)
	}
	for _, v := range u.SensitiveDataProcessing {
		w.int(v, 2)
	}
	for _, v := range u.KnownChildSensitiveDataConsents {
		w.int(v, 2)
	}
	w.int(u.PersonalDataConsents, 2)
	w.int(u.MspaCoveredTransaction, 2).int(u.MspaOptOutOptionMode, 2).int(u.MspaServiceProviderMode, 2)
	if byteAligned {
		return w.base64Bytes()
	}
	return w.base64()
}

// encodeUSCA writes a usca (version 1) core subsection.
func encodeUSCA(u USSection) string {
	w := &bitWriter{}
	w.int(1, 6)
	for _, v := range []int{u.SaleOptOutNotice, u.SharingOptOutNotice, u.SensitiveDataLimitUseNotice,
		u.SaleOptOut, u.SharingOptOut} {
		w.int(v, 2)
	}
	for _, v := range u.SensitiveDataProcessing {
		w.int(v, 2)
	}
	for _, v := range u.KnownChildSensitiveDataConsents {
		w.int(v, 2)
	}
	w.int(u.PersonalDataConsents, 2)
	w.int(u.MspaCoveredTransaction, 2).int(u.MspaOptOutOptionMode, 2).int(u.MspaServiceProviderMode, 2)
	return w.base64()
}

// gpcSubsection writes SubsectionType 1 and the Gpc flag.
func gpcSubsection(gpc bool) string {
	return (&bitWriter{}).int(1, 2).bool(gpc).base64()
}
