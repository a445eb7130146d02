package bus

import (
	"context"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/custos-cdp/custos/internal/cdp"
)

// The outbox stream carries records the processor wrote with the changes
// that caused them (consent changes, deliveries) to their consumers. It is a
// work queue: each topic has at most one consumer (a destination's queue),
// and a record leaves the stream when that consumer acks it, or after
// MaxAge if nobody ever does. Payloads stay sealed under the person's data
// key, so erasing the person makes queued records unreadable too.

// Headers of an outbox message.
const (
	HeaderWorkspace = "Custos-Workspace"
	HeaderProfile   = "Custos-Profile"
	HeaderOutboxSeq = "Custos-Outbox-Seq"
)

// OutboxStream is the name of the outbox stream.
func (b *Bus) OutboxStream() string { return streamName(b.cfg.Prefix, "OUTBOX") }

// OutboxSubject is the subject of an outbox topic.
func (b *Bus) OutboxSubject(topic string) string { return b.cfg.Prefix + ".outbox." + topic }

func (b *Bus) ensureOutbox(ctx context.Context) error {
	_, err := b.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        b.OutboxStream(),
		Description: "Custos outbox: consent changes and deliveries, sealed per person",
		Subjects:    []string{b.cfg.Prefix + ".outbox.>"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    b.cfg.Replicas,
		MaxAge:      30 * 24 * time.Hour,
		Duplicates:  10 * time.Minute,
	})
	if err != nil {
		return cdp.Wrap(cdp.Unavailable, "log_unavailable", err, "create outbox stream")
	}
	return nil
}

// PublishOutbox publishes records to their topics and returns once the
// stream has them all. A record published twice (a relay that crashed
// before deleting it) is dropped by the stream within its duplicate window.
func (b *Bus) PublishOutbox(ctx context.Context, recs []cdp.OutboxRecord) error {
	futures := make([]jetstream.PubAckFuture, 0, len(recs))
	for _, r := range recs {
		msg := &nats.Msg{Subject: b.OutboxSubject(r.Topic), Data: r.Payload, Header: nats.Header{}}
		msg.Header.Set(HeaderWorkspace, string(r.WorkspaceID))
		msg.Header.Set(HeaderProfile, string(r.Profile))
		msg.Header.Set(HeaderOutboxSeq, strconv.FormatInt(r.Seq, 10))
		msg.Header.Set(nats.MsgIdHdr, "outbox-"+strconv.FormatInt(r.Seq, 10)+"-"+r.CreatedAt.Format(time.RFC3339Nano))
		f, err := b.js.PublishMsgAsync(msg)
		if err != nil {
			return cdp.Wrap(cdp.Unavailable, "log_unavailable", err, "publish outbox record")
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return cdp.Wrap(cdp.Unavailable, "log_unavailable", err, "publish outbox record")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
