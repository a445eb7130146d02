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

type eventJSON struct {
	MessageID  string         `json:"message_id"`
	SourceID   string         `json:"source_id"`
	Type       string         `json:"type"`
	Event      string         `json:"event,omitempty"`
	Identities []identityJSON `json:"identities"`
	Timestamp  time.Time      `json:"timestamp"`
	ReceivedAt time.Time      `json:"received_at"`
}

type identityJSON struct {
	Type  string `json:"type"`
	Value string `json:"value"`
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

// A cursor is opaque to clients; inside it is the position to continue below.
func encodeCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("s" + strconv.FormatInt(seq, 10)))
}

func decodeCursor(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		if rest, ok := strings.CutPrefix(string(b), "s"); ok {
			if n, err := strconv.ParseInt(rest, 10, 64); err == nil && n > 0 {
				return n, nil
			}
		}
	}
	return 0, cdp.Reason(cdp.Invalid, "invalid_cursor", "cursor is not one this API returned")
}

// listEvents answers GET /api/v1/events?limit=N&cursor=C: the workspace's
// stored events, newest first.
func (a *API) listEvents(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	limit, err := pageLimit(r)
	if err != nil {
		return err
	}
	before, err := decodeCursor(r.URL.Query().Get("cursor"))
	if err != nil {
		return err
	}
	page, err := a.events.List(r.Context(), tok.WorkspaceID, before, limit+1)
	if err != nil {
		return err
	}
	resp := eventsResponse{Events: make([]eventJSON, 0, min(len(page), limit))}
	if len(page) > limit {
		page = page[:limit]
		resp.NextCursor = encodeCursor(page[limit-1].Seq)
	}
	for _, se := range page {
		ev := se.Event
		ej := eventJSON{
			MessageID: ev.MessageID, SourceID: string(ev.SourceID), Type: string(ev.Type), Event: ev.Name,
			Identities: make([]identityJSON, len(ev.Identities)),
			Timestamp:  ev.Timestamp, ReceivedAt: ev.ReceivedAt,
		}
		for i, id := range ev.Identities {
			ej.Identities[i] = identityJSON{Type: string(id.Type), Value: id.Value}
		}
		resp.Events = append(resp.Events, ej)
	}
	httpjson.Write(w, http.StatusOK, resp)
	return nil
}
