package identity

import (
	"slices"

	"github.com/custos-cdp/custos/internal/cdp"
)

// Ref is an identity as the graph sees it: its type and blind index.
type Ref struct {
	Type  cdp.IdentityType
	Blind string
}

// Snapshot is the part of the identity graph an event touches: who owns
// each of its identities, and every identity of those owners.
type Snapshot struct {
	Owners   map[string]cdp.ProfileID      // blind index -> owning profile
	Profiles map[cdp.ProfileID][]Ref       // every identity of each owner
	Blocked  func(a, b cdp.ProfileID) bool // pairs an operator split apart
}

// Plan is what to do with an event.
type Plan struct {
	// Profile the event belongs to; empty means create a new one.
	Profile cdp.ProfileID
	// Attach are identities new to the graph that join Profile.
	Attach []Ref
	// Merges are profiles to fold into Profile.
	Merges []PlannedMerge
	// Dropped are identities of the event that were not used, and why.
	Dropped []Dropped
}

// PlannedMerge is one profile to fold into the plan's profile.
type PlannedMerge struct {
	From cdp.ProfileID
	Via  Ref    // the event's identity that belongs to From
	Rule string // human-readable reason, kept in the merge log
}

// Dropped is an identity the plan did not use.
type Dropped struct {
	Ref    Ref
	Reason string // "unique", "limit", "split"
}

// Decide plans an event with identities refs against snap. It is
// deterministic: the same inputs give the same plan.
//
// The event belongs to the profile of its strongest known identity (see
// priority) that does not hold a different value of a unique type the
// event carries; with none, to a new profile. Unknown identities join that
// profile, and profiles owning its other identities merge into it, unless a
// unique type would hold two values, a type would pass its limit, or an
// operator split the two apart.
func Decide(rules Rules, snap Snapshot, refs []Ref) Plan {
	refs = sortedRefs(refs)
	var plan Plan
	for _, r := range refs {
		owner := snap.Owners[r.Blind]
		if owner != "" && !conflictsWithEvent(rules, snap.Profiles[owner], refs) {
			plan.Profile = owner
			break
		}
	}
	view := slices.Clone(snap.Profiles[plan.Profile])
	if plan.Profile == "" {
		view = nil
	}
	merged := map[cdp.ProfileID]bool{}
	for _, r := range refs {
		owner := snap.Owners[r.Blind]
		switch {
		case owner != "" && owner == plan.Profile:
		case merged[owner]:
		case owner == "":
			if reason := attachRefusal(rules, view, r); reason != "" {
				plan.Dropped = append(plan.Dropped, Dropped{Ref: r, Reason: reason})
				continue
			}
			plan.Attach = append(plan.Attach, r)
			view = append(view, r)
		default:
			if plan.Profile != "" && snap.Blocked != nil && snap.Blocked(plan.Profile, owner) {
				plan.Dropped = append(plan.Dropped, Dropped{Ref: r, Reason: "split"})
				continue
			}
			other := snap.Profiles[owner]
			if reason := mergeRefusal(rules, view, other); reason != "" || plan.Profile == "" {
				if reason == "" {
					reason = "unique"
				}
				plan.Dropped = append(plan.Dropped, Dropped{Ref: r, Reason: reason})
				continue
			}
			merged[owner] = true
			plan.Merges = append(plan.Merges, PlannedMerge{
				From: owner, Via: r,
				Rule: "event carried " + string(r.Type) + " of this profile together with identities of the surviving profile",
			})
			for _, o := range other {
				if !hasRef(view, o) {
					view = append(view, o)
				}
			}
		}
	}
	return plan
}

func sortedRefs(refs []Ref) []Ref {
	out := make([]Ref, 0, len(refs))
	for _, r := range refs {
		if !hasRef(out, r) {
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b Ref) int { return priority(a.Type) - priority(b.Type) })
	return out
}

func hasRef(refs []Ref, r Ref) bool {
	for _, x := range refs {
		if x.Blind == r.Blind {
			return true
		}
	}
	return false
}

// conflictsWithEvent reports whether profile holds a different value of a
// unique type that the event carries.
func conflictsWithEvent(rules Rules, profile []Ref, event []Ref) bool {
	for _, r := range event {
		if !rules.IsUnique(r.Type) {
			continue
		}
		for _, p := range profile {
			if p.Type == r.Type && p.Blind != r.Blind {
				return true
			}
		}
	}
	return false
}

func count(refs []Ref, t cdp.IdentityType) int {
	n := 0
	for _, r := range refs {
		if r.Type == t {
			n++
		}
	}
	return n
}

func attachRefusal(rules Rules, view []Ref, r Ref) string {
	if rules.IsUnique(r.Type) && count(view, r.Type) > 0 {
		return "unique"
	}
	if count(view, r.Type) >= rules.Limit(r.Type) {
		return "limit"
	}
	return ""
}

func mergeRefusal(rules Rules, view, other []Ref) string {
	added := map[cdp.IdentityType]int{}
	for _, o := range other {
		if hasRef(view, o) {
			continue
		}
		if rules.IsUnique(o.Type) && count(view, o.Type) > 0 {
			return "unique"
		}
		added[o.Type]++
	}
	for t, n := range added {
		if count(view, t)+n > rules.Limit(t) {
			return "limit"
		}
	}
	return ""
}
