// Package sign signs the HTTP batches of webhook and raw destinations and
// verifies them for receivers: an HMAC-SHA256 over the timestamp and the
// raw body, so a receiver can reject forgeries and replays, and an
// idempotency key per batch.
package sign

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/custos-cdp/custos/internal/cdp"
)

// The headers of a signed request.
const (
	TimestampHeader   = "X-Custos-Timestamp"
	SignatureHeader   = "X-Custos-Signature"
	IdempotencyHeader = "Idempotency-Key"
)

// MinSecretLen is the shortest secret accepted, in characters.
const MinSecretLen = 16

// DefaultTolerance is how far a timestamp may be from the receiver's clock
// when Verify is given no tolerance.
const DefaultTolerance = 5 * time.Minute

const version = "v1="

// Signature returns the signature header value of body sent at timestamp
// (unix seconds): "v1=" and the hex HMAC-SHA256 under secret of
// "<timestamp>.<body>".
func Signature(secret []byte, timestamp string, body []byte) string {
	return version + hex.EncodeToString(mac(secret, timestamp, body))
}

func mac(secret []byte, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Header sets the timestamp header to now and, when secret is not empty,
// the signature header of body.
func Header(h http.Header, secret []byte, now time.Time, body []byte) {
	ts := strconv.FormatInt(now.Unix(), 10)
	h.Set(TimestampHeader, ts)
	if len(secret) > 0 {
		h.Set(SignatureHeader, Signature(secret, ts, body))
	}
}

// Verify checks a request signed by Header: the timestamp (unix seconds)
// must be within tolerance of now (DefaultTolerance when tolerance is not
// positive), which bounds replays, and one of the comma-separated "v1="
// signatures must be the HMAC of "<timestamp>.<body>" under secret,
// compared in constant time. Several signatures are accepted so a receiver
// can verify across a change of secret. A failure is an Unauthenticated
// *cdp.Error whose code is "invalid_timestamp", "stale_timestamp" or
// "invalid_signature".
func Verify(secret, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil || sec < 0 {
		return cdp.Reason(cdp.Unauthenticated, "invalid_timestamp", "the timestamp is not a number of unix seconds")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return cdp.Reason(cdp.Unauthenticated, "stale_timestamp", "the timestamp is too far from the current time")
	}
	want := mac([]byte(secret), timestamp, body)
	ok := false
	for part := range strings.SplitSeq(signature, ",") {
		h, found := strings.CutPrefix(strings.TrimSpace(part), version)
		if !found {
			continue
		}
		got, err := hex.DecodeString(h)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			ok = true
			break
		}
	}
	if !ok {
		return cdp.Reason(cdp.Unauthenticated, "invalid_signature", "the signature does not match the body")
	}
	return nil
}

// IdempotencyKey is the batch's key: the hex SHA-256 of its deliveries'
// keys joined by "\n". The same batch sent again has the same key.
func IdempotencyKey(batch []cdp.Delivery) string {
	h := sha256.New()
	for i, d := range batch {
		if i > 0 {
			h.Write([]byte{'\n'})
		}
		h.Write([]byte(d.Key))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Secret reads the credentials {"secret": "..."}. With required false, nil
// or empty credentials, or an object without a secret, mean no signing.
// A failure is an Invalid *cdp.Error safe to show.
func Secret(creds []byte, required bool) ([]byte, error) {
	var c struct {
		Secret string `json:"secret"`
	}
	if len(bytes.TrimSpace(creds)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(creds))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return nil, cdp.Reason(cdp.Invalid, "invalid_credentials", `credentials must be a JSON object {"secret": "..."}`)
		}
	}
	switch {
	case c.Secret == "" && !required:
		return nil, nil
	case utf8.RuneCountInString(c.Secret) < MinSecretLen:
		return nil, cdp.Reason(cdp.Invalid, "invalid_credentials", "credentials need a secret of at least 16 characters")
	}
	return []byte(c.Secret), nil
}
