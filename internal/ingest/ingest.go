package ingest

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/custos-cdp/custos/internal/cdp"
)

// Limits bounds what one request may carry. Byte limits apply to the
// decompressed body. A zero field takes its default.
type Limits struct {
	SegmentMaxMessageBytes   int // one message; the whole body of a single-message endpoint
	SegmentMaxBatchBytes     int // one /v1/batch or /v1/import body
	SegmentMaxBatchMessages  int // messages in one batch
	MParticleMaxBatchBytes   int // one batch; the whole /v2/events body
	MParticleMaxRequestBytes int // one /v2/bulkevents body
	MParticleMaxBulkBatches  int // batches in one /v2/bulkevents body
}

// DefaultLimits returns the limits the Segment and mParticle APIs document,
// so that clients built for them never meet a smaller one.
func DefaultLimits() Limits {
	return Limits{
		SegmentMaxMessageBytes:   32 << 10,
		SegmentMaxBatchBytes:     500 << 10,
		SegmentMaxBatchMessages:  2500,
		MParticleMaxBatchBytes:   128 << 10,
		MParticleMaxRequestBytes: 256 << 10,
		MParticleMaxBulkBatches:  100,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	for _, f := range []struct{ v, def *int }{
		{&l.SegmentMaxMessageBytes, &d.SegmentMaxMessageBytes},
		{&l.SegmentMaxBatchBytes, &d.SegmentMaxBatchBytes},
		{&l.SegmentMaxBatchMessages, &d.SegmentMaxBatchMessages},
		{&l.MParticleMaxBatchBytes, &d.MParticleMaxBatchBytes},
		{&l.MParticleMaxRequestBytes, &d.MParticleMaxRequestBytes},
		{&l.MParticleMaxBulkBatches, &d.MParticleMaxBulkBatches},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	return l
}

// Config configures a Handler.
type Config struct {
	Limits     Limits
	Now        func() time.Time      // the clock that stamps ReceivedAt; nil means time.Now
	Logger     *slog.Logger          // nil means slog.Default()
	Registerer prometheus.Registerer // nil keeps the metrics in a private registry
	// Consent maps carried consent onto the workspace's purposes. Nil passes
	// signals through unmapped, which the processor does not record: only
	// unit tests leave it nil.
	Consent ConsentMapper
}

// Authenticator resolves credentials to a source. Unknown credentials return
// a *cdp.Error of kind cdp.Unauthenticated.
type Authenticator interface {
	SourceByWriteKey(ctx context.Context, writeKey string) (cdp.Source, error)
	SourceByKeySecret(ctx context.Context, key, secret string) (cdp.Source, error)
}

// Log is where accepted events go. Append returns nil only once every event
// is durable. It returns a *cdp.Error of kind cdp.Unavailable when
// overloaded or down.
type Log interface {
	Append(ctx context.Context, events []cdp.Event) error
}

// Handler serves the Segment and mParticle ingestion endpoints. A 2xx
// answer means every accepted event of the request is durable in the Log.
// Any other answer tells the client to retry or give up, and a retry is
// safe: message ids deduplicate events that did reach the Log.
type Handler struct {
	lim     Limits
	now     func() time.Time
	logger  *slog.Logger
	auth    Authenticator
	log     Log
	consent ConsentMapper
	metrics *metrics
}

// New returns a Handler that authenticates with auth and appends to log.
func New(cfg Config, auth Authenticator, log Log) *Handler {
	h := &Handler{lim: cfg.Limits.withDefaults(), now: cfg.Now, logger: cfg.Logger, auth: auth, log: log, consent: cfg.Consent}
	if h.now == nil {
		h.now = time.Now
	}
	if h.logger == nil {
		h.logger = slog.Default()
	}
	reg := cfg.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	h.metrics = newMetrics(reg)
	return h
}
