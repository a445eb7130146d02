package opendsr

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/custos-cdp/custos/internal/cdp"
)

// APIVersion is the OpenDSR version this package speaks, sent in discovery,
// requests and statuses.
const APIVersion = "2.0"

// The regulations a request can be made under.
const (
	RegulationGDPR = "gdpr"
	RegulationCCPA = "ccpa"
)

// The subject request types.
const (
	RequestAccess      = "access"
	RequestPortability = "portability"
	RequestErasure     = "erasure"
)

// The request statuses: pending -> in_progress -> completed, or cancelled
// while pending.
const (
	StatusPending    = "pending"
	StatusInProgress = "in_progress"
	StatusCompleted  = "completed"
	StatusCancelled  = "cancelled"
)

// Regulations, RequestTypes and Statuses list the values the protocol
// knows. They are shared: do not modify them.
var (
	Regulations  = []string{RegulationGDPR, RegulationCCPA}
	RequestTypes = []string{RequestAccess, RequestPortability, RequestErasure}
	Statuses     = []string{StatusPending, StatusInProgress, StatusCompleted, StatusCancelled}
)

// Limits a request must respect.
const (
	MaxIdentities     = 100
	MaxCallbackURLs   = 10
	MaxCallbackURLLen = 2048
	// MaxFutureSkew is how far in the future a submitted_time may be, to
	// allow for clocks that disagree.
	MaxFutureSkew = 24 * time.Hour
)

// earliestSubmitted is the earliest submitted_time accepted: the day the
// GDPR began to apply. No request under either regulation predates it, and
// the bound keeps absurd dates (year 0) out of stores and JSON encoders.
var earliestSubmitted = time.Date(2018, time.May, 25, 0, 0, 0, 0, time.UTC)

// Request is an OpenDSR request, as a controller sends it. Identity values
// are personal data; the type logs without them.
type Request struct {
	APIVersion         string            `json:"api_version,omitempty"`
	Regulation         string            `json:"regulation"`
	SubjectRequestID   string            `json:"subject_request_id"`
	SubjectRequestType string            `json:"subject_request_type"`
	SubmittedTime      time.Time         `json:"submitted_time"`
	SubjectIdentities  []SubjectIdentity `json:"subject_identities"`
	StatusCallbackURLs []string          `json:"status_callback_urls,omitempty"`
	Extensions         json.RawMessage   `json:"extensions,omitempty"`
}

// LogValue logs what a request is without the identities it names.
func (r Request) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("subject_request_id", r.SubjectRequestID),
		slog.String("regulation", r.Regulation),
		slog.String("type", r.SubjectRequestType),
		slog.Int("identities", len(r.SubjectIdentities)),
	)
}

// SubjectIdentity is one identity a request names. IdentityValue is personal
// data: String and LogValue never show it.
type SubjectIdentity struct {
	IdentityType   string `json:"identity_type"`
	IdentityValue  string `json:"identity_value"`
	IdentityFormat string `json:"identity_format"`
}

// String is safe to print: it never shows the value.
func (s SubjectIdentity) String() string {
	return s.IdentityType + ":" + s.IdentityFormat + ":[redacted]"
}

// GoString keeps %#v from printing the value.
func (s SubjectIdentity) GoString() string { return "opendsr.SubjectIdentity{" + s.String() + "}" }

// LogValue keeps the value out of logs.
func (s SubjectIdentity) LogValue() slog.Value {
	return slog.GroupValue(slog.String("type", s.IdentityType), slog.String("format", s.IdentityFormat),
		slog.String("value", "[redacted]"))
}

// Receipt answers a well-formed request (201).
type Receipt struct {
	ControllerID           string    `json:"controller_id"`
	ExpectedCompletionTime time.Time `json:"expected_completion_time"`
	ReceivedTime           time.Time `json:"received_time"`
	EncodedRequest         string    `json:"encoded_request"`
	SubjectRequestID       string    `json:"subject_request_id"`
}

// Status is a request's state, answered on GET and posted to callbacks.
// ResultsURL and ResultsCount are set once an access or portability request
// completes; StatusCallbackURL only in a callback, naming where it was sent.
type Status struct {
	ControllerID           string    `json:"controller_id"`
	ExpectedCompletionTime time.Time `json:"expected_completion_time"`
	SubjectRequestID       string    `json:"subject_request_id"`
	RequestStatus          string    `json:"request_status"`
	APIVersion             string    `json:"api_version"`
	ResultsURL             string    `json:"results_url,omitempty"`
	ResultsCount           *int      `json:"results_count,omitempty"`
	StatusCallbackURL      string    `json:"status_callback_url,omitempty"`
}

// Discovery describes what a processor supports.
type Discovery struct {
	APIVersion                   string            `json:"api_version"`
	SupportedIdentities          []IdentitySupport `json:"supported_identities"`
	SupportedSubjectRequestTypes []string          `json:"supported_subject_request_types"`
	ProcessorCertificate         string            `json:"processor_certificate"`
}

// IdentitySupport is one identity type and format a processor takes.
type IdentitySupport struct {
	IdentityType   string `json:"identity_type"`
	IdentityFormat string `json:"identity_format"`
}

// ErrorBody is the OpenDSR error object.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail carries the HTTP status, a summary and the problems found.
type ErrorDetail struct {
	Code    int         `json:"code"`
	Message string      `json:"message"`
	Errors  []ErrorItem `json:"errors,omitempty"`
}

// ErrorItem is one problem. Reason is a stable machine-readable code.
type ErrorItem struct {
	Domain  string `json:"domain"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// The reasons a request is refused, as ErrorItem.Reason.
const (
	ReasonMissingField          = "missing_field"
	ReasonInvalidUUID           = "invalid_uuid"
	ReasonInvalidRegulation     = "invalid_regulation"
	ReasonInvalidType           = "invalid_type"
	ReasonInvalidTime           = "invalid_time"
	ReasonInvalidIdentityType   = "invalid_identity_type"
	ReasonInvalidIdentityFormat = "invalid_identity_format"
	ReasonInvalidIdentityValue  = "invalid_identity_value"
	ReasonTooManyIdentities     = "too_many_identities"
	ReasonInvalidCallbackURL    = "invalid_callback_url"
	ReasonInvalidJSON           = "invalid_json"
)

// ValidationDomain is the domain of every validation problem.
const ValidationDomain = "Validation"

// ValidationError lists every problem found in a request. Messages name
// fields, never their content, so the error is safe to show and log.
type ValidationError struct {
	Problems []ErrorItem
}

func (e *ValidationError) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.Message
	}
	return "invalid OpenDSR request: " + strings.Join(msgs, "; ")
}

// Unwrap makes a ValidationError a cdp Invalid error too, so a caller that
// only knows the domain error maps it to 400. Its code is the reason of the
// only problem, or "invalid_request" when there are several.
func (e *ValidationError) Unwrap() error {
	code := "invalid_request"
	if len(e.Problems) == 1 {
		code = e.Problems[0].Reason
	}
	return cdp.Reason(cdp.Invalid, code, e.summary())
}

// Body is the OpenDSR error object for a 400 answer.
func (e *ValidationError) Body() ErrorBody {
	return ErrorBody{Error: ErrorDetail{Code: 400, Message: e.summary(), Errors: slices.Clone(e.Problems)}}
}

func (e *ValidationError) summary() string {
	switch len(e.Problems) {
	case 0:
		return "invalid request"
	case 1:
		return e.Problems[0].Message
	}
	return fmt.Sprintf("the request has %d problems", len(e.Problems))
}

// problems collects what is wrong with a request.
type problems []ErrorItem

func (p *problems) add(reason, format string, args ...any) {
	*p = append(*p, ErrorItem{Domain: ValidationDomain, Reason: reason, Message: fmt.Sprintf(format, args...)})
}

// ParseRequest decodes and validates a request body received at now.
//
// Unknown top-level fields are allowed, for forward compatibility; every
// required field must be present and well-formed: regulation gdpr or ccpa;
// subject_request_id a lower-case UUID v4; subject_request_type access,
// portability or erasure; submitted_time RFC 3339, not before 2018-05-25
// (when the GDPR began to apply) and not more than MaxFutureSkew after now; 1 to
// MaxIdentities identities of a known type and format (raw when empty),
// hashed values lower-case hex of the hash's length, raw values non-empty,
// not placeholders ("null", "unknown"...), free of control characters and at
// most cdp.MaxIdentityValueLen bytes before and after normalisation; at most
// MaxCallbackURLs absolute http or https callback URLs without credentials,
// each at most MaxCallbackURLLen bytes; extensions, when present, an object.
// Whether a callback address may be called is the caller's check.
//
// The returned request has submitted_time in UTC, every identity_format set,
// and duplicate callback URLs removed. On failure the error is a
// *ValidationError listing every problem found; its messages name fields and
// never echo input content.
func ParseRequest(body []byte, now time.Time) (Request, error) {
	var p problems
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil || top == nil {
		p.add(ReasonInvalidJSON, "the body must be a JSON object")
		return Request{}, &ValidationError{Problems: p}
	}
	var r Request

	if s, ok := requiredString(&p, top, "regulation", ReasonInvalidRegulation); ok {
		if !slices.Contains(Regulations, s) {
			p.add(ReasonInvalidRegulation, "regulation must be one of gdpr, ccpa")
		}
		r.Regulation = s
	}
	if s, ok := requiredString(&p, top, "subject_request_id", ReasonInvalidUUID); ok {
		if !isUUIDv4(s) {
			p.add(ReasonInvalidUUID, "subject_request_id must be a lower-case UUID v4")
		}
		r.SubjectRequestID = s
	}
	if s, ok := requiredString(&p, top, "subject_request_type", ReasonInvalidType); ok {
		if !slices.Contains(RequestTypes, s) {
			p.add(ReasonInvalidType, "subject_request_type must be one of access, portability, erasure")
		}
		r.SubjectRequestType = s
	}
	if s, ok := requiredString(&p, top, "submitted_time", ReasonInvalidTime); ok {
		r.SubmittedTime = parseSubmitted(&p, s, now)
	}
	r.SubjectIdentities = parseIdentities(&p, top["subject_identities"])
	r.StatusCallbackURLs = parseCallbackURLs(&p, top["status_callback_urls"])

	if raw, present := top["api_version"]; present && !isNull(raw) {
		if err := json.Unmarshal(raw, &r.APIVersion); err != nil {
			p.add(ReasonInvalidJSON, "api_version must be a string")
		}
	}
	if raw, present := top["extensions"]; present && !isNull(raw) {
		if raw = bytes.TrimSpace(raw); raw[0] != '{' {
			p.add(ReasonInvalidJSON, "extensions must be an object keyed by processor domain")
		} else {
			r.Extensions = slices.Clone(raw)
		}
	}

	if len(p) > 0 {
		return Request{}, &ValidationError{Problems: p}
	}
	return r, nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// requiredString reads a required string field; a missing or null field is
// missing_field, any other JSON type is wrongType.
func requiredString(p *problems, obj map[string]json.RawMessage, field, wrongType string) (string, bool) {
	return stringField(p, obj, field, field, wrongType)
}

// stringField is requiredString for a field whose name in messages (path)
// differs from its key.
func stringField(p *problems, obj map[string]json.RawMessage, key, path, wrongType string) (string, bool) {
	raw, present := obj[key]
	if !present || isNull(raw) {
		p.add(ReasonMissingField, "%s is required", path)
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		p.add(wrongType, "%s must be a string", path)
		return "", false
	}
	return s, true
}

func parseSubmitted(p *problems, s string, now time.Time) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	switch {
	case err != nil:
		p.add(ReasonInvalidTime, "submitted_time must be an RFC 3339 date-time")
	case t.Before(earliestSubmitted):
		p.add(ReasonInvalidTime, "submitted_time is before 2018-05-25, when the GDPR began to apply")
	case t.After(now.Add(MaxFutureSkew)):
		p.add(ReasonInvalidTime, "submitted_time is in the future")
	default:
		return t.UTC()
	}
	return time.Time{}
}

func parseIdentities(p *problems, raw json.RawMessage) []SubjectIdentity {
	if raw == nil || isNull(raw) {
		p.add(ReasonMissingField, "subject_identities is required")
		return nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		p.add(ReasonInvalidJSON, "subject_identities must be an array of identity objects")
		return nil
	}
	switch {
	case len(items) == 0:
		p.add(ReasonMissingField, "subject_identities must name at least one identity")
		return nil
	case len(items) > MaxIdentities:
		// The identities are not examined: the request is refused whatever they hold.
		p.add(ReasonTooManyIdentities, "subject_identities names more than %d identities", MaxIdentities)
		return nil
	}
	out := make([]SubjectIdentity, 0, len(items))
	for i, item := range items {
		path := fmt.Sprintf("subject_identities[%d]", i)
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(item, &obj); err != nil || obj == nil {
			p.add(ReasonInvalidJSON, "%s must be an object", path)
			continue
		}
		out = append(out, parseIdentity(p, obj, path))
	}
	return out
}

func parseIdentity(p *problems, obj map[string]json.RawMessage, path string) SubjectIdentity {
	var id SubjectIdentity
	t, typeOK := stringField(p, obj, "identity_type", path+".identity_type", ReasonInvalidIdentityType)
	var custos cdp.IdentityType
	if typeOK {
		if custos, typeOK = CustosType(t); !typeOK {
			p.add(ReasonInvalidIdentityType, "%s.identity_type is not a supported identity type", path)
		}
		id.IdentityType = t
	}

	format, formatOK := FormatRaw, true
	if raw, present := obj["identity_format"]; present && !isNull(raw) {
		if err := json.Unmarshal(raw, &format); err != nil {
			p.add(ReasonInvalidIdentityFormat, "%s.identity_format must be a string", path)
			formatOK = false
		} else if format == "" {
			format = FormatRaw
		} else if !slices.Contains(IdentityFormats, format) {
			p.add(ReasonInvalidIdentityFormat, "%s.identity_format must be one of raw, sha1, md5, sha256", path)
			formatOK = false
		}
	}
	id.IdentityFormat = format

	value, valueOK := stringField(p, obj, "identity_value", path+".identity_value", ReasonInvalidIdentityValue)
	if !valueOK {
		return id
	}
	id.IdentityValue = value
	if !formatOK {
		return id
	}
	if n := hexLen[format]; n > 0 {
		if len(value) != n || !isLowerHex(value) {
			p.add(ReasonInvalidIdentityValue, "%s.identity_value must be %d lower-case hex digits for %s", path, n, format)
		}
		return id
	}
	if len(value) > cdp.MaxIdentityValueLen {
		p.add(ReasonInvalidIdentityValue, "%s.identity_value is longer than %d bytes", path, cdp.MaxIdentityValueLen)
		return id
	}
	if strings.IndexFunc(value, unicode.IsControl) >= 0 {
		p.add(ReasonInvalidIdentityValue, "%s.identity_value contains control characters", path)
		return id
	}
	if cdp.IsJunkIdentityValue(value) {
		// A placeholder would match whatever else was stored under it, that is other people.
		p.add(ReasonInvalidIdentityValue, "%s.identity_value is empty or a placeholder", path)
		return id
	}
	if typeOK {
		if _, err := cdp.NewIdentity(custos, value); err != nil {
			p.add(ReasonInvalidIdentityValue, "%s.identity_value is empty or too long once normalised", path)
		}
	}
	return id
}

func parseCallbackURLs(p *problems, raw json.RawMessage) []string {
	if raw == nil || isNull(raw) {
		return nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		p.add(ReasonInvalidCallbackURL, "status_callback_urls must be an array of URLs")
		return nil
	}
	if len(items) > MaxCallbackURLs {
		p.add(ReasonInvalidCallbackURL, "status_callback_urls names more than %d URLs", MaxCallbackURLs)
		return nil
	}
	var out []string
	for i, item := range items {
		path := fmt.Sprintf("status_callback_urls[%d]", i)
		var s string
		if err := json.Unmarshal(item, &s); err != nil {
			p.add(ReasonInvalidCallbackURL, "%s must be a string", path)
			continue
		}
		if msg := checkCallbackURL(s); msg != "" {
			p.add(ReasonInvalidCallbackURL, "%s %s", path, msg)
			continue
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// checkCallbackURL says what is wrong with a callback URL, or "".
func checkCallbackURL(s string) string {
	if len(s) > MaxCallbackURLLen {
		return fmt.Sprintf("is longer than %d bytes", MaxCallbackURLLen)
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "is not a URL"
	case u.Scheme != "https" && u.Scheme != "http":
		return "must be an absolute http or https URL"
	case u.Opaque != "" || u.Hostname() == "":
		return "must be an absolute http or https URL with a host"
	case u.User != nil:
		return "must not carry credentials"
	}
	return ""
}

// isUUIDv4 reports whether s is a lower-case RFC 9562 UUID of version 4.
func isUUIDv4(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		case 14:
			if c != '4' {
				return false
			}
		case 19:
			if c != '8' && c != '9' && c != 'a' && c != 'b' {
				return false
			}
		default:
			if !isLowerHexDigit(c) {
				return false
			}
		}
	}
	return true
}

func isLowerHexDigit(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isLowerHexDigit(s[i]) {
			return false
		}
	}
	return true
}

// Fingerprint is a stable digest (SHA-256, hex) of a request's content: its
// regulation, type, id, submitted time (as an instant), identities
// (normalised, in any order) and callback URLs (in any order). Two bodies
// with the same fingerprint are the same request resent; the same id with a
// different fingerprint is a different request. The API version and
// extensions do not count.
func Fingerprint(r Request) string {
	h := sha256.New()
	field := func(s string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	field("opendsr.Fingerprint/1")
	field(r.Regulation)
	field(r.SubjectRequestType)
	field(r.SubjectRequestID)
	field(r.SubmittedTime.UTC().Format(time.RFC3339Nano))

	type ident struct{ typ, format, value string }
	ids := make([]ident, len(r.SubjectIdentities))
	for i, id := range r.SubjectIdentities {
		format := id.IdentityFormat
		if format == "" {
			format = FormatRaw
		}
		value := strings.TrimSpace(id.IdentityValue)
		if t, ok := CustosType(id.IdentityType); ok {
			value = Normalised(t, format, id.IdentityValue)
		}
		ids[i] = ident{id.IdentityType, format, value}
	}
	slices.SortFunc(ids, func(a, b ident) int {
		return cmp.Or(strings.Compare(a.typ, b.typ), strings.Compare(a.format, b.format), strings.Compare(a.value, b.value))
	})
	field(fmt.Sprint(len(ids)))
	for _, id := range ids {
		field(id.typ)
		field(id.format)
		field(id.value)
	}

	urls := slices.Clone(r.StatusCallbackURLs)
	slices.Sort(urls)
	field(fmt.Sprint(len(urls)))
	for _, u := range urls {
		field(u)
	}
	return hex.EncodeToString(h.Sum(nil))
}
