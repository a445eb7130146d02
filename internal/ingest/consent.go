package ingest

import (
	"encoding/json"

	"github.com/custos-cdp/custos/internal/cdp"
)

// Consent carried in events is read here into cdp.ConsentSignal, one per
// choice, in the vocabulary it arrived in. Mapping vocabularies to the
// workspace's purposes, and parsing TCF and GPP strings, happens later.

// segmentConsent is Segment's context.consent.
type segmentConsent struct {
	CategoryPreferences json.RawMessage `json:"categoryPreferences"`
	TCF                 lenientString   `json:"tcf"`
	GPP                 lenientString   `json:"gpp"`
}

// rudderConsent is RudderStack's context.consentManagement. Provider and
// resolutionStrategy stay in the raw context; the gateway does not act on
// them.
type rudderConsent struct {
	Allowed json.RawMessage `json:"allowedConsentIds"`
	Denied  json.RawMessage `json:"deniedConsentIds"`
}

// segmentConsentSignals reads context.consent and context.consentManagement
// (raw values, either may be absent).
func segmentConsentSignals(consent, management []byte) ([]cdp.ConsentSignal, *cdp.Error) {
	var out []cdp.ConsentSignal
	if !isNull(consent) {
		var c segmentConsent
		if firstByte(consent) != '{' || json.Unmarshal(consent, &c) != nil {
			return nil, reject(codeInvalidConsent, "context.consent must be an object of categoryPreferences, tcf and gpp")
		}
		if !isNull(c.CategoryPreferences) {
			err := members(c.CategoryPreferences, func(key string, v json.RawMessage) error {
				var granted bool
				switch string(v) {
				case "true":
					granted = true
				case "false":
				default:
					return errBadCategory
				}
				out = append(out, cdp.ConsentSignal{Vocabulary: cdp.ConsentSegmentCategory, Key: key, Granted: granted})
				return nil
			})
			if err != nil {
				return nil, errBadCategory
			}
		}
		if c.TCF.bad || c.GPP.bad {
			return nil, reject(codeInvalidConsent, "context.consent.tcf and context.consent.gpp must be strings")
		}
		if c.TCF.s != "" {
			out = append(out, cdp.ConsentSignal{Vocabulary: cdp.ConsentTCF, Key: c.TCF.s})
		}
		if c.GPP.s != "" {
			out = append(out, cdp.ConsentSignal{Vocabulary: cdp.ConsentGPP, Key: c.GPP.s})
		}
	}
	if !isNull(management) {
		var r rudderConsent
		if firstByte(management) != '{' || json.Unmarshal(management, &r) != nil {
			return nil, reject(codeInvalidConsent, "context.consentManagement must be an object")
		}
		var err *cdp.Error
		if out, err = appendRudderIDs(out, r.Allowed, true, "allowedConsentIds"); err != nil {
			return nil, err
		}
		if out, err = appendRudderIDs(out, r.Denied, false, "deniedConsentIds"); err != nil {
			return nil, err
		}
	}
	return out, nil
}

var errBadCategory = reject(codeInvalidConsent, "context.consent.categoryPreferences must map category names to true or false")

// appendRudderIDs reads a list of consent ids. RudderStack SDKs send an
// array of ids, some versions an object of id to display name; both count.
func appendRudderIDs(out []cdp.ConsentSignal, raw json.RawMessage, granted bool, field string) ([]cdp.ConsentSignal, *cdp.Error) {
	bad := reject(codeInvalidConsent, "context.consentManagement."+field+" must be an array of ids or an object keyed by id")
	add := func(id string) {
		if id != "" {
			out = append(out, cdp.ConsentSignal{Vocabulary: cdp.ConsentRudderID, Key: id, Granted: granted})
		}
	}
	switch firstByte(raw) {
	case 0, 'n':
		return out, nil
	case '[':
		var ids []lenientString
		if err := json.Unmarshal(raw, &ids); err != nil {
			return nil, bad
		}
		for _, id := range ids {
			if id.bad {
				return nil, bad
			}
			add(id.s)
		}
		return out, nil
	case '{':
		err := members(raw, func(key string, _ json.RawMessage) error {
			add(key)
			return nil
		})
		if err != nil {
			return nil, bad
		}
		return out, nil
	}
	return nil, bad
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
	if firstByte(raw) != '{' || json.Unmarshal(raw, &state) != nil {
		return nil, bad
	}
	var out []cdp.ConsentSignal
	read := func(vocab cdp.ConsentVocabulary, purpose string, v json.RawMessage, invert bool) error {
		if isNull(v) {
			return nil
		}
		var c mpConsent
		if purpose == "" || firstByte(v) != '{' || json.Unmarshal(v, &c) != nil || c.Consented == nil || c.Timestamp.bad {
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
