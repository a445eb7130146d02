package ingest

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/jsonscan"
)

// MParticleRequest is a decoded request of the mParticle Events API v2.
// Events have no workspace, source, GPC flag or connection IP yet: the
// handler adds those after authentication.
type MParticleRequest struct {
	Events   []cdp.Event
	Rejected []Rejection
	pos      []eventPos // where each event came from in the request
}

// DecodeMParticle decodes the body of POST /v2/events (one batch) or, with
// bulk, POST /v2/bulkevents (an array of batches). It does no I/O.
//
// A request-level problem is a *cdp.Error: Invalid (invalid_json,
// invalid_batch) or TooLarge (body_too_large, too_many_batches). For
// /v2/events a problem of the batch itself (missing_identity,
// invalid_field, invalid_consent, invalid_timestamp) is also the returned
// error, since the batch is the request; in a bulk request it is a
// Rejection of that batch and the other batches are still returned. A
// problem of one event is always a Rejection.
func DecodeMParticle(body []byte, bulk bool, lim Limits, receivedAt time.Time) (MParticleRequest, error) {
	lim = lim.withDefaults()
	receivedAt = receivedAt.UTC()
	if !bulk {
		if len(body) > lim.MParticleMaxBatchBytes {
			return MParticleRequest{}, cdp.Reason(cdp.TooLarge, codeBodyTooLarge, "body larger than the limit per batch")
		}
		if jsonscan.FirstByte(body) != '{' {
			return MParticleRequest{}, notObject(body, codeInvalidBatch, "body must be a JSON batch object")
		}
		if !jsonscan.Valid(body) {
			return MParticleRequest{}, reject(codeInvalidJSON, "body is not valid JSON")
		}
		var req MParticleRequest
		if err := decodeMParticleBatch(body, nil, receivedAt, &req); err != nil {
			return MParticleRequest{}, err
		}
		return req, nil
	}

	if len(body) > lim.MParticleMaxRequestBytes {
		return MParticleRequest{}, cdp.Reason(cdp.TooLarge, codeBodyTooLarge, "body larger than the limit per request")
	}
	if jsonscan.FirstByte(body) != '[' {
		return MParticleRequest{}, notObject(body, codeInvalidBatch, "body must be a JSON array of batches")
	}
	var batches []rawMsg
	if err := json.Unmarshal(body, &batches); err != nil {
		return MParticleRequest{}, reject(codeInvalidJSON, "body is not valid JSON")
	}
	if len(batches) > lim.MParticleMaxBulkBatches {
		return MParticleRequest{}, cdp.Reason(cdp.TooLarge, codeTooManyBatches, "more batches than the limit per request")
	}
	var req MParticleRequest
	for i, raw := range batches {
		var err *cdp.Error
		switch {
		case len(raw) > lim.MParticleMaxBatchBytes:
			err = cdp.Reason(cdp.TooLarge, codeBatchTooLarge, "batch larger than the limit per batch")
		case jsonscan.FirstByte(raw) != '{':
			err = reject(codeInvalidBatch, "batch must be a JSON object")
		default:
			err = decodeMParticleBatch(raw, &i, receivedAt, &req)
		}
		if err != nil {
			req.Rejected = append(req.Rejected, rejection(i, err))
		}
	}
	return req, nil
}

// mpBatch is one mParticle batch: the events of one person.
type mpBatch struct {
	Environment           lenientString   `json:"environment"`
	SourceRequestID       flexString      `json:"source_request_id"`
	MPID                  flexString      `json:"mpid"`
	UserIdentities        json.RawMessage `json:"user_identities"`
	DeviceInfo            json.RawMessage `json:"device_info"`
	UserAttributes        json.RawMessage `json:"user_attributes"`
	DeletedUserAttributes []string        `json:"deleted_user_attributes"`
	ConsentState          json.RawMessage `json:"consent_state"`
	Events                []rawMsg        `json:"events"`
	IP                    lenientString   `json:"ip"`
	Context               json.RawMessage `json:"context"`
	Timestamp             msTime          `json:"timestamp_unixtime_ms"`
}

type mpDevice struct {
	IOSIDFV              flexString `json:"ios_idfv"`
	IOSAdvertisingID     flexString `json:"ios_advertising_id"`
	AndroidAdvertisingID flexString `json:"android_advertising_id"`
	AndroidUUID          flexString `json:"android_uuid"`
}

// mpBatchInfo is what every event of a batch shares.
type mpBatchInfo struct {
	ids         identities
	ip          string
	at          time.Time
	clientAt    time.Time // the batch's timestamp as sent; zero if none
	env         string
	requestID   string
	contextBase map[string]json.RawMessage
	receivedAt  time.Time
}

// decodeMParticleBatch appends the batch's events and event rejections to
// req. batchIndex is nil outside a bulk request.
func decodeMParticleBatch(raw []byte, batchIndex *int, receivedAt time.Time, req *MParticleRequest) *cdp.Error {
	var b mpBatch
	if err := json.Unmarshal(raw, &b); err != nil {
		return typeError(err, "")
	}
	info := mpBatchInfo{env: b.Environment.s, requestID: string(b.SourceRequestID), receivedAt: receivedAt}
	if len(info.requestID) > maxSourceRequestIDLen {
		return reject(codeInvalidField, "source_request_id longer than 200 bytes")
	}
	if b.Timestamp.bad {
		return reject(codeInvalidTimestamp, "timestamp_unixtime_ms must be Unix milliseconds")
	}
	info.at, info.clientAt = b.Timestamp.t, b.Timestamp.t
	if info.at.IsZero() {
		info.at = receivedAt
	}
	userAttrs, err := objectField(b.UserAttributes, "user_attributes")
	if err != nil {
		return err
	}
	device, err := objectField(b.DeviceInfo, "device_info")
	if err != nil {
		return err
	}
	batchCtx, err := objectField(b.Context, "context")
	if err != nil {
		return err
	}
	if info.ids, err = mParticleIdentities(&b, device); err != nil {
		return err
	}
	if len(info.ids) == 0 {
		return reject(codeMissingIdentity, "batch needs an mpid, a user identity or a device id")
	}
	consent, err := mParticleConsentSignals(b.ConsentState)
	if err != nil {
		return err
	}
	info.ip = clientIP(b.IP.s)
	info.contextBase = map[string]json.RawMessage{}
	if batchCtx != nil {
		// Valid JSON object by now, so members cannot fail.
		_ = members(batchCtx, func(k string, v json.RawMessage) error {
			info.contextBase[k] = v
			return nil
		})
	}
	if device != nil {
		info.contextBase["device"] = device
	}

	var deleted []string
	for _, name := range b.DeletedUserAttributes {
		if name != "" {
			deleted = append(deleted, name)
		}
	}
	if !emptyObject(userAttrs) || len(deleted) > 0 || len(consent) > 0 {
		ev := info.event(cdp.Identify)
		ev.MessageID = newMessageID()
		if info.requestID != "" {
			ev.MessageID = info.requestID + ":identify"
		}
		ev.Traits, ev.DeletedTraits, ev.Consent = userAttrs, deleted, consent
		ev.Context = info.context(mpContext{})
		req.Events = append(req.Events, ev)
		req.pos = append(req.pos, eventPos{batch: batchIndex})
	}

	for i, raw := range b.Events {
		ev, err := info.decodeEvent(i, raw)
		if err != nil {
			r := rejection(i, err)
			r.BatchIndex = batchIndex
			req.Rejected = append(req.Rejected, r)
			continue
		}
		req.Events = append(req.Events, ev)
		req.pos = append(req.pos, eventPos{index: intp(i), batch: batchIndex})
	}
	return nil
}

// mParticleIdentities collects mpid, user_identities and the device ids,
// in that order.
func mParticleIdentities(b *mpBatch, device json.RawMessage) (identities, *cdp.Error) {
	ids := make(identities, 0, 4)
	ids.add(cdp.MPID, string(b.MPID))
	if !isNull(b.UserIdentities) {
		bad := reject(codeInvalidField, "user_identities must be an object of identity type to string")
		err := members(b.UserIdentities, func(key string, v json.RawMessage) error {
			var value flexString
			if err := json.Unmarshal(v, &value); err != nil {
				return bad
			}
			ids.add(userIdentityType(key), string(value))
			return nil
		})
		if err != nil {
			return nil, bad
		}
	}
	if device != nil {
		var d mpDevice
		if err := json.Unmarshal(device, &d); err != nil {
			return nil, typeError(err, "device_info")
		}
		ids.add(cdp.IOSIDFV, string(d.IOSIDFV))
		ids.add(cdp.IOSIDFA, string(d.IOSAdvertisingID))
		ids.add(cdp.AndroidAAID, string(d.AndroidAdvertisingID))
		ids.add(cdp.AndroidID, string(d.AndroidUUID))
	}
	return ids, nil
}

// userIdentityType maps an mParticle user identity key to an identity
// type. Keys without a built-in counterpart (other, other_id_2, facebook,
// ...) become custom types of the same name.
func userIdentityType(key string) cdp.IdentityType {
	switch strings.ToLower(key) {
	case "customer_id":
		return cdp.UserID
	case "email":
		return cdp.Email
	case "mobile_number":
		return cdp.Phone
	}
	return cdp.CustomIdentity(key)
}

// emptyObject reports whether raw is absent, null or {}.
func emptyObject(raw json.RawMessage) bool {
	if isNull(raw) {
		return true
	}
	return jsonscan.FirstByte(raw) == '{' && jsonscan.FirstByte(raw[1:]) == '}'
}

// mpEvent is one element of a batch's events.
type mpEvent struct {
	EventType lenientString `json:"event_type"`
	Data      mpEventData   `json:"data"`
}

type mpEventData struct {
	EventName          lenientString   `json:"event_name"`
	CustomEventType    lenientString   `json:"custom_event_type"`
	SourceMessageID    flexString      `json:"source_message_id"`
	Timestamp          msTime          `json:"timestamp_unixtime_ms"`
	CustomAttributes   json.RawMessage `json:"custom_attributes"`
	ScreenName         lenientString   `json:"screen_name"`
	ProductAction      json.RawMessage `json:"product_action"`
	PromotionAction    json.RawMessage `json:"promotion_action"`
	ProductImpressions json.RawMessage `json:"product_impressions"`
	CurrencyCode       lenientString   `json:"currency_code"`
	UserAttributeName  lenientString   `json:"user_attribute_name"`
	New                json.RawMessage `json:"new"`
	Deleted            bool            `json:"deleted"`
}

// mpEventTypes maps mParticle event types to the envelope's type and, for
// the types that carry no name of their own, a fixed event name.
var mpEventTypes = map[string]struct {
	typ  cdp.EventType
	name string
}{
	"custom_event":                 {cdp.Track, ""},
	"screen_view":                  {cdp.Screen, ""},
	"commerce_event":               {cdp.Track, "Commerce Event"},
	"session_start":                {cdp.Track, "Session Start"},
	"session_end":                  {cdp.Track, "Session End"},
	"user_attribute_change":        {cdp.Identify, ""},
	"user_identity_change":         {cdp.Identify, ""},
	"opt_out":                      {cdp.Track, "Opt Out"},
	"crash_report":                 {cdp.Track, "Crash Report"},
	"push_registration":            {cdp.Track, "Push Registration"},
	"breadcrumb":                   {cdp.Track, "Breadcrumb"},
	"application_state_transition": {cdp.Track, "Application State Transition"},
	"first_run":                    {cdp.Track, "First Run"},
	"uninstall":                    {cdp.Track, "Uninstall"},
	"media_event":                  {cdp.Track, "Media Event"},
}

func (b *mpBatchInfo) decodeEvent(index int, raw []byte) (cdp.Event, *cdp.Error) {
	if jsonscan.FirstByte(raw) != '{' {
		return cdp.Event{}, reject(codeInvalidEvent, "event must be a JSON object")
	}
	var e mpEvent
	if err := json.Unmarshal(raw, &e); err != nil {
		return cdp.Event{}, typeError(err, "")
	}
	kind, ok := mpEventTypes[e.EventType.s]
	if e.EventType.bad || !ok {
		return cdp.Event{}, reject(codeUnknownEventType, "event_type is not one of the mParticle event types")
	}
	d := &e.Data
	if d.Timestamp.bad {
		return cdp.Event{}, reject(codeInvalidTimestamp, "data.timestamp_unixtime_ms must be Unix milliseconds")
	}
	attrs, err := objectField(d.CustomAttributes, "data.custom_attributes")
	if err != nil {
		return cdp.Event{}, err
	}
	if len(d.SourceMessageID) > maxMessageIDLen {
		return cdp.Event{}, reject(codeInvalidField, "data.source_message_id longer than 256 bytes")
	}
	if d.EventName.bad || d.ScreenName.bad || d.CustomEventType.bad || d.CurrencyCode.bad || d.UserAttributeName.bad {
		return cdp.Event{}, reject(codeInvalidField, "data.event_name, screen_name, custom_event_type, currency_code and user_attribute_name must be strings")
	}

	ev := b.event(kind.typ)
	ev.Name, ev.Properties = kind.name, attrs
	switch e.EventType.s {
	case "custom_event":
		if strings.TrimSpace(d.EventName.s) == "" {
			return cdp.Event{}, reject(codeMissingEvent, "custom_event needs data.event_name")
		}
		ev.Name = d.EventName.s
	case "screen_view":
		ev.Name = firstNonEmpty(d.ScreenName.s, d.EventName.s)
	case "commerce_event":
		ev.Name = firstNonEmpty(d.EventName.s, kind.name)
		if ev.Properties, err = commerceProperties(d, attrs); err != nil {
			return cdp.Event{}, err
		}
	case "user_attribute_change":
		ev.Properties = nil
		if name := d.UserAttributeName.s; name != "" {
			if d.Deleted {
				ev.DeletedTraits = []string{name}
			} else {
				value := d.New
				if len(value) == 0 {
					value = json.RawMessage("null")
				}
				ev.Traits, _ = json.Marshal(map[string]json.RawMessage{name: value})
			}
		}
	case "user_identity_change":
		ev.Properties = nil
	}

	switch {
	case d.SourceMessageID != "":
		// The event's own id: a sender may resend it in another batch,
		// with another batch timestamp, so only its own time keys it.
		ev.MessageID = string(d.SourceMessageID)
		ev.ClientTime = time.Time{}
	case b.requestID != "":
		ev.MessageID = b.requestID + ":" + strconv.Itoa(index)
	default:
		ev.MessageID = newMessageID()
	}
	if !d.Timestamp.t.IsZero() {
		ev.Timestamp, ev.ClientTime = d.Timestamp.t, d.Timestamp.t
	}
	ev.Context = b.context(mpContext{EventType: e.EventType.s, CustomEventType: d.CustomEventType.s})
	return ev, nil
}

// firstNonEmpty returns the first non-empty string.
func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// event returns an event of type t with what the batch gives every event.
func (b *mpBatchInfo) event(t cdp.EventType) cdp.Event {
	return cdp.Event{
		Format:     cdp.FormatMParticle,
		Type:       t,
		Identities: slices.Clone(b.ids),
		IP:         b.ip,
		Timestamp:  b.at,
		ClientTime: b.clientAt,
		ReceivedAt: b.receivedAt,
	}
}

// mpContext is the "mparticle" member of an event's Context: what the
// mParticle envelope said that has no field in cdp.Event.
type mpContext struct {
	Environment     string `json:"environment,omitempty"`
	EventType       string `json:"event_type,omitempty"`
	CustomEventType string `json:"custom_event_type,omitempty"`
	SourceRequestID string `json:"source_request_id,omitempty"`
}

// context builds an event's Context: the batch context's members, the
// device_info as "device" and the mParticle envelope as "mparticle".
func (b *mpBatchInfo) context(mc mpContext) json.RawMessage {
	mc.Environment, mc.SourceRequestID = b.env, b.requestID
	m := make(map[string]json.RawMessage, len(b.contextBase)+1)
	for k, v := range b.contextBase {
		m[k] = v
	}
	m["mparticle"], _ = json.Marshal(mc)
	out, _ := json.Marshal(m)
	return out
}

// commerceProperties flattens a commerce event into track properties: the
// custom attributes plus the commerce fields, which win on a name clash.
func commerceProperties(d *mpEventData, attrs json.RawMessage) (json.RawMessage, *cdp.Error) {
	props := map[string]json.RawMessage{}
	if attrs != nil {
		_ = members(attrs, func(k string, v json.RawMessage) error {
			props[k] = v
			return nil
		})
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"product_action", d.ProductAction}, {"promotion_action", d.PromotionAction}, {"product_impressions", d.ProductImpressions}} {
		if !isNull(f.raw) {
			props[f.name] = f.raw
		}
	}
	if d.CurrencyCode.s != "" {
		props["currency_code"], _ = json.Marshal(d.CurrencyCode.s)
	}
	if len(props) == 0 {
		return nil, nil
	}
	out, err := json.Marshal(props)
	if err != nil {
		return nil, reject(codeInvalidField, "commerce event data is not valid JSON")
	}
	return out, nil
}
