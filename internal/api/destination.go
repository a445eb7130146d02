package api

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/httpjson"
)

// DestinationStore keeps destinations.
type DestinationStore interface {
	Create(ctx context.Context, d cdp.Destination) error
	Update(ctx context.Context, d cdp.Destination) error
	Get(ctx context.Context, ws cdp.WorkspaceID, id cdp.DestinationID) (cdp.Destination, error)
	List(ctx context.Context, ws cdp.WorkspaceID) ([]cdp.Destination, error)
	Delete(ctx context.Context, ws cdp.WorkspaceID, id cdp.DestinationID) error
}

// DeliveryStore keeps delivery outcomes and dead letters.
type DeliveryStore interface {
	DeadLetters(ctx context.Context, ws cdp.WorkspaceID, dest cdp.DestinationID, before string, limit int) ([]cdp.DeadLetter, error)
	ReplayDeadLetters(ctx context.Context, ws cdp.WorkspaceID, dest cdp.DestinationID, match func(cdp.DeadLetter) bool) (cdp.ReplayResult, error)
	ReplayFrom(ctx context.Context, ws cdp.WorkspaceID, dest cdp.DestinationID, since time.Time, replay string) (cdp.ReplayResult, error)
	Records(ctx context.Context, ws cdp.WorkspaceID, profile cdp.ProfileID, messageIDs []string) (map[string][]cdp.DeliveryRecord, error)
}

// Forwarding is what the API needs beyond the stores: checking a
// destination's settings against its type, checking URLs, and removing a
// destination's queue.
type Forwarding interface {
	// Validate builds (and discards) the destination's sender: Invalid if
	// its endpoint, credentials or settings are unusable.
	Validate(ctx context.Context, d cdp.Destination, credentials []byte) error
	CheckURL(raw string) error
	DeleteQueue(ctx context.Context, id cdp.DestinationID) error
}

type destinationJSON struct {
	ID             string           `json:"id"`
	Name           string           `json:"name"`
	Type           string           `json:"type"`
	Enabled        bool             `json:"enabled"`
	Endpoint       string           `json:"endpoint"`
	HasCredentials bool             `json:"has_credentials"`
	Credentials    *json.RawMessage `json:"credentials,omitempty"` // input only; never returned
	Settings       struct {
		BatchSize      int      `json:"batch_size,omitempty"`
		MaxAttempts    int      `json:"max_attempts,omitempty"`
		MaxAgeSeconds  int64    `json:"max_age_seconds,omitempty"`
		TimeoutSeconds int64    `json:"timeout_seconds,omitempty"`
		PinSHA256      []string `json:"pin_sha256,omitempty"`
		OpenDSRURL     string   `json:"opendsr_url,omitempty"`
	} `json:"settings"`
	Sources []string `json:"sources"`
	Filter  struct {
		IncludeTypes  []string `json:"include_types,omitempty"`
		ExcludeTypes  []string `json:"exclude_types,omitempty"`
		IncludeEvents []string `json:"include_events,omitempty"`
		ExcludeEvents []string `json:"exclude_events,omitempty"`
	} `json:"filter"`
	Minimisation struct {
		AllowTraits     []string `json:"allow_traits,omitempty"`
		DenyTraits      []string `json:"deny_traits,omitempty"`
		AllowProperties []string `json:"allow_properties,omitempty"`
		DenyProperties  []string `json:"deny_properties,omitempty"`
		DropIP          bool     `json:"drop_ip,omitempty"`
		HashEmail       bool     `json:"hash_email,omitempty"`
	} `json:"minimisation"`
	SaleOrShare bool `json:"sale_or_share"`
	Consent     struct {
		Purposes []string `json:"purposes"`
		Mode     string   `json:"mode"`
	} `json:"consent"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func toDestinationJSON(d cdp.Destination) destinationJSON {
	var j destinationJSON
	j.ID, j.Name, j.Type, j.Enabled, j.Endpoint = string(d.ID), d.Name, string(d.Type), d.Enabled, d.Endpoint
	j.HasCredentials = len(d.CredentialsSealed) > 0
	j.Settings.BatchSize, j.Settings.MaxAttempts = d.Settings.BatchSize, d.Settings.MaxAttempts
	j.Settings.MaxAgeSeconds, j.Settings.TimeoutSeconds = int64(d.Settings.MaxAge/time.Second), int64(d.Settings.Timeout/time.Second)
	j.Settings.PinSHA256, j.Settings.OpenDSRURL = d.Settings.PinSHA256, d.Settings.OpenDSRURL
	j.Sources = strs(d.Sources)
	j.Filter.IncludeTypes, j.Filter.ExcludeTypes = strs(d.Filter.IncludeTypes), strs(d.Filter.ExcludeTypes)
	j.Filter.IncludeEvents, j.Filter.ExcludeEvents = d.Filter.IncludeEvents, d.Filter.ExcludeEvents
	m := d.Minimisation
	j.Minimisation.AllowTraits, j.Minimisation.DenyTraits, j.Minimisation.AllowProperties, j.Minimisation.DenyProperties = m.AllowTraits, m.DenyTraits, m.AllowProperties, m.DenyProperties
	j.Minimisation.DropIP, j.Minimisation.HashEmail = m.DropIP, m.HashEmail
	j.SaleOrShare = d.SaleOrShare
	j.Consent.Purposes, j.Consent.Mode = strs(d.ConsentPurposes), string(d.ConsentMode)
	j.CreatedAt, j.UpdatedAt = d.CreatedAt, d.UpdatedAt
	return j
}

func strs[T ~string](in []T) []string {
	out := make([]string, len(in))
	for i, v := range in {
		out[i] = string(v)
	}
	return out
}

func typed[T ~string](in []string) []T {
	if len(in) == 0 {
		return nil
	}
	out := make([]T, len(in))
	for i, v := range in {
		out[i] = T(v)
	}
	return out
}

func credentialsAD(id cdp.DestinationID) []byte {
	return []byte("custos/destination-credentials/" + id)
}

// fromDestinationJSON validates input and fills d (keeping id, workspace
// and times).
func (a *API) fromDestinationJSON(ctx context.Context, ws cdp.WorkspaceID, j destinationJSON, d *cdp.Destination) error {
	if strings.TrimSpace(j.Name) == "" || len(j.Name) > 200 {
		return cdp.Reason(cdp.Invalid, "invalid_name", "name is required, at most 200 characters")
	}
	d.Name, d.Enabled, d.Endpoint = j.Name, j.Enabled, j.Endpoint
	// A warehouse's address is its database URL, a credential; raw files
	// have a directory. Other endpoints are URLs Custos will call.
	if d.Type != cdp.DestinationWarehouse && !strings.HasPrefix(j.Endpoint, "file://") {
		if err := a.deps.Forwarding.CheckURL(j.Endpoint); err != nil {
			return err
		}
	}
	s := j.Settings
	if s.BatchSize < 0 || s.BatchSize > 1000 || s.MaxAttempts < 0 || s.MaxAttempts > 1000 || s.MaxAgeSeconds < 0 || s.TimeoutSeconds < 0 || s.TimeoutSeconds > 300 {
		return cdp.Reason(cdp.Invalid, "invalid_settings", "batch_size 1..1000, max_attempts 1..1000, timeout_seconds up to 300, max_age_seconds positive")
	}
	d.Settings = cdp.DestinationSettings{BatchSize: s.BatchSize, MaxAttempts: s.MaxAttempts,
		MaxAge: time.Duration(s.MaxAgeSeconds) * time.Second, Timeout: time.Duration(s.TimeoutSeconds) * time.Second, PinSHA256: s.PinSHA256,
		OpenDSRURL: s.OpenDSRURL}
	if s.OpenDSRURL != "" {
		if err := a.deps.Forwarding.CheckURL(s.OpenDSRURL); err != nil {
			return err
		}
	}
	d.Sources = typed[cdp.SourceID](j.Sources)
	for _, t := range append(append([]string{}, j.Filter.IncludeTypes...), j.Filter.ExcludeTypes...) {
		if !cdp.EventType(t).Valid() {
			return cdp.Reason(cdp.Invalid, "invalid_filter", "event types are identify, track, page, screen, group and alias")
		}
	}
	d.Filter = cdp.EventFilter{IncludeTypes: typed[cdp.EventType](j.Filter.IncludeTypes), ExcludeTypes: typed[cdp.EventType](j.Filter.ExcludeTypes),
		IncludeEvents: j.Filter.IncludeEvents, ExcludeEvents: j.Filter.ExcludeEvents}
	m := j.Minimisation
	if len(m.AllowTraits) > 0 && len(m.DenyTraits) > 0 || len(m.AllowProperties) > 0 && len(m.DenyProperties) > 0 {
		return cdp.Reason(cdp.Invalid, "invalid_minimisation", "use an allow list or a deny list, not both")
	}
	d.Minimisation = cdp.Minimisation{AllowTraits: m.AllowTraits, DenyTraits: m.DenyTraits, AllowProperties: m.AllowProperties,
		DenyProperties: m.DenyProperties, DropIP: m.DropIP, HashEmail: m.HashEmail}
	d.SaleOrShare = j.SaleOrShare
	switch j.Consent.Mode {
	case "", string(cdp.AllOf):
		d.ConsentMode = cdp.AllOf
	case string(cdp.AnyOf):
		d.ConsentMode = cdp.AnyOf
	default:
		return cdp.Reason(cdp.Invalid, "invalid_consent_rule", "consent.mode is all or any")
	}
	voc, err := a.deps.Consent.Vocabulary(ctx, ws)
	if err != nil {
		return err
	}
	for _, p := range j.Consent.Purposes {
		if _, ok := voc.Purposes[cdp.PurposeKey(p)]; !ok {
			return cdp.Reason(cdp.Invalid, "undefined_purpose", "the consent rule names a purpose this workspace does not define")
		}
	}
	d.ConsentPurposes = typed[cdp.PurposeKey](j.Consent.Purposes)
	return nil
}

func (a *API) listDestinations(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	ds, err := a.deps.Destinations.List(r.Context(), tok.WorkspaceID)
	if err != nil {
		return err
	}
	out := struct {
		Destinations []destinationJSON `json:"destinations"`
	}{Destinations: []destinationJSON{}}
	for _, d := range ds {
		out.Destinations = append(out.Destinations, toDestinationJSON(d))
	}
	httpjson.Write(w, http.StatusOK, out)
	return nil
}

func (a *API) getDestination(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	d, err := a.deps.Destinations.Get(r.Context(), tok.WorkspaceID, cdp.DestinationID(r.PathValue("id")))
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, toDestinationJSON(d))
	return nil
}

// createDestination answers POST /api/v1/destinations.
func (a *API) createDestination(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	j := destinationJSON{Enabled: true}
	if err := decodeJSON(r, &j); err != nil {
		return err
	}
	t := cdp.DestinationType(j.Type)
	if !t.Valid() {
		return cdp.Reason(cdp.Invalid, "invalid_type", "type is webhook, segment, raw or warehouse")
	}
	now := time.Now().UTC()
	d := cdp.Destination{ID: cdp.DestinationID(newID("dst_")), WorkspaceID: tok.WorkspaceID, Type: t, CreatedAt: now, UpdatedAt: now}
	if err := a.fromDestinationJSON(r.Context(), tok.WorkspaceID, j, &d); err != nil {
		return err
	}
	if err := a.setCredentials(r.Context(), &d, j.Credentials, true); err != nil {
		return err
	}
	if err := a.deps.Destinations.Create(r.Context(), d); err != nil {
		return err
	}
	httpjson.Write(w, http.StatusCreated, toDestinationJSON(d))
	return nil
}

// setCredentials validates the destination with its credentials and seals
// them. Without new credentials on an update the stored ones stay.
func (a *API) setCredentials(ctx context.Context, d *cdp.Destination, creds *json.RawMessage, create bool) error {
	var plain []byte
	if creds != nil && string(*creds) != "null" {
		var obj map[string]any
		if err := json.Unmarshal(*creds, &obj); err != nil {
			return cdp.Reason(cdp.Invalid, "invalid_credentials", "credentials must be a JSON object")
		}
		plain = *creds
	} else if !create && len(d.CredentialsSealed) > 0 {
		opened, err := a.deps.Sealer.OpenWithRoot(d.CredentialsSealed, credentialsAD(d.ID))
		if err != nil {
			return err
		}
		plain = opened
	}
	if err := a.deps.Forwarding.Validate(ctx, *d, plain); err != nil {
		return err
	}
	if creds == nil {
		d.CredentialsSealed = nil // keep what is stored
		return nil
	}
	sealed, err := a.deps.Sealer.SealWithRoot(plain, credentialsAD(d.ID))
	if err != nil {
		return err
	}
	d.CredentialsSealed = sealed
	return nil
}

// updateDestination answers PUT /api/v1/destinations/{id}: replace the
// settings (credentials only if given).
func (a *API) updateDestination(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	d, err := a.deps.Destinations.Get(r.Context(), tok.WorkspaceID, cdp.DestinationID(r.PathValue("id")))
	if err != nil {
		return err
	}
	var j destinationJSON
	if err := decodeJSON(r, &j); err != nil {
		return err
	}
	if j.Type != "" && j.Type != string(d.Type) {
		return cdp.Reason(cdp.Invalid, "type_change", "the type of a destination cannot change; create a new one")
	}
	if err := a.fromDestinationJSON(r.Context(), tok.WorkspaceID, j, &d); err != nil {
		return err
	}
	if err := a.setCredentials(r.Context(), &d, j.Credentials, false); err != nil {
		return err
	}
	d.UpdatedAt = time.Now().UTC()
	if err := a.deps.Destinations.Update(r.Context(), d); err != nil {
		return err
	}
	stored, err := a.deps.Destinations.Get(r.Context(), tok.WorkspaceID, d.ID)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, toDestinationJSON(stored))
	return nil
}

// setEnabled answers POST /api/v1/destinations/{id}/pause and /resume.
func (a *API) setEnabled(enabled bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
		d, err := a.deps.Destinations.Get(r.Context(), tok.WorkspaceID, cdp.DestinationID(r.PathValue("id")))
		if err != nil {
			return err
		}
		d.Enabled, d.UpdatedAt, d.CredentialsSealed = enabled, time.Now().UTC(), nil
		if err := a.deps.Destinations.Update(r.Context(), d); err != nil {
			return err
		}
		d.Enabled = enabled
		httpjson.Write(w, http.StatusOK, toDestinationJSON(d))
		return nil
	}
}

func (a *API) deleteDestination(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	id := cdp.DestinationID(r.PathValue("id"))
	if err := a.deps.Destinations.Delete(r.Context(), tok.WorkspaceID, id); err != nil {
		return err
	}
	if err := a.deps.Forwarding.DeleteQueue(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type deadLetterJSON struct {
	ID           string    `json:"id"`
	Kind         string    `json:"kind"`
	MessageID    string    `json:"message_id"`
	ProfileID    string    `json:"profile_id"`
	LastError    string    `json:"last_error"`
	Attempts     int       `json:"attempts"`
	FirstAttempt time.Time `json:"first_attempt_at"`
	DeadAt       time.Time `json:"dead_lettered_at"`
}

// listDeadLetters answers GET /api/v1/destinations/{id}/dead-letters.
func (a *API) listDeadLetters(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	id := cdp.DestinationID(r.PathValue("id"))
	if _, err := a.deps.Destinations.Get(r.Context(), tok.WorkspaceID, id); err != nil {
		return err
	}
	limit, err := pageLimit(r)
	if err != nil {
		return err
	}
	page, err := a.deps.Deliveries.DeadLetters(r.Context(), tok.WorkspaceID, id, r.URL.Query().Get("cursor"), limit+1)
	if err != nil {
		return err
	}
	out := struct {
		DeadLetters []deadLetterJSON `json:"dead_letters"`
		NextCursor  string           `json:"next_cursor,omitempty"`
	}{DeadLetters: []deadLetterJSON{}}
	if len(page) > limit {
		page = page[:limit]
		out.NextCursor = page[limit-1].Cursor()
	}
	for _, d := range page {
		out.DeadLetters = append(out.DeadLetters, deadLetterJSON{ID: d.ID, Kind: string(d.Kind), MessageID: d.MessageID,
			ProfileID: string(d.Profile), LastError: d.LastError, Attempts: d.Attempts, FirstAttempt: d.FirstTry, DeadAt: d.CreatedAt})
	}
	httpjson.Write(w, http.StatusOK, out)
	return nil
}

// replayDeadLetters answers POST /api/v1/destinations/{id}/dead-letters/replay
// with {"ids": [...]}, {"profile_id": "..."}, {"message_id": "..."},
// {"error_contains": "..."} or {"all": true}.
func (a *API) replayDeadLetters(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	id := cdp.DestinationID(r.PathValue("id"))
	var in struct {
		IDs           []string `json:"ids"`
		ProfileID     string   `json:"profile_id"`
		MessageID     string   `json:"message_id"`
		ErrorContains string   `json:"error_contains"`
		All           bool     `json:"all"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if !in.All && len(in.IDs) == 0 && in.ProfileID == "" && in.MessageID == "" && in.ErrorContains == "" {
		return cdp.Reason(cdp.Invalid, "missing_filter", `name the dead letters: ids, profile_id, message_id, error_contains, or "all": true`)
	}
	match := func(d cdp.DeadLetter) bool {
		return (len(in.IDs) == 0 || slices.Contains(in.IDs, d.ID)) &&
			(in.ProfileID == "" || string(d.Profile) == in.ProfileID) &&
			(in.MessageID == "" || d.MessageID == in.MessageID) &&
			(in.ErrorContains == "" || strings.Contains(d.LastError, in.ErrorContains))
	}
	res, err := a.deps.Deliveries.ReplayDeadLetters(r.Context(), tok.WorkspaceID, id, match)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, map[string]int{"queued": res.Queued, "filtered": res.Filtered, "gone": res.Gone})
	return nil
}

// replayDestination answers POST /api/v1/destinations/{id}/replay with
// {"since": RFC 3339}: re-deliver stored events from then on, consent
// checked again now.
func (a *API) replayDestination(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	var in struct {
		Since time.Time `json:"since"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if in.Since.IsZero() {
		return cdp.Reason(cdp.Invalid, "missing_since", "since (RFC 3339) is required")
	}
	replay := newID("rpl_")
	res, err := a.deps.Deliveries.ReplayFrom(r.Context(), tok.WorkspaceID, cdp.DestinationID(r.PathValue("id")), in.Since, replay)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"replay_id": replay, "queued": res.Queued, "filtered": res.Filtered})
	return nil
}
