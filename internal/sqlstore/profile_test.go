package sqlstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/sqlstore"
	"github.com/custos-cdp/custos/internal/vault"
)

const ws = cdp.WorkspaceID("ws1")

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// newProfiles bootstraps workspace ws1 and returns a profile store.
func newProfiles(t testing.TB, db *sqlstore.DB) *sqlstore.Profiles {
	t.Helper()
	if _, err := db.Workspaces().Bootstrap(context.Background(), testBootstrap(string(ws))); err != nil {
		t.Fatal(err)
	}
	root, err := vault.LoadRoot(filepath.Join(t.TempDir(), "master.key"), true)
	if err != nil {
		t.Fatal(err)
	}
	return sqlstore.NewProfiles(db, vault.New(root, db.Keys()))
}

type evOpt func(*cdp.Event)

func ids(pairs ...string) evOpt {
	return func(e *cdp.Event) {
		for i := 0; i+1 < len(pairs); i += 2 {
			e.Identities = append(e.Identities, cdp.Identity{Type: cdp.IdentityType(pairs[i]), Value: pairs[i+1]})
		}
	}
}

func traits(js string) evOpt { return func(e *cdp.Event) { e.Traits = json.RawMessage(js) } }

func at(d time.Duration) evOpt { return func(e *cdp.Event) { e.Timestamp = t0.Add(d) } }

func ev(mid string, typ cdp.EventType, opts ...evOpt) cdp.Event {
	e := cdp.Event{MessageID: mid, WorkspaceID: ws, SourceID: "src1", Format: cdp.FormatSegment, Type: typ,
		Timestamp: t0, ReceivedAt: t0, Properties: json.RawMessage(`{"k":1}`)}
	if typ == cdp.Track {
		e.Name = "Clicked"
	}
	for _, o := range opts {
		o(&e)
	}
	return e
}

func apply(t *testing.T, p *sqlstore.Profiles, events ...cdp.Event) cdp.ApplyResult {
	t.Helper()
	res, err := p.Apply(context.Background(), events)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return res
}

func find(t *testing.T, p *sqlstore.Profiles, typ cdp.IdentityType, v string) cdp.ProfileID {
	t.Helper()
	id, err := p.Find(context.Background(), ws, cdp.Identity{Type: typ, Value: v})
	if err != nil {
		t.Fatalf("find %s: %v", typ, err)
	}
	return id
}

func get(t *testing.T, p *sqlstore.Profiles, id cdp.ProfileID) cdp.Profile {
	t.Helper()
	prof, err := p.Get(context.Background(), ws, id)
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return prof
}

func traitMap(p cdp.Profile) map[string]string {
	m := map[string]string{}
	for _, tr := range p.Traits {
		m[tr.Name] = string(tr.Value)
	}
	return m
}

func timelineIDs(t *testing.T, p *sqlstore.Profiles, id cdp.ProfileID) []string {
	t.Helper()
	evs, err := p.Timeline(context.Background(), ws, id, cdp.TimelineFilter{}, cdp.TimelineCursor{}, 1000)
	if err != nil {
		t.Fatalf("timeline: %v", err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.Event.MessageID)
	}
	slices.Sort(out)
	return out
}

func TestApplyBuildsProfiles(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqlstore.DB) {
		p := newProfiles(t, db)
		res := apply(t, p,
			ev("m1", cdp.Identify, ids("user_id", "u1", "email", "ada@example.com"), traits(`{"plan":"pro","name":"Ada"}`), at(time.Minute)),
			ev("m2", cdp.Track, ids("user_id", "u1")),
			ev("m3", cdp.Track, ids("anonymous_id", "a9")),
		)
		if res.Applied != 3 || res.ProfilesCreated != 2 {
			t.Fatalf("got %+v, want 3 applied and 2 profiles created", res)
		}
		u := find(t, p, cdp.Email, "ada@example.com")
		if find(t, p, cdp.UserID, "u1") != u {
			t.Fatal("user id and e-mail of one event on different profiles")
		}
		prof := get(t, p, u)
		if prof.EventCount != 2 || len(prof.Identities) != 2 {
			t.Errorf("got %d events and %d identities, want 2 and 2", prof.EventCount, len(prof.Identities))
		}
		if got := traitMap(prof); got["plan"] != `"pro"` || got["name"] != `"Ada"` {
			t.Errorf("traits %v", got)
		}
		// Last write wins by event time: an older identify arriving later
		// does not overwrite; a newer one does; a deletion removes.
		apply(t, p, ev("m4", cdp.Identify, ids("user_id", "u1"), traits(`{"plan":"free"}`), at(0)))
		if got := traitMap(get(t, p, u)); got["plan"] != `"pro"` {
			t.Errorf("older write won: plan %s", got["plan"])
		}
		later := ev("m5", cdp.Identify, ids("user_id", "u1"), traits(`{"plan":"team"}`), at(time.Hour))
		later.DeletedTraits = []string{"name"}
		apply(t, p, later)
		got := traitMap(get(t, p, u))
		if got["plan"] != `"team"` {
			t.Errorf("newer write lost: plan %s", got["plan"])
		}
		if _, ok := got["name"]; ok {
			t.Errorf("deleted trait still there")
		}
		// A deletion is a write too: an older set does not bring it back.
		apply(t, p, ev("m6", cdp.Identify, ids("user_id", "u1"), traits(`{"name":"Old"}`), at(2*time.Minute)))
		if _, ok := traitMap(get(t, p, u))["name"]; ok {
			t.Errorf("an older write resurrected a deleted trait")
		}
		// Duplicates are not applied.
		if res := apply(t, p, ev("m2", cdp.Track, ids("user_id", "u1"))); res.Applied != 0 || res.Duplicates != 1 {
			t.Errorf("resent m2: got %+v", res)
		}
	})
}

func TestAnonymousJourneyMergesAndSplits(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqlstore.DB) {
		p := newProfiles(t, db)
		ctx := context.Background()
		apply(t, p,
			ev("a1", cdp.Track, ids("anonymous_id", "anon-1")),
			ev("a2", cdp.Identify, ids("anonymous_id", "anon-1"), traits(`{"color":"blue","seen":"anon"}`), at(time.Minute)),
			ev("u1", cdp.Identify, ids("user_id", "user-1"), traits(`{"plan":"pro","seen":"user"}`), at(2*time.Minute)),
		)
		anon, user := find(t, p, cdp.AnonymousID, "anon-1"), find(t, p, cdp.UserID, "user-1")
		if anon == user {
			t.Fatal("unrelated identities share a profile")
		}
		// The visitor logs in: one event carries both identities.
		res := apply(t, p, ev("login", cdp.Identify, ids("anonymous_id", "anon-1", "user_id", "user-1"), at(3*time.Minute)))
		if res.Merges != 1 {
			t.Fatalf("got %d merges, want 1", res.Merges)
		}
		if find(t, p, cdp.AnonymousID, "anon-1") != user {
			t.Fatal("anonymous id did not move to the user's profile")
		}
		if got := get(t, p, anon); got.MergedInto != user {
			t.Errorf("merged profile: MergedInto %q, want %q", got.MergedInto, user)
		}
		if got, want := timelineIDs(t, p, user), []string{"a1", "a2", "login", "u1"}; !slices.Equal(got, want) {
			t.Errorf("timeline after merge %v, want %v", got, want)
		}
		if got := get(t, p, user); got.EventCount != 4 || got.UpdatedAt.Before(t0.Add(3*time.Minute)) {
			t.Errorf("merged profile counts %d events, updated %v; want 4, at or after the login's time", got.EventCount, got.UpdatedAt)
		}
		tr := traitMap(get(t, p, user))
		if tr["color"] != `"blue"` || tr["plan"] != `"pro"` || tr["seen"] != `"user"` {
			t.Errorf("merged traits %v: want blue, pro and the later seen=user", tr)
		}
		merges, err := p.Merges(ctx, ws, user)
		if err != nil || len(merges) != 1 {
			t.Fatalf("merge log: %v, %v", merges, err)
		}
		m := merges[0]
		if m.Survivor != user || m.Merged != anon || m.MessageID != "login" || m.Rule == "" {
			t.Errorf("merge log entry %+v", m)
		}

		// The operator undoes it.
		if _, err := p.Split(ctx, ws, m.ID); err != nil {
			t.Fatalf("split: %v", err)
		}
		if find(t, p, cdp.AnonymousID, "anon-1") != anon {
			t.Fatal("split did not move the anonymous id back")
		}
		if got, want := timelineIDs(t, p, anon), []string{"a1", "a2"}; !slices.Equal(got, want) {
			t.Errorf("split-off timeline %v, want %v", got, want)
		}
		if got, want := timelineIDs(t, p, user), []string{"login", "u1"}; !slices.Equal(got, want) {
			t.Errorf("survivor timeline %v, want %v", got, want)
		}
		if a, u := get(t, p, anon).EventCount, get(t, p, user).EventCount; a != 2 || u != 2 {
			t.Errorf("after the split the profiles count %d and %d events, want 2 and 2", a, u)
		}
		if tr := traitMap(get(t, p, anon)); tr["color"] != `"blue"` || tr["seen"] != `"anon"` || tr["plan"] != "" {
			t.Errorf("split-off traits recomputed as %v", tr)
		}
		if tr := traitMap(get(t, p, user)); tr["color"] != "" || tr["seen"] != `"user"` {
			t.Errorf("survivor traits recomputed as %v", tr)
		}
		if _, err := p.Split(ctx, ws, m.ID); !cdp.IsKind(err, cdp.Conflict) {
			t.Errorf("second split: %v, want Conflict", err)
		}
		// They stay apart even when an event links them again.
		apply(t, p, ev("again", cdp.Track, ids("anonymous_id", "anon-1", "user_id", "user-1")))
		if find(t, p, cdp.AnonymousID, "anon-1") == find(t, p, cdp.UserID, "user-1") {
			t.Error("split profiles merged again")
		}
	})
}

func TestTimelinePagingAndFilters(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqlstore.DB) {
		p := newProfiles(t, db)
		var batch []cdp.Event
		for i := range 25 {
			e := ev(fmt.Sprintf("m%02d", i), cdp.Track, ids("user_id", "u"), at(time.Duration(i)*time.Minute))
			if i%5 == 0 {
				e.Type, e.Name = cdp.Page, "Home"
			}
			batch = append(batch, e)
		}
		apply(t, p, batch...)
		id := find(t, p, cdp.UserID, "u")
		ctx := context.Background()
		var (
			seen   []string
			cursor cdp.TimelineCursor
		)
		for range 10 {
			page, err := p.Timeline(ctx, ws, id, cdp.TimelineFilter{}, cursor, 10)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page {
				seen = append(seen, e.Event.MessageID)
			}
			if len(page) < 10 {
				break
			}
			cursor = page[len(page)-1].After()
		}
		if len(seen) != 25 || seen[0] != "m24" || seen[24] != "m00" {
			t.Errorf("paged %d events from %v to %v, want 25 from m24 to m00", len(seen), seen[0], seen[len(seen)-1])
		}
		tests := []struct {
			name string
			f    cdp.TimelineFilter
			want int
		}{
			{"by type", cdp.TimelineFilter{Type: cdp.Page}, 5},
			{"by name", cdp.TimelineFilter{Name: "Clicked"}, 20},
			{"time range", cdp.TimelineFilter{From: t0.Add(10 * time.Minute), To: t0.Add(20 * time.Minute)}, 10},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				page, err := p.Timeline(ctx, ws, id, tt.f, cdp.TimelineCursor{}, 100)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) != tt.want {
					t.Errorf("got %d events, want %d", len(page), tt.want)
				}
			})
		}
	})
}

func TestDestroyKeyMakesDataUnreadable(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqlstore.DB) {
		p := newProfiles(t, db)
		ctx := context.Background()
		apply(t, p, ev("m1", cdp.Identify, ids("user_id", "u1", "email", "shred@example.com"), traits(`{"secret":"x"}`)))
		id := find(t, p, cdp.UserID, "u1")
		// Another process has read the profile, so has its key cached.
		other := sqlstore.NewProfiles(db, p.Vault())
		if _, err := other.Get(ctx, ws, id); err != nil {
			t.Fatal(err)
		}
		if err := p.DestroyKey(ctx, ws, id); err != nil {
			t.Fatal(err)
		}
		if _, err := other.Get(ctx, ws, id); !cdp.IsKind(err, cdp.NotFound) {
			t.Errorf("another process with the key cached read the profile after its key was destroyed: %v", err)
		}
		if _, err := other.Timeline(ctx, ws, id, cdp.TimelineFilter{}, cdp.TimelineCursor{}, 10); !cdp.IsKind(err, cdp.NotFound) {
			t.Errorf("another process with the key cached read the timeline after the key was destroyed: %v", err)
		}
		if _, err := other.Live(ctx, ws, id); !cdp.IsKind(err, cdp.NotFound) {
			t.Errorf("a profile whose key was destroyed is still live: %v", err)
		}
		// A fresh store (no cached keys) cannot read any of it.
		root := sqlstore.NewProfiles(db, p.Vault())
		if _, err := root.Get(ctx, ws, id); err == nil {
			t.Error("profile readable after its key was destroyed")
		}
		if _, err := root.Timeline(ctx, ws, id, cdp.TimelineFilter{}, cdp.TimelineCursor{}, 10); err == nil {
			t.Error("timeline readable after the key was destroyed")
		}
		if err := p.DestroyKey(ctx, ws, id); !cdp.IsKind(err, cdp.NotFound) {
			t.Errorf("second destroy: %v, want NotFound", err)
		}
	})
}

// TestEveryMergeTrigger: an alias naming a known previous id, an event
// (an mParticle batch) carrying identities of several profiles, and an
// e-mail address shared by an anonymous visitor and a user each merge
// profiles, each logged with its message id; two user ids sharing an
// e-mail do not. After chained merges (A into B, B into C) C's merge
// history holds both.
func TestEveryMergeTrigger(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqlstore.DB) {
		p := newProfiles(t, db)
		ctx := context.Background()
		logged := func(id cdp.ProfileID) []string {
			t.Helper()
			merges, err := p.Merges(ctx, ws, id)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, m := range merges {
				if m.Rule == "" {
					t.Errorf("merge %s names no rule", m.ID)
				}
				out = append(out, m.MessageID)
			}
			slices.Sort(out)
			return out
		}

		// Alias: a visitor known by an anonymous id is aliased to a user.
		apply(t, p, ev("v1", cdp.Track, ids("anonymous_id", "visitor-1")), ev("u1", cdp.Identify, ids("user_id", "user-1")))
		alias := ev("al", cdp.Alias, ids("user_id", "user-1"))
		alias.PreviousID = "visitor-1"
		if res := apply(t, p, alias); res.Merges != 1 {
			t.Fatalf("alias: %d merges, want 1", res.Merges)
		}
		user := find(t, p, cdp.UserID, "user-1")
		if find(t, p, cdp.AnonymousID, "visitor-1") != user {
			t.Fatal("alias did not merge the visitor into the user")
		}

		// Several identities of one event: an mParticle batch naming the
		// user's mpid, an e-mail known on another profile and a device.
		apply(t, p, ev("e1", cdp.Identify, ids("email", "ada@example.com")), ev("d1", cdp.Track, ids("ios_idfv", "idfv-1")))
		mp := ev("mp", cdp.Track, ids("user_id", "user-1", "email", "ada@example.com", "ios_idfv", "idfv-1"))
		mp.Format = cdp.FormatMParticle
		if res := apply(t, p, mp); res.Merges != 2 {
			t.Fatalf("mParticle batch: %d merges, want 2", res.Merges)
		}
		if find(t, p, cdp.Email, "ada@example.com") != user || find(t, p, cdp.IOSIDFV, "idfv-1") != user {
			t.Fatal("the batch's identities did not end up on one profile")
		}

		// A shared e-mail: an anonymous visitor leaves it, the user has it.
		apply(t, p, ev("n1", cdp.Identify, ids("anonymous_id", "visitor-2", "email", "newsletter@example.com")))
		apply(t, p, ev("n2", cdp.Identify, ids("user_id", "user-2")))
		user2 := find(t, p, cdp.UserID, "user-2")
		if res := apply(t, p, ev("n3", cdp.Identify, ids("user_id", "user-2", "email", "newsletter@example.com"))); res.Merges != 1 {
			t.Fatalf("shared e-mail: %d merges, want 1", res.Merges)
		}
		if find(t, p, cdp.AnonymousID, "visitor-2") != user2 {
			t.Fatal("the visitor who left the e-mail was not merged into its user")
		}
		// Two user ids never merge, whatever they share.
		apply(t, p, ev("n4", cdp.Identify, ids("user_id", "user-3", "email", "newsletter@example.com")))
		if find(t, p, cdp.UserID, "user-3") == user2 {
			t.Fatal("a second user id merged into a profile that has one")
		}

		if got, want := logged(user), []string{"al", "mp", "mp"}; !slices.Equal(got, want) {
			t.Errorf("user-1's merge history names %v, want %v", got, want)
		}

		// Chained: A (an anonymous visitor) merges into B (known by an
		// e-mail only), then B into C (a user).
		apply(t, p, ev("c1", cdp.Track, ids("anonymous_id", "visitor-4")), ev("c2", cdp.Identify, ids("email", "grace@example.com")))
		b := find(t, p, cdp.Email, "grace@example.com")
		apply(t, p, ev("c3", cdp.Identify, ids("email", "grace@example.com", "anonymous_id", "visitor-4")))
		if find(t, p, cdp.AnonymousID, "visitor-4") != b {
			t.Fatal("the visitor did not merge into the e-mail's profile")
		}
		apply(t, p, ev("c4", cdp.Identify, ids("user_id", "user-4")))
		c := find(t, p, cdp.UserID, "user-4")
		apply(t, p, ev("c5", cdp.Identify, ids("user_id", "user-4", "email", "grace@example.com")))
		if find(t, p, cdp.Email, "grace@example.com") != c || find(t, p, cdp.AnonymousID, "visitor-4") != c {
			t.Fatal("the e-mail's profile did not merge into the user's")
		}
		if got, want := logged(c), []string{"c3", "c5"}; !slices.Equal(got, want) {
			t.Errorf("after chained merges the history names %v, want %v", got, want)
		}
	})
}
