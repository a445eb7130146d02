package api

import (
	"net/http"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/httpjson"
	"github.com/custos-cdp/custos/internal/identity"
)

type rulesJSON struct {
	Unique       []string       `json:"unique"`
	Limits       map[string]int `json:"limits"`
	DefaultLimit int            `json:"default_limit"`
	Blocked      []string       `json:"blocked_values"`
}

// getRules answers GET /api/v1/identity-rules.
func (a *API) getRules(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	rules, err := a.deps.Rules.Get(r.Context(), tok.WorkspaceID)
	if err != nil {
		return err
	}
	out := rulesJSON{Unique: []string{}, Limits: map[string]int{}, DefaultLimit: rules.DefaultLimit, Blocked: rules.Blocked}
	if out.Blocked == nil {
		out.Blocked = []string{}
	}
	for _, t := range rules.Unique {
		out.Unique = append(out.Unique, string(t))
	}
	for t, n := range rules.Limits {
		out.Limits[string(t)] = n
	}
	httpjson.Write(w, http.StatusOK, out)
	return nil
}

// putRules answers PUT /api/v1/identity-rules: replace the workspace's
// identity resolution rules. They apply to events processed from then on.
func (a *API) putRules(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	var in rulesJSON
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	rules := identity.Rules{Limits: map[cdp.IdentityType]int{}, DefaultLimit: in.DefaultLimit, Blocked: in.Blocked}
	for _, t := range in.Unique {
		rules.Unique = append(rules.Unique, cdp.IdentityType(t))
	}
	for t, n := range in.Limits {
		rules.Limits[cdp.IdentityType(t)] = n
	}
	if err := a.deps.Rules.Set(r.Context(), tok.WorkspaceID, rules); err != nil {
		return err
	}
	return a.getRules(w, r, tok)
}
