package raw

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/eventjson"
	"github.com/custos-cdp/custos/internal/forward"
)

// Type is the destination type this package delivers to.
const Type = cdp.DestinationRaw

// UserAgent is sent with every HTTP request.
const UserAgent = "Custos/1 (+raw)"

// ContentType is the media type of an HTTP request's body.
const ContentType = "application/x-ndjson"

// Sender delivers to an HTTP endpoint or to a directory.
type Sender struct {
	web *httpSender // one of web and dir is set
	dir *dirSender
}

var _ forward.Sender = (*Sender)(nil)

// New returns the sender of a raw destination. An endpoint that is
// neither an http(s) URL nor a file:/// URL of an absolute directory, or a
// secret under 16 characters, is an Invalid *cdp.Error.
func New(cfg forward.SenderConfig) (*Sender, error) {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	u, err := url.Parse(cfg.Destination.Endpoint)
	if err != nil {
		return nil, invalidEndpoint()
	}
	switch u.Scheme {
	case "http", "https":
		h, err := newHTTPSender(u, cfg, now)
		if err != nil {
			return nil, err
		}
		return &Sender{web: h}, nil
	case "file":
		d, err := newDirSender(u, cfg.Destination.ID, now)
		if err != nil {
			return nil, err
		}
		return &Sender{dir: d}, nil
	}
	return nil, invalidEndpoint()
}

// Factory is New as a forward.Factory.
func Factory(cfg forward.SenderConfig) (forward.Sender, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func invalidEndpoint() error {
	return cdp.Reason(cdp.Invalid, "invalid_endpoint", "a raw endpoint is an http or https URL, or file:///absolute/directory")
}

// Send delivers the batch as JSON Lines: one request or one file. An
// empty batch delivers nothing.
func (s *Sender) Send(ctx context.Context, batch []cdp.Delivery) error {
	if len(batch) == 0 {
		return nil
	}
	body, err := lines(batch)
	if err != nil {
		return err
	}
	if s.dir != nil {
		return s.dir.write(body)
	}
	return s.web.post(ctx, batch, body)
}

// Close releases nothing: files are closed as they are written and the
// HTTP client belongs to the caller.
func (s *Sender) Close() error { return nil }

// lines is the batch as JSON Lines of full envelopes.
func lines(batch []cdp.Delivery) ([]byte, error) {
	var out []byte
	for i := range batch {
		b, err := json.Marshal(eventjson.FromDelivery(&batch[i], true))
		if err != nil {
			return nil, forward.Permanent(fmt.Sprintf("delivery %s: encoding failed", batch[i].Key), err)
		}
		out = append(append(out, b...), '\n')
	}
	return out, nil
}
