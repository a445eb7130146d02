package forward

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
)

// Sender delivers batches to one destination. Each destination type is a
// package providing a Factory; main builds the registry of them.
type Sender interface {
	// Send delivers a batch, preserving its order. nil means the
	// destination accepted every delivery. Otherwise the error is a
	// *SendError saying whether the same batch may be sent again.
	// Deliveries carry idempotency keys, so a resent batch that had in fact
	// arrived is recognised by the receiver.
	Send(ctx context.Context, batch []cdp.Delivery) error
	// Close releases what the sender holds (connections, files).
	Close() error
}

// SenderConfig is what a Factory gets to build a sender.
type SenderConfig struct {
	Destination cdp.Destination
	// Credentials are the destination's opened credentials, a JSON object
	// whose fields each type documents; nil when it has none.
	Credentials []byte
	// HTTPClient is guarded against private addresses (unless allowed) and
	// pinned as the destination's settings say. Senders must use it for
	// every request.
	HTTPClient *http.Client
	// Dial is the guarded dialer behind HTTPClient, for senders that open
	// their own connections (the warehouse's database).
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	Now  func() time.Time
}

// Factory builds the sender of one destination type. It returns an Invalid
// *cdp.Error when the destination's endpoint or credentials are unusable.
type Factory func(cfg SenderConfig) (Sender, error)

// SendError is a failed send.
type SendError struct {
	Retryable  bool
	RetryAfter time.Duration // the receiver's Retry-After, if it said
	Status     int           // HTTP status, if any
	// Message is safe to store and show: it never holds payload content.
	Message string
	Err     error
}

func (e *SendError) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *SendError) Unwrap() error { return e.Err }

// Retry returns a retryable SendError.
func Retry(msg string, err error) *SendError {
	return &SendError{Retryable: true, Message: msg, Err: err}
}

// Permanent returns a SendError that retrying cannot fix.
func Permanent(msg string, err error) *SendError { return &SendError{Message: msg, Err: err} }

// CheckResponse classifies an HTTP answer: 2xx is success; 408, 429 (with
// its Retry-After) and 5xx are worth retrying; any other status is
// permanent.
func CheckResponse(resp *http.Response, now time.Time) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	e := &SendError{Status: resp.StatusCode, Message: "destination answered " + strconv.Itoa(resp.StatusCode)}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode >= 500:
		e.Retryable = true
		e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), now)
	}
	return e
}

// retryAfter reads Retry-After in seconds or as an HTTP date; bounded to a
// day so a receiver cannot park a queue forever.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		d = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), 24*time.Hour)
}

// TransportError wraps a failure to get any answer (refused connection,
// timeout, TLS failure) as retryable. A refused pin or a blocked address is
// a failure too; it is retried in case the destination's certificate or
// address changes back, and dead-lettered after the limits.
func TransportError(err error) *SendError {
	return Retry(fmt.Sprintf("no answer from the destination (%s)", errorClass(err)), err)
}

func errorClass(err error) string {
	switch {
	case err == nil:
		return "none"
	case isTimeout(err):
		return "timeout"
	}
	return "connection failed"
}

func isTimeout(err error) bool {
	type timeout interface{ Timeout() bool }
	t, ok := err.(timeout)
	return ok && t.Timeout()
}
