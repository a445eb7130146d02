package ingest

import "github.com/custos-cdp/custos/internal/cdp"

// identities collects the identifiers of one message. Junk placeholders and
// values cdp refuses are dropped without a word: a client that sends
// userId "null" has sent no userId, and such values would otherwise glue
// unrelated people into one profile.
type identities []cdp.Identity

func (ids *identities) add(t cdp.IdentityType, value string) {
	if value == "" || cdp.IsJunkIdentityValue(value) {
		return
	}
	id, err := cdp.NewIdentity(t, value)
	if err != nil || cdp.IsJunkIdentityValue(id.Value) {
		return
	}
	ids.addNormalized(id)
}

// addNormalized adds an identity that NewIdentity already built.
func (ids *identities) addNormalized(id cdp.Identity) {
	for _, have := range *ids {
		if have == id {
			return
		}
	}
	*ids = append(*ids, id)
}

func (ids identities) has(t cdp.IdentityType) bool {
	for _, id := range ids {
		if id.Type == t {
			return true
		}
	}
	return false
}
