package ingest

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
)

// SegmentRequest is a decoded request of the Segment tracking API. WriteKey
// is the key the body carried, if any. Events have no workspace, source,
// GPC flag or connection IP yet: the handler adds those after
// authentication.
type SegmentRequest struct {
	WriteKey string
	Events   []cdp.Event
	Rejected []Rejection
}

// DecodeSegment decodes the body of a Segment tracking API request. endpoint
// is the type of a single-message endpoint (/v1/track: cdp.Track) or "" for
// /v1/batch and /v1/import. It does no I/O.
//
// A request-level problem is a *cdp.Error: Invalid (invalid_json,
// invalid_batch, invalid_timestamp, or for a batch-level context
// invalid_field and invalid_consent) or TooLarge (body_too_large,
// message_too_large, too_many_messages). On a single-message endpoint the
// body is the message, so a problem of that message is the returned error
// (for example missing_identity); in a batch it is a Rejection and the other
// messages are still returned. WriteKey is set whenever the body could be
// read far enough, even with an error, so that a caller can authenticate
// before it answers.
func DecodeSegment(body []byte, endpoint cdp.EventType, lim Limits, receivedAt time.Time) (SegmentRequest, error) {
	lim = lim.withDefaults()
	receivedAt = receivedAt.UTC()
	if endpoint == "" {
		return decodeSegmentBatch(body, lim, receivedAt)
	}
	if !endpoint.Valid() {
		return SegmentRequest{}, reject(codeInvalidType, "unknown event type")
	}
	if len(body) > lim.SegmentMaxMessageBytes {
		return SegmentRequest{}, cdp.Reason(cdp.TooLarge, codeMessageTooLarge, "message larger than the limit per message")
	}
	if firstByte(body) != '{' {
		return SegmentRequest{}, notObject(body, codeInvalidJSON, "body must be a JSON object")
	}
	var m segmentMessage
	if err := json.Unmarshal(body, &m); err != nil {
		if isSyntaxError(err) {
			return SegmentRequest{}, reject(codeInvalidJSON, "body is not valid JSON")
		}
		return SegmentRequest{WriteKey: m.WriteKey.s}, typeError(err, "")
	}
	req := SegmentRequest{WriteKey: m.WriteKey.s}
	ev, perr := m.event(endpoint, segmentDefaults{}, receivedAt)
	if perr != nil {
		return req, perr
	}
	req.Events = []cdp.Event{ev}
	return req, nil
}

// segmentBatch is the body of /v1/batch. Its integrations and messageId
// are tolerated and not used.
type segmentBatch struct {
	Batch    *[]rawMsg       `json:"batch"`
	Context  json.RawMessage `json:"context"`
	SentAt   wireTime        `json:"sentAt"`
	WriteKey lenientString   `json:"writeKey"`
}

func decodeSegmentBatch(body []byte, lim Limits, receivedAt time.Time) (SegmentRequest, error) {
	if len(body) > lim.SegmentMaxBatchBytes {
		return SegmentRequest{}, cdp.Reason(cdp.TooLarge, codeBodyTooLarge, "body larger than the limit per batch")
	}
	if firstByte(body) != '{' {
		return SegmentRequest{}, notObject(body, codeInvalidBatch, "body must be a JSON object with a batch array")
	}
	var b segmentBatch
	if err := json.Unmarshal(body, &b); err != nil {
		if isSyntaxError(err) {
			return SegmentRequest{}, reject(codeInvalidJSON, "body is not valid JSON")
		}
		return SegmentRequest{WriteKey: b.WriteKey.s}, reject(codeInvalidBatch, "batch must be an array of messages")
	}
	req := SegmentRequest{WriteKey: b.WriteKey.s}
	if b.Batch == nil {
		return req, reject(codeInvalidBatch, "batch must be an array of messages")
	}
	msgs := *b.Batch
	if len(msgs) > lim.SegmentMaxBatchMessages {
		return req, cdp.Reason(cdp.TooLarge, codeTooManyMessages, "more messages than the limit per batch")
	}
	if b.SentAt.bad {
		return req, reject(codeInvalidTimestamp, "sentAt must be an RFC 3339 time")
	}
	defaults := segmentDefaults{sentAt: b.SentAt.t}
	if !isNull(b.Context) {
		if firstByte(b.Context) != '{' {
			return req, reject(codeInvalidBatch, "context must be a JSON object")
		}
		ctx, err := parseSegmentContext(b.Context)
		if err != nil {
			return req, err
		}
		defaults.ctx = ctx
	}

	req.Events = make([]cdp.Event, 0, len(msgs))
	for i, raw := range msgs {
		ev, err := decodeBatchMessage(raw, defaults, lim, receivedAt)
		if err != nil {
			req.Rejected = append(req.Rejected, rejection(i, err))
			continue
		}
		req.Events = append(req.Events, ev)
	}
	return req, nil
}

func decodeBatchMessage(raw []byte, d segmentDefaults, lim Limits, receivedAt time.Time) (cdp.Event, *cdp.Error) {
	if len(raw) > lim.SegmentMaxMessageBytes {
		return cdp.Event{}, cdp.Reason(cdp.TooLarge, codeMessageTooLarge, "message larger than the limit per message")
	}
	if firstByte(raw) != '{' {
		return cdp.Event{}, reject(codeInvalidMessage, "message must be a JSON object")
	}
	var m segmentMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return cdp.Event{}, typeError(err, "")
	}
	typ := cdp.EventType(strings.ToLower(m.Type.s))
	if m.Type.bad || !typ.Valid() {
		return cdp.Event{}, reject(codeInvalidType, "type must be one of identify, track, page, screen, group, alias")
	}
	return m.event(typ, d, receivedAt)
}

// notObject explains why a body that does not start with '{' is refused.
func notObject(body []byte, code, message string) *cdp.Error {
	if !json.Valid(body) {
		return reject(codeInvalidJSON, "body is not valid JSON")
	}
	return reject(code, message)
}

func isSyntaxError(err error) bool {
	_, ok := errors.AsType[*json.SyntaxError](err)
	return ok
}

// segmentMessage is one message of the tracking spec, of any type.
type segmentMessage struct {
	Type              lenientString   `json:"type"`
	MessageID         flexString      `json:"messageId"`
	UserID            flexString      `json:"userId"`
	AnonymousID       flexString      `json:"anonymousId"`
	PreviousID        flexString      `json:"previousId"`
	GroupID           flexString      `json:"groupId"`
	Event             lenientString   `json:"event"`
	Name              lenientString   `json:"name"`
	Timestamp         wireTime        `json:"timestamp"`
	OriginalTimestamp wireTime        `json:"originalTimestamp"`
	SentAt            wireTime        `json:"sentAt"`
	Traits            json.RawMessage `json:"traits"`
	Properties        json.RawMessage `json:"properties"`
	Context           json.RawMessage `json:"context"`
	Integrations      json.RawMessage `json:"integrations"`
	WriteKey          lenientString   `json:"writeKey"`
}

// segmentDefaults are the batch-level values a message without its own
// inherits.
type segmentDefaults struct {
	ctx    *segmentContextInfo
	sentAt time.Time
}

func (m *segmentMessage) event(typ cdp.EventType, d segmentDefaults, receivedAt time.Time) (cdp.Event, *cdp.Error) {
	ev := cdp.Event{Format: cdp.FormatSegment, Type: typ, ReceivedAt: receivedAt}
	var err *cdp.Error
	if ev.Integrations, err = objectField(m.Integrations, "integrations"); err != nil {
		return cdp.Event{}, err
	}
	traits, err := objectField(m.Traits, "traits")
	if err != nil {
		return cdp.Event{}, err
	}
	props, err := objectField(m.Properties, "properties")
	if err != nil {
		return cdp.Event{}, err
	}
	if _, err = objectField(m.Context, "context"); err != nil {
		return cdp.Event{}, err
	}
	if err = m.times(&ev, d.sentAt, receivedAt); err != nil {
		return cdp.Event{}, err
	}

	ctx := d.ctx
	if !isNull(m.Context) {
		if ctx, err = parseSegmentContext(m.Context); err != nil {
			return cdp.Event{}, err
		}
	}
	if ctx != nil {
		ev.Context, ev.IP, ev.Consent = ctx.raw, ctx.ip, ctx.consent
	}

	if len(m.MessageID) > maxMessageIDLen {
		return cdp.Event{}, reject(codeInvalidField, "messageId longer than 256 bytes")
	}
	ev.MessageID = string(m.MessageID)
	if ev.MessageID == "" {
		ev.MessageID = newMessageID()
	}

	ids := make(identities, 0, 4)
	ids.add(cdp.UserID, string(m.UserID))
	ids.add(cdp.AnonymousID, string(m.AnonymousID))
	if typ == cdp.Identify && traits != nil {
		var t identityTraits
		if err := json.Unmarshal(traits, &t); err != nil {
			return cdp.Event{}, typeError(err, "traits")
		}
		ids.add(cdp.Email, string(t.Email))
		ids.add(cdp.Phone, string(t.Phone))
	}
	if ctx != nil {
		for _, id := range ctx.ids {
			ids.addNormalized(id)
		}
	}
	hasUser := ids.has(cdp.UserID)
	if !hasUser && !ids.has(cdp.AnonymousID) {
		return cdp.Event{}, reject(codeMissingIdentity, "message needs a userId or an anonymousId")
	}
	ev.Identities = ids

	switch typ {
	case cdp.Identify:
		ev.Traits = traits
	case cdp.Track:
		if m.Event.bad || strings.TrimSpace(m.Event.s) == "" {
			return cdp.Event{}, reject(codeMissingEvent, "track needs a non-empty event name")
		}
		ev.Name, ev.Properties = m.Event.s, props
	case cdp.Page, cdp.Screen:
		if m.Name.bad {
			return cdp.Event{}, reject(codeInvalidField, "name must be a string")
		}
		ev.Name, ev.Properties = m.Name.s, props
	case cdp.Group:
		g := strings.TrimSpace(string(m.GroupID))
		if g == "" {
			return cdp.Event{}, reject(codeMissingGroupID, "group needs a groupId")
		}
		if len(g) > cdp.MaxIdentityValueLen {
			return cdp.Event{}, reject(codeInvalidField, "groupId longer than 1024 bytes")
		}
		ev.GroupID, ev.Traits = g, traits
	case cdp.Alias:
		if !hasUser {
			return cdp.Event{}, reject(codeMissingIdentity, "alias needs a userId")
		}
		p := strings.TrimSpace(string(m.PreviousID))
		if cdp.IsJunkIdentityValue(p) {
			return cdp.Event{}, reject(codeMissingPreviousID, "alias needs a previousId")
		}
		if len(p) > cdp.MaxIdentityValueLen {
			return cdp.Event{}, reject(codeInvalidField, "previousId longer than 1024 bytes")
		}
		ev.PreviousID = p
	}
	return ev, nil
}

// times sets the event's times. When the client sent both its own clock
// (originalTimestamp) and the moment it sent the message (sentAt), the
// difference is how long the message waited on the device, which stays
// correct even if the device clock is wrong: the event happened that long
// before the server received it. An explicit timestamp, typical of server
// libraries, is kept as given.
func (m *segmentMessage) times(ev *cdp.Event, batchSentAt, receivedAt time.Time) *cdp.Error {
	for _, f := range []struct {
		t    wireTime
		name string
	}{{m.Timestamp, "timestamp"}, {m.OriginalTimestamp, "originalTimestamp"}, {m.SentAt, "sentAt"}} {
		if f.t.bad {
			return reject(codeInvalidTimestamp, f.name+" must be an RFC 3339 time")
		}
	}
	ev.OriginalTimestamp, ev.SentAt = m.OriginalTimestamp.t, m.SentAt.t
	if ev.SentAt.IsZero() {
		ev.SentAt = batchSentAt
	}
	switch {
	case !ev.OriginalTimestamp.IsZero() && !ev.SentAt.IsZero():
		waited := ev.SentAt.Sub(ev.OriginalTimestamp) // saturates at about ±292 years
		ev.Timestamp = receivedAt.Add(-waited)
		if waited == math.MinInt64 || waited == math.MaxInt64 || !representable(ev.Timestamp) {
			return reject(codeInvalidTimestamp, "sentAt and originalTimestamp are too far apart")
		}
	case !m.Timestamp.t.IsZero():
		ev.Timestamp = m.Timestamp.t
	case !ev.OriginalTimestamp.IsZero():
		ev.Timestamp = ev.OriginalTimestamp
	default:
		ev.Timestamp = receivedAt
	}
	return nil
}

// identityTraits are the traits that name the person.
type identityTraits struct {
	Email flexString `json:"email"`
	Phone flexString `json:"phone"`
}

// segmentContext is the part of context the gateway reads; the whole object
// is kept as sent.
type segmentContext struct {
	IP                lenientString   `json:"ip"`
	Traits            *identityTraits `json:"traits"`
	ExternalIDs       []externalID    `json:"externalIds"`
	Device            *segmentDevice  `json:"device"`
	Consent           *segmentConsent `json:"consent"`
	ConsentManagement *rudderConsent  `json:"consentManagement"`
}

type externalID struct {
	ID   flexString    `json:"id"`
	Type lenientString `json:"type"`
}

type segmentDevice struct {
	Type          lenientString `json:"type"`
	ID            flexString    `json:"id"`
	AdvertisingID flexString    `json:"advertisingId"`
}

// segmentContextInfo is a context read once, so that a batch-level context
// is not parsed again for every message that inherits it.
type segmentContextInfo struct {
	raw     json.RawMessage
	ip      string
	ids     identities
	consent []cdp.ConsentSignal
}

func parseSegmentContext(raw json.RawMessage) (*segmentContextInfo, *cdp.Error) {
	var c segmentContext
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, typeError(err, "context")
	}
	info := &segmentContextInfo{raw: raw, ip: clientIP(c.IP.s)}
	if c.Traits != nil {
		info.ids.add(cdp.Email, string(c.Traits.Email))
		info.ids.add(cdp.Phone, string(c.Traits.Phone))
	}
	for _, x := range c.ExternalIDs {
		if !x.Type.bad && x.Type.s != "" {
			info.ids.add(cdp.CustomIdentity(x.Type.s), string(x.ID))
		}
	}
	if dev := c.Device; dev != nil && !dev.Type.bad {
		switch {
		case strings.EqualFold(dev.Type.s, "ios"):
			info.ids.add(cdp.IOSIDFV, string(dev.ID))
			info.ids.add(cdp.IOSIDFA, string(dev.AdvertisingID))
		case strings.EqualFold(dev.Type.s, "android"):
			info.ids.add(cdp.AndroidID, string(dev.ID))
			info.ids.add(cdp.AndroidAAID, string(dev.AdvertisingID))
		}
	}
	consent, err := segmentConsentSignals(c.Consent, c.ConsentManagement)
	if err != nil {
		return nil, err
	}
	// Events that inherit a batch context share its signals; a full slice
	// makes an append by a later stage copy instead of writing into them.
	info.consent = slices.Clip(consent)
	return info, nil
}
