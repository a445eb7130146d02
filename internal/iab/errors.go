package iab

// Error is a malformed string. Reason is a stable code; Detail names the
// field, never the input.
type Error struct {
	Reason string // too_long, invalid_base64, truncated, unsupported_version, invalid_field, invalid_segment, section_mismatch, invalid_header
	Detail string
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return "iab: " + e.Reason
	}
	return "iab: " + e.Reason + ": " + e.Detail
}

// MaxLen bounds the strings this package reads.
const MaxLen = 16 << 10
