package ingest

import (
	"encoding/json"
	"errors"

	"github.com/custos-cdp/custos/internal/cdp"
)

// Rejection reports one message of a request that was not accepted while
// the others were. Index is the message's position in the request's batch
// (for /v2/events, the position in the batch's events). In an mParticle bulk
// request a rejected batch has Index = its position and no BatchIndex; a
// rejected event has Index = its position in the batch's events and
// BatchIndex = the batch's position. Message names the field at fault and
// never repeats payload content.
type Rejection struct {
	Index      int    `json:"index"`
	BatchIndex *int   `json:"batch_index,omitempty"`
	Code       string `json:"code"`
	Message    string `json:"message"`
}

// The reason codes of this package. They are the only values of the
// rejections metric's reason label besides codes of errors from the
// Authenticator and the Log.
const (
	codeInvalidJSON         = "invalid_json"
	codeInvalidBatch        = "invalid_batch"
	codeInvalidMessage      = "invalid_message"
	codeInvalidEvent        = "invalid_event"
	codeInvalidType         = "invalid_type"
	codeInvalidField        = "invalid_field"
	codeInvalidTimestamp    = "invalid_timestamp"
	codeInvalidConsent      = "invalid_consent"
	codeMissingIdentity     = "missing_identity"
	codeMissingEvent        = "missing_event"
	codeMissingGroupID      = "missing_group_id"
	codeMissingPreviousID   = "missing_previous_id"
	codeUnknownEventType    = "unknown_event_type"
	codeBodyTooLarge        = "body_too_large"
	codeMessageTooLarge     = "message_too_large"
	codeBatchTooLarge       = "batch_too_large"
	codeTooManyMessages     = "too_many_messages"
	codeTooManyBatches      = "too_many_batches"
	codeAllMessagesRejected = "all_messages_rejected"
	codeInvalidGzip         = "invalid_gzip"
	codeUnreadableBody      = "unreadable_body"
	codeUnsupportedType     = "unsupported_content_type"
	codeUnsupportedEncoding = "unsupported_content_encoding"
	codeInvalidWriteKey     = "invalid_write_key"
	codeInvalidCredentials  = "invalid_credentials"
)

// Message ids are deduplication keys kept for days; a client must not be
// able to make each one as large as a message.
const (
	maxMessageIDLen       = 256
	maxSourceRequestIDLen = 200 // leaves room for ":<event index>" within maxMessageIDLen
)

// reject returns the Invalid error that describes one bad message.
func reject(code, message string) *cdp.Error {
	return cdp.Reason(cdp.Invalid, code, message)
}

func rejection(index int, err *cdp.Error) Rejection {
	return Rejection{Index: index, Code: err.Code, Message: err.Message}
}

// typeError turns an encoding/json failure to decode an mParticle batch or
// event into the reason a client can act on. Field paths come from this package's struct tags, never from
// the payload, so they are safe to show.
func typeError(err error, prefix string) *cdp.Error {
	te, ok := errors.AsType[*json.UnmarshalTypeError](err)
	if !ok {
		return reject(codeInvalidJSON, "message is not valid JSON")
	}
	field := te.Field
	switch {
	case field == "":
		field = prefix
	case prefix != "":
		field = prefix + "." + field
	}
	if field == "" {
		return reject(codeInvalidMessage, "message must be a JSON object")
	}
	return reject(codeInvalidField, field+" has the wrong JSON type")
}
