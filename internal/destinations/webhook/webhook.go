package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/destinations/internal/post"
	"github.com/custos-cdp/custos/internal/destinations/internal/sign"
	"github.com/custos-cdp/custos/internal/eventjson"
	"github.com/custos-cdp/custos/internal/forward"
)

// Type is the destination type this package delivers to.
const Type = cdp.DestinationWebhook

// The headers of a request.
const (
	TimestampHeader   = sign.TimestampHeader
	SignatureHeader   = sign.SignatureHeader
	IdempotencyHeader = sign.IdempotencyHeader
)

// UserAgent is sent with every request.
const UserAgent = "Custos/1 (+webhook)"

// Sender posts signed batches to one webhook endpoint.
type Sender struct {
	endpoint string
	secret   []byte
	client   *http.Client
	now      func() time.Time
}

var _ forward.Sender = (*Sender)(nil)

// Body is the JSON body of a request.
type Body struct {
	Batch  []eventjson.Delivery `json:"batch"`
	SentAt string               `json:"sent_at"` // RFC 3339, UTC, in seconds
}

// New returns the sender of a webhook destination. An endpoint that is not
// an http or https URL, or credentials without a usable secret, are an
// Invalid *cdp.Error.
func New(cfg forward.SenderConfig) (*Sender, error) {
	if cfg.HTTPClient == nil {
		return nil, cdp.Errorf(cdp.Internal, "webhook sender built without an HTTP client")
	}
	if err := checkEndpoint(cfg.Destination.Endpoint); err != nil {
		return nil, err
	}
	secret, err := sign.Secret(cfg.Credentials, true)
	if err != nil {
		return nil, err
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Sender{endpoint: cfg.Destination.Endpoint, secret: secret, client: cfg.HTTPClient, now: now}, nil
}

// Factory is New as a forward.Factory.
func Factory(cfg forward.SenderConfig) (forward.Sender, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func checkEndpoint(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return cdp.Reason(cdp.Invalid, "invalid_endpoint", "a webhook endpoint is an http or https URL")
	case u.User != nil:
		return cdp.Reason(cdp.Invalid, "invalid_endpoint", "the endpoint URL must not hold credentials; the webhook signs its requests instead")
	}
	return nil
}

// Send posts the batch as one signed request. An empty batch sends
// nothing.
func (s *Sender) Send(ctx context.Context, batch []cdp.Delivery) error {
	if len(batch) == 0 {
		return nil
	}
	now := s.now()
	b := Body{Batch: make([]eventjson.Delivery, len(batch)), SentAt: now.UTC().Format(time.RFC3339)}
	for i := range batch {
		b.Batch[i] = eventjson.FromDelivery(&batch[i], false)
	}
	body, err := json.Marshal(b)
	if err != nil {
		return forward.Permanent("encoding the batch failed", err)
	}
	h := http.Header{}
	sign.Header(h, s.secret, now, body)
	h.Set(IdempotencyHeader, sign.IdempotencyKey(batch))
	return post.Send(ctx, s.client, post.Request{URL: s.endpoint, ContentType: "application/json", UserAgent: UserAgent, Body: body, Header: h}, s.now)
}

// Close releases nothing: the HTTP client belongs to the caller.
func (s *Sender) Close() error { return nil }

// Verify checks a webhook request for its receiver: timestamp and
// signature are the X-Custos-Timestamp and X-Custos-Signature headers, body
// the raw request body. The timestamp must be within tolerance of now (5
// minutes when tolerance is not positive) and the signature must match,
// compared in constant time. A failure is an Unauthenticated *cdp.Error
// (codes invalid_timestamp, stale_timestamp, invalid_signature).
func Verify(secret string, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	return sign.Verify(secret, timestamp, signature, body, now, tolerance)
}
