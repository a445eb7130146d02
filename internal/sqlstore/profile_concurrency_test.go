package sqlstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/sqlstore"
	"github.com/custos-cdp/custos/internal/testenv"
)

// TestConcurrentApplyOnePerson applies events of one person from several
// workers at once (on PostgreSQL truly in parallel): the person must end up
// with exactly one profile, holding every identity, and no trait update may
// be lost.
func TestConcurrentApplyOnePerson(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqlstore.DB) {
		p := newProfiles(t, db)
		const workers, rounds = 8, 15
		concurrently(t, workers, func(w int) error {
			for r := range rounds {
				anon := fmt.Sprintf("anon-%d-%d", w, r)
				batch := []cdp.Event{
					// An anonymous visit first, then the login that links it.
					ev(fmt.Sprintf("v-%d-%d", w, r), cdp.Track, ids("anonymous_id", anon)),
					ev(fmt.Sprintf("l-%d-%d", w, r), cdp.Identify, ids("anonymous_id", anon, "user_id", "the-user"),
						traits(fmt.Sprintf(`{"w%d":%d,"last":%d}`, w, r, w*rounds+r)), at(time.Duration(w*rounds+r)*time.Second)),
				}
				if _, err := p.Apply(context.Background(), batch); err != nil {
					return err
				}
			}
			return nil
		})
		user := find(t, p, cdp.UserID, "the-user")
		prof := get(t, p, user)
		// 1 user id + one anonymous id per round, up to the limit of 25.
		if got := len(prof.Identities); got != 26 {
			t.Errorf("profile holds %d identities, want 26 (user id and 25 anonymous ids)", got)
		}
		tr := traitMap(prof)
		for w := range workers {
			if tr[fmt.Sprintf("w%d", w)] != fmt.Sprint(rounds-1) {
				t.Errorf("trait w%d = %s, want %d (an update was lost)", w, tr[fmt.Sprintf("w%d", w)], rounds-1)
			}
		}
		if tr["last"] != fmt.Sprint(workers*rounds-1) {
			t.Errorf("trait last = %s, want %d: the latest event time must win", tr["last"], workers*rounds-1)
		}
		// Every event is on the person's profile or on an anonymous profile
		// whose id could not be attached (past the limit); none twice.
		n, err := p.EventCount(context.Background(), ws)
		if err != nil {
			t.Fatal(err)
		}
		if n != 2*workers*rounds {
			t.Errorf("stored %d events, want %d", n, 2*workers*rounds)
		}
		if got := prof.EventCount; got < int64(workers*rounds) {
			t.Errorf("the person's profile has %d events, want at least the %d logins", got, workers*rounds)
		}
	})
}

// TestConcurrentLargeAndSmallBatches mixes batches naming more identities
// than a transaction locks one by one (they lock buckets) with small ones
// (they lock each identity), all naming the same new people at once: every
// person must end up with exactly one profile holding both of their ids.
func TestConcurrentLargeAndSmallBatches(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqlstore.DB) {
		p := newProfiles(t, db)
		ctx := context.Background()
		const people = 300
		var big []cdp.Event
		for i := range people {
			big = append(big, ev(fmt.Sprintf("big-%d", i), cdp.Identify, ids("user_id", fmt.Sprintf("u%d", i)), at(time.Second)))
		}
		// Two workers apply the same large batch under different message
		// ids; three apply every person's login alone.
		concurrently(t, 5, func(w int) error {
			if w < 2 {
				b := make([]cdp.Event, len(big))
				copy(b, big)
				for i := range b {
					b[i].MessageID = fmt.Sprintf("%s-w%d", b[i].MessageID, w)
				}
				_, err := p.Apply(ctx, b)
				return err
			}
			for i := w - 2; i < people; i += 3 {
				e := ev(fmt.Sprintf("small-%d", i), cdp.Identify, ids("anonymous_id", fmt.Sprintf("a%d", i), "user_id", fmt.Sprintf("u%d", i)))
				if _, err := p.Apply(ctx, []cdp.Event{e}); err != nil {
					return err
				}
			}
			return nil
		})
		for i := range people {
			u := find(t, p, cdp.UserID, fmt.Sprintf("u%d", i))
			if a := find(t, p, cdp.AnonymousID, fmt.Sprintf("a%d", i)); a != u {
				t.Fatalf("person %d has two profiles: %s (user id) and %s (anonymous id)", i, u, a)
			}
		}
		live, err := db.QueryStringForTest(ctx, `SELECT CAST(COUNT(*) AS TEXT) FROM profiles WHERE merged_into IS NULL AND data_key IS NOT NULL`)
		if err != nil {
			t.Fatal(err)
		}
		if live != fmt.Sprint(people) {
			t.Errorf("%s live profiles, want %d", live, people)
		}
	})
}

// TestConcurrentRedeliveredEntries applies the same events from several
// workers at once, each in its own order, as when a log entry is handed
// out again while its first delivery is still being applied and is combined
// with other entries: every call succeeds and each event is stored once.
// (Their message-id claims go in key order so they cannot deadlock; a
// deadlock would be retried, so this test sees only its cost.)
func TestConcurrentRedeliveredEntries(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqlstore.DB) {
		p := newProfiles(t, db)
		const workers, events = 6, 120
		all := make([]cdp.Event, events)
		for i := range all {
			all[i] = ev(fmt.Sprintf("m-%03d", i), cdp.Track, ids("user_id", fmt.Sprintf("u-%d", i%40)))
		}
		concurrently(t, workers, func(w int) error {
			batch := slices.Clone(all)
			rand.New(rand.NewPCG(uint64(w), 7)).Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
			_, err := p.Apply(context.Background(), batch)
			return err
		})
		n, err := p.EventCount(context.Background(), ws)
		if err != nil {
			t.Fatal(err)
		}
		if n != events {
			t.Errorf("stored %d events, want %d, each once", n, events)
		}
	})
}

// concurrently runs fn(0) to fn(n-1) at once and fails t with their
// errors once all have returned.
func concurrently(t *testing.T, n int, fn func(w int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range n {
		wg.Go(func() {
			if err := fn(w); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("apply: %v", err)
	}
}

// TestBatchesSharePeopleTheyOnlyAppendTo holds one batch open on
// PostgreSQL, its locks taken, while others name the same person: one that
// only appends events and traits completes meanwhile (the person is held
// shared), while one that attaches a new identity to the person, and one
// that merges another profile into them, wait until the first commits
// (they need the person exclusively). Then all of it is there, once.
func TestBatchesSharePeopleTheyOnlyAppendTo(t *testing.T) {
	db := openDB(t, sqlstore.Config{URL: testenv.PostgresURL(t)})
	p := newProfiles(t, db)
	ctx := context.Background()
	apply := func(batch ...cdp.Event) error {
		_, err := p.Apply(ctx, batch)
		return err
	}
	if err := apply(ev("seed-u", cdp.Identify, ids("user_id", "u", "anonymous_id", "a0"), traits(`{"plan":"free"}`)),
		ev("seed-v", cdp.Track, ids("anonymous_id", "v"))); err != nil {
		t.Fatal(err)
	}
	held, release := pauseFirst(t, p, "locked")
	heldDone := make(chan error, 1)
	go func() { heldDone <- apply(ev("held", cdp.Track, ids("user_id", "u"), at(time.Second))) }()
	<-held

	done := func(batch ...cdp.Event) chan error {
		c := make(chan error, 1)
		go func() { c <- apply(batch...) }()
		return c
	}
	appendOnly := done(ev("beside", cdp.Identify, ids("user_id", "u", "anonymous_id", "a0"), traits(`{"plan":"pro"}`), at(2*time.Second)))
	select {
	case err := <-appendOnly:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		release()
		t.Fatal("a batch that only appends to the person waited for another batch naming them")
	}
	attach := done(ev("attach", cdp.Identify, ids("user_id", "u", "anonymous_id", "a1"), at(3*time.Second)))
	merge := done(ev("merge", cdp.Alias, ids("user_id", "u"), func(e *cdp.Event) { e.PreviousID = "v" }, at(4*time.Second)))
	select {
	case err := <-attach:
		t.Fatalf("a batch attaching an identity to the person ran beside one holding them (err %v)", err)
	case err := <-merge:
		t.Fatalf("a batch merging into the person ran beside one holding them (err %v)", err)
	case <-time.After(500 * time.Millisecond):
	}
	release()
	for name, c := range map[string]chan error{"held": heldDone, "attach": attach, "merge": merge} {
		if err := <-c; err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	u := find(t, p, cdp.UserID, "u")
	for _, a := range []string{"a0", "a1", "v"} {
		if got := find(t, p, cdp.AnonymousID, a); got != u {
			t.Errorf("anonymous id %s is on %s, want the person's profile %s", a, got, u)
		}
	}
	prof := get(t, p, u)
	if prof.EventCount != 6 {
		t.Errorf("the person has %d events, want 6", prof.EventCount)
	}
	if tr := traitMap(prof); tr["plan"] != `"pro"` {
		t.Errorf("trait plan = %s, want \"pro\" (the batch that ran beside the held one)", tr["plan"])
	}
}

// TestConcurrentTraitWritesDoNotDeadlock has several workers set traits of
// the same known people at once, each batch naming them in its own order.
// On PostgreSQL the batches hold the people shared and write their trait
// rows side by side; in one order, they never deadlock (which PostgreSQL
// would break after a second by failing one, and Apply would retry: the
// test counts retries). The latest event time wins every trait.
func TestConcurrentTraitWritesDoNotDeadlock(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqlstore.DB) {
		p := newProfiles(t, db)
		ctx := context.Background()
		const people, workers, rounds = 20, 6, 8
		var seed []cdp.Event
		for i := range people {
			seed = append(seed, ev(fmt.Sprintf("seed-%d", i), cdp.Identify, ids("user_id", fmt.Sprintf("u%d", i))))
		}
		if _, err := p.Apply(ctx, seed); err != nil {
			t.Fatal(err)
		}
		var retries atomic.Int64
		concurrently(t, workers, func(w int) error {
			rng := rand.New(rand.NewPCG(uint64(w), 11))
			for r := range rounds {
				var batch []cdp.Event
				for _, i := range rng.Perm(people) {
					n := w*rounds + r
					batch = append(batch, ev(fmt.Sprintf("t-%d-%d-%d", w, r, i), cdp.Identify, ids("user_id", fmt.Sprintf("u%d", i)),
						traits(fmt.Sprintf(`{"a":%d,"b":%d,"w%d":%d}`, n, n, w, r)), at(time.Duration(n)*time.Second)))
				}
				res, err := p.Apply(ctx, batch)
				if err != nil {
					return err
				}
				retries.Add(int64(res.Retries))
			}
			return nil
		})
		if n := retries.Load(); n != 0 {
			t.Errorf("%d batches started over; batches writing the same people's traits must not conflict", n)
		}
		for i := range people {
			tr := traitMap(get(t, p, find(t, p, cdp.UserID, fmt.Sprintf("u%d", i))))
			if want := fmt.Sprint(workers*rounds - 1); tr["a"] != want || tr["b"] != want {
				t.Errorf("person %d: a = %s, b = %s, want %s: the latest event time must win", i, tr["a"], tr["b"], want)
			}
			for w := range workers {
				if tr[fmt.Sprintf("w%d", w)] != fmt.Sprint(rounds-1) {
					t.Errorf("person %d: trait w%d = %s, want %d (an update was lost)", i, w, tr[fmt.Sprintf("w%d", w)], rounds-1)
				}
			}
		}
	})
}

// TestEraseOfProfileMergedSinceResolved: a data subject request resolves
// its person to a profile; before the erasure runs, that profile is merged
// into another. Erasing the resolved profile alone would remove only the
// tombstone and leave the person's data in the survivor, so Erase answers
// Conflict (the DSR worker resolves again); the survivor, erased, takes
// everything with it, the tombstone's events included.
func TestEraseOfProfileMergedSinceResolved(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqlstore.DB) {
		p := newProfiles(t, db)
		ctx := context.Background()
		if _, err := p.Apply(ctx, []cdp.Event{
			ev("by-email", cdp.Track, ids("email", "gone@example.com")),
			ev("by-user", cdp.Identify, ids("user_id", "gone")),
		}); err != nil {
			t.Fatal(err)
		}
		dsrs := p.DSRs()
		who := []cdp.DSRIdentity{{Type: cdp.Email, Format: "raw", Value: "gone@example.com"}, {Type: cdp.UserID, Format: "raw", Value: "gone"}}
		before, err := dsrs.Resolve(ctx, ws, who)
		if err != nil || len(before) != 2 {
			t.Fatalf("resolved %v, %v; want the two profiles", before, err)
		}
		if _, err := p.Apply(ctx, []cdp.Event{ev("login", cdp.Identify, ids("user_id", "gone", "email", "gone@example.com"))}); err != nil {
			t.Fatal(err)
		}
		after, err := dsrs.Resolve(ctx, ws, who)
		if err != nil || len(after) != 1 {
			t.Fatalf("resolved %v, %v after the merge; want one profile", after, err)
		}
		_, _, err = dsrs.Erase(ctx, ws, "dsr-1", before, t0)
		if !cdp.IsKind(err, cdp.Conflict) {
			t.Fatalf("erasing profiles resolved before a merge: err %v, want Conflict", err)
		}
		counts, _, err := dsrs.Erase(ctx, ws, "dsr-1", after, t0)
		if err != nil {
			t.Fatal(err)
		}
		if counts.Events != 3 || counts.Profiles != 2 {
			t.Errorf("erased %d events and %d profiles, want 3 and 2 (the survivor and its tombstone)", counts.Events, counts.Profiles)
		}
		if n, err := p.EventCount(ctx, ws); err != nil || n != 0 {
			t.Errorf("%d events left (err %v), want 0", n, err)
		}
	})
}

// TestSplitDuringApply undoes a merge while workers keep applying events
// that name only the merged-away visitor's anonymous id or only the user
// id. A batch runs wholly before the split (its anonymous-only events land
// on the merged profile and the split moves them back) or wholly after
// (they land on the split-off profile): either way, at the end every
// anonymous-only event is on the split-off profile, every user-only one on
// the user's, each once.
func TestSplitDuringApply(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqlstore.DB) {
		p := newProfiles(t, db)
		ctx := context.Background()
		apply(t, p,
			ev("a0", cdp.Track, ids("anonymous_id", "anon")),
			ev("u0", cdp.Identify, ids("user_id", "user")),
		)
		apply(t, p, ev("login", cdp.Identify, ids("anonymous_id", "anon", "user_id", "user"), at(time.Minute)))
		user := find(t, p, cdp.UserID, "user")
		merges, err := p.Merges(ctx, ws, user)
		if err != nil || len(merges) != 1 {
			t.Fatalf("merge log: %v, %v", merges, err)
		}
		const workers, rounds = 3, 12
		anonOnly, userOnly := []string{"a0"}, []string{"login", "u0"}
		for w := range workers {
			for r := range rounds {
				anonOnly = append(anonOnly, fmt.Sprintf("a-%d-%d", w, r))
				userOnly = append(userOnly, fmt.Sprintf("u-%d-%d", w, r))
			}
		}
		concurrently(t, workers+1, func(w int) error {
			if w == workers {
				time.Sleep(20 * time.Millisecond)
				_, err := p.Split(ctx, ws, merges[0].ID)
				return err
			}
			for r := range rounds {
				if _, err := p.Apply(ctx, []cdp.Event{
					ev(fmt.Sprintf("a-%d-%d", w, r), cdp.Track, ids("anonymous_id", "anon"), at(2*time.Minute)),
					ev(fmt.Sprintf("u-%d-%d", w, r), cdp.Track, ids("user_id", "user"), at(2*time.Minute)),
				}); err != nil {
					return err
				}
			}
			return nil
		})
		anon := find(t, p, cdp.AnonymousID, "anon")
		if anon == user {
			t.Fatal("the split did not take the anonymous id back")
		}
		slices.Sort(anonOnly)
		slices.Sort(userOnly)
		got := timelineIDs(t, p, anon)
		slices.Sort(got)
		if !slices.Equal(got, anonOnly) {
			t.Errorf("split-off profile holds %v, want the %d anonymous-only events", got, len(anonOnly))
		}
		got = timelineIDs(t, p, user)
		slices.Sort(got)
		if !slices.Equal(got, userOnly) {
			t.Errorf("user's profile holds %v, want the %d user-only events", got, len(userOnly))
		}
	})
}

// TestOwnerMergedBeforeItIsLocked: on PostgreSQL a batch reads who owns its
// identities before it locks those people. When another batch merges an
// owner away in between, the first follows the merge to the surviving
// profile (its locks taken again, in order) instead of starting over, and
// its event lands there.
func TestOwnerMergedBeforeItIsLocked(t *testing.T) {
	db := openDB(t, sqlstore.Config{URL: testenv.PostgresURL(t)})
	p := newProfiles(t, db)
	ctx := context.Background()
	apply(t, p,
		ev("visit", cdp.Track, ids("anonymous_id", "anon")),
		ev("user", cdp.Identify, ids("user_id", "user")),
	)
	user := find(t, p, cdp.UserID, "user")
	paused, resume := pauseFirst(t, p, "owners read")
	done := make(chan cdp.ApplyResult, 1)
	errs := make(chan error, 1)
	go func() {
		res, err := p.Apply(ctx, []cdp.Event{ev("late", cdp.Track, ids("anonymous_id", "anon"), at(time.Hour))})
		errs <- err
		done <- res
	}()
	<-paused
	// The visitor logs in: the anonymous profile merges into the user's
	// while the first batch has read its owner but locked nothing yet.
	res := apply(t, p, ev("login", cdp.Identify, ids("anonymous_id", "anon", "user_id", "user"), at(time.Minute)))
	if res.Merges != 1 {
		resume()
		t.Fatalf("%d merges, want 1", res.Merges)
	}
	resume()
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.Retries != 0 || r.Applied != 1 {
		t.Errorf("the batch applied %d events after %d restarts; want 1 event, followed to the survivor without starting over", r.Applied, r.Retries)
	}
	got := timelineIDs(t, p, user)
	slices.Sort(got)
	if want := []string{"late", "login", "user", "visit"}; !slices.Equal(got, want) {
		t.Errorf("the user's timeline holds %v, want %v", got, want)
	}
}

// pauseFirst makes the first Apply transaction to reach stage wait there:
// paused is closed once it does, and resume lets it go on (also at the
// test's end, so nothing stays blocked).
func pauseFirst(t *testing.T, p *sqlstore.Profiles, stage string) (paused <-chan struct{}, resume func()) {
	reached, gate := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	var once sync.Once
	resume = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(resume)
	p.SetHookForTest(func(_ context.Context, s string) {
		if s == stage && first.CompareAndSwap(false, true) {
			close(reached)
			<-gate
		}
	})
	return reached, resume
}
