package segment

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/destinations/internal/post"
	"github.com/custos-cdp/custos/internal/forward"
)

// Type is the destination type this package delivers to.
const Type = cdp.DestinationSegment

// UserAgent is sent with every request.
const UserAgent = "Custos/1 (+segment)"

// The tracking API's limits, as its own libraries count them.
const (
	MaxMessageBytes = 32000  // one message, encoded
	MaxRequestBytes = 500000 // one /v1/batch body
)

// Sender posts batches of tracking-spec messages to one endpoint.
type Sender struct {
	url    string
	auth   string // the Authorization header
	client *http.Client
	now    func() time.Time
}

var _ forward.Sender = (*Sender)(nil)

// New returns the sender of a Segment destination. An endpoint that is
// not an http or https URL, or credentials without a write key, are an
// Invalid *cdp.Error.
func New(cfg forward.SenderConfig) (*Sender, error) {
	if cfg.HTTPClient == nil {
		return nil, cdp.Errorf(cdp.Internal, "segment sender built without an HTTP client")
	}
	u, err := batchURL(cfg.Destination.Endpoint)
	if err != nil {
		return nil, err
	}
	var creds struct {
		WriteKey string `json:"write_key"`
	}
	dec := json.NewDecoder(bytes.NewReader(cfg.Credentials))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&creds); err != nil || strings.TrimSpace(creds.WriteKey) == "" {
		return nil, cdp.Reason(cdp.Invalid, "invalid_credentials", `credentials must be a JSON object {"write_key": "..."} with a write key`)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(creds.WriteKey+":"))
	return &Sender{url: u, auth: auth, client: cfg.HTTPClient, now: now}, nil
}

// Factory is New as a forward.Factory.
func Factory(cfg forward.SenderConfig) (forward.Sender, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// batchURL is <endpoint>/v1/batch.
func batchURL(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return "", cdp.Reason(cdp.Invalid, "invalid_endpoint", "a Segment endpoint is an http or https base URL, such as https://api.segment.io")
	case u.User != nil:
		return "", cdp.Reason(cdp.Invalid, "invalid_endpoint", "the endpoint URL must not hold credentials; the write key goes in the credentials")
	}
	if !strings.HasSuffix(strings.TrimRight(u.Path, "/"), "/v1/batch") {
		u = u.JoinPath("v1", "batch")
	}
	return u.String(), nil
}

// Send converts the batch and posts it in one or more requests, in order.
// Erasures are skipped; a batch of nothing else sends nothing.
func (s *Sender) Send(ctx context.Context, batch []cdp.Delivery) error {
	msgs := make([][]byte, 0, len(batch))
	for i := range batch {
		m, ok, err := message(&batch[i])
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		b, err := json.Marshal(m)
		if err != nil {
			return forward.Permanent(fmt.Sprintf("message %s: encoding failed", m.MessageID), err)
		}
		if len(b) > MaxMessageBytes {
			return forward.Permanent(fmt.Sprintf("message %s is %d bytes, over the %d-byte limit of the tracking API", m.MessageID, len(b), MaxMessageBytes), nil)
		}
		msgs = append(msgs, b)
	}
	for len(msgs) > 0 {
		sentAt := s.now().UTC().Format(time.RFC3339Nano)
		body, n := requestBody(msgs, sentAt)
		msgs = msgs[n:]
		h := http.Header{"Authorization": {s.auth}}
		if err := post.Send(ctx, s.client, post.Request{URL: s.url, ContentType: "application/json", UserAgent: UserAgent, Body: body, Header: h}, s.now); err != nil {
			return err
		}
	}
	return nil
}

// requestBody is {"batch":[...],"sentAt":...} of as many of msgs, from the
// first, as fit in MaxRequestBytes (at least one), and how many that is.
func requestBody(msgs [][]byte, sentAt string) ([]byte, int) {
	const head = `{"batch":[`
	tail := `],"sentAt":"` + sentAt + `"}`
	size, n := len(head)+len(tail), 0
	for n < len(msgs) {
		add := len(msgs[n])
		if n > 0 {
			add++ // the comma
		}
		if n > 0 && size+add > MaxRequestBytes {
			break
		}
		size += add
		n++
	}
	body := make([]byte, 0, size)
	body = append(body, head...)
	for i, m := range msgs[:n] {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, m...)
	}
	return append(body, tail...), n
}

// Close releases nothing: the HTTP client belongs to the caller.
func (s *Sender) Close() error { return nil }
