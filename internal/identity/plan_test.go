package identity

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/custos-cdp/custos/internal/cdp"
)

func ref(t cdp.IdentityType, v string) Ref { return Ref{Type: t, Blind: string(t) + ":" + v} }

var (
	userU  = ref(cdp.UserID, "u")
	userV  = ref(cdp.UserID, "v")
	anonA  = ref(cdp.AnonymousID, "a")
	anonB  = ref(cdp.AnonymousID, "b")
	emailE = ref(cdp.Email, "e")
)

// graph builds a snapshot from profile -> identities.
func graph(profiles map[cdp.ProfileID][]Ref) Snapshot {
	s := Snapshot{Owners: map[string]cdp.ProfileID{}, Profiles: profiles}
	for p, refs := range profiles {
		for _, r := range refs {
			s.Owners[r.Blind] = p
		}
	}
	return s
}

func manyAnon(n int) []Ref {
	out := []Ref{userU}
	for i := range n {
		out = append(out, ref(cdp.AnonymousID, fmt.Sprint("x", i)))
	}
	return out
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name  string
		snap  Snapshot
		event []Ref
		want  Plan
	}{
		{
			name:  "all unknown: new profile with every identity",
			snap:  graph(nil),
			event: []Ref{anonA, userU},
			want:  Plan{Attach: []Ref{userU, anonA}},
		},
		{
			name:  "all known on one profile: nothing to do",
			snap:  graph(map[cdp.ProfileID][]Ref{"p1": {userU, anonA}}),
			event: []Ref{anonA, userU},
			want:  Plan{Profile: "p1"},
		},
		{
			name:  "anonymous visitor logs in: user id joins the anonymous profile",
			snap:  graph(map[cdp.ProfileID][]Ref{"p1": {anonA}}),
			event: []Ref{anonA, userU},
			want:  Plan{Profile: "p1", Attach: []Ref{userU}},
		},
		{
			name:  "second device logs in: its anonymous profile merges into the user's",
			snap:  graph(map[cdp.ProfileID][]Ref{"p1": {userU, anonA}, "p2": {anonB}}),
			event: []Ref{anonB, userU},
			want: Plan{Profile: "p1", Merges: []PlannedMerge{{From: "p2", Via: anonB,
				Rule: "event carried anonymous_id of this profile together with identities of the surviving profile"}}},
		},
		{
			name:  "shared device, another user: new profile, device stays with the first user",
			snap:  graph(map[cdp.ProfileID][]Ref{"p1": {userU, anonA}}),
			event: []Ref{userV, anonA},
			want:  Plan{Attach: []Ref{userV}, Dropped: []Dropped{{Ref: anonA, Reason: "unique"}}},
		},
		{
			name:  "shared e-mail between two known users: no merge",
			snap:  graph(map[cdp.ProfileID][]Ref{"p1": {userU}, "p2": {userV, emailE}}),
			event: []Ref{userU, emailE},
			want:  Plan{Profile: "p1", Dropped: []Dropped{{Ref: emailE, Reason: "unique"}}},
		},
		{
			name:  "a second user id never joins a profile",
			snap:  graph(map[cdp.ProfileID][]Ref{"p1": {userU, emailE}}),
			event: []Ref{emailE, userV},
			want:  Plan{Attach: []Ref{userV}, Dropped: []Dropped{{Ref: emailE, Reason: "unique"}}},
		},
		{
			name:  "limit per type: the 26th anonymous id is not attached",
			snap:  graph(map[cdp.ProfileID][]Ref{"p1": manyAnon(25)}),
			event: []Ref{userU, anonA},
			want:  Plan{Profile: "p1", Dropped: []Dropped{{Ref: anonA, Reason: "limit"}}},
		},
		{
			name:  "a merge past the limit does not happen",
			snap:  graph(map[cdp.ProfileID][]Ref{"p1": manyAnon(25), "p2": {anonA, emailE}}),
			event: []Ref{userU, emailE},
			want:  Plan{Profile: "p1", Dropped: []Dropped{{Ref: emailE, Reason: "limit"}}},
		},
		{
			name: "profiles an operator split stay apart",
			snap: func() Snapshot {
				s := graph(map[cdp.ProfileID][]Ref{"p1": {userU}, "p2": {anonA}})
				s.Blocked = func(a, b cdp.ProfileID) bool { return a == "p1" && b == "p2" }
				return s
			}(),
			event: []Ref{userU, anonA},
			want:  Plan{Profile: "p1", Dropped: []Dropped{{Ref: anonA, Reason: "split"}}},
		},
		{
			name:  "duplicate identities in one event count once",
			snap:  graph(nil),
			event: []Ref{anonA, anonA, emailE},
			want:  Plan{Attach: []Ref{emailE, anonA}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(DefaultRules(), tt.snap, tt.event)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			// The order identities arrive in does not change the plan.
			rev := make([]Ref, len(tt.event))
			for i, r := range tt.event {
				rev[len(rev)-1-i] = r
			}
			if again := Decide(DefaultRules(), tt.snap, rev); !reflect.DeepEqual(again, got) {
				t.Errorf("reversed input gave %+v", again)
			}
		})
	}
}

func TestRulesAllowed(t *testing.T) {
	r := DefaultRules()
	r.Blocked = []string{"guest@example.com"}
	tests := []struct {
		value string
		want  bool
	}{
		{"null", false}, {"undefined", false}, {"0", false}, {"-1", false}, {"anonymous", false},
		{"", false}, {"NULL", false}, {"guest@example.com", false}, {"ada@example.com", true}, {"42", true},
	}
	for _, tt := range tests {
		if got := r.Allowed(cdp.Identity{Type: cdp.Email, Value: tt.value}); got != tt.want {
			t.Errorf("Allowed(%q) = %v, want %v", tt.value, got, tt.want)
		}
	}
	// A blocked phone number is compared as identities are, normalised.
	r.Blocked = []string{" +1 (202) 555-0100 "}
	if r.Allowed(cdp.Identity{Type: cdp.Phone, Value: "+12025550100"}) {
		t.Error("a blocked phone number written with spaces and brackets was allowed")
	}
	if !r.Allowed(cdp.Identity{Type: cdp.Phone, Value: "+12025550101"}) {
		t.Error("another phone number was blocked")
	}
}

func TestRulesValidate(t *testing.T) {
	bad := DefaultRules()
	bad.Limits = map[cdp.IdentityType]int{cdp.Email: 0}
	if err := bad.Validate(); !cdp.IsKind(err, cdp.Invalid) {
		t.Errorf("limit 0: got %v, want Invalid", err)
	}
	bad = DefaultRules()
	bad.Unique = []cdp.IdentityType{"nonsense"}
	if err := bad.Validate(); !cdp.IsKind(err, cdp.Invalid) {
		t.Errorf("unknown type: got %v, want Invalid", err)
	}
	if err := DefaultRules().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}
