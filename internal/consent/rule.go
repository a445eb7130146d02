package consent

import (
	"github.com/custos-cdp/custos/internal/cdp"
)

// Mode says how a rule's purposes combine.
type Mode string

// The modes.
const (
	All Mode = "all" // every purpose must be granted
	Any Mode = "any" // at least one purpose must be granted
)

// Rule is what a consumer (a destination, an audience) requires of a
// person's consent.
type Rule struct {
	Purposes []cdp.PurposeKey
	Mode     Mode
	// SaleOrShare marks a consumer that receives data as a sale or a
	// sharing under CCPA: the person's opt-out of either, or a GPC signal,
	// blocks it whatever the purposes say.
	SaleOrShare bool
}

// Decision says whether data may flow, and why not.
type Decision struct {
	Allowed bool
	// Reason is a stable code when not allowed: "purpose_unknown",
	// "purpose_not_granted", "purpose_denied", "purpose_withdrawn",
	// "document_expired", "sale_opt_out", "sharing_opt_out", "gpc",
	// "no_purpose_granted".
	Reason  string
	Purpose cdp.PurposeKey // the purpose the reason is about
}

// Person is what the decision looks at: the current entry per purpose
// (from Current or At) and the workspace's purposes.
type Person struct {
	Current  map[cdp.PurposeKey]cdp.ConsentEntry
	Purposes map[cdp.PurposeKey]cdp.Purpose
}

// Decide answers, in one place for all of Custos, whether a person's data
// may go to a consumer with rule r. It fails closed: a purpose the
// workspace does not define, or an opt-in purpose without a grant (unknown),
// is not granted; a grant that cites a document version needing renewal is
// not granted; for a sale or share, an opt-out of sale or sharing, or GPC,
// blocks.
func Decide(r Rule, p Person) Decision {
	if r.SaleOrShare {
		for _, key := range []cdp.PurposeKey{cdp.PurposeSale, cdp.PurposeSharing} {
			e, ok := p.Current[key]
			if !ok || (e.State != cdp.Denied && e.State != cdp.Withdrawn) {
				continue
			}
			reason := string(key)
			if e.Source == cdp.SourceGPC || (e.Source == cdp.SourceMerge && e.SourceName == string(cdp.SourceGPC)) {
				reason = "gpc"
			}
			return Decision{Reason: reason, Purpose: key}
		}
	}
	if len(r.Purposes) == 0 {
		return Decision{Allowed: true}
	}
	var first Decision
	for _, key := range r.Purposes {
		d := decidePurpose(key, p)
		if r.Mode == Any && d.Allowed {
			return d
		}
		if r.Mode != Any && !d.Allowed {
			return d
		}
		if first.Reason == "" {
			first = d
		}
	}
	if r.Mode == Any {
		return Decision{Reason: "no_purpose_granted", Purpose: first.Purpose}
	}
	return Decision{Allowed: true}
}

func decidePurpose(key cdp.PurposeKey, p Person) Decision {
	purpose, ok := p.Purposes[key]
	if !ok {
		return Decision{Reason: "purpose_unknown", Purpose: key}
	}
	e, has := p.Current[key]
	if !has {
		if purpose.Regime == cdp.OptOut {
			return Decision{Allowed: true, Purpose: key}
		}
		return Decision{Reason: "purpose_not_granted", Purpose: key}
	}
	switch e.State {
	case cdp.Denied:
		return Decision{Reason: "purpose_denied", Purpose: key}
	case cdp.Withdrawn:
		return Decision{Reason: "purpose_withdrawn", Purpose: key}
	case cdp.Granted:
		if purpose.RequireCurrentDocument && purpose.Regime == cdp.OptIn && e.Document != purpose.DocumentVersion {
			return Decision{Reason: "document_expired", Purpose: key}
		}
		return Decision{Allowed: true, Purpose: key}
	}
	return Decision{Reason: "purpose_not_granted", Purpose: key}
}
