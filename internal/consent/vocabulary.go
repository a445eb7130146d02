package consent

import (
	"errors"
	"strconv"
	"strings"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/iab"
)

// Vocabulary is a workspace's purposes and the mappings from external
// vocabularies to them.
type Vocabulary struct {
	Purposes map[cdp.PurposeKey]cdp.Purpose
	Mappings map[cdp.ConsentVocabulary]map[string]cdp.PurposeKey
}

// Rejection says why a carried consent signal was not used. Key is the
// external name (a category, a purpose id), never an IAB string itself.
type Rejection struct {
	Vocabulary cdp.ConsentVocabulary
	Key        string
	Reason     string // "unmapped", "undefined_purpose", "retired_purpose", "invalid_tcf", "invalid_gpp"
	Detail     string
}

// gppFields are the GPP US opt-out fields a mapping can name.
const (
	GPPSaleOptOut                = "SaleOptOut"
	GPPSharingOptOut             = "SharingOptOut"
	GPPTargetedAdvertisingOptOut = "TargetedAdvertisingOptOut"
)

// Resolve maps an event's carried signals onto the workspace's purposes.
// TCF and GPP strings are parsed and expanded into one signal per mapped
// purpose; a malformed string yields a rejection and no signal. Every
// signal that maps to nothing, or to a purpose the workspace does not
// define or has retired, is rejected with a reason: never silently
// dropped, never silently granted.
func (v Vocabulary) Resolve(signals []cdp.ConsentSignal) ([]cdp.ConsentSignal, []Rejection) {
	var (
		out []cdp.ConsentSignal
		rej []Rejection
	)
	for _, s := range signals {
		switch s.Vocabulary {
		case cdp.ConsentTCF:
			o, r := v.expandTCF(s)
			out, rej = append(out, o...), append(rej, r...)
		case cdp.ConsentGPP:
			o, r := v.expandGPP(s)
			out, rej = append(out, o...), append(rej, r...)
		default:
			p, reason := v.lookup(s.Vocabulary, s.Key)
			if reason != "" {
				rej = append(rej, Rejection{Vocabulary: s.Vocabulary, Key: safeKey(s.Key), Reason: reason})
				continue
			}
			s.Purpose = p
			out = append(out, s)
		}
	}
	return out, rej
}

// safeKey bounds an external key for reports: keys are vocabulary names,
// but they come from clients.
func safeKey(k string) string {
	if len(k) > 64 {
		k = k[:64]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, k)
}

// lookup maps an external name to a live purpose. Explicit mappings win;
// without one, names that already are purpose keys map to themselves
// (mParticle purposes, the consent API, Segment categories spelled as
// keys), and mParticle's CCPA field maps to the sale opt-out.
func (v Vocabulary) lookup(voc cdp.ConsentVocabulary, key string) (cdp.PurposeKey, string) {
	p, ok := v.Mappings[voc][key]
	if !ok {
		for ext, mp := range v.Mappings[voc] {
			if strings.EqualFold(ext, key) {
				p, ok = mp, true
				break
			}
		}
	}
	if !ok {
		switch voc {
		case cdp.ConsentMParticleCCPA:
			if key == "data_sale_opt_out" {
				p, ok = cdp.PurposeSale, true
			}
		case cdp.ConsentMParticleGDPR, cdp.ConsentAPI, cdp.ConsentSegmentCategory:
			k := cdp.PurposeKey(strings.ReplaceAll(strings.ToLower(strings.TrimSpace(key)), " ", "_"))
			if _, defined := v.Purposes[k]; defined {
				p, ok = k, true
			}
		}
	}
	if !ok {
		return "", "unmapped"
	}
	return v.check(p)
}

func (v Vocabulary) check(p cdp.PurposeKey) (cdp.PurposeKey, string) {
	purpose, ok := v.Purposes[p]
	switch {
	case !ok:
		return "", "undefined_purpose"
	case purpose.Retired:
		return "", "retired_purpose"
	}
	return p, ""
}

func iabReason(err error) string {
	var e *iab.Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return "invalid"
}

func (v Vocabulary) expandTCF(s cdp.ConsentSignal) ([]cdp.ConsentSignal, []Rejection) {
	tc, err := iab.ParseTCString(s.Key)
	if err != nil {
		return nil, []Rejection{{Vocabulary: cdp.ConsentTCF, Reason: "invalid_tcf", Detail: iabReason(err)}}
	}
	return v.tcfSignals(tc, s)
}

func (v Vocabulary) tcfSignals(tc iab.TCString, s cdp.ConsentSignal) ([]cdp.ConsentSignal, []Rejection) {
	var (
		out []cdp.ConsentSignal
		rej []Rejection
	)
	for n := 1; n <= 24; n++ {
		target, mapped := v.Mappings[cdp.ConsentTCF][strconv.Itoa(n)]
		if !mapped {
			continue
		}
		p, reason := v.check(target)
		if reason != "" {
			rej = append(rej, Rejection{Vocabulary: cdp.ConsentTCF, Key: strconv.Itoa(n), Reason: reason})
			continue
		}
		out = append(out, cdp.ConsentSignal{Vocabulary: cdp.ConsentTCF, Key: strconv.Itoa(n), Purpose: p,
			Granted: tc.PurposeConsent(n), CollectedAt: tc.LastUpdated, Document: "tcf-policy-" + strconv.Itoa(tc.PolicyVersion)})
	}
	if len(out) == 0 && len(rej) == 0 {
		rej = append(rej, Rejection{Vocabulary: cdp.ConsentTCF, Reason: "unmapped", Detail: "no TCF purpose is mapped in this workspace"})
	}
	return out, rej
}

func (v Vocabulary) expandGPP(s cdp.ConsentSignal) ([]cdp.ConsentSignal, []Rejection) {
	g, err := iab.ParseGPP(s.Key)
	if err != nil {
		return nil, []Rejection{{Vocabulary: cdp.ConsentGPP, Reason: "invalid_gpp", Detail: iabReason(err)}}
	}
	var (
		out []cdp.ConsentSignal
		rej []Rejection
	)
	field := func(name string, value int, def cdp.PurposeKey) {
		if value != 1 && value != 2 { // 0: not applicable
			return
		}
		target, ok := v.Mappings[cdp.ConsentGPP][name]
		if !ok {
			if def == "" {
				return
			}
			target = def
		}
		p, reason := v.check(target)
		if reason != "" {
			rej = append(rej, Rejection{Vocabulary: cdp.ConsentGPP, Key: name, Reason: reason})
			return
		}
		// For the GPP opt-out fields 1 means opted out, 2 did not opt out.
		out = append(out, cdp.ConsentSignal{Vocabulary: cdp.ConsentGPP, Key: name, Purpose: p, Granted: value == 2, CollectedAt: s.CollectedAt})
	}
	for _, sec := range g.US {
		if !sec.Supported {
			continue
		}
		field(GPPSaleOptOut, sec.SaleOptOut, cdp.PurposeSale)
		field(GPPSharingOptOut, sec.SharingOptOut, cdp.PurposeSharing)
		field(GPPTargetedAdvertisingOptOut, sec.TargetedAdvertisingOptOut, "")
		if sec.GPCPresent && sec.GPC {
			field(GPPSaleOptOut, 1, cdp.PurposeSale)
			field(GPPSharingOptOut, 1, cdp.PurposeSharing)
		}
	}
	if g.USPrivacy != nil {
		switch g.USPrivacy.OptOutSale {
		case 'Y':
			field(GPPSaleOptOut, 1, cdp.PurposeSale)
		case 'N':
			field(GPPSaleOptOut, 2, cdp.PurposeSale)
		}
	}
	if g.TCFEU != nil {
		o, r := v.tcfSignals(*g.TCFEU, s)
		out, rej = append(out, o...), append(rej, r...)
	}
	return dedupe(out), rej
}

// dedupe keeps one signal per purpose, the most restrictive: a string that
// says both (two sections) must not be read as consent.
func dedupe(in []cdp.ConsentSignal) []cdp.ConsentSignal {
	var out []cdp.ConsentSignal
	for _, s := range in {
		found := false
		for i := range out {
			if out[i].Purpose == s.Purpose {
				found = true
				out[i].Granted = out[i].Granted && s.Granted
			}
		}
		if !found {
			out = append(out, s)
		}
	}
	return out
}
