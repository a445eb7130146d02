package consent

import (
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
)

// newer reports whether a supersedes b: the later choice (collected-at)
// wins, and on a tie the later arrival.
func newer(a, b cdp.ConsentEntry) bool {
	if !a.CollectedAt.Equal(b.CollectedAt) {
		return a.CollectedAt.After(b.CollectedAt)
	}
	if !a.ReceivedAt.Equal(b.ReceivedAt) {
		return a.ReceivedAt.After(b.ReceivedAt)
	}
	return a.ID > b.ID
}

// Current derives the current entry per purpose from a ledger: the latest
// by collected-at, ties to the later received-at. An entry that arrives
// late with an older collected-at stays in history and changes nothing.
func Current(ledger []cdp.ConsentEntry) map[cdp.PurposeKey]cdp.ConsentEntry {
	out := make(map[cdp.PurposeKey]cdp.ConsentEntry)
	for _, e := range ledger {
		if cur, ok := out[e.Purpose]; !ok || newer(e, cur) {
			out[e.Purpose] = e
		}
	}
	return out
}

// At is Current as of a moment: only entries Custos had received by then.
func At(ledger []cdp.ConsentEntry, t time.Time) map[cdp.PurposeKey]cdp.ConsentEntry {
	known := make([]cdp.ConsentEntry, 0, len(ledger))
	for _, e := range ledger {
		if !e.ReceivedAt.After(t) {
			known = append(known, e)
		}
	}
	return Current(known)
}

// StateOf is the current state of a purpose, Unknown when the ledger has
// nothing on it.
func StateOf(current map[cdp.PurposeKey]cdp.ConsentEntry, p cdp.PurposeKey) cdp.ConsentState {
	if e, ok := current[p]; ok {
		return e.State
	}
	return cdp.Unknown
}

// Change is what appending e to a ledger whose current state is current
// does to that purpose: the old and new state, and whether it changed the
// current state at all (an older entry arriving late does not).
func Change(current map[cdp.PurposeKey]cdp.ConsentEntry, e cdp.ConsentEntry) (old, new cdp.ConsentState, changed bool) {
	cur, ok := current[e.Purpose]
	old = cdp.Unknown
	if ok {
		old = cur.State
		if !newer(e, cur) {
			return old, old, false
		}
	}
	return old, e.State, old != e.State
}

// restrictiveness orders states for opt-out purposes: an opt-out on any
// linked device applies to the person.
func restrictiveness(s cdp.ConsentState) int {
	switch s {
	case cdp.Denied, cdp.Withdrawn:
		return 2
	case cdp.Granted:
		return 1
	}
	return 0
}

// MergeCarryOver returns the entries a merge must append so that, for
// every opt-out purpose, the survivor's state is the most restrictive of
// the two profiles' states (consent.md: a GPC or CCPA opt-out on any linked
// device applies to the person). For opt-in purposes the ledgers simply
// combine and the latest choice wins, so consent given while anonymous
// carries over. The entries carry the time of the merge as collected-at:
// they record what the merge decided, and a later choice by the person
// supersedes them as usual.
func MergeCarryOver(survivor, merged []cdp.ConsentEntry, purposes map[cdp.PurposeKey]cdp.Purpose, at time.Time) []cdp.ConsentEntry {
	sCur, mCur := Current(survivor), Current(merged)
	all := append(append([]cdp.ConsentEntry{}, survivor...), merged...)
	combined := Current(all)
	// The carried entry must supersede every choice made before the merge,
	// even one whose client clock ran ahead of the server's.
	for _, e := range all {
		if !e.CollectedAt.Before(at) {
			at = e.CollectedAt.Add(time.Microsecond)
		}
	}
	var out []cdp.ConsentEntry
	for key, p := range purposes {
		if p.Regime != cdp.OptOut {
			continue
		}
		best := cdp.ConsentEntry{}
		for _, cur := range []map[cdp.PurposeKey]cdp.ConsentEntry{sCur, mCur} {
			if e, ok := cur[key]; ok && restrictiveness(e.State) > restrictiveness(best.State) {
				best = e
			}
		}
		if best.State == "" || restrictiveness(StateOf(combined, key)) >= restrictiveness(best.State) {
			continue
		}
		carried := best
		carried.ID = ""
		carried.CollectedAt, carried.ReceivedAt = at, at
		carried.Source = cdp.SourceMerge
		carried.SourceName = string(best.Source)
		carried.MessageID = ""
		out = append(out, carried)
	}
	return out
}
