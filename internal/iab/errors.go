package iab

// MaxLen is the longest string either parser reads, in bytes. Real TC and
// GPP strings are a few hundred bytes; even a TC string that spends a full
// bitfield on each of today's ~1,500 registered vendors stays under 1 KiB.
// The limit is checked before any decoding, so an attacker cannot make the
// parsers allocate or loop in proportion to an unbounded body.
const MaxLen = 16 << 10

// The reasons an *Error carries. They are stable: callers store them and
// map them to API responses, so they are never renamed.
const (
	ReasonTooLong            = "too_long"            // over MaxLen, refused before decoding
	ReasonInvalidBase64      = "invalid_base64"      // outside the unpadded base64url alphabet
	ReasonTruncated          = "truncated"           // the bits end before a required field
	ReasonUnsupportedVersion = "unsupported_version" // a version number this package does not read
	ReasonInvalidField       = "invalid_field"       // a value the specification does not allow
	ReasonInvalidSegment     = "invalid_segment"     // a TC segment or GPP subsection that cannot be there
	ReasonSectionMismatch    = "section_mismatch"    // GPP header and section strings disagree in number
	ReasonInvalidHeader      = "invalid_header"      // a GPP header that is not a GPP header
)

// Error reports a malformed consent string. Reason is one of the Reason
// constants. Detail names the field or segment at fault for logs and
// support; it never quotes the input, which may be stored or shown where
// the raw string must not be.
type Error struct {
	Reason string
	Detail string
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return "iab: " + e.Reason
	}
	return "iab: " + e.Reason + ": " + e.Detail
}

func errorf(reason, detail string) *Error {
	return &Error{Reason: reason, Detail: detail}
}

// within returns err with its detail prefixed by where it happened (a GPP
// section name), so one TC string parser serves both entry points and the
// caller still learns which section failed.
func within(err error, where string) error {
	e, ok := err.(*Error)
	if !ok {
		return err
	}
	return &Error{Reason: e.Reason, Detail: where + ": " + e.Detail}
}
