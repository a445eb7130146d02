package raw

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/destinations/internal/post"
	"github.com/custos-cdp/custos/internal/destinations/internal/sign"
	"github.com/custos-cdp/custos/internal/forward"
)

// httpSender posts each batch as JSON Lines, signed when it has a secret.
type httpSender struct {
	endpoint string
	secret   []byte // nil: unsigned
	client   *http.Client
	now      func() time.Time
}

func newHTTPSender(u *url.URL, cfg forward.SenderConfig, now func() time.Time) (*httpSender, error) {
	if u.Host == "" {
		return nil, invalidEndpoint()
	}
	if u.User != nil {
		return nil, cdp.Reason(cdp.Invalid, "invalid_endpoint", "the endpoint URL must not hold credentials; give a secret to sign the requests instead")
	}
	if cfg.HTTPClient == nil {
		return nil, cdp.Errorf(cdp.Internal, "raw sender built without an HTTP client")
	}
	secret, err := sign.Secret(cfg.Credentials, false)
	if err != nil {
		return nil, err
	}
	return &httpSender{endpoint: u.String(), secret: secret, client: cfg.HTTPClient, now: now}, nil
}

func (s *httpSender) post(ctx context.Context, batch []cdp.Delivery, body []byte) error {
	h := http.Header{}
	sign.Header(h, s.secret, s.now(), body)
	h.Set(sign.IdempotencyHeader, sign.IdempotencyKey(batch))
	return post.Send(ctx, s.client, post.Request{URL: s.endpoint, ContentType: ContentType, UserAgent: UserAgent, Body: body, Header: h}, s.now)
}
