package api

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/httpjson"
)

type eventsResponse struct {
	Events     []eventJSON `json:"events"`
	NextCursor string      `json:"next_cursor,omitempty"`
}

// eventJSON is one stored event as the API shows it.
type eventJSON struct {
	MessageID  string         `json:"message_id"`
	ProfileID  string         `json:"profile_id"`
	SourceID   string         `json:"source_id"`
	Type       string         `json:"type"`
	Event      string         `json:"event,omitempty"`
	Identities []identityJSON `json:"identities"`
	Properties jsonObject     `json:"properties,omitempty"`
	Traits     jsonObject     `json:"traits,omitempty"`
	Context    jsonObject     `json:"context,omitempty"`
	GroupID    string         `json:"group_id,omitempty"`
	PreviousID string         `json:"previous_id,omitempty"`
	Timestamp  time.Time      `json:"timestamp"`
	ReceivedAt time.Time      `json:"received_at"`
	// Deliveries is each destination's outcome for the event (timelines
	// only).
	Deliveries []deliveryJSON `json:"deliveries,omitempty"`
}

type deliveryJSON struct {
	DestinationID string     `json:"destination_id"`
	Status        string     `json:"status"`
	Reason        string     `json:"reason,omitempty"`
	Attempts      int        `json:"attempts,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	UpdatedAt     time.Time  `json:"updated_at"`
	DeliveredAt   *time.Time `json:"delivered_at,omitempty"`
}

// jsonObject is a raw JSON object that marshals as itself.
type jsonObject []byte

func (o jsonObject) MarshalJSON() ([]byte, error) {
	if len(o) == 0 {
		return []byte("null"), nil
	}
	return o, nil
}

type identityJSON struct {
	Type      string     `json:"type"`
	Value     string     `json:"value"`
	FirstSeen *time.Time `json:"first_seen,omitempty"`
}

func toEventJSON(se cdp.StoredEvent) eventJSON {
	ev := se.Event
	ej := eventJSON{
		MessageID: ev.MessageID, ProfileID: string(se.Profile), SourceID: string(ev.SourceID), Type: string(ev.Type), Event: ev.Name,
		Identities: make([]identityJSON, len(ev.Identities)),
		Properties: jsonObject(ev.Properties), Traits: jsonObject(ev.Traits), Context: jsonObject(ev.Context),
		GroupID: ev.GroupID, PreviousID: ev.PreviousID,
		Timestamp: ev.Timestamp, ReceivedAt: ev.ReceivedAt,
	}
	for i, id := range ev.Identities {
		ej.Identities[i] = identityJSON{Type: string(id.Type), Value: id.Value}
	}
	return ej
}

const (
	defaultPageSize = 50
	maxPageSize     = 1000
)

// pageLimit reads the limit parameter: 1..maxPageSize, default 50.
func pageLimit(r *http.Request) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return defaultPageSize, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxPageSize {
		return 0, cdp.Reason(cdp.Invalid, "invalid_limit", "limit must be an integer from 1 to 1000")
	}
	return n, nil
}

// A cursor is opaque to clients: base64 of a position the API made.
func encodeCursor(parts ...int64) string {
	s := make([]string, len(parts))
	for i, p := range parts {
		s[i] = strconv.FormatInt(p, 10)
	}
	return base64.RawURLEncoding.EncodeToString([]byte("c" + strings.Join(s, ".")))
}

func decodeCursor(s string, n int) ([]int64, error) {
	bad := cdp.Reason(cdp.Invalid, "invalid_cursor", "cursor is not one this API returned")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, bad
	}
	rest, ok := strings.CutPrefix(string(b), "c")
	if !ok {
		return nil, bad
	}
	parts := strings.Split(rest, ".")
	if len(parts) != n {
		return nil, bad
	}
	out := make([]int64, n)
	for i, p := range parts {
		if out[i], err = strconv.ParseInt(p, 10, 64); err != nil {
			return nil, bad
		}
	}
	return out, nil
}

// listEvents answers GET /api/v1/events?limit=N&cursor=C: the workspace's
// stored events in order of arrival at the store, newest first.
func (a *API) listEvents(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	limit, err := pageLimit(r)
	if err != nil {
		return err
	}
	var before int64
	if c := r.URL.Query().Get("cursor"); c != "" {
		pos, err := decodeCursor(c, 1)
		if err != nil {
			return err
		}
		before = pos[0]
	}
	page, err := a.deps.Profiles.AllEvents(r.Context(), tok.WorkspaceID, before, limit+1)
	if err != nil {
		return err
	}
	resp := eventsResponse{Events: make([]eventJSON, 0, min(len(page), limit))}
	if len(page) > limit {
		page = page[:limit]
		resp.NextCursor = encodeCursor(page[limit-1].Seq)
	}
	for _, se := range page {
		resp.Events = append(resp.Events, toEventJSON(se))
	}
	httpjson.Write(w, http.StatusOK, resp)
	return nil
}
