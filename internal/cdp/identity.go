package cdp

import (
	"log/slog"
	"strings"
	"unicode"
)

// IdentityType names a kind of identifier a person can be known by. The
// built-in names are stable API; custom types are "custom:<name>".
type IdentityType string

// Built-in identity types.
const (
	UserID      IdentityType = "user_id" // Segment userId, mParticle customer_id, OpenDSR controller_customer_id
	AnonymousID IdentityType = "anonymous_id"
	Email       IdentityType = "email"
	Phone       IdentityType = "phone"
	IOSIDFA     IdentityType = "ios_idfa"
	IOSIDFV     IdentityType = "ios_idfv"
	AndroidAAID IdentityType = "android_aaid"
	AndroidID   IdentityType = "android_id"
	MPID        IdentityType = "mpid"
)

// CustomPrefix starts every custom identity type.
const CustomPrefix = "custom:"

// MaxIdentityValueLen bounds an identity value; longer values are rejected.
const MaxIdentityValueLen = 1024

var builtinIdentityTypes = map[IdentityType]bool{
	UserID: true, AnonymousID: true, Email: true, Phone: true, IOSIDFA: true,
	IOSIDFV: true, AndroidAAID: true, AndroidID: true, MPID: true,
}

// CustomIdentity returns the custom identity type for name, normalised to
// lower case with spaces replaced by underscores.
func CustomIdentity(name string) IdentityType {
	name = strings.ToLower(strings.TrimSpace(name))
	name = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return '_'
		}
		return r
	}, name)
	return IdentityType(CustomPrefix + name)
}

// Valid reports whether t is a built-in type or a well-formed custom type.
func (t IdentityType) Valid() bool {
	if builtinIdentityTypes[t] {
		return true
	}
	name, ok := strings.CutPrefix(string(t), CustomPrefix)
	if !ok || name == "" || len(name) > 64 {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// Identity is one identifier of a person. Value is personal data: it logs as
// [redacted] and must never reach an error message or a metrics label.
type Identity struct {
	Type  IdentityType
	Value string
}

// LogValue keeps the value out of logs.
func (id Identity) LogValue() slog.Value {
	return slog.GroupValue(slog.String("type", string(id.Type)), slog.String("value", "[redacted]"))
}

// String is safe to print: it never shows the value.
func (id Identity) String() string { return string(id.Type) + ":[redacted]" }

// NewIdentity normalises value for its type and validates both. Values that
// normalise to nothing are Invalid with code "empty_identity".
func NewIdentity(t IdentityType, value string) (Identity, error) {
	if !t.Valid() {
		return Identity{}, Reason(Invalid, "invalid_identity_type", "unknown identity type "+safeTypeName(t))
	}
	v := NormalizeIdentityValue(t, value)
	if v == "" {
		return Identity{}, Reason(Invalid, "empty_identity", "empty "+string(t))
	}
	if len(v) > MaxIdentityValueLen {
		return Identity{}, Reason(Invalid, "identity_too_long", string(t)+" longer than 1024 bytes")
	}
	return Identity{Type: t, Value: v}, nil
}

// ParseIdentity parses "<type>:<value>" as used in query parameters, for
// example "email:ada@example.com" or "custom:crm_id:42".
func ParseIdentity(s string) (Identity, error) {
	var t, v string
	if rest, ok := strings.CutPrefix(s, CustomPrefix); ok {
		name, value, found := strings.Cut(rest, ":")
		if !found {
			return Identity{}, Reason(Invalid, "invalid_identity", "identity must be <type>:<value>")
		}
		t, v = CustomPrefix+name, value
	} else {
		var found bool
		t, v, found = strings.Cut(s, ":")
		if !found {
			return Identity{}, Reason(Invalid, "invalid_identity", "identity must be <type>:<value>")
		}
	}
	return NewIdentity(IdentityType(t), v)
}

func safeTypeName(t IdentityType) string {
	s := string(t)
	if len(s) > 40 {
		s = s[:40]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// NormalizeIdentityValue returns the canonical form of value for type t, the
// form that is stored, hashed and compared: e-mail lower-cased and trimmed,
// phone in E.164 where it can be read as one, device ids lower-cased, every
// other value trimmed. Two spellings of one identifier normalise equal.
func NormalizeIdentityValue(t IdentityType, value string) string {
	value = strings.TrimSpace(value)
	switch t {
	case Email:
		return strings.ToLower(value)
	case Phone:
		return normalizePhone(value)
	case IOSIDFA, IOSIDFV, AndroidAAID, AndroidID:
		return strings.ToLower(value)
	}
	return value
}

// normalizePhone turns "+44 (20) 7946-0958" or "0044 20 7946 0958" into
// "+442079460958". A number without an international prefix cannot be
// placed in a country, so it keeps its digits without a plus.
func normalizePhone(v string) string {
	var b strings.Builder
	plus := strings.HasPrefix(v, "+")
	for _, r := range v {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '(' || r == ')' || r == '.' || r == '/' || r == '+':
		default:
			// Letters or other symbols: not a phone number we can read; keep it as given.
			return v
		}
	}
	digits := b.String()
	if !plus && strings.HasPrefix(digits, "00") {
		plus, digits = true, digits[2:]
	}
	if plus && len(digits) >= 7 && len(digits) <= 15 {
		return "+" + digits
	}
	return digits
}

// blockedIdentityValues are the junk values clients send when they have no
// real identifier; they would otherwise glue unrelated people together.
var blockedIdentityValues = map[string]bool{
	"": true, "null": true, "nil": true, "undefined": true, "none": true, "0": true,
	"-1": true, "anonymous": true, "unknown": true, "n/a": true, "[object object]": true,
	"00000000-0000-0000-0000-000000000000": true,
}

// IsJunkIdentityValue reports whether v is a placeholder rather than an
// identifier. Comparison ignores case.
func IsJunkIdentityValue(v string) bool {
	return blockedIdentityValues[strings.ToLower(strings.TrimSpace(v))]
}
