package forward

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/consent"
)

// Decision says whether an event goes to a destination, and if not, which
// rule stopped it.
type Decision struct {
	Forward bool
	// Reason is a stable code when not forwarded: "source_not_connected",
	// "paused", "event_type_excluded", "event_name_excluded", or
	// "consent:<consent reason>" (see consent.Decision).
	Reason  string
	Purpose cdp.PurposeKey // the purpose a consent reason is about
}

// Decide applies a destination's rules to one event, in this order:
// source connected, destination enabled, event filter, consent (against the
// person's current ledger state: fail-closed, unknown is not granted; CCPA
// opt-outs and GPC block sale/share destinations). Minimisation comes after,
// on what passes (Minimise).
func Decide(d *cdp.Destination, ev *cdp.Event, person consent.Person) Decision {
	if len(d.Sources) > 0 && !slices.Contains(d.Sources, ev.SourceID) {
		return Decision{Reason: "source_not_connected"}
	}
	if !d.Enabled {
		return Decision{Reason: "paused"}
	}
	if r := filterReason(&d.Filter, ev); r != "" {
		return Decision{Reason: r}
	}
	c := consent.Decide(Rule(d), person)
	if !c.Allowed {
		return Decision{Reason: "consent:" + c.Reason, Purpose: c.Purpose}
	}
	return Decision{Forward: true}
}

// Rule is a destination's consent rule.
func Rule(d *cdp.Destination) consent.Rule {
	mode := consent.All
	if d.ConsentMode == cdp.AnyOf {
		mode = consent.Any
	}
	return consent.Rule{Purposes: d.ConsentPurposes, Mode: mode, SaleOrShare: d.SaleOrShare}
}

func filterReason(f *cdp.EventFilter, ev *cdp.Event) string {
	if slices.Contains(f.ExcludeTypes, ev.Type) || (len(f.IncludeTypes) > 0 && !slices.Contains(f.IncludeTypes, ev.Type)) {
		return "event_type_excluded"
	}
	if ev.Name != "" && slices.Contains(f.ExcludeEvents, ev.Name) {
		return "event_name_excluded"
	}
	if len(f.IncludeEvents) > 0 && !slices.Contains(f.IncludeEvents, ev.Name) {
		return "event_name_excluded"
	}
	return ""
}

// DecideConsentChange says whether a consent change goes to a destination.
// Raw destinations take every change record. Other destinations take the
// changes of purposes their consent rule names (and, for sale/share
// destinations, of the CCPA opt-outs), but only for people whose data the
// destination could receive before or after the change: a withdrawal must
// reach the tool even though the person no longer consents, while a person
// who never consented (unknown, then denied) stays unknown to it. person is
// the person's state with the change applied.
func DecideConsentChange(d *cdp.Destination, c *cdp.ConsentChange, src cdp.SourceID, person consent.Person) Decision {
	if len(d.Sources) > 0 && !slices.Contains(d.Sources, src) {
		return Decision{Reason: "source_not_connected"}
	}
	if !d.Enabled {
		return Decision{Reason: "paused"}
	}
	if d.Type == cdp.DestinationRaw {
		return Decision{Forward: true}
	}
	p := c.Entry.Purpose
	covered := slices.Contains(d.ConsentPurposes, p) || (d.SaleOrShare && (p == cdp.PurposeSale || p == cdp.PurposeSharing))
	if !covered {
		return Decision{Reason: "purpose_not_in_rule", Purpose: p}
	}
	rule := Rule(d)
	after := consent.Decide(rule, person)
	if after.Allowed {
		return Decision{Forward: true}
	}
	before := consent.Person{Current: maps.Clone(person.Current), Purposes: person.Purposes}
	if before.Current == nil {
		before.Current = map[cdp.PurposeKey]cdp.ConsentEntry{}
	}
	if c.Old == cdp.Unknown || c.Old == "" {
		delete(before.Current, p)
	} else {
		e := c.Entry
		e.State = c.Old
		before.Current[p] = e
	}
	if consent.Decide(rule, before).Allowed {
		return Decision{Forward: true}
	}
	return Decision{Reason: "consent:" + after.Reason, Purpose: after.Purpose}
}

// Minimise returns the event as the destination may receive it: traits and
// properties cut to its allow or deny lists, the IP address dropped, e-mail
// addresses hashed, as its settings say. The input is not changed.
func Minimise(m *cdp.Minimisation, ev cdp.Event) cdp.Event {
	ev.Traits = trimObject(ev.Traits, m.AllowTraits, m.DenyTraits, m.HashEmail)
	ev.Properties = trimObject(ev.Properties, m.AllowProperties, m.DenyProperties, false)
	ev.Identities = MinimiseIdentities(m, ev.Identities)
	ev.Consent = nil // the destination learns consent from consent changes, not from events
	if m.DropIP {
		ev.IP = ""
		ev.Context = trimObject(ev.Context, nil, []string{"ip"}, false)
	}
	if m.HashEmail && len(ev.Context) > 0 {
		ev.Context = hashNestedEmail(ev.Context)
	}
	return ev
}

// MinimiseIdentities hashes e-mail identities when the settings say so.
func MinimiseIdentities(m *cdp.Minimisation, ids []cdp.Identity) []cdp.Identity {
	if !m.HashEmail {
		return ids
	}
	out := make([]cdp.Identity, len(ids))
	for i, id := range ids {
		if id.Type == cdp.Email {
			id.Value = HashEmail(id.Value)
		}
		out[i] = id
	}
	return out
}

// HashEmail is the SHA-256 (hex) of the normalised e-mail address: the form
// ad platforms match on.
func HashEmail(v string) string {
	h := sha256.Sum256([]byte(cdp.NormalizeIdentityValue(cdp.Email, v)))
	return hex.EncodeToString(h[:])
}

// trimObject applies allow and deny lists to the keys of a JSON object, and
// hashes an "email" member when asked. Not an object: returned as is.
func trimObject(raw json.RawMessage, allow, deny []string, hashEmail bool) json.RawMessage {
	if len(raw) == 0 || (len(allow) == 0 && len(deny) == 0 && !hashEmail) {
		return raw
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return raw
	}
	for k := range obj {
		if (len(allow) > 0 && !slices.Contains(allow, k)) || slices.Contains(deny, k) {
			delete(obj, k)
		}
	}
	if hashEmail {
		if v, ok := obj["email"]; ok {
			var s string
			if json.Unmarshal(v, &s) == nil && s != "" {
				obj["email"], _ = json.Marshal(HashEmail(s))
			}
		}
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return raw
	}
	return out
}

// hashNestedEmail hashes context.traits.email.
func hashNestedEmail(raw json.RawMessage) json.RawMessage {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return raw
	}
	t, ok := obj["traits"]
	if !ok {
		return raw
	}
	obj["traits"] = trimObject(t, nil, nil, true)
	out, err := json.Marshal(obj)
	if err != nil {
		return raw
	}
	return out
}

// DeliveryKey is the idempotency key of a delivery: the same for every
// attempt, different for another destination, item or replay.
func DeliveryKey(dest cdp.DestinationID, kind cdp.DeliveryKind, src cdp.SourceID, id string, replay string) string {
	h := sha256.New()
	for _, part := range []string{string(dest), string(kind), string(src), id, replay} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
