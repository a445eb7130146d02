package ingest

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/jsonscan"
)

// SegmentRequest is a decoded request of the Segment tracking API. WriteKey
// is the key the body carried, if any. Events have no workspace, source,
// GPC flag or connection IP yet: the handler adds those after
// authentication.
type SegmentRequest struct {
	WriteKey string
	Events   []cdp.Event
	Rejected []Rejection
	pos      []eventPos // where each event came from in the request
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
	if jsonscan.FirstByte(body) != '{' {
		return SegmentRequest{}, notObject(body, codeInvalidJSON, "body must be a JSON object")
	}
	var m segmentMessage
	ok, fieldErr := m.read(body)
	if !ok {
		return SegmentRequest{}, reject(codeInvalidJSON, "body is not valid JSON")
	}
	if fieldErr != nil {
		return SegmentRequest{WriteKey: m.WriteKey.s}, fieldErr
	}
	req := SegmentRequest{WriteKey: m.WriteKey.s}
	ev, perr := m.event(endpoint, segmentDefaults{}, receivedAt)
	if perr != nil {
		return req, perr
	}
	req.Events = []cdp.Event{ev}
	req.pos = []eventPos{{index: intp(0)}}
	return req, nil
}

// segmentBatch is the body of /v1/batch. Its integrations and messageId
// are tolerated and not used.
type segmentBatch struct {
	msgs     [][]byte // the raw messages, aliasing the body
	count    int      // messages in the batch, also past the limit
	isArray  bool     // batch was present and an array
	context  []byte
	sentAt   wireTime
	writeKey lenientString
}

// read splits body into its fields, keeping at most max+1 messages (enough
// to know there are too many).
func (b *segmentBatch) read(body []byte, max int) bool {
	return jsonscan.EachMember(body, func(key, v []byte) {
		switch string(jsonscan.Key(key)) {
		case "batch":
			b.msgs, b.count, b.isArray = b.msgs[:0], 0, v[0] == '['
			if b.isArray {
				jsonscan.EachElement(v, func(m []byte) {
					if b.count++; b.count <= max+1 {
						b.msgs = append(b.msgs, m)
					}
				})
			}
		case "context":
			b.context = v
		case "sentAt":
			b.sentAt = timeValue(v)
		case "writeKey":
			b.writeKey = lenientValue(v)
		}
	})
}

func decodeSegmentBatch(body []byte, lim Limits, receivedAt time.Time) (SegmentRequest, error) {
	if len(body) > lim.SegmentMaxBatchBytes {
		return SegmentRequest{}, cdp.Reason(cdp.TooLarge, codeBodyTooLarge, "body larger than the limit per batch")
	}
	if jsonscan.FirstByte(body) != '{' {
		return SegmentRequest{}, notObject(body, codeInvalidBatch, "body must be a JSON object with a batch array")
	}
	var b segmentBatch
	if !b.read(body, lim.SegmentMaxBatchMessages) {
		return SegmentRequest{}, reject(codeInvalidJSON, "body is not valid JSON")
	}
	req := SegmentRequest{WriteKey: b.writeKey.s}
	if !b.isArray {
		return req, reject(codeInvalidBatch, "batch must be an array of messages")
	}
	if b.count > lim.SegmentMaxBatchMessages {
		return req, cdp.Reason(cdp.TooLarge, codeTooManyMessages, "more messages than the limit per batch")
	}
	if b.sentAt.bad {
		return req, reject(codeInvalidTimestamp, "sentAt must be an RFC 3339 time")
	}
	defaults := segmentDefaults{sentAt: b.sentAt.t}
	if !isNull(b.context) {
		if jsonscan.FirstByte(b.context) != '{' {
			return req, reject(codeInvalidBatch, "context must be a JSON object")
		}
		ctx, err := parseSegmentContext(b.context)
		if err != nil {
			return req, err
		}
		defaults.ctx = ctx
	}

	msgs := b.msgs
	req.Events = make([]cdp.Event, 0, len(msgs))
	for i, raw := range msgs {
		ev, err := decodeBatchMessage(raw, defaults, lim, receivedAt)
		if err != nil {
			req.Rejected = append(req.Rejected, rejection(i, err))
			continue
		}
		req.Events = append(req.Events, ev)
		req.pos = append(req.pos, eventPos{index: intp(i)})
	}
	return req, nil
}

func decodeBatchMessage(raw []byte, d segmentDefaults, lim Limits, receivedAt time.Time) (cdp.Event, *cdp.Error) {
	if len(raw) > lim.SegmentMaxMessageBytes {
		return cdp.Event{}, cdp.Reason(cdp.TooLarge, codeMessageTooLarge, "message larger than the limit per message")
	}
	if jsonscan.FirstByte(raw) != '{' {
		return cdp.Event{}, reject(codeInvalidMessage, "message must be a JSON object")
	}
	var m segmentMessage
	if _, err := m.read(raw); err != nil {
		return cdp.Event{}, err
	}
	typ := cdp.EventType(strings.ToLower(m.Type.s))
	if m.Type.bad || !typ.Valid() {
		return cdp.Event{}, reject(codeInvalidType, "type must be one of identify, track, page, screen, group, alias")
	}
	return m.event(typ, d, receivedAt)
}

// notObject explains why a body that does not start with '{' is refused.
func notObject(body []byte, code, message string) *cdp.Error {
	if !jsonscan.Valid(body) {
		return reject(codeInvalidJSON, "body is not valid JSON")
	}
	return reject(code, message)
}

// segmentMessage is one message of the tracking spec, of any type. The
// object fields alias the request body until event copies what it keeps.
type segmentMessage struct {
	Type, Event, Name, WriteKey                         lenientString
	MessageID, UserID, AnonymousID, PreviousID, GroupID string
	Timestamp, OriginalTimestamp, SentAt                wireTime
	Traits, Properties, Context, Integrations           []byte
}

// read fills m from the JSON object data. ok is false when data is not
// valid JSON; err is the first field of a type no client may send.
func (m *segmentMessage) read(data []byte) (ok bool, err *cdp.Error) {
	flex := func(dst *string, v []byte, field string) {
		s, isFlex := flexValue(v)
		if !isFlex {
			err = reject(codeInvalidField, field+" must be a string or a number")
		}
		*dst = s
	}
	ok = jsonscan.EachMember(data, func(key, v []byte) {
		if err != nil {
			return
		}
		switch string(jsonscan.Key(key)) {
		case "type":
			m.Type = lenientValue(v)
		case "messageId":
			flex(&m.MessageID, v, "messageId")
		case "userId":
			flex(&m.UserID, v, "userId")
		case "anonymousId":
			flex(&m.AnonymousID, v, "anonymousId")
		case "previousId":
			flex(&m.PreviousID, v, "previousId")
		case "groupId":
			flex(&m.GroupID, v, "groupId")
		case "event":
			m.Event = lenientValue(v)
		case "name":
			m.Name = lenientValue(v)
		case "writeKey":
			m.WriteKey = lenientValue(v)
		case "timestamp":
			m.Timestamp = timeValue(v)
		case "originalTimestamp":
			m.OriginalTimestamp = timeValue(v)
		case "sentAt":
			m.SentAt = timeValue(v)
		case "traits":
			m.Traits = v
		case "properties":
			m.Properties = v
		case "context":
			m.Context = v
		case "integrations":
			m.Integrations = v
		}
	})
	return ok, err
}

// segmentDefaults are the batch-level values a message without its own
// inherits.
type segmentDefaults struct {
	ctx    *segmentContextInfo
	sentAt time.Time
}

func (m *segmentMessage) event(typ cdp.EventType, d segmentDefaults, receivedAt time.Time) (cdp.Event, *cdp.Error) {
	ev := cdp.Event{Format: cdp.FormatSegment, Type: typ, ReceivedAt: receivedAt}
	integrations, err := objectField(m.Integrations, "integrations")
	if err != nil {
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
	ev.MessageID = m.MessageID
	if ev.MessageID == "" {
		ev.MessageID = newMessageID()
	}

	ids := make(identities, 0, 4)
	ids.add(cdp.UserID, m.UserID)
	ids.add(cdp.AnonymousID, m.AnonymousID)
	if typ == cdp.Identify && traits != nil {
		if err := addTraitIdentities(&ids, traits, "traits"); err != nil {
			return cdp.Event{}, err
		}
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

	// What the event keeps is copied: the body's buffer is reused.
	ev.Integrations = bytes.Clone(integrations)
	switch typ {
	case cdp.Identify:
		ev.Traits = bytes.Clone(traits)
	case cdp.Track:
		if m.Event.bad || strings.TrimSpace(m.Event.s) == "" {
			return cdp.Event{}, reject(codeMissingEvent, "track needs a non-empty event name")
		}
		ev.Name, ev.Properties = m.Event.s, bytes.Clone(props)
	case cdp.Page, cdp.Screen:
		if m.Name.bad {
			return cdp.Event{}, reject(codeInvalidField, "name must be a string")
		}
		ev.Name, ev.Properties = m.Name.s, bytes.Clone(props)
	case cdp.Group:
		g := strings.TrimSpace(m.GroupID)
		if g == "" {
			return cdp.Event{}, reject(codeMissingGroupID, "group needs a groupId")
		}
		if len(g) > cdp.MaxIdentityValueLen {
			return cdp.Event{}, reject(codeInvalidField, "groupId longer than 1024 bytes")
		}
		ev.GroupID, ev.Traits = g, bytes.Clone(traits)
	case cdp.Alias:
		if !hasUser {
			return cdp.Event{}, reject(codeMissingIdentity, "alias needs a userId")
		}
		p := strings.TrimSpace(m.PreviousID)
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
	ev.ClientTime = ev.OriginalTimestamp
	if ev.ClientTime.IsZero() {
		ev.ClientTime = m.Timestamp.t
	}
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

// addTraitIdentities adds the e-mail and phone of a traits object; field
// names it in errors.
func addTraitIdentities(ids *identities, traits []byte, field string) *cdp.Error {
	if isNull(traits) {
		return nil
	}
	if jsonscan.FirstByte(traits) != '{' {
		return reject(codeInvalidField, field+" must be a JSON object")
	}
	var email, phone string
	var err *cdp.Error
	jsonscan.EachMember(traits, func(key, v []byte) {
		var dst *string
		switch string(jsonscan.Key(key)) {
		case "email":
			dst = &email
		case "phone":
			dst = &phone
		default:
			return
		}
		s, ok := flexValue(v)
		if !ok && err == nil {
			err = reject(codeInvalidField, field+"."+string(jsonscan.Key(key))+" must be a string or a number")
		}
		*dst = s
	})
	if err != nil {
		return err
	}
	ids.add(cdp.Email, email)
	ids.add(cdp.Phone, phone)
	return nil
}

// segmentContextInfo is a context read once, so that a batch-level context
// is not parsed again for every message that inherits it.
type segmentContextInfo struct {
	raw     json.RawMessage
	ip      string
	ids     identities
	consent []cdp.ConsentSignal
}

// parseSegmentContext reads the parts of a context the gateway acts on:
// the client's IP, identities in traits, externalIds and device, and
// consent. The whole object is kept as sent.
func parseSegmentContext(raw []byte) (*segmentContextInfo, *cdp.Error) {
	var ip lenientString
	var traits, externalIDs, device, consent, consentManagement []byte
	jsonscan.EachMember(raw, func(key, v []byte) {
		switch string(jsonscan.Key(key)) {
		case "ip":
			ip = lenientValue(v)
		case "traits":
			traits = v
		case "externalIds":
			externalIDs = v
		case "device":
			device = v
		case "consent":
			consent = v
		case "consentManagement":
			consentManagement = v
		}
	})
	info := &segmentContextInfo{raw: bytes.Clone(raw), ip: clientIP(ip.s)}
	if err := addTraitIdentities(&info.ids, traits, "context.traits"); err != nil {
		return nil, err
	}
	if err := addExternalIDs(&info.ids, externalIDs); err != nil {
		return nil, err
	}
	if err := addDeviceIDs(&info.ids, device); err != nil {
		return nil, err
	}
	signals, err := segmentConsentSignals(consent, consentManagement)
	if err != nil {
		return nil, err
	}
	// Events that inherit a batch context share its signals; a full slice
	// makes an append by a later stage copy instead of writing into them.
	info.consent = slices.Clip(signals)
	return info, nil
}

// addExternalIDs reads context.externalIds, [{id, type, collection,
// encoding}], into custom identities named by type. Entries whose type
// cdp does not accept are dropped like junk values.
func addExternalIDs(ids *identities, raw []byte) *cdp.Error {
	if isNull(raw) {
		return nil
	}
	bad := reject(codeInvalidField, "context.externalIds must be an array of {id, type} objects")
	if jsonscan.FirstByte(raw) != '[' {
		return bad
	}
	var err *cdp.Error
	jsonscan.EachElement(raw, func(el []byte) {
		if err != nil || isNull(el) {
			return
		}
		if el[0] != '{' {
			err = bad
			return
		}
		var id string
		var typ lenientString
		jsonscan.EachMember(el, func(key, v []byte) {
			switch string(jsonscan.Key(key)) {
			case "id":
				s, ok := flexValue(v)
				if !ok {
					err = reject(codeInvalidField, "context.externalIds.id must be a string or a number")
				}
				id = s
			case "type":
				typ = lenientValue(v)
			}
		})
		if err == nil && !typ.bad && typ.s != "" {
			ids.add(cdp.CustomIdentity(typ.s), id)
		}
	})
	return err
}

// addDeviceIDs reads context.device. Its id is the vendor id on iOS and
// the Android id on Android; advertisingId is the IDFA or AAID.
func addDeviceIDs(ids *identities, raw []byte) *cdp.Error {
	if isNull(raw) {
		return nil
	}
	if jsonscan.FirstByte(raw) != '{' {
		return reject(codeInvalidField, "context.device must be a JSON object")
	}
	var typ lenientString
	var id, adID string
	var err *cdp.Error
	jsonscan.EachMember(raw, func(key, v []byte) {
		var dst *string
		switch name := string(jsonscan.Key(key)); name {
		case "type":
			typ = lenientValue(v)
			return
		case "id":
			dst = &id
		case "advertisingId":
			dst = &adID
		default:
			return
		}
		s, ok := flexValue(v)
		if !ok && err == nil {
			err = reject(codeInvalidField, "context.device."+string(jsonscan.Key(key))+" must be a string or a number")
		}
		*dst = s
	})
	if err != nil {
		return err
	}
	switch {
	case typ.bad:
	case strings.EqualFold(typ.s, "ios"):
		ids.add(cdp.IOSIDFV, id)
		ids.add(cdp.IOSIDFA, adID)
	case strings.EqualFold(typ.s, "android"):
		ids.add(cdp.AndroidID, id)
		ids.add(cdp.AndroidAAID, adID)
	}
	return nil
}
