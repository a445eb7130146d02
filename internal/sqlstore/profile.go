package sqlstore

import (
	"cmp"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/eventcodec"
	"github.com/custos-cdp/custos/internal/identity"
	"github.com/custos-cdp/custos/internal/vault"
)

// Profiles stores people: the identity graph, traits, groups, timelines
// and the merge log, all personal data sealed under each person's data
// key. One process should hold one Profiles: it caches data keys.
type Profiles struct {
	db      *DB
	vault   *vault.Vault
	rules   *IdentityRules
	consent *Consent
	dests   *Destinations
	keys    *dataKeyCache
	now     func() time.Time
	// hook, when set (by tests), runs in each Apply transaction at the
	// named stages: "owners read" (before any profile is locked) and
	// "locked" (every lock taken).
	hook func(ctx context.Context, stage string)
}

// NewProfiles returns the profile store, encrypting with v.
func NewProfiles(db *DB, v *vault.Vault) *Profiles {
	return &Profiles{
		db:      db,
		vault:   v,
		rules:   &IdentityRules{db: db, cache: map[cdp.WorkspaceID]cachedRules{}},
		consent: newConsent(db),
		dests:   newDestinations(db),
		keys:    newDataKeyCache(50000, 10*time.Minute),
		now:     time.Now,
	}
}

// Vault is the key hierarchy the store encrypts with.
func (s *Profiles) Vault() *vault.Vault { return s.vault }

// Destinations is the store of the workspaces' destinations.
func (s *Profiles) Destinations() *Destinations { return s.dests }

// Consent is the store of the workspaces' purposes, mappings and feeds.
func (s *Profiles) Consent() *Consent { return s.consent }

// Rules is the store of the workspaces' identity resolution rules.
func (s *Profiles) Rules() *IdentityRules { return s.rules }

// Apply resolves each event to a profile, grows and merges the identity
// graph as the workspace's rules decide, updates traits and groups, and
// appends the event to the profile's timeline. Events whose message id was
// applied before are skipped. It is atomic: all of it happens or none.
// Conflicts with concurrent writers are retried here.
func (s *Profiles) Apply(ctx context.Context, events []cdp.Event) (cdp.ApplyResult, error) {
	var res cdp.ApplyResult
	// Settings and keys are read before the transaction: inside it no
	// second connection may be taken from the pool.
	env, err := s.settingsOf(ctx, events)
	if err != nil {
		return res, err
	}
	// Encode outside the transaction: on SQLite it holds the one writer.
	payloads := make([][]byte, len(events))
	for i := range events {
		var err error
		if payloads[i], err = eventcodec.Append(nil, &events[i]); err != nil {
			return res, err
		}
	}
	var a *applier
	retries, err := s.db.retryTx(ctx, 20, func(tx querier) error {
		res = cdp.ApplyResult{}
		a = &applier{s: s, tx: tx, env: env, res: &res, owners: map[string]cdp.ProfileID{},
			active: map[cdp.ProfileID]bool{}, exclusive: map[cdp.ProfileID]bool{}, payloads: payloads,
			ledgers: map[cdp.ProfileID][]cdp.ConsentEntry{}, newKeys: map[cdp.ProfileID]*vault.DataKey{}}
		return a.run(ctx, events)
	})
	if err == nil {
		// New profiles' keys are shared only once their rows exist.
		for p, dk := range a.newKeys {
			s.keys.put(p, dk)
		}
	}
	res.Retries = retries
	return res, err
}

// errRace means a concurrent writer changed the graph under this
// transaction; it is retried from the start.
var errRace = cdp.Reason(cdp.Conflict, "graph_changed", "the identity graph changed concurrently")

func retryable(err error) bool {
	return cdp.IsKind(err, cdp.Conflict) || cdp.IsKind(err, cdp.Unavailable)
}

// applier is one Apply transaction.
type applier struct {
	s   *Profiles
	tx  querier
	env map[cdp.WorkspaceID]*settings // loaded before the transaction
	res *cdp.ApplyResult

	owners map[string]cdp.ProfileID // blind index -> profile, as seen in this transaction
	blinds map[blindKey]string      // blind indexes computed in this transaction
	active map[cdp.ProfileID]bool   // profiles checked live (and locked) in this transaction
	// exclusive are the profiles this transaction holds exclusively (on
	// PostgreSQL; the others in active it holds shared).
	exclusive map[cdp.ProfileID]bool
	pending   []pendingEvent

	payloads [][]byte // the batch's events, encoded
	// Rows written at flush: new profiles, new identities and identity
	// hashes, a slice of column values each (identities attached also per
	// profile, for plan).
	newProfiles   [][]any
	newIdentities [][]any
	attached      map[cdp.ProfileID][]identity.Ref
	// newKeys are the data keys of profiles created in this transaction;
	// they reach the shared cache after commit (a key evicted from it
	// before the row is written could not be read back).
	newKeys map[cdp.ProfileID]*vault.DataKey
	hashes  [][]any
	traits  map[cdp.ProfileID]map[string]traitRow // trait writes, written at flush
	ledgers map[cdp.ProfileID][]cdp.ConsentEntry  // consent ledgers read in this transaction
	// suppressed are the blind indexes of erased people's identities.
	suppressed map[string]bool

	// changes are the consent changes of the event being applied, for its
	// fan-out; deliveries and outbox are buffered rows.
	changes    []cdp.ConsentChange
	deliveries []deliveryRow
	outbox     []outboxRow
}

type pendingEvent struct {
	ev      *cdp.Event
	profile cdp.ProfileID
	payload []byte
}

func (a *applier) run(ctx context.Context, events []cdp.Event) error {
	// The graph lock first, shared: it waits only for a split under way.
	if err := a.lockGraphs(ctx, events); err != nil {
		return err
	}
	// Message ids next: claiming them needs no identity lock, so on
	// PostgreSQL another batch naming the same people waits that much
	// less.
	fresh, err := claimMessageIDs(ctx, a.tx, a.s.db, events)
	if err != nil {
		return err
	}
	a.res.Duplicates = len(events) - len(fresh)
	blinds := a.batchBlinds(events)
	for ws, b := range blinds {
		if err := a.loadOwners(ctx, ws, b); err != nil {
			return err
		}
		if err := a.loadSuppressed(ctx, ws, b); err != nil {
			return err
		}
	}
	if err := a.lockNew(ctx, blinds); err != nil {
		return err
	}
	if a.s.hook != nil {
		a.s.hook(ctx, "owners read")
	}
	if err := a.lockAllOwners(ctx, events, fresh); err != nil {
		return err
	}
	if a.s.hook != nil {
		a.s.hook(ctx, "locked")
	}
	for _, i := range fresh {
		if err := a.apply(ctx, &events[i], a.payloads[i]); err != nil {
			return err
		}
	}
	return a.flush(ctx, true)
}

// lockGraphs takes the graph lock of every workspace of the batch, shared.
func (a *applier) lockGraphs(ctx context.Context, events []cdp.Event) error {
	var wss []cdp.WorkspaceID
	for i := range events {
		wss = append(wss, events[i].WorkspaceID)
	}
	return a.s.db.dialect.lockGraph(ctx, a.tx, wss, false)
}

// batchBlinds returns the blind indexes of every identity the batch names
// (an alias's previous id in both its possible types), per workspace, each
// once: the most active people are named by many events of a batch.
func (a *applier) batchBlinds(events []cdp.Event) map[cdp.WorkspaceID][]string {
	out := map[cdp.WorkspaceID][]string{}
	type wsBlind struct {
		ws    cdp.WorkspaceID
		blind string
	}
	seen := map[wsBlind]bool{}
	for i := range events {
		ev := &events[i]
		keys := a.env[ev.WorkspaceID].keys
		for _, id := range append(ev.Identities, aliasCandidates(ev)...) {
			b := a.blind(ev.WorkspaceID, keys, id)
			if k := (wsBlind{ev.WorkspaceID, b}); !seen[k] {
				seen[k] = true
				out[ev.WorkspaceID] = append(out[ev.WorkspaceID], b)
			}
		}
	}
	return out
}

type blindKey struct {
	ws cdp.WorkspaceID
	id cdp.Identity
}

// blind returns an identity's blind index, computed once per transaction
// (batchBlinds and eventRefs both need it).
func (a *applier) blind(ws cdp.WorkspaceID, keys *vault.Keys, id cdp.Identity) string {
	k := blindKey{ws, id}
	if b, ok := a.blinds[k]; ok {
		return b
	}
	if a.blinds == nil {
		a.blinds = map[blindKey]string{}
	}
	b := string(keys.BlindIndex(id))
	a.blinds[k] = b
	return b
}

// lockNew locks the batch's identities that are new to the graph,
// exclusively, in one sorted sweep, and then reads their owners again:
// another batch may have attached one meanwhile. Of two batches naming the
// same new identity, the second so waits for the first and finds its
// profile instead of creating a second one. Known identities are not
// locked: what could move them (a merge of their profile, an erasure) is
// excluded by the profile locks of lockOwners, a split by the graph lock.
// Locks come before any profile lock, so none is waited for in a cycle.
func (a *applier) lockNew(ctx context.Context, blinds map[cdp.WorkspaceID][]string) error {
	if !a.concurrent() {
		return nil // one writer at a time: nothing changes under it
	}
	fresh := map[cdp.WorkspaceID][]string{}
	var keys []int32
	for ws, bs := range blinds {
		for _, b := range bs {
			if a.owners[b] == "" {
				fresh[ws] = append(fresh[ws], b)
				keys = append(keys, identityLockKey(b))
			}
		}
	}
	slices.Sort(keys)
	if err := a.s.db.dialect.lockKeys(ctx, a.tx, slices.Compact(keys)); err != nil {
		return err
	}
	// Read again what may have changed while waiting: owners, and
	// suppressions (an erasure may have removed an identity another batch
	// had just attached).
	for ws, bs := range fresh {
		if err := a.loadOwners(ctx, ws, bs); err != nil {
			return err
		}
		if err := a.loadSuppressed(ctx, ws, bs); err != nil {
			return err
		}
	}
	return nil
}

// identityLockKey is the advisory lock key of a blind index: its first
// four bytes (a keyed hash, so uniformly spread).
func identityLockKey(blind string) int32 {
	var b [4]byte
	copy(b[:], blind)
	return int32(binary.BigEndian.Uint32(b[:]))
}

// eventRefs returns the blind indexes of an event's usable identities and
// the identities behind them. An alias's previous id is whichever of
// user_id and anonymous_id is already known (anonymous_id if neither).
func (a *applier) eventRefs(ev *cdp.Event, keys *vault.Keys, rules identity.Rules) ([]identity.Ref, map[string]cdp.Identity) {
	refs := make([]identity.Ref, 0, len(ev.Identities)+1)
	values := make(map[string]cdp.Identity, len(ev.Identities)+1)
	add := func(id cdp.Identity) {
		b := a.blind(ev.WorkspaceID, keys, id)
		refs = append(refs, identity.Ref{Type: id.Type, Blind: b})
		values[b] = id
	}
	for _, id := range ev.Identities {
		if rules.Allowed(id) {
			add(id)
		}
	}
	if ev.Type == cdp.Alias && ev.PreviousID != "" {
		asUser, err1 := cdp.NewIdentity(cdp.UserID, ev.PreviousID)
		asAnon, err2 := cdp.NewIdentity(cdp.AnonymousID, ev.PreviousID)
		switch {
		case err1 == nil && rules.Allowed(asUser) && a.owners[a.blind(ev.WorkspaceID, keys, asUser)] != "":
			add(asUser)
		case err2 == nil && rules.Allowed(asAnon):
			add(asAnon)
		}
	}
	return refs, values
}

// aliasCandidates are the identities an alias's previous id may be.
func aliasCandidates(ev *cdp.Event) []cdp.Identity {
	if ev.Type != cdp.Alias || ev.PreviousID == "" {
		return nil
	}
	var out []cdp.Identity
	for _, t := range []cdp.IdentityType{cdp.UserID, cdp.AnonymousID} {
		if id, err := cdp.NewIdentity(t, ev.PreviousID); err == nil {
			out = append(out, id)
		}
	}
	return out
}

// loadSuppressed finds which of the batch's identities belong to erased
// people.
func (a *applier) loadSuppressed(ctx context.Context, ws cdp.WorkspaceID, blinds []string) error {
	for start := 0; start < len(blinds); start += rowsPerStatement {
		chunk := blinds[start:min(start+rowsPerStatement, len(blinds))]
		cond, args := inSet(a.s.db.dialect, "blind", 2, "bytea", chunk)
		rows, err := a.tx.QueryContext(ctx,
			`SELECT blind FROM suppressions WHERE workspace_id = $1 AND lifted_at IS NULL AND `+cond, append([]any{ws}, args...)...)
		if err != nil {
			return a.s.db.dialect.translate(err)
		}
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				rows.Close()
				return err
			}
			if a.suppressed == nil {
				a.suppressed = map[string]bool{}
			}
			a.suppressed[string(b)] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return a.s.db.dialect.translate(err)
		}
	}
	return nil
}

func (a *applier) loadOwners(ctx context.Context, ws cdp.WorkspaceID, blinds []string) error {
	for start := 0; start < len(blinds); start += rowsPerStatement {
		chunk := blinds[start:min(start+rowsPerStatement, len(blinds))]
		cond, args := inSet(a.s.db.dialect, "blind", 2, "bytea", chunk)
		rows, err := a.tx.QueryContext(ctx,
			`SELECT blind, profile_id FROM identities WHERE workspace_id = $1 AND `+cond, append([]any{ws}, args...)...)
		if err != nil {
			return a.s.db.dialect.translate(err)
		}
		for rows.Next() {
			var (
				blind []byte
				p     string
			)
			if err := rows.Scan(&blind, &p); err != nil {
				rows.Close()
				return err
			}
			a.owners[string(blind)] = cdp.ProfileID(p)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return a.s.db.dialect.translate(err)
		}
	}
	return nil
}

// exclusiveOwners returns which profiles the batch may change beyond
// appending events and last-write-wins traits and groups: those it may
// merge, attach a new identity to, change the consent of, or add to a
// group. Events are
// grouped by the identities they share (a union-find over blind indexes);
// a group naming two profiles, or a profile and a new identity, or any
// consent, takes all its profiles exclusively. This errs on the side of
// exclusive; apply still upgrades a lock the guess missed (ensureExclusive).
func (a *applier) exclusiveOwners(events []cdp.Event, fresh []int) map[cdp.ProfileID]bool {
	out := map[cdp.ProfileID]bool{}
	if !a.concurrent() {
		return out
	}
	parent := map[string]string{}
	var find func(string) string
	find = func(b string) string {
		p, ok := parent[b]
		if !ok || p == b {
			parent[b] = b
			return b
		}
		r := find(p)
		parent[b] = r
		return r
	}
	heads := make([]string, len(fresh)) // a blind index of each event's group
	for n, i := range fresh {
		ev := &events[i]
		env := a.env[ev.WorkspaceID]
		refs, _ := a.eventRefs(ev, env.keys, env.rules)
		blinds := make([]string, 0, len(refs)+2)
		for _, r := range refs {
			blinds = append(blinds, r.Blind)
		}
		// An alias's previous id resolves against the graph as this batch
		// leaves it, which an earlier event may change: both readings.
		for _, id := range aliasCandidates(ev) {
			if env.rules.Allowed(id) {
				blinds = append(blinds, a.blind(ev.WorkspaceID, env.keys, id))
			}
		}
		for _, b := range blinds {
			if heads[n] == "" {
				heads[n] = find(b)
			} else if x, y := find(heads[n]), find(b); x != y {
				parent[x] = y
			}
		}
	}
	type group struct {
		owners    map[cdp.ProfileID]bool
		new, excl bool
	}
	groups := map[string]*group{}
	at := func(b string) *group {
		r := find(b)
		g := groups[r]
		if g == nil {
			g = &group{owners: map[cdp.ProfileID]bool{}}
			groups[r] = g
		}
		return g
	}
	for b := range parent {
		g := at(b)
		if o := a.owners[b]; o != "" {
			g.owners[o] = true
		} else {
			g.new = true
		}
	}
	for n, i := range fresh {
		if ev := &events[i]; heads[n] != "" && (writesConsent(ev) || ev.Type == cdp.Group) {
			at(heads[n]).excl = true
		}
	}
	for _, g := range groups {
		if g.excl || len(g.owners) > 1 || (len(g.owners) == 1 && g.new) {
			for p := range g.owners {
				out[p] = true
			}
		}
	}
	return out
}

// lockAllOwners locks the profiles the batch's identities belong to. The
// owners were read before the locks were taken; one merged away meanwhile
// (by a batch that held it exclusively) has passed all its identities to
// the profile it was merged into, which is locked next, a few times at
// most before the batch starts over.
func (a *applier) lockAllOwners(ctx context.Context, events []cdp.Event, fresh []int) error {
	// On PostgreSQL each sweep runs in a savepoint: one that finds an
	// owner merged away is rolled back, releasing its locks, and the
	// next sweep takes them all again in order, so locks are never taken
	// out of order and no tombstone stays locked.
	sp := a.concurrent() && len(a.owners) > 0
	if sp {
		if _, err := a.tx.ExecContext(ctx, `SAVEPOINT lock_owners`); err != nil {
			return a.s.db.dialect.translate(err)
		}
	}
	for range 4 {
		merged, err := a.lockOwners(ctx, a.exclusiveOwners(events, fresh))
		if err != nil {
			return err
		}
		if len(merged) == 0 {
			if sp {
				if _, err := a.tx.ExecContext(ctx, `RELEASE SAVEPOINT lock_owners`); err != nil {
					return a.s.db.dialect.translate(err)
				}
			}
			return nil
		}
		if !sp {
			return errRace // SQLite: cannot happen under its one writer
		}
		// Releases the sweep's locks; the savepoint stays for the next.
		if _, err := a.tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT lock_owners`); err != nil {
			return a.s.db.dialect.translate(err)
		}
		clear(a.active)
		clear(a.exclusive)
		for b, o := range a.owners {
			if to, ok := merged[o]; ok {
				a.owners[b] = to
			}
		}
	}
	return errRace
}

// lockOwners locks every profile the batch's identities belong to, in one
// sorted sweep, exclusively those in
// excl and shared the others, before anything is written, and notes which
// are live. Batches that only append to the same people run side by side;
// one that changes a person waits for them and they for it, never in a
// cycle. It returns the profiles found merged away, each with the profile
// it went into. One erased meanwhile makes the batch start over.
func (a *applier) lockOwners(ctx context.Context, excl map[cdp.ProfileID]bool) (map[cdp.ProfileID]cdp.ProfileID, error) {
	set := map[cdp.ProfileID]bool{}
	for _, p := range a.owners {
		set[p] = true
	}
	if len(set) == 0 {
		return nil, nil
	}
	ids := make([]cdp.ProfileID, 0, len(set))
	for p := range set {
		ids = append(ids, p)
	}
	slices.Sort(ids)
	modes := make([]bool, len(ids))
	for i, p := range ids {
		modes[i] = excl[p]
	}
	states, err := a.s.db.dialect.lockProfiles(ctx, a.tx, ids, modes)
	if err != nil {
		return nil, err
	}
	// Past the first profile merged away the sweep only reads
	// (PostgreSQL): the caller starts it again.
	var merged map[cdp.ProfileID]cdp.ProfileID
	for p, st := range states {
		if st.mergedInto != "" {
			if merged == nil {
				merged = map[cdp.ProfileID]cdp.ProfileID{}
			}
			merged[p] = st.mergedInto
		}
	}
	if merged != nil {
		return merged, nil
	}
	for _, p := range ids {
		if !states[p].live {
			return nil, errRace // erased meanwhile
		}
		a.active[p] = true
		if excl[p] {
			a.exclusive[p] = true
		}
	}
	return nil, nil
}

// apply resolves one event and stores it.
func (a *applier) apply(ctx context.Context, ev *cdp.Event, payload []byte) error {
	keys, rules := a.env[ev.WorkspaceID].keys, a.env[ev.WorkspaceID].rules
	refs, values := a.eventRefs(ev, keys, rules)
	for _, r := range refs {
		if a.suppressed[r.Blind] {
			// The person was erased: data naming any of their identities is
			// dropped, counted, and never stored.
			a.res.Suppressed++
			return nil
		}
	}

	plan, err := a.plan(ctx, ev.WorkspaceID, rules, refs)
	if err != nil {
		return err
	}
	a.res.DroppedIdentities += len(plan.Dropped)
	profile := plan.Profile
	if profile == "" {
		if profile, err = a.createProfile(ctx, keys, ev); err != nil {
			return err
		}
	}
	if len(plan.Attach) > 0 {
		if err := a.ensureExclusive(ctx, profile); err != nil {
			return err
		}
	}
	dk, err := a.dataKey(ctx, keys, profile)
	if err != nil {
		return err
	}
	if err := a.attach(ctx, ev, profile, keys, dk, plan.Attach, values); err != nil {
		return err
	}
	for _, m := range plan.Merges {
		// Both exclusive before the flush, which writes only the traits of
		// profiles held exclusively: the merge moves what is written.
		if err := a.lockPair(ctx, profile, m.From); err != nil {
			return err
		}
		if err := a.flush(ctx, false); err != nil {
			return err
		}
		if err := a.merge(ctx, keys, profile, m, ev); err != nil {
			return err
		}
	}
	if err := a.applyTraits(ctx, ev, profile, dk); err != nil {
		return err
	}
	if ev.Type == cdp.Group && ev.GroupID != "" {
		// Written at once, not at the end: exclusively, so that two
		// batches never wait for each other's group rows.
		if err := a.ensureExclusive(ctx, profile); err != nil {
			return err
		}
		if err := a.applyGroup(ctx, keys, ev, profile, dk); err != nil {
			return err
		}
	}
	if err := a.applyConsent(ctx, ev, profile, dk); err != nil {
		return err
	}
	if err := a.fanOut(ctx, ev, profile, dk, a.changes); err != nil {
		return err
	}
	a.changes = a.changes[:0]
	a.pending = append(a.pending, pendingEvent{ev: ev, profile: profile, payload: dk.Seal(nil, payload, eventAD(ev.SourceID, ev.MessageID))})
	a.res.Applied++
	return nil
}

func eventAD(src cdp.SourceID, mid string) []byte {
	return []byte("custos/event/" + string(src) + "/" + mid)
}

func identityAD(blind string) []byte {
	return []byte("custos/identity/" + hex.EncodeToString([]byte(blind)))
}

func traitAD(name string) []byte { return []byte("custos/trait/" + name) }

func groupAD(key []byte) []byte { return []byte("custos/group/" + hex.EncodeToString(key)) }

// plan decides what to do with an event. The common case, every identity
// already on one profile, needs no snapshot of the graph.
func (a *applier) plan(ctx context.Context, ws cdp.WorkspaceID, rules identity.Rules, refs []identity.Ref) (identity.Plan, error) {
	var only cdp.ProfileID
	same := len(refs) > 0
	for _, r := range refs {
		o := a.owners[r.Blind]
		if o == "" || (only != "" && o != only) {
			same = false
			break
		}
		only = o
	}
	if same {
		if err := a.ensureLive(ctx, only); err != nil {
			return identity.Plan{}, err
		}
		return identity.Plan{Profile: only}, nil
	}
	snap := identity.Snapshot{Owners: map[string]cdp.ProfileID{}, Profiles: map[cdp.ProfileID][]identity.Ref{}}
	var ids []cdp.ProfileID
	for _, r := range refs {
		if o := a.owners[r.Blind]; o != "" {
			snap.Owners[r.Blind] = o
			if _, ok := snap.Profiles[o]; !ok {
				snap.Profiles[o] = nil
				ids = append(ids, o)
			}
		}
	}
	for _, p := range ids {
		if err := a.ensureLive(ctx, p); err != nil {
			return identity.Plan{}, err
		}
	}
	if err := a.loadViews(ctx, snap.Profiles, ids); err != nil {
		return identity.Plan{}, err
	}
	blocked, err := a.loadBlocks(ctx, ids)
	if err != nil {
		return identity.Plan{}, err
	}
	snap.Blocked = func(x, y cdp.ProfileID) bool { return blocked[[2]cdp.ProfileID{x, y}] }
	return identity.Decide(rules, snap, refs), nil
}

// ensureLive checks that a profile is live (not merged away or erased) and,
// on PostgreSQL, locks it for the rest of the transaction, so a concurrent
// merge cannot move it while this transaction writes to it. A profile that
// is no longer live means the graph changed under us: retry.
func (a *applier) ensureLive(ctx context.Context, p cdp.ProfileID) error {
	if a.active[p] {
		return nil
	}
	return a.lockOne(ctx, p)
}

// ensureExclusive makes sure this transaction holds a live profile
// exclusively before it changes more than its timeline, traits and groups:
// it merges, attaches an identity, or appends consent. lockOwners took it
// so when exclusiveOwners foresaw the change; otherwise the shared lock is
// upgraded here (on PostgreSQL, which resolves the rare deadlock this can
// cause by failing one transaction, which is retried).
func (a *applier) ensureExclusive(ctx context.Context, p cdp.ProfileID) error {
	if a.alone(p) {
		return a.ensureLive(ctx, p)
	}
	return a.lockOne(ctx, p)
}

// concurrent says whether other writers run beside this transaction
// (PostgreSQL); SQLite runs one writer at a time.
func (a *applier) concurrent() bool { return a.s.db.dialect.lockUpdate() != "" }

// alone says whether no other transaction can write to profile p while
// this one runs: one writer at a time, p held exclusively, or p created
// here.
func (a *applier) alone(p cdp.ProfileID) bool {
	return !a.concurrent() || a.exclusive[p] || a.newKeys[p] != nil
}

// lockOne locks a profile exclusively and checks that it is live.
func (a *applier) lockOne(ctx context.Context, p cdp.ProfileID) error {
	var (
		merged  sql.NullString
		dataKey []byte
	)
	err := a.tx.QueryRowContext(ctx, `SELECT merged_into, data_key FROM profiles WHERE id = $1`+a.s.db.dialect.lockUpdate(), p).Scan(&merged, &dataKey)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && (merged.Valid || dataKey == nil)) {
		return errRace
	}
	if err != nil {
		return a.s.db.dialect.translate(err)
	}
	a.active[p] = true
	a.exclusive[p] = true
	return nil
}

func (a *applier) loadViews(ctx context.Context, views map[cdp.ProfileID][]identity.Ref, ids []cdp.ProfileID) error {
	if len(ids) == 0 {
		return nil
	}
	cond, args := inSet(a.s.db.dialect, "profile_id", 1, "text", ids)
	rows, err := a.tx.QueryContext(ctx, `SELECT profile_id, type, blind FROM identities WHERE `+cond, args...)
	if err != nil {
		return a.s.db.dialect.translate(err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			p, typ string
			blind  []byte
		)
		if err := rows.Scan(&p, &typ, &blind); err != nil {
			return err
		}
		views[cdp.ProfileID(p)] = append(views[cdp.ProfileID(p)], identity.Ref{Type: cdp.IdentityType(typ), Blind: string(blind)})
	}
	// Identities attached earlier in this batch are not written yet.
	for _, p := range ids {
		views[p] = append(views[p], a.attached[p]...)
	}
	return rows.Err()
}

func (a *applier) loadBlocks(ctx context.Context, ids []cdp.ProfileID) (map[[2]cdp.ProfileID]bool, error) {
	out := map[[2]cdp.ProfileID]bool{}
	if len(ids) < 2 {
		return out, nil
	}
	cond, args := inSet(a.s.db.dialect, "profile_a", 1, "text", ids)
	rows, err := a.tx.QueryContext(ctx, `SELECT profile_a, profile_b FROM merge_blocks WHERE `+cond, args...)
	if err != nil {
		return nil, a.s.db.dialect.translate(err)
	}
	defer rows.Close()
	for rows.Next() {
		var x, y string
		if err := rows.Scan(&x, &y); err != nil {
			return nil, err
		}
		out[[2]cdp.ProfileID{cdp.ProfileID(x), cdp.ProfileID(y)}] = true
		out[[2]cdp.ProfileID{cdp.ProfileID(y), cdp.ProfileID(x)}] = true
	}
	return out, rows.Err()
}

func newProfileID() cdp.ProfileID {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return cdp.ProfileID("prof_" + hex.EncodeToString(b[:]))
}

func (a *applier) createProfile(ctx context.Context, keys *vault.Keys, ev *cdp.Event) (cdp.ProfileID, error) {
	id := newProfileID()
	dk, wrapped, err := keys.NewDataKey(string(id))
	if err != nil {
		return "", err
	}
	now := micros(ev.ReceivedAt)
	a.newProfiles = append(a.newProfiles, []any{string(id), string(ev.WorkspaceID), wrapped, now, now})
	a.newKeys[id] = dk
	a.active[id] = true
	a.res.ProfilesCreated++
	return id, nil
}

// dataKey returns a live profile's data key, from the cache or unwrapped.
func (a *applier) dataKey(ctx context.Context, keys *vault.Keys, p cdp.ProfileID) (*vault.DataKey, error) {
	if dk, ok := a.newKeys[p]; ok {
		return dk, nil
	}
	if dk, ok := a.s.keys.get(p); ok {
		return dk, nil
	}
	return a.s.openKey(ctx, a.tx, keys, p)
}

// openKey unwraps a profile's data key from the database and caches it.
// NotFound when the profile has no key (erased or merged away).
func (s *Profiles) openKey(ctx context.Context, q querier, keys *vault.Keys, p cdp.ProfileID) (*vault.DataKey, error) {
	var wrapped []byte
	err := q.QueryRowContext(ctx, `SELECT data_key FROM profiles WHERE id = $1`, p).Scan(&wrapped)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && wrapped == nil) {
		return nil, cdp.Errorf(cdp.NotFound, "profile has no data key")
	}
	if err != nil {
		return nil, s.db.dialect.translate(err)
	}
	dk, err := keys.OpenDataKey(ctx, string(p), wrapped)
	if err != nil {
		return nil, fmt.Errorf("open data key of %s: %w", p, err)
	}
	s.keys.put(p, dk)
	return dk, nil
}

// attach adds identities new to the graph to a profile. The rows are
// written at flush; a concurrent writer that attached one of them first
// (which the identity locks rule out) makes this transaction retry.
func (a *applier) attach(ctx context.Context, ev *cdp.Event, p cdp.ProfileID, keys *vault.Keys, dk *vault.DataKey, refs []identity.Ref, values map[string]cdp.Identity) error {
	for _, r := range refs {
		id := values[r.Blind]
		a.newIdentities = append(a.newIdentities, []any{string(ev.WorkspaceID), []byte(r.Blind), string(p), string(r.Type),
			dk.Seal(nil, []byte(id.Value), identityAD(r.Blind)), micros(ev.Timestamp)})
		if a.attached == nil {
			a.attached = map[cdp.ProfileID][]identity.Ref{}
		}
		a.attached[p] = append(a.attached[p], r)
		a.owners[r.Blind] = p
		a.hashes = appendIdentityHashes(a.hashes, ev.WorkspaceID, keys, id, r.Blind)
	}
	return nil
}

// hashFormats are the hashes a data subject request may name an identity
// by.
var hashFormats = []struct {
	name string
	sum  func([]byte) []byte
}{
	{"sha256", func(b []byte) []byte { h := sha256.Sum256(b); return h[:] }},
	{"sha1", func(b []byte) []byte { h := sha1.Sum(b); return h[:] }},
	{"md5", func(b []byte) []byte { h := md5.Sum(b); return h[:] }},
}

// appendIdentityHashes adds the rows (workspace, hashed, blind) of an
// identity's keyed hashes of its hashed forms to rows, for
// insertIdentityHashes.
func appendIdentityHashes(rows [][]any, ws cdp.WorkspaceID, keys *vault.Keys, id cdp.Identity, blind string) [][]any {
	if id.Type == cdp.AnonymousID || id.Type == cdp.MPID {
		return rows
	}
	for _, f := range hashFormats {
		rows = append(rows, []any{ws, keys.HashedIndex(id.Type, f.name, hex.EncodeToString(f.sum([]byte(id.Value)))), []byte(blind)})
	}
	return rows
}

// insertIdentityHashes writes rows made by appendIdentityHashes.
func insertIdentityHashes(ctx context.Context, q querier, d dialect, rows [][]any) error {
	return execRows(ctx, q, d, "identity_hashes", []string{"workspace_id", "hashed", "blind"}, rows, " ON CONFLICT DO NOTHING")
}

// applyTraits sets an identify event's traits and deletions, each only if
// the event is not older than the trait's last write.
func (a *applier) applyTraits(ctx context.Context, ev *cdp.Event, p cdp.ProfileID, dk *vault.DataKey) error {
	if ev.Type != cdp.Identify {
		return nil
	}
	var traits map[string]json.RawMessage
	if len(ev.Traits) > 0 {
		if err := json.Unmarshal(ev.Traits, &traits); err != nil {
			return cdp.Wrap(cdp.Invalid, "invalid_traits", err, "traits are not a JSON object")
		}
	}
	rows := make([]traitRow, 0, len(traits)+len(ev.DeletedTraits))
	for name, v := range traits {
		rows = append(rows, traitRow{name: name, value: dk.Seal(nil, v, traitAD(name)), at: micros(ev.Timestamp)})
	}
	for _, name := range ev.DeletedTraits {
		if _, set := traits[name]; !set {
			rows = append(rows, traitRow{name: name, at: micros(ev.Timestamp)})
		}
	}
	// Buffered until flush: of a batch's writes to one trait only the
	// winner (latest event time; on a tie the later arrival) is written.
	if a.traits == nil {
		a.traits = map[cdp.ProfileID]map[string]traitRow{}
	}
	if a.traits[p] == nil {
		a.traits[p] = map[string]traitRow{}
	}
	for _, r := range rows {
		if old, ok := a.traits[p][r.name]; !ok || r.at >= old.at {
			r.profile = p
			a.traits[p][r.name] = r
		}
	}
	return nil
}

type traitRow struct {
	profile cdp.ProfileID
	name    string
	value   []byte // nil: deleted
	at      int64
}

// upsertTraits writes trait rows of profile p, last write (by event time)
// winning; on a tie the later arrival wins.
func upsertTraits(ctx context.Context, q querier, d dialect, p cdp.ProfileID, rows []traitRow) error {
	for i := range rows {
		rows[i].profile = p
	}
	return writeTraits(ctx, q, d, rows)
}

// writeTraits writes trait rows, each of its own profile.
func writeTraits(ctx context.Context, q querier, d dialect, rows []traitRow) error {
	const cols = 4
	for chunk := range chunks(d, rows) {
		args := make([]any, 0, cols*len(chunk))
		for _, r := range chunk {
			args = append(args, r.profile, r.name, r.value, r.at)
		}
		stmt := `INSERT INTO traits (profile_id, name, value, updated_at) VALUES ` + rowsOf(len(chunk), cols) +
			` ON CONFLICT (profile_id, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
			WHERE excluded.updated_at >= traits.updated_at`
		if _, err := q.ExecContext(ctx, stmt, args...); err != nil {
			return d.translate(err)
		}
	}
	return nil
}

// applyGroup links the profile to the group of a group event.
func (a *applier) applyGroup(ctx context.Context, keys *vault.Keys, ev *cdp.Event, p cdp.ProfileID, dk *vault.DataKey) error {
	key := keys.BlindIndex(cdp.Identity{Type: "group", Value: ev.GroupID})
	var traits []byte
	if len(ev.Traits) > 0 {
		traits = dk.Seal(nil, ev.Traits, groupAD(key))
	}
	return upsertGroup(ctx, a.tx, a.s.db.dialect, p, key, dk.Seal(nil, []byte(ev.GroupID), groupAD(key)), traits, micros(ev.Timestamp))
}

func upsertGroup(ctx context.Context, q querier, d dialect, p cdp.ProfileID, key, groupID, traits []byte, at int64) error {
	_, err := q.ExecContext(ctx,
		`INSERT INTO profile_groups (profile_id, group_key, group_id, traits, updated_at) VALUES ($1, $2, $3, $4, $5)
		 ON CONFLICT (profile_id, group_key) DO UPDATE SET group_id = excluded.group_id, traits = excluded.traits, updated_at = excluded.updated_at
		 WHERE excluded.updated_at >= profile_groups.updated_at`, p, key, groupID, traits, at)
	return d.translate(err)
}

// eventColumns are the columns flush writes of a timeline row.
var eventColumns = []string{"workspace_id", "profile_id", "source_id", "message_id", "type", "name", "event_time", "received_at", "payload"}

// flush writes the buffered timeline rows, delivery records, outbox rows
// and trait writes. Before the batch's end (last false: before a merge
// reads what it moves) it writes only the traits of profiles this
// transaction holds exclusively. On PostgreSQL batches holding the same
// person shared write its trait rows side by side: each writes them all
// at its end and in one order (profile, name), so none waits for another
// in a cycle over them.
func (a *applier) flush(ctx context.Context, last bool) error {
	if err := a.flushForwarding(ctx); err != nil {
		return err
	}
	if err := a.flushGraph(ctx); err != nil {
		return err
	}
	rows := make([][]any, len(a.pending))
	for i, pe := range a.pending {
		ev := pe.ev
		rows[i] = []any{string(ev.WorkspaceID), string(pe.profile), string(ev.SourceID), ev.MessageID, string(ev.Type), ev.Name,
			micros(ev.Timestamp), micros(ev.ReceivedAt), pe.payload}
	}
	if err := insertRows(ctx, a.tx, a.s.db.dialect, "events", eventColumns, rows); err != nil {
		return err
	}
	a.pending = a.pending[:0]
	var traits []traitRow
	for p, byName := range a.traits {
		if !last && !a.alone(p) {
			continue
		}
		for _, r := range byName {
			traits = append(traits, r)
		}
		delete(a.traits, p)
	}
	slices.SortFunc(traits, func(x, y traitRow) int {
		if c := cmp.Compare(x.profile, y.profile); c != 0 {
			return c
		}
		return cmp.Compare(x.name, y.name)
	})
	return writeTraits(ctx, a.tx, a.s.db.dialect, traits)
}

// flushGraph writes the profiles and identities created since the last
// flush.
func (a *applier) flushGraph(ctx context.Context) error {
	d := a.s.db.dialect
	if err := insertRows(ctx, a.tx, d, "profiles", []string{"id", "workspace_id", "data_key", "created_at", "updated_at"}, a.newProfiles); err != nil {
		return err
	}
	a.newProfiles = a.newProfiles[:0]
	// A unique violation here (someone else attached one of these first,
	// which the identity locks rule out) is a Conflict: the batch retries.
	if err := insertRows(ctx, a.tx, d, "identities", []string{"workspace_id", "blind", "profile_id", "type", "value", "first_seen"}, a.newIdentities); err != nil {
		return err
	}
	a.newIdentities = a.newIdentities[:0]
	clear(a.attached)
	if err := insertIdentityHashes(ctx, a.tx, d, a.hashes); err != nil {
		return err
	}
	a.hashes = a.hashes[:0]
	return nil
}

// dataKeyCache keeps unwrapped data keys of live profiles, bounded in size
// and age. A merge, split or erasure drops the affected keys.
type dataKeyCache struct {
	mu  sync.Mutex
	m   map[cdp.ProfileID]cachedKey
	max int
	ttl time.Duration
}

type cachedKey struct {
	dk *vault.DataKey
	at time.Time
}

func newDataKeyCache(max int, ttl time.Duration) *dataKeyCache {
	return &dataKeyCache{m: map[cdp.ProfileID]cachedKey{}, max: max, ttl: ttl}
}

func (c *dataKeyCache) get(p cdp.ProfileID) (*vault.DataKey, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k, ok := c.m[p]
	if !ok || time.Since(k.at) > c.ttl {
		return nil, false
	}
	return k.dk, true
}

func (c *dataKeyCache) put(p cdp.ProfileID, dk *vault.DataKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k := range c.m { // drop an arbitrary tenth
			delete(c.m, k)
			if len(c.m) < c.max*9/10 {
				break
			}
		}
	}
	c.m[p] = cachedKey{dk: dk, at: time.Now()}
}

func (c *dataKeyCache) drop(ps ...cdp.ProfileID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range ps {
		delete(c.m, p)
	}
}
