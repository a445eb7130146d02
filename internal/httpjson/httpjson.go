// Package httpjson is the one place where errors become HTTP answers. It maps
// a cdp.Error's Kind to a status code and writes the JSON error body every
// Custos API shares: {"error":{"code":"...","message":"..."}}. Internal
// errors are logged here, once, with a request id that the caller also sees;
// their text never reaches the caller.
package httpjson

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/custos-cdp/custos/internal/cdp"
)

// Status returns the HTTP status for an error kind.
func Status(k cdp.Kind) int {
	switch k {
	case cdp.Invalid:
		return http.StatusBadRequest
	case cdp.NotFound:
		return http.StatusNotFound
	case cdp.Conflict:
		return http.StatusConflict
	case cdp.Unauthenticated:
		return http.StatusUnauthorized
	case cdp.Forbidden:
		return http.StatusForbidden
	case cdp.RateLimited:
		return http.StatusTooManyRequests
	case cdp.Unavailable:
		return http.StatusServiceUnavailable
	case cdp.TooLarge:
		return http.StatusRequestEntityTooLarge
	case cdp.Unsupported:
		return http.StatusUnsupportedMediaType
	}
	return http.StatusInternalServerError
}

// ErrorBody is the JSON error shape of every Custos API.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody.
type ErrorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id,omitempty"`
}

// Describe turns err into the status and detail a caller may see, logging
// internal errors with a fresh request id. Unavailable and RateLimited
// answers also set Retry-After.
func Describe(ctx context.Context, log *slog.Logger, w http.ResponseWriter, err error) (int, ErrorDetail) {
	var e *cdp.Error
	if !errors.As(err, &e) {
		e = &cdp.Error{Kind: cdp.Internal, Err: err}
	}
	status := Status(e.Kind)
	if e.Kind == cdp.Internal {
		id := newRequestID()
		log.ErrorContext(ctx, "internal error", "request_id", id, "err", err)
		return status, ErrorDetail{Code: "internal", Message: "internal error", RequestID: id}
	}
	if e.Kind == cdp.Unavailable || e.Kind == cdp.RateLimited {
		w.Header().Set("Retry-After", strconv.Itoa(1))
	}
	if e.Err != nil {
		log.DebugContext(ctx, "request refused", "code", e.Code, "err", e.Err)
	}
	code := e.Code
	if code == "" {
		code = e.Kind.String()
	}
	return status, ErrorDetail{Code: code, Message: e.Message}
}

// Error writes err as a JSON error answer.
func Error(ctx context.Context, log *slog.Logger, w http.ResponseWriter, err error) {
	status, detail := Describe(ctx, log, w, err)
	Write(w, status, ErrorBody{Error: detail})
}

// Write encodes v as the JSON body of a status answer.
func Write(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only a programming error gets here: every body is a plain struct.
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
