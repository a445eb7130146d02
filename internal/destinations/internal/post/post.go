// Package post sends one HTTP request of a destination and classifies the
// outcome the way the router expects: no answer is retryable, 2xx is
// success, 408, 429 and 5xx are retryable and any other status is
// permanent. The response body is read and dropped, never shown: a
// receiver may echo personal data back.
package post

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"time"

	"github.com/custos-cdp/custos/internal/forward"
)

// maxDrain bounds how much of a response body is read so the connection
// can be reused.
const maxDrain = 64 << 10

// Request is one POST of body to url.
type Request struct {
	URL         string
	ContentType string
	UserAgent   string
	Body        []byte
	// Header holds further headers (signature, idempotency key,
	// authorization).
	Header http.Header
}

// Send posts r with client, which must be the destination's guarded
// client. It returns nil or a *forward.SendError.
func Send(ctx context.Context, client *http.Client, r Request, now func() time.Time) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return forward.Permanent("building the request failed", err)
	}
	for k, vs := range r.Header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", r.ContentType)
	req.Header.Set("User-Agent", r.UserAgent)
	resp, err := client.Do(req)
	if err != nil {
		return forward.TransportError(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	return forward.CheckResponse(resp, now())
}
