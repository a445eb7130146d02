package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/httpjson"
)

// profileJSON is a profile as the API shows it.
type profileJSON struct {
	ID              string                     `json:"id"`
	CreatedAt       time.Time                  `json:"created_at"`
	UpdatedAt       time.Time                  `json:"updated_at"`
	Identities      []identityJSON             `json:"identities"`
	Traits          map[string]json.RawMessage `json:"traits"`
	TraitsUpdatedAt map[string]time.Time       `json:"traits_updated_at"`
	Groups          []groupJSON                `json:"groups"`
	Consent         []consentStateJSON         `json:"consent"`
	Audiences       []any                      `json:"audiences"`
	Merges          []mergeJSON                `json:"merges"`
	Counts          countsJSON                 `json:"counts"`
}

type groupJSON struct {
	GroupID   string     `json:"group_id"`
	Traits    jsonObject `json:"traits,omitempty"`
	UpdatedAt time.Time  `json:"updated_at"`
}

type countsJSON struct {
	Events     int64 `json:"events"`
	Identities int   `json:"identities"`
	Traits     int   `json:"traits"`
	Groups     int   `json:"groups"`
}

type mergeJSON struct {
	ID        string     `json:"id"`
	Survivor  string     `json:"survivor_profile_id"`
	Merged    string     `json:"merged_profile_id"`
	Rule      string     `json:"rule"`
	MessageID string     `json:"message_id"`
	SourceID  string     `json:"source_id"`
	At        time.Time  `json:"merged_at"`
	UndoneAt  *time.Time `json:"split_at,omitempty"`
}

func toMergeJSON(m cdp.Merge) mergeJSON {
	mj := mergeJSON{ID: string(m.ID), Survivor: string(m.Survivor), Merged: string(m.Merged), Rule: m.Rule,
		MessageID: m.MessageID, SourceID: string(m.SourceID), At: m.At}
	if !m.UndoneAt.IsZero() {
		u := m.UndoneAt
		mj.UndoneAt = &u
	}
	return mj
}

// findProfile answers GET /api/v1/profiles?identity=<type>:<value> with the
// profile that holds the identity.
func (a *API) findProfile(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	raw := r.URL.Query().Get("identity")
	if raw == "" {
		return cdp.Reason(cdp.Invalid, "missing_identity", "identity=<type>:<value> is required")
	}
	id, err := cdp.ParseIdentity(raw)
	if err != nil {
		return err
	}
	p, err := a.deps.Profiles.Find(r.Context(), tok.WorkspaceID, id)
	if err != nil {
		return err
	}
	return a.writeProfile(w, r, tok, p)
}

// getProfile answers GET /api/v1/profiles/{id}. A profile that was merged
// into another redirects (308) there.
func (a *API) getProfile(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	return a.writeProfile(w, r, tok, cdp.ProfileID(r.PathValue("id")))
}

func (a *API) writeProfile(w http.ResponseWriter, r *http.Request, tok cdp.APIToken, id cdp.ProfileID) error {
	ctx := r.Context()
	p, err := a.deps.Profiles.Get(ctx, tok.WorkspaceID, id)
	if err != nil {
		return err
	}
	if p.MergedInto != "" {
		w.Header().Set("Location", "/api/v1/profiles/"+url.PathEscape(string(p.MergedInto)))
		httpjson.Write(w, http.StatusPermanentRedirect, map[string]string{"merged_into": string(p.MergedInto)})
		return nil
	}
	merges, err := a.deps.Profiles.Merges(ctx, tok.WorkspaceID, id)
	if err != nil {
		return err
	}
	out := profileJSON{
		ID: string(p.ID), CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt,
		Identities: []identityJSON{}, Traits: map[string]json.RawMessage{}, TraitsUpdatedAt: map[string]time.Time{},
		Groups: []groupJSON{}, Audiences: []any{}, Merges: []mergeJSON{},
		Counts: countsJSON{Events: p.EventCount, Identities: len(p.Identities), Traits: len(p.Traits), Groups: len(p.Groups)},
	}
	for _, id := range p.Identities {
		first := id.FirstSeen
		out.Identities = append(out.Identities, identityJSON{Type: string(id.Type), Value: id.Value, FirstSeen: &first})
	}
	for _, t := range p.Traits {
		out.Traits[t.Name] = t.Value
		out.TraitsUpdatedAt[t.Name] = t.UpdatedAt
	}
	for _, g := range p.Groups {
		out.Groups = append(out.Groups, groupJSON{GroupID: g.GroupID, Traits: jsonObject(g.Traits), UpdatedAt: g.UpdatedAt})
	}
	for _, m := range merges {
		out.Merges = append(out.Merges, toMergeJSON(m))
	}
	if out.Consent, err = a.currentConsent(ctx, tok.WorkspaceID, id); err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, out)
	return nil
}

// profileEvents answers GET /api/v1/profiles/{id}/events: the timeline,
// newest first, with limit, cursor and the filters event, type, from, to
// (RFC 3339).
func (a *API) profileEvents(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	if moved, err := a.redirectMerged(w, r, tok, "/events"); moved || err != nil {
		return err
	}
	q := r.URL.Query()
	limit, err := pageLimit(r)
	if err != nil {
		return err
	}
	f := cdp.TimelineFilter{Name: q.Get("event"), Type: cdp.EventType(q.Get("type"))}
	if f.Type != "" && !f.Type.Valid() {
		return cdp.Reason(cdp.Invalid, "invalid_type", "type must be identify, track, page, screen, group or alias")
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return cdp.Reason(cdp.Invalid, "invalid_"+p.name, p.name+" must be an RFC 3339 time")
			}
			*p.dst = t
		}
	}
	var after cdp.TimelineCursor
	if c := q.Get("cursor"); c != "" {
		pos, err := decodeCursor(c, 2)
		if err != nil {
			return err
		}
		after = cdp.TimelineCursor{At: time.UnixMicro(pos[0]).UTC(), Seq: pos[1]}
	}
	page, err := a.deps.Profiles.Timeline(r.Context(), tok.WorkspaceID, cdp.ProfileID(r.PathValue("id")), f, after, limit+1)
	if err != nil {
		return err
	}
	resp := eventsResponse{Events: make([]eventJSON, 0, min(len(page), limit))}
	if len(page) > limit {
		page = page[:limit]
		next := page[limit-1].After()
		resp.NextCursor = encodeCursor(next.At.UnixMicro(), next.Seq)
	}
	mids := make([]string, len(page))
	for i, se := range page {
		mids[i] = se.Event.MessageID
	}
	records, err := a.deps.Deliveries.Records(r.Context(), tok.WorkspaceID, cdp.ProfileID(r.PathValue("id")), mids)
	if err != nil {
		return err
	}
	for _, se := range page {
		ej := toEventJSON(se)
		for _, rec := range records[se.Event.MessageID] {
			dj := deliveryJSON{DestinationID: string(rec.DestinationID), Status: string(rec.Status), Reason: rec.Reason,
				Attempts: rec.Attempts, LastError: rec.LastError, UpdatedAt: rec.UpdatedAt}
			if !rec.DeliveredAt.IsZero() {
				at := rec.DeliveredAt
				dj.DeliveredAt = &at
			}
			ej.Deliveries = append(ej.Deliveries, dj)
		}
		resp.Events = append(resp.Events, ej)
	}
	httpjson.Write(w, http.StatusOK, resp)
	return nil
}

// profileMerges answers GET /api/v1/profiles/{id}/merges: the merge log
// entries that involve the profile, newest first.
func (a *API) profileMerges(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	if moved, err := a.redirectMerged(w, r, tok, "/merges"); moved || err != nil {
		return err
	}
	merges, err := a.deps.Profiles.Merges(r.Context(), tok.WorkspaceID, cdp.ProfileID(r.PathValue("id")))
	if err != nil {
		return err
	}
	out := struct {
		Merges []mergeJSON `json:"merges"`
	}{Merges: []mergeJSON{}}
	for _, m := range merges {
		out.Merges = append(out.Merges, toMergeJSON(m))
	}
	httpjson.Write(w, http.StatusOK, out)
	return nil
}

// redirectMerged answers a request for a part (sub, such as "/events") of
// a profile that was merged into another with a redirect (308) to the same
// part of the live profile, its query kept, as GET /api/v1/profiles/{id}
// redirects to the live profile; and reports whether it did. NotFound if
// there is no such profile.
func (a *API) redirectMerged(w http.ResponseWriter, r *http.Request, tok cdp.APIToken, sub string) (bool, error) {
	id := cdp.ProfileID(r.PathValue("id"))
	live, err := a.deps.Profiles.Live(r.Context(), tok.WorkspaceID, id)
	if err != nil || live == id {
		return false, err
	}
	loc := "/api/v1/profiles/" + url.PathEscape(string(live)) + sub
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	}
	w.Header().Set("Location", loc)
	httpjson.Write(w, http.StatusPermanentRedirect, map[string]string{"merged_into": string(live)})
	return true, nil
}

// splitMerge answers POST /api/v1/merges/{id}/split: undo a merge.
func (a *API) splitMerge(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	m, err := a.deps.Profiles.Split(r.Context(), tok.WorkspaceID, cdp.MergeID(r.PathValue("id")))
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, toMergeJSON(m))
	return nil
}
