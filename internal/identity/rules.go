package identity

import (
	"slices"
	"strings"

	"github.com/custos-cdp/custos/internal/cdp"
)

// Rules are a workspace's identity resolution settings.
type Rules struct {
	// Unique types: a profile holds at most one value of each. A second,
	// different value never merges into it but starts or finds another
	// profile.
	Unique []cdp.IdentityType
	// Limits caps how many values of a type one profile holds; past it,
	// new values are not attached and merges that would exceed it do not
	// happen. Types not listed use DefaultLimit.
	Limits       map[cdp.IdentityType]int
	DefaultLimit int
	// Blocked values (compared case-insensitively after normalisation) are
	// never used as identities, on top of the built-in junk list.
	Blocked []string
}

// DefaultRules are the rules of a new workspace:
//
//	user_id, mpid        unique (1 per profile)
//	email, phone         5 per profile
//	anonymous_id         25 per profile (browsers, devices, cleared cookies)
//	device ids           10 per type
//	custom:*             10 per type
//
// and the built-in junk values (null, undefined, 0, -1, anonymous, empty,
// the all-zero UUID, ...) are blocked.
func DefaultRules() Rules {
	return Rules{
		Unique: []cdp.IdentityType{cdp.UserID, cdp.MPID},
		Limits: map[cdp.IdentityType]int{
			cdp.UserID: 1, cdp.MPID: 1, cdp.Email: 5, cdp.Phone: 5, cdp.AnonymousID: 25,
			cdp.IOSIDFA: 10, cdp.IOSIDFV: 10, cdp.AndroidAAID: 10, cdp.AndroidID: 10,
		},
		DefaultLimit: 10,
	}
}

// Validate checks that the rules make sense.
func (r Rules) Validate() error {
	for _, t := range r.Unique {
		if !t.Valid() {
			return cdp.Reason(cdp.Invalid, "invalid_identity_type", "unknown identity type in unique")
		}
	}
	for t, n := range r.Limits {
		if !t.Valid() {
			return cdp.Reason(cdp.Invalid, "invalid_identity_type", "unknown identity type in limits")
		}
		if n < 1 || n > 1000 {
			return cdp.Reason(cdp.Invalid, "invalid_limit", "limits must be from 1 to 1000")
		}
	}
	if r.DefaultLimit < 1 || r.DefaultLimit > 1000 {
		return cdp.Reason(cdp.Invalid, "invalid_limit", "default_limit must be from 1 to 1000")
	}
	if len(r.Blocked) > 1000 {
		return cdp.Reason(cdp.Invalid, "too_many_blocked", "at most 1000 blocked values")
	}
	return nil
}

// IsUnique reports whether a profile holds at most one value of t.
func (r Rules) IsUnique(t cdp.IdentityType) bool { return slices.Contains(r.Unique, t) }

// Limit is how many values of t one profile may hold.
func (r Rules) Limit(t cdp.IdentityType) int {
	if r.IsUnique(t) {
		return 1
	}
	if n, ok := r.Limits[t]; ok {
		return n
	}
	if r.DefaultLimit > 0 {
		return r.DefaultLimit
	}
	return 10
}

// Allowed reports whether id may be used: not a junk value.
func (r Rules) Allowed(id cdp.Identity) bool {
	if cdp.IsJunkIdentityValue(id.Value) {
		return false
	}
	for _, b := range r.Blocked {
		b = strings.TrimSpace(b)
		if id.Type == cdp.Phone && b != "" && (b[0] == '+' || b[0] == '(' || b[0] >= '0' && b[0] <= '9') {
			// As identities are: "+1 (202) 555-0100" blocks +12025550100.
			b = cdp.NormalizeIdentityValue(cdp.Phone, b)
		}
		if strings.EqualFold(b, id.Value) {
			return false
		}
	}
	return true
}

// priority orders identity types from the strongest evidence of who a
// person is to the weakest. The profile an event belongs to is found
// through its strongest known identity.
func priority(t cdp.IdentityType) int {
	switch t {
	case cdp.UserID:
		return 0
	case cdp.MPID:
		return 1
	case cdp.Email:
		return 2
	case cdp.Phone:
		return 3
	case cdp.IOSIDFV, cdp.AndroidID:
		return 5
	case cdp.IOSIDFA, cdp.AndroidAAID:
		return 6
	case cdp.AnonymousID:
		return 7
	}
	return 4 // custom types: stronger than device ids, weaker than contact data
}
