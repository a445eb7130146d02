package ingest

import (
	"encoding/json"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/jsonscan"
)

// Consent carried in events is read here into cdp.ConsentSignal, one per
// choice, in the vocabulary it arrived in. Mapping vocabularies to the
// workspace's purposes, and parsing TCF and GPP strings, happens later.

// segmentConsentSignals reads context.consent ({categoryPreferences, tcf,
// gpp}, Segment) and context.consentManagement ({allowedConsentIds,
// deniedConsentIds, ...}, RudderStack); both are raw values and may be
// absent. Provider and resolutionStrategy stay in the raw context: the
// gateway does not act on them.
func segmentConsentSignals(consent, management []byte) ([]cdp.ConsentSignal, *cdp.Error) {
	var out []cdp.ConsentSignal
	if !isNull(consent) {
		if jsonscan.FirstByte(consent) != '{' {
			return nil, reject(codeInvalidConsent, "context.consent must be a JSON object")
		}
		var prefs []byte
		var tcf, gpp lenientString
		jsonscan.EachMember(consent, func(key, v []byte) {
			switch string(jsonscan.Key(key)) {
			case "categoryPreferences":
				prefs = v
			case "tcf":
				tcf = lenientValue(v)
			case "gpp":
				gpp = lenientValue(v)
			}
		})
		if !isNull(prefs) {
			err := members(prefs, func(key string, v json.RawMessage) error {
				var granted bool
				switch string(v) {
				case "true":
					granted = true
				case "false":
				default:
					return errBadCategory
				}
				if key == "" {
					return errBadCategory
				}
				out = append(out, cdp.ConsentSignal{Vocabulary: cdp.ConsentSegmentCategory, Key: key, Granted: granted})
				return nil
			})
			if err != nil {
				return nil, errBadCategory
			}
		}
		if tcf.bad || gpp.bad {
			return nil, reject(codeInvalidConsent, "context.consent.tcf and context.consent.gpp must be strings")
		}
		if tcf.s != "" {
			out = append(out, cdp.ConsentSignal{Vocabulary: cdp.ConsentTCF, Key: tcf.s})
		}
		if gpp.s != "" {
			out = append(out, cdp.ConsentSignal{Vocabulary: cdp.ConsentGPP, Key: gpp.s})
		}
	}
	if !isNull(management) {
		if jsonscan.FirstByte(management) != '{' {
			return nil, reject(codeInvalidConsent, "context.consentManagement must be a JSON object")
		}
		var allowed, denied []byte
		jsonscan.EachMember(management, func(key, v []byte) {
			switch string(jsonscan.Key(key)) {
			case "allowedConsentIds":
				allowed = v
			case "deniedConsentIds":
				denied = v
			}
		})
		var err *cdp.Error
		if out, err = appendRudderIDs(out, allowed, true, "allowedConsentIds"); err != nil {
			return nil, err
		}
		if out, err = appendRudderIDs(out, denied, false, "deniedConsentIds"); err != nil {
			return nil, err
		}
	}
	return out, nil
}

var errBadCategory = reject(codeInvalidConsent, "context.consent.categoryPreferences must map non-empty category names to true or false")

// appendRudderIDs reads a list of consent ids. RudderStack SDKs send an
// array of ids, some versions an object of id to display name; both count.
func appendRudderIDs(out []cdp.ConsentSignal, raw []byte, granted bool, field string) ([]cdp.ConsentSignal, *cdp.Error) {
	bad := reject(codeInvalidConsent, "context.consentManagement."+field+" must be an array of non-empty ids or an object keyed by id")
	ok := true
	add := func(id string) {
		ok = ok && id != ""
		out = append(out, cdp.ConsentSignal{Vocabulary: cdp.ConsentRudderID, Key: id, Granted: granted})
	}
	switch jsonscan.FirstByte(raw) {
	case 0, 'n':
		return out, nil
	case '[':
		jsonscan.EachElement(raw, func(v []byte) {
			id := lenientValue(v)
			ok = ok && !id.bad
			add(id.s)
		})
	case '{':
		if members(raw, func(key string, _ json.RawMessage) error {
			add(key)
			return nil
		}) != nil {
			ok = false
		}
	default:
		return nil, bad
	}
	if !ok {
		return nil, bad
	}
	return out, nil
}

// mpConsentState is mParticle's consent_state.
type mpConsentState struct {
	GDPR json.RawMessage `json:"gdpr"`
	CCPA json.RawMessage `json:"ccpa"`
}

// mpConsent is one purpose's state under consent_state.gdpr or .ccpa.
type mpConsent struct {
	Consented  *bool  `json:"consented"`
	Document   string `json:"document"`
	Timestamp  msTime `json:"timestamp_unixtime_ms"`
	Location   string `json:"location"`
	HardwareID string `json:"hardware_id"`
}

// mParticleConsentSignals reads consent_state. Under ccpa, data_sale_opt_out
// with consented=true means the person opted out of sale, so Granted is
// inverted there; other ccpa keys have no documented polarity and are
// ignored.
func mParticleConsentSignals(raw json.RawMessage) ([]cdp.ConsentSignal, *cdp.Error) {
	if isNull(raw) {
		return nil, nil
	}
	bad := reject(codeInvalidConsent, "consent_state must hold gdpr and ccpa objects of {consented: bool, ...}")
	var state mpConsentState
	if jsonscan.FirstByte(raw) != '{' || json.Unmarshal(raw, &state) != nil {
		return nil, bad
	}
	var out []cdp.ConsentSignal
	read := func(vocab cdp.ConsentVocabulary, purpose string, v json.RawMessage, invert bool) error {
		if isNull(v) {
			return nil
		}
		var c mpConsent
		if purpose == "" || jsonscan.FirstByte(v) != '{' || json.Unmarshal(v, &c) != nil || c.Consented == nil || c.Timestamp.bad {
			return bad
		}
		out = append(out, cdp.ConsentSignal{
			Vocabulary:  vocab,
			Key:         purpose,
			Granted:     *c.Consented != invert,
			CollectedAt: c.Timestamp.t,
			Document:    c.Document,
			Location:    c.Location,
			HardwareID:  c.HardwareID,
		})
		return nil
	}
	if !isNull(state.GDPR) {
		err := members(state.GDPR, func(purpose string, v json.RawMessage) error {
			return read(cdp.ConsentMParticleGDPR, purpose, v, false)
		})
		if err != nil {
			return nil, bad
		}
	}
	if !isNull(state.CCPA) {
		err := members(state.CCPA, func(key string, v json.RawMessage) error {
			if key != "data_sale_opt_out" {
				return nil
			}
			return read(cdp.ConsentMParticleCCPA, key, v, true)
		})
		if err != nil {
			return nil, bad
		}
	}
	return out, nil
}
