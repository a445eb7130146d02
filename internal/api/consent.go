package api

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/consent"
	"github.com/custos-cdp/custos/internal/httpjson"
	"github.com/custos-cdp/custos/internal/receipt"
	"github.com/custos-cdp/custos/internal/signing"
)

// ConsentStore is what the API reads and changes of consent configuration.
type ConsentStore interface {
	Purposes(ctx context.Context, ws cdp.WorkspaceID) ([]cdp.Purpose, error)
	Purpose(ctx context.Context, ws cdp.WorkspaceID, key cdp.PurposeKey) (cdp.Purpose, error)
	PutPurpose(ctx context.Context, p cdp.Purpose) (bool, error)
	DeletePurpose(ctx context.Context, ws cdp.WorkspaceID, key cdp.PurposeKey) error
	Mappings(ctx context.Context, ws cdp.WorkspaceID) ([]cdp.ConsentMapping, error)
	PutMapping(ctx context.Context, ws cdp.WorkspaceID, m cdp.ConsentMapping) error
	DeleteMapping(ctx context.Context, ws cdp.WorkspaceID, voc cdp.ConsentVocabulary, external string) error
	Vocabulary(ctx context.Context, ws cdp.WorkspaceID) (consent.Vocabulary, error)
	CreateFeed(ctx context.Context, f cdp.ConsentFeed) error
	Feed(ctx context.Context, id string) (cdp.ConsentFeed, error)
	Feeds(ctx context.Context, ws cdp.WorkspaceID) ([]cdp.ConsentFeed, error)
	DeleteFeed(ctx context.Context, ws cdp.WorkspaceID, id string) error
}

// Ledger reads a person's consent ledger.
type Ledger interface {
	ConsentHistory(ctx context.Context, ws cdp.WorkspaceID, id cdp.ProfileID) ([]cdp.ConsentEntry, error)
	ConsentEntry(ctx context.Context, ws cdp.WorkspaceID, id cdp.ProfileID, entry cdp.ConsentEntryID) (cdp.ConsentEntry, error)
}

// Log takes events into the pipeline and returns once they are durable.
type Log interface {
	Append(ctx context.Context, events []cdp.Event) error
}

// Receipts signs consent receipts and publishes the public keys.
type Receipts interface {
	Issue(ctx context.Context, e cdp.ConsentEntry, p cdp.Purpose) (receipt.Signed, error)
	PublicKeys(ctx context.Context) ([]signing.JWK, error)
}

// Sealer seals feed secrets under the root key.
type Sealer interface {
	SealWithRoot(plaintext, ad []byte) ([]byte, error)
	OpenWithRoot(sealed, ad []byte) ([]byte, error)
}

var purposeKeyRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

type purposeJSON struct {
	Key                    string    `json:"key"`
	Name                   string    `json:"name"`
	Description            string    `json:"description"`
	Regime                 string    `json:"regime"`
	DocumentVersion        string    `json:"document_version"`
	RequireCurrentDocument bool      `json:"require_current_document"`
	Retired                bool      `json:"retired"`
	CreatedAt              time.Time `json:"created_at"`
	UpdatedAt              time.Time `json:"updated_at"`
}

func toPurposeJSON(p cdp.Purpose) purposeJSON {
	return purposeJSON{Key: string(p.Key), Name: p.Name, Description: p.Description, Regime: string(p.Regime),
		DocumentVersion: p.DocumentVersion, RequireCurrentDocument: p.RequireCurrentDocument, Retired: p.Retired,
		CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
}

func (a *API) listPurposes(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	ps, err := a.deps.Consent.Purposes(r.Context(), tok.WorkspaceID)
	if err != nil {
		return err
	}
	out := struct {
		Purposes []purposeJSON `json:"purposes"`
	}{Purposes: []purposeJSON{}}
	for _, p := range ps {
		out.Purposes = append(out.Purposes, toPurposeJSON(p))
	}
	httpjson.Write(w, http.StatusOK, out)
	return nil
}

// putPurpose answers PUT /api/v1/purposes/{key}: create or update.
func (a *API) putPurpose(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	key := r.PathValue("key")
	if !purposeKeyRE.MatchString(key) {
		return cdp.Reason(cdp.Invalid, "invalid_purpose_key", "a purpose key is lower-case letters, digits and _, starting with a letter, at most 64")
	}
	var in struct {
		Name                   string `json:"name"`
		Description            string `json:"description"`
		Regime                 string `json:"regime"`
		DocumentVersion        string `json:"document_version"`
		RequireCurrentDocument bool   `json:"require_current_document"`
		Retired                bool   `json:"retired"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if in.Regime == "" {
		in.Regime = string(cdp.OptIn)
	}
	if in.Regime != string(cdp.OptIn) && in.Regime != string(cdp.OptOut) {
		return cdp.Reason(cdp.Invalid, "invalid_regime", "regime must be opt_in or opt_out")
	}
	if strings.TrimSpace(in.Name) == "" || len(in.Name) > 200 || len(in.Description) > 2000 || len(in.DocumentVersion) > 200 {
		return cdp.Reason(cdp.Invalid, "invalid_purpose", "name is required (at most 200 characters); description at most 2000; document_version at most 200")
	}
	now := time.Now().UTC()
	p := cdp.Purpose{WorkspaceID: tok.WorkspaceID, Key: cdp.PurposeKey(key), Name: in.Name, Description: in.Description,
		Regime: cdp.Regime(in.Regime), DocumentVersion: in.DocumentVersion, RequireCurrentDocument: in.RequireCurrentDocument,
		Retired: in.Retired, CreatedAt: now, UpdatedAt: now}
	created, err := a.deps.Consent.PutPurpose(r.Context(), p)
	if err != nil {
		return err
	}
	stored, err := a.deps.Consent.Purpose(r.Context(), tok.WorkspaceID, p.Key)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	httpjson.Write(w, status, toPurposeJSON(stored))
	return nil
}

func (a *API) deletePurpose(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	if err := a.deps.Consent.DeletePurpose(r.Context(), tok.WorkspaceID, cdp.PurposeKey(r.PathValue("key"))); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type mappingJSON struct {
	Vocabulary string `json:"vocabulary"`
	External   string `json:"external"`
	Purpose    string `json:"purpose"`
}

// vocabularies an operator can map from.
var vocabularies = map[cdp.ConsentVocabulary]bool{
	cdp.ConsentSegmentCategory: true, cdp.ConsentRudderID: true, cdp.ConsentMParticleGDPR: true,
	cdp.ConsentMParticleCCPA: true, cdp.ConsentTCF: true, cdp.ConsentGPP: true, cdp.ConsentOneTrust: true,
}

func (a *API) listMappings(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	ms, err := a.deps.Consent.Mappings(r.Context(), tok.WorkspaceID)
	if err != nil {
		return err
	}
	out := struct {
		Mappings []mappingJSON `json:"mappings"`
	}{Mappings: []mappingJSON{}}
	for _, m := range ms {
		out.Mappings = append(out.Mappings, mappingJSON{Vocabulary: string(m.Vocabulary), External: m.External, Purpose: string(m.Purpose)})
	}
	httpjson.Write(w, http.StatusOK, out)
	return nil
}

// putMapping answers PUT /api/v1/consent-mappings/{vocabulary}/{external}
// with {"purpose": "..."}.
func (a *API) putMapping(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	voc, ext := cdp.ConsentVocabulary(r.PathValue("vocabulary")), r.PathValue("external")
	if !vocabularies[voc] {
		return cdp.Reason(cdp.Invalid, "invalid_vocabulary", "vocabulary must be one of segment_category, rudder_consent_id, mparticle_gdpr, mparticle_ccpa, tcf, gpp, onetrust")
	}
	if ext == "" || len(ext) > 200 {
		return cdp.Reason(cdp.Invalid, "invalid_external", "the external name must be 1 to 200 characters")
	}
	if voc == cdp.ConsentTCF {
		if n, err := strconv.Atoi(ext); err != nil || n < 1 || n > 24 {
			return cdp.Reason(cdp.Invalid, "invalid_external", "TCF mappings name a purpose number from 1 to 24")
		}
	}
	if voc == cdp.ConsentGPP && ext != consent.GPPSaleOptOut && ext != consent.GPPSharingOptOut && ext != consent.GPPTargetedAdvertisingOptOut {
		return cdp.Reason(cdp.Invalid, "invalid_external", "GPP mappings name SaleOptOut, SharingOptOut or TargetedAdvertisingOptOut")
	}
	var in struct {
		Purpose string `json:"purpose"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	m := cdp.ConsentMapping{Vocabulary: voc, External: ext, Purpose: cdp.PurposeKey(in.Purpose)}
	if err := a.deps.Consent.PutMapping(r.Context(), tok.WorkspaceID, m); err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, mappingJSON{Vocabulary: string(voc), External: ext, Purpose: in.Purpose})
	return nil
}

func (a *API) deleteMapping(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	if err := a.deps.Consent.DeleteMapping(r.Context(), tok.WorkspaceID, cdp.ConsentVocabulary(r.PathValue("vocabulary")), r.PathValue("external")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// consentRequest is the body of POST /api/v1/consent.
type consentRequest struct {
	Identities []struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	} `json:"identities"`
	Purposes []struct {
		Purpose     string     `json:"purpose"`
		State       string     `json:"state"`
		CollectedAt *time.Time `json:"collected_at"`
		Document    string     `json:"document"`
		Location    string     `json:"location"`
		HardwareID  string     `json:"hardware_id"`
	} `json:"purposes"`
	MessageID string `json:"message_id"`
}

// recordConsent answers POST /api/v1/consent: set one or more purposes for
// a person named by any identity. The change goes through the event log
// like any other, so it is durable when the answer (202) comes, and the
// processor creates the person's profile if needed.
func (a *API) recordConsent(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	var in consentRequest
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	now := time.Now().UTC()
	ev := cdp.Event{MessageID: in.MessageID, WorkspaceID: tok.WorkspaceID, SourceID: cdp.APISource(tok.ID),
		Format: cdp.FormatAPI, Type: cdp.Identify, Timestamp: now, ReceivedAt: now}
	if ev.MessageID == "" {
		ev.MessageID = newID("api-")
	} else if len(ev.MessageID) > 256 {
		return cdp.Reason(cdp.Invalid, "invalid_message_id", "message_id is at most 256 bytes")
	}
	for _, id := range in.Identities {
		ident, err := cdp.NewIdentity(cdp.IdentityType(id.Type), id.Value)
		if err != nil {
			return err
		}
		if cdp.IsJunkIdentityValue(ident.Value) {
			return cdp.Reason(cdp.Invalid, "invalid_identity", "an identity value is a placeholder, not an identifier")
		}
		ev.Identities = append(ev.Identities, ident)
	}
	if len(ev.Identities) == 0 {
		return cdp.Reason(cdp.Invalid, "missing_identity", "at least one identity is required")
	}
	if len(in.Purposes) == 0 || len(in.Purposes) > 100 {
		return cdp.Reason(cdp.Invalid, "invalid_purposes", "from 1 to 100 purposes are required")
	}
	voc, err := a.deps.Consent.Vocabulary(r.Context(), tok.WorkspaceID)
	if err != nil {
		return err
	}
	for _, p := range in.Purposes {
		state := cdp.ConsentState(p.State)
		if !state.Valid() {
			return cdp.Reason(cdp.Invalid, "invalid_state", "state must be granted, denied or withdrawn")
		}
		purpose, ok := voc.Purposes[cdp.PurposeKey(p.Purpose)]
		if !ok {
			return cdp.Reason(cdp.Invalid, "undefined_purpose", "purpose "+safeName(p.Purpose)+" is not defined in this workspace")
		}
		if purpose.Retired {
			return cdp.Reason(cdp.Invalid, "retired_purpose", "purpose "+safeName(p.Purpose)+" is retired")
		}
		sig := cdp.ConsentSignal{Vocabulary: cdp.ConsentAPI, Key: p.Purpose, Purpose: purpose.Key,
			Granted: state == cdp.Granted, Withdrawn: state == cdp.Withdrawn, Document: p.Document,
			Location: p.Location, HardwareID: p.HardwareID}
		if p.CollectedAt != nil {
			sig.CollectedAt = p.CollectedAt.UTC()
		}
		ev.Consent = append(ev.Consent, sig)
	}
	if err := a.deps.Log.Append(r.Context(), []cdp.Event{ev}); err != nil {
		return err
	}
	httpjson.Write(w, http.StatusAccepted, map[string]string{"message_id": ev.MessageID})
	return nil
}

// safeName bounds a client-given name for an error message.
func safeName(s string) string {
	if !purposeKeyRE.MatchString(s) {
		return "(invalid name)"
	}
	return s
}

func newID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

type feedJSON struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	URL       string    `json:"url"`
	Secret    string    `json:"secret,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

func feedAD(id string) []byte { return []byte("custos/feed-secret/" + id) }

func (a *API) listFeeds(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	fs, err := a.deps.Consent.Feeds(r.Context(), tok.WorkspaceID)
	if err != nil {
		return err
	}
	out := struct {
		Feeds []feedJSON `json:"feeds"`
	}{Feeds: []feedJSON{}}
	for _, f := range fs {
		out.Feeds = append(out.Feeds, feedJSON{ID: f.ID, Name: f.Name, URL: "/api/v1/feeds/" + f.ID + "/consent", CreatedAt: f.CreatedAt})
	}
	httpjson.Write(w, http.StatusOK, out)
	return nil
}

// createFeed answers POST /api/v1/feeds {"name": "..."}: a new partner
// feed and its signing secret, shown this once.
func (a *API) createFeed(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	var in struct {
		Name string `json:"name"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if strings.TrimSpace(in.Name) == "" || len(in.Name) > 100 {
		return cdp.Reason(cdp.Invalid, "invalid_name", "name is required, at most 100 characters")
	}
	secret := newID("cfs_")
	f := cdp.ConsentFeed{ID: newID("feed_"), WorkspaceID: tok.WorkspaceID, Name: in.Name, CreatedAt: time.Now().UTC()}
	sealed, err := a.deps.Sealer.SealWithRoot([]byte(secret), feedAD(f.ID))
	if err != nil {
		return err
	}
	f.SecretSealed = sealed
	if err := a.deps.Consent.CreateFeed(r.Context(), f); err != nil {
		return err
	}
	httpjson.Write(w, http.StatusCreated, feedJSON{ID: f.ID, Name: f.Name, URL: "/api/v1/feeds/" + f.ID + "/consent", Secret: secret, CreatedAt: f.CreatedAt})
	return nil
}

func (a *API) deleteFeed(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	if err := a.deps.Consent.DeleteFeed(r.Context(), tok.WorkspaceID, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Feed request signatures: X-Custos-Timestamp is the unix time of the
// request and X-Custos-Signature is "v1=" and the hex HMAC-SHA256 of
// "<timestamp>.<raw body>" under the feed's secret. Requests more than
// five minutes off are refused, so a captured request cannot be replayed
// later.
const (
	feedTimestampHeader = "X-Custos-Timestamp"
	feedSignatureHeader = "X-Custos-Signature"
	feedTolerance       = 5 * time.Minute
)

// FeedSignature returns the signature header value of a feed request.
func FeedSignature(secret string, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(timestamp, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// feedPayload is the documented OneTrust-style body of a feed request.
type feedPayload struct {
	Identifier     string    `json:"identifier"`
	IdentifierType string    `json:"identifierType"`
	ConsentDate    time.Time `json:"consentDate"`
	Document       string    `json:"collectionPointVersion"`
	Location       string    `json:"collectionPoint"`
	MessageID      string    `json:"receiptId"`
	Purposes       []struct {
		ID              string `json:"Id"`
		TransactionType string `json:"TransactionType"`
	} `json:"purposes"`
}

// feedStates maps OneTrust transaction types to ledger states.
var feedStates = map[string]cdp.ConsentState{
	"CONFIRMED": cdp.Granted, "CONSENT": cdp.Granted, "OPT_IN": cdp.Granted,
	"WITHDRAWN":  cdp.Withdrawn,
	"NO_CONSENT": cdp.Denied, "NOT_GIVEN": cdp.Denied, "OPT_OUT": cdp.Denied, "DENIED": cdp.Denied, "EXPIRED": cdp.Withdrawn,
}

// feedConsent answers POST /api/v1/feeds/{feed}/consent for a
// consent-management platform. It needs no bearer token: the body's
// signature under the feed's secret is its credential, checked in constant
// time before anything is parsed.
func (a *API) feedConsent(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.Timeout)
	defer cancel()
	err := a.handleFeed(w, r.WithContext(ctx))
	if err != nil {
		httpjson.Error(ctx, a.cfg.Logger, w, err)
	}
}

func (a *API) handleFeed(w http.ResponseWriter, r *http.Request) error {
	unauth := cdp.Reason(cdp.Unauthenticated, "invalid_signature", "missing, stale or wrong signature")
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 256<<10))
	if err != nil {
		return cdp.Reason(cdp.TooLarge, "body_too_large", "request body too large")
	}
	f, err := a.deps.Consent.Feed(r.Context(), r.PathValue("feed"))
	if cdp.IsKind(err, cdp.NotFound) {
		return unauth
	}
	if err != nil {
		return err
	}
	ts, err := strconv.ParseInt(r.Header.Get(feedTimestampHeader), 10, 64)
	if err != nil {
		return unauth
	}
	now := time.Now()
	if d := now.Sub(time.Unix(ts, 0)); d > feedTolerance || d < -feedTolerance {
		return unauth
	}
	secret, err := a.deps.Sealer.OpenWithRoot(f.SecretSealed, feedAD(f.ID))
	if err != nil {
		return err
	}
	want := FeedSignature(string(secret), ts, body)
	if !hmac.Equal([]byte(want), []byte(r.Header.Get(feedSignatureHeader))) {
		return unauth
	}
	parsed, err := parseFeed(body, now)
	if err != nil {
		return err
	}
	signals, rejected := parsed.signals, parsed.rejected
	ev := cdp.Event{MessageID: parsed.messageID, WorkspaceID: f.WorkspaceID, SourceID: cdp.FeedSource(f.Name), Format: cdp.FormatAPI,
		Type: cdp.Identify, Identities: []cdp.Identity{parsed.identity}, Timestamp: parsed.received, ReceivedAt: parsed.received}
	voc, err := a.deps.Consent.Vocabulary(r.Context(), f.WorkspaceID)
	if err != nil {
		return err
	}
	mapped, problems := voc.Resolve(signals)
	for _, p := range problems {
		rejected = append(rejected, map[string]string{"id": p.Key, "code": p.Reason})
	}
	ev.Consent = mapped
	if len(mapped) > 0 {
		if err := a.deps.Log.Append(r.Context(), []cdp.Event{ev}); err != nil {
			return err
		}
	}
	if rejected == nil {
		rejected = []map[string]string{}
	}
	httpjson.Write(w, http.StatusAccepted, map[string]any{"message_id": ev.MessageID, "recorded": len(mapped), "rejected": rejected})
	return nil
}

// parsedFeed is a partner feed payload, checked: the person's identity and
// the consent signals, before the workspace's mappings apply.
type parsedFeed struct {
	messageID string
	identity  cdp.Identity
	received  time.Time
	signals   []cdp.ConsentSignal
	rejected  []map[string]string
}

// parseFeed reads and checks a partner feed payload (the OneTrust-style
// shape feedPayload documents). An error is a 4xx that names the reason;
// a purpose with an unknown transaction type is rejected alone.
func parseFeed(body []byte, now time.Time) (parsedFeed, error) {
	var in feedPayload
	if err := decodeBody(body, &in); err != nil {
		return parsedFeed{}, err
	}
	typ := cdp.IdentityType(in.IdentifierType)
	if typ == "" {
		typ = cdp.Email
	}
	ident, err := cdp.NewIdentity(typ, in.Identifier)
	if err != nil {
		return parsedFeed{}, err
	}
	if cdp.IsJunkIdentityValue(ident.Value) {
		return parsedFeed{}, cdp.Reason(cdp.Invalid, "invalid_identity", "the identifier is a placeholder, not an identifier")
	}
	if len(in.Purposes) == 0 || len(in.Purposes) > 200 {
		return parsedFeed{}, cdp.Reason(cdp.Invalid, "invalid_purposes", "from 1 to 200 purposes are required")
	}
	out := parsedFeed{messageID: in.MessageID, identity: ident, received: now.UTC()}
	if out.messageID == "" {
		out.messageID = newID("feed-")
	}
	collected := in.ConsentDate.UTC()
	if in.ConsentDate.IsZero() {
		collected = out.received
	}
	for _, p := range in.Purposes {
		state, ok := feedStates[strings.ToUpper(p.TransactionType)]
		if !ok {
			out.rejected = append(out.rejected, map[string]string{"id": safeKey(p.ID), "code": "unknown_transaction_type"})
			continue
		}
		out.signals = append(out.signals, cdp.ConsentSignal{Vocabulary: cdp.ConsentOneTrust, Key: p.ID, Granted: state == cdp.Granted,
			Withdrawn: state == cdp.Withdrawn, CollectedAt: collected, Document: in.Document, Location: in.Location})
	}
	return out, nil
}

func safeKey(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

type consentEntryJSON struct {
	ID          string    `json:"id"`
	Purpose     string    `json:"purpose"`
	State       string    `json:"state"`
	CollectedAt time.Time `json:"collected_at"`
	ReceivedAt  time.Time `json:"received_at"`
	Source      string    `json:"source"`
	SourceName  string    `json:"source_name,omitempty"`
	Document    string    `json:"document,omitempty"`
	Location    string    `json:"location,omitempty"`
	HardwareID  string    `json:"hardware_id,omitempty"`
	MessageID   string    `json:"message_id,omitempty"`
	MergeID     string    `json:"merge_id,omitempty"`
}

func toEntryJSON(e cdp.ConsentEntry) consentEntryJSON {
	return consentEntryJSON{ID: string(e.ID), Purpose: string(e.Purpose), State: string(e.State), CollectedAt: e.CollectedAt,
		ReceivedAt: e.ReceivedAt, Source: string(e.Source), SourceName: e.SourceName, Document: e.Document,
		Location: e.Location, HardwareID: e.HardwareID, MessageID: e.MessageID, MergeID: string(e.MergeID)}
}

// consentStateJSON is a person's current state for one purpose.
type consentStateJSON struct {
	Purpose         string     `json:"purpose"`
	Regime          string     `json:"regime"`
	State           string     `json:"state"`
	Allowed         bool       `json:"allowed"` // may data be used for it now (document renewal and regime applied)
	Reason          string     `json:"reason,omitempty"`
	DocumentVersion string     `json:"document_version,omitempty"`
	CollectedAt     *time.Time `json:"collected_at,omitempty"`
	Source          string     `json:"source,omitempty"`
	EntryID         string     `json:"entry_id,omitempty"`
}

// currentConsent derives a person's current state for every purpose of
// the workspace.
func (a *API) currentConsent(ctx context.Context, ws cdp.WorkspaceID, id cdp.ProfileID) ([]consentStateJSON, error) {
	ledger, err := a.deps.Ledger.ConsentHistory(ctx, ws, id)
	if err != nil {
		return nil, err
	}
	voc, err := a.deps.Consent.Vocabulary(ctx, ws)
	if err != nil {
		return nil, err
	}
	cur := consent.Current(ledger)
	ps, err := a.deps.Consent.Purposes(ctx, ws)
	if err != nil {
		return nil, err
	}
	out := []consentStateJSON{}
	for _, p := range ps {
		d := consent.Decide(consent.Rule{Purposes: []cdp.PurposeKey{p.Key}}, consent.Person{Current: cur, Purposes: voc.Purposes})
		s := consentStateJSON{Purpose: string(p.Key), Regime: string(p.Regime), State: string(consent.StateOf(cur, p.Key)), Allowed: d.Allowed}
		if !d.Allowed {
			s.Reason = d.Reason
		}
		if e, ok := cur[p.Key]; ok {
			at := e.CollectedAt
			s.DocumentVersion, s.CollectedAt, s.Source, s.EntryID = e.Document, &at, string(e.Source), string(e.ID)
			if e.Source == cdp.SourceGPC {
				s.Source = "gpc"
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// consentHistory answers GET /api/v1/profiles/{id}/consent/history: the
// whole ledger, oldest choice first.
func (a *API) consentHistory(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	entries, err := a.deps.Ledger.ConsentHistory(r.Context(), tok.WorkspaceID, cdp.ProfileID(r.PathValue("id")))
	if err != nil {
		return err
	}
	out := struct {
		Entries []consentEntryJSON `json:"entries"`
	}{Entries: []consentEntryJSON{}}
	for _, e := range entries {
		out.Entries = append(out.Entries, toEntryJSON(e))
	}
	httpjson.Write(w, http.StatusOK, out)
	return nil
}

// consentReceipt answers GET /api/v1/profiles/{id}/consent/receipt/{entry}:
// a receipt of one ledger entry signed with the workspace's key.
func (a *API) consentReceipt(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error {
	e, err := a.deps.Ledger.ConsentEntry(r.Context(), tok.WorkspaceID, cdp.ProfileID(r.PathValue("id")), cdp.ConsentEntryID(r.PathValue("entry")))
	if err != nil {
		return err
	}
	p, err := a.deps.Consent.Purpose(r.Context(), tok.WorkspaceID, e.Purpose)
	if err != nil {
		return err
	}
	signed, err := a.deps.Receipts.Issue(r.Context(), e, p)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"receipt": signed.Receipt, "jws": signed.JWS, "key_id": signed.KeyID,
		"keys_url": "/.well-known/custos/jwks.json"})
	return nil
}

// serveJWKS answers GET /.well-known/custos/jwks.json: the public keys that
// verify receipts. It needs no token.
func (a *API) serveJWKS(w http.ResponseWriter, r *http.Request) {
	keys, err := a.deps.Receipts.PublicKeys(r.Context())
	if err != nil {
		httpjson.Error(r.Context(), a.cfg.Logger, w, err)
		return
	}
	if keys == nil {
		keys = []signing.JWK{}
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"keys": keys})
}
