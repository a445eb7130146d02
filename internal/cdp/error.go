package cdp

import (
	"errors"
	"fmt"
)

// Kind classifies an error by what the caller can do about it. Transports map
// a Kind to a status code in one place.
type Kind uint8

// The kinds of error. The zero value is Internal, so an unclassified error is
// never mistaken for the caller's fault.
const (
	Internal        Kind = iota // a bug or an unexpected failure; details are logged, never shown
	Invalid                     // the request is malformed or breaks a rule
	NotFound                    // no such thing, or the caller may not learn that it exists
	Conflict                    // the request contradicts stored state
	Unauthenticated             // no or bad credentials
	Forbidden                   // valid credentials without the permission
	RateLimited                 // too much, too fast: retry later
	Unavailable                 // a dependency is down or the service is overloaded: retry later
	TooLarge                    // the request or a part of it is over a size limit
	Unsupported                 // a media type or encoding the endpoint does not take
)

var kindNames = [...]string{
	Internal:        "internal",
	Invalid:         "invalid",
	NotFound:        "not_found",
	Conflict:        "conflict",
	Unauthenticated: "unauthenticated",
	Forbidden:       "forbidden",
	RateLimited:     "rate_limited",
	Unavailable:     "unavailable",
	TooLarge:        "too_large",
	Unsupported:     "unsupported",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Error is the one error type that crosses package boundaries. Code is a
// stable machine-readable reason ("invalid_json", "body_too_large"); Message
// is safe to show to the caller and never holds personal data; Err is the
// cause, which is only logged.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Is lets errors.Is(err, &Error{Kind: k}) match any error of that kind, and a
// Code, when set on the target, narrow it further.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return t.Kind == e.Kind && (t.Code == "" || t.Code == e.Code)
}

// Errorf returns an error of the given kind whose code is the kind's name.
func Errorf(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: kind.String(), Message: fmt.Sprintf(format, args...)}
}

// Reason returns an error with an explicit machine-readable code.
func Reason(kind Kind, code, message string) *Error {
	return &Error{Kind: kind, Code: code, Message: message}
}

// Wrap returns an error of the given kind that keeps cause for the logs.
func Wrap(kind Kind, code string, cause error, message string) *Error {
	return &Error{Kind: kind, Code: code, Message: message, Err: cause}
}

// ErrorKind returns the Kind of err: the kind of the first *Error in its
// chain, or Internal.
func ErrorKind(err error) Kind {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Kind
	}
	return Internal
}

// IsKind reports whether err is a *Error of kind k.
func IsKind(err error, k Kind) bool {
	return err != nil && ErrorKind(err) == k
}
