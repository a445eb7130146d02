package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

type apiProfile struct {
	ID         string `json:"id"`
	Identities []struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	} `json:"identities"`
	Traits map[string]json.RawMessage `json:"traits"`
	Groups []struct {
		GroupID string         `json:"group_id"`
		Traits  map[string]any `json:"traits"`
	} `json:"groups"`
	Merges []struct {
		ID        string `json:"id"`
		Survivor  string `json:"survivor_profile_id"`
		Merged    string `json:"merged_profile_id"`
		Rule      string `json:"rule"`
		MessageID string `json:"message_id"`
		SplitAt   string `json:"split_at"`
	} `json:"merges"`
	Counts struct {
		Events int `json:"events"`
	} `json:"counts"`
}

// profile fetches the profile holding identity ("type:value"); ok is false
// while there is none.
func (c *client) profile(t *testing.T, identity string) (apiProfile, bool) {
	t.Helper()
	status, body := c.do(t, "GET", "/api/v1/profiles?identity="+url.QueryEscape(identity), adminAuth(), nil)
	var p apiProfile
	if status == http.StatusNotFound {
		return p, false
	}
	if err := json.Unmarshal(body, &p); status != http.StatusOK || err != nil {
		t.Fatalf("profile %s: %d %s", identity, status, body)
	}
	return p, true
}

// waitProfile polls until the profile holding identity satisfies cond.
func (c *client) waitProfile(t *testing.T, identity, what string, cond func(apiProfile) bool) apiProfile {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		p, ok := c.profile(t, identity)
		if ok && cond(p) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: timed out waiting for %s (now %+v)", identity, what, p)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p apiProfile) has(typ, value string) bool {
	return slices.ContainsFunc(p.Identities, func(id struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	}) bool {
		return id.Type == typ && id.Value == value
	})
}

// timeline pages through a profile's events with query q, limit per page,
// and returns their message ids, newest first.
func (c *client) timeline(t *testing.T, id, q string, limit int) []string {
	t.Helper()
	var mids []string
	cursor := ""
	for range 100 {
		path := fmt.Sprintf("/api/v1/profiles/%s/events?limit=%d&%s", id, limit, q)
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		status, body := c.do(t, "GET", path, adminAuth(), nil)
		var page struct {
			Events []struct {
				MessageID string `json:"message_id"`
			} `json:"events"`
			NextCursor string `json:"next_cursor"`
		}
		if err := json.Unmarshal(body, &page); status != http.StatusOK || err != nil {
			t.Fatalf("timeline %s: %d %s", path, status, body)
		}
		if len(page.Events) > limit {
			t.Fatalf("timeline %s: %d events on a page of %d", path, len(page.Events), limit)
		}
		for _, e := range page.Events {
			mids = append(mids, e.MessageID)
		}
		if page.NextCursor == "" {
			return mids
		}
		cursor = page.NextCursor
	}
	t.Fatal("timeline: too many pages")
	return nil
}

// TestProfileAdminAPI drives the User Activity View and identity admin API
// over HTTP against a running server: workspace identity rules change what
// processing does, group and alias calls reach the profile, a merge is
// split through the API, the timeline pages and filters, and a merged
// profile's parts redirect to the live one.
func TestProfileAdminAPI(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		srv := startInProcess(t, be, t.TempDir())
		c := newClient(srv.url)
		send := func(path, body string) {
			t.Helper()
			if status, resp := c.do(t, "POST", path, segmentAuth(), []byte(body)); status != http.StatusOK {
				t.Fatalf("%s: %d %s", path, status, resp)
			}
		}

		status, body := c.do(t, "GET", "/api/v1/openapi.json", adminAuth(), nil)
		var doc struct {
			Paths map[string]any `json:"paths"`
		}
		if err := json.Unmarshal(body, &doc); status != http.StatusOK || err != nil || doc.Paths["/api/v1/identity-rules"] == nil {
			t.Fatalf("openapi.json: %d, %d paths (%v)", status, len(doc.Paths), err)
		}

		// Rules: defaults, then the workspace's own.
		status, body = c.do(t, "GET", "/api/v1/identity-rules", adminAuth(), nil)
		if status != http.StatusOK || !strings.Contains(string(body), `"user_id"`) {
			t.Fatalf("default rules: %d %s", status, body)
		}
		rules := map[string]any{
			"unique":         []string{"user_id", "mpid"},
			"limits":         map[string]int{"email": 1, "anonymous_id": 25},
			"default_limit":  10,
			"blocked_values": []string{"shared@example.com", "+1 (202) 555-0100"},
		}
		if status, body = c.putJSON(t, "PUT", "/api/v1/identity-rules", rules); status != http.StatusOK || !strings.Contains(string(body), "shared@example.com") {
			t.Fatalf("put rules: %d %s", status, body)
		}
		if status, body = c.putJSON(t, "PUT", "/api/v1/identity-rules", map[string]any{"unique": []string{"nonsense"}, "default_limit": 10}); status != http.StatusBadRequest || !strings.Contains(string(body), "invalid_identity_type") {
			t.Errorf("bad rules: %d %s, want 400 invalid_identity_type", status, body)
		}

		// Blocked values never become identities; the e-mail limit of 1
		// keeps a second address off the profile.
		send("/v1/identify", `{"userId":"ada","messageId":"i1","timestamp":"2026-11-01T10:00:00Z","traits":{"email":"Shared@Example.com","phone":"+1 202 555 0100","plan":"pro"}}`)
		send("/v1/identify", `{"userId":"ada","messageId":"i2","timestamp":"2026-11-01T10:01:00Z","traits":{"email":"ada@example.com"}}`)
		// Log entries are applied by several workers, in no set order: the
		// second address goes once the first is on the profile.
		c.waitProfile(t, "user_id:ada", "the first e-mail", func(p apiProfile) bool { return p.has("email", "ada@example.com") })
		send("/v1/identify", `{"userId":"ada","messageId":"i3","timestamp":"2026-11-01T10:02:00Z","traits":{"email":"ada@work.example"}}`)
		ada := c.waitProfile(t, "user_id:ada", "three identifies", func(p apiProfile) bool { return p.Counts.Events == 3 })
		if ada.has("email", "shared@example.com") || ada.has("phone", "+12025550100") {
			t.Errorf("blocked values became identities: %+v", ada.Identities)
		}
		if !ada.has("email", "ada@example.com") || ada.has("email", "ada@work.example") {
			t.Errorf("with an e-mail limit of 1 the profile holds %+v", ada.Identities)
		}
		if string(ada.Traits["plan"]) != `"pro"` {
			t.Errorf("traits %v", ada.Traits)
		}

		// Group call: the profile joins the account.
		send("/v1/group", `{"userId":"ada","messageId":"g1","timestamp":"2026-11-01T10:03:00Z","groupId":"acme","traits":{"name":"Acme Inc"}}`)
		ada = c.waitProfile(t, "user_id:ada", "the group", func(p apiProfile) bool { return len(p.Groups) == 1 })
		if ada.Groups[0].GroupID != "acme" || ada.Groups[0].Traits["name"] != "Acme Inc" {
			t.Errorf("groups %+v", ada.Groups)
		}

		// An anonymous visitor browses, then is aliased to ada: one merge,
		// logged with the alias's message id.
		for i := range 3 {
			send("/v1/page", fmt.Sprintf(`{"anonymousId":"visitor-9","messageId":"p%d","timestamp":"2026-11-01T09:0%d:00Z","name":"Pricing"}`, i, i))
		}
		c.waitProfile(t, "anonymous_id:visitor-9", "three pages", func(p apiProfile) bool { return p.Counts.Events == 3 })
		visitor, _ := c.profile(t, "anonymous_id:visitor-9")
		send("/v1/alias", `{"userId":"ada","previousId":"visitor-9","messageId":"al1","timestamp":"2026-11-01T10:04:00Z"}`)
		ada = c.waitProfile(t, "user_id:ada", "the alias merge", func(p apiProfile) bool { return len(p.Merges) == 1 })
		m := ada.Merges[0]
		if m.Survivor != ada.ID || m.Merged != visitor.ID || m.MessageID != "al1" || m.Rule == "" || !ada.has("anonymous_id", "visitor-9") {
			t.Errorf("merge %+v, identities %+v", m, ada.Identities)
		}

		// The merged profile's parts redirect to the live profile, query
		// kept; unknown profiles are 404.
		noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}
		for _, part := range []string{"", "/events?type=page", "/merges"} {
			req, _ := http.NewRequest("GET", srv.url+"/api/v1/profiles/"+visitor.ID+part, nil)
			req.Header = adminAuth()
			resp, err := noFollow.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want := "/api/v1/profiles/" + ada.ID + part
			if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
				t.Errorf("merged profile%s: %d to %q, want 308 to %q", part, resp.StatusCode, resp.Header.Get("Location"), want)
			}
		}
		for _, part := range []string{"", "/events", "/merges"} {
			if status, body := c.do(t, "GET", "/api/v1/profiles/prof_unknown"+part, adminAuth(), nil); status != http.StatusNotFound {
				t.Errorf("unknown profile%s: %d %s, want 404", part, status, body)
			}
		}

		// The timeline: newest first by event time, paged by cursor, and
		// filtered by type, name and time.
		all := []string{"al1", "g1", "i3", "i2", "i1", "p2", "p1", "p0"}
		for _, limit := range []int{1, 3, 100} {
			if got := c.timeline(t, ada.ID, "", limit); !slices.Equal(got, all) {
				t.Errorf("timeline in pages of %d: %v, want %v", limit, got, all)
			}
		}
		for q, want := range map[string][]string{
			"type=identify": {"i3", "i2", "i1"},
			"event=Pricing": {"p2", "p1", "p0"},
			"type=page&from=2026-11-01T09:01:00Z&to=2026-11-01T09:02:00Z": {"p1"},
			"from=2026-11-01T10:03:00Z":                                   {"al1", "g1"},
		} {
			if got := c.timeline(t, ada.ID, q, 2); !slices.Equal(got, want) {
				t.Errorf("timeline ?%s: %v, want %v", q, got, want)
			}
		}
		for _, q := range []string{"type=purchase", "from=yesterday", "cursor=not-a-cursor", "limit=0"} {
			if status, body := c.do(t, "GET", "/api/v1/profiles/"+ada.ID+"/events?"+q, adminAuth(), nil); status != http.StatusBadRequest || !strings.Contains(string(body), `"code"`) {
				t.Errorf("timeline ?%s: %d %s, want 400 with a reason", q, status, body)
			}
		}

		// The operator splits the merge: the visitor's events and identity
		// go back, and the two stay apart when linked again.
		status, body = c.do(t, "POST", "/api/v1/merges/"+m.ID+"/split", adminAuth(), nil)
		if status != http.StatusOK {
			t.Fatalf("split: %d %s", status, body)
		}
		if status, body = c.do(t, "POST", "/api/v1/merges/"+m.ID+"/split", adminAuth(), nil); status != http.StatusConflict {
			t.Errorf("second split: %d %s, want 409", status, body)
		}
		back, ok := c.profile(t, "anonymous_id:visitor-9")
		if !ok || back.ID != visitor.ID {
			t.Fatalf("after the split visitor-9 is on %q, want %q", back.ID, visitor.ID)
		}
		if got, want := c.timeline(t, visitor.ID, "", 10), []string{"p2", "p1", "p0"}; !slices.Equal(got, want) {
			t.Errorf("split-off timeline %v, want %v", got, want)
		}
		if got, want := c.timeline(t, ada.ID, "", 10), []string{"al1", "g1", "i3", "i2", "i1"}; !slices.Equal(got, want) {
			t.Errorf("survivor timeline after the split %v, want %v", got, want)
		}
		ada, _ = c.profile(t, "user_id:ada")
		if len(ada.Merges) != 1 || ada.Merges[0].SplitAt == "" || len(ada.Groups) != 1 || string(ada.Traits["plan"]) != `"pro"` {
			t.Errorf("after the split: merges %+v, groups %+v, traits %v", ada.Merges, ada.Groups, ada.Traits)
		}
		send("/v1/track", `{"userId":"ada","anonymousId":"visitor-9","messageId":"t1","event":"Clicked"}`)
		c.waitProfile(t, "user_id:ada", "the linking event", func(p apiProfile) bool { return p.Counts.Events == 6 })
		if again, _ := c.profile(t, "anonymous_id:visitor-9"); again.ID != visitor.ID {
			t.Error("split profiles merged again")
		}
	})
}
