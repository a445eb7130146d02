package bus

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/forward"
)

// DestinationQueue returns a destination's durable queue: a consumer of
// the outbox filtered on the destination's topic, with explicit acks. It
// creates the consumer when missing; records published before it existed
// wait in the stream (a work queue keeps what nobody took).
func (b *Bus) DestinationQueue(ctx context.Context, id cdp.DestinationID) (forward.Queue, error) {
	cons, err := b.js.CreateOrUpdateConsumer(ctx, b.OutboxStream(), jetstream.ConsumerConfig{
		Durable:       "dest_" + string(id),
		Description:   "deliveries to destination " + string(id),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       time.Minute,
		MaxDeliver:    -1,
		MaxAckPending: 1000,
		FilterSubject: b.OutboxSubject("deliver." + string(id)),
	})
	if err != nil {
		return nil, cdp.Wrap(cdp.Unavailable, "log_unavailable", err, "open destination queue")
	}
	return &destQueue{cons: cons}, nil
}

// DeleteDestinationQueue removes a destination's queue and what is in it.
func (b *Bus) DeleteDestinationQueue(ctx context.Context, id cdp.DestinationID) error {
	err := b.js.DeleteConsumer(ctx, b.OutboxStream(), "dest_"+string(id))
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return err
	}
	s, err := b.js.Stream(ctx, b.OutboxStream())
	if err != nil {
		return err
	}
	return s.Purge(ctx, jetstream.WithPurgeSubject(b.OutboxSubject("deliver."+string(id))))
}

type destQueue struct{ cons jetstream.Consumer }

func (q *destQueue) Fetch(ctx context.Context, max int, wait time.Duration) ([]forward.Item, error) {
	batch, err := q.cons.Fetch(max, jetstream.FetchMaxWait(wait))
	if err != nil {
		return nil, err
	}
	var items []forward.Item
	for msg := range batch.Messages() {
		items = append(items, queuedItem{msg})
	}
	if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && len(items) == 0 {
		return nil, err
	}
	return items, nil
}

type queuedItem struct{ msg jetstream.Msg }

func (i queuedItem) Workspace() cdp.WorkspaceID {
	return cdp.WorkspaceID(i.msg.Headers().Get(HeaderWorkspace))
}
func (i queuedItem) Profile() cdp.ProfileID { return cdp.ProfileID(i.msg.Headers().Get(HeaderProfile)) }
func (i queuedItem) Sealed() []byte         { return i.msg.Data() }
func (i queuedItem) InProgress() error      { return i.msg.InProgress() }
func (i queuedItem) Ack(ctx context.Context) error {
	return i.msg.DoubleAck(ctx)
}

// Seq is the outbox sequence of the record, for diagnostics.
func (i queuedItem) Seq() int64 {
	n, _ := strconv.ParseInt(i.msg.Headers().Get(HeaderOutboxSeq), 10, 64)
	return n
}
