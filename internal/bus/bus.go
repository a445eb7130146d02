package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/custos-cdp/custos/internal/cdp"
)

// Config says where the log lives. An empty URL starts the embedded server.
type Config struct {
	// URL of an external NATS JetStream cluster; empty means embedded.
	URL string
	// StoreDir is the embedded server's file store directory.
	StoreDir string
	// StoreKey encrypts the embedded file store (ChaCha20-Poly1305). Required
	// when embedded.
	StoreKey []byte
	// EntryKey (32 bytes) seals every log entry with AES-256-GCM before it
	// is written, in both modes. Every process of a deployment needs the
	// same key. Required.
	EntryKey []byte
	// Prefix namespaces streams and subjects, so several deployments (or
	// tests) can share one cluster. Default "custos".
	Prefix string
	// Replicas of each stream on an external cluster. Default 1; use 3 on a
	// three-node cluster. The embedded server always uses 1.
	Replicas int
	// MaxLogBytes bounds the event log; once it holds this much, appends
	// fail with Unavailable (back-pressure) until the processor catches up.
	// Custos enforces it itself rather than through the stream's limit:
	// some server versions honour a full stream's discard-new policy by
	// dropping old entries, which would lose acknowledged events.
	// Default 8 GiB.
	MaxLogBytes int64
	// MaxPayload is the largest log write. Default 1 MiB.
	MaxPayload int
}

func (c *Config) setDefaults() {
	if c.Prefix == "" {
		c.Prefix = "custos"
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.MaxLogBytes <= 0 {
		c.MaxLogBytes = 8 << 30
	}
	if c.MaxPayload <= 0 {
		c.MaxPayload = 1 << 20
	}
}

// Bus is a connection to JetStream, and the embedded server when there is one.
type Bus struct {
	cfg    Config
	log    *slog.Logger
	srv    *server.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	events jetstream.Stream
	cipher *entryCipher
}

// Open starts or connects to JetStream and makes sure the streams exist.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Bus, error) {
	cfg.setDefaults()
	c, err := newEntryCipher(cfg.EntryKey)
	if err != nil {
		return nil, err
	}
	b := &Bus{cfg: cfg, log: log, cipher: c}
	opts := []nats.Option{
		nats.Name("custos"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info("nats reconnected") }),
	}
	url := cfg.URL
	if url == "" {
		srv, err := startEmbedded(cfg, log)
		if err != nil {
			return nil, err
		}
		b.srv = srv
		opts = append(opts, nats.InProcessServer(srv))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		b.shutdownServer()
		return nil, cdp.Wrap(cdp.Unavailable, "log_unavailable", err, "connect to NATS")
	}
	b.nc = nc
	js, err := jetstream.New(nc)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	b.js = js
	if err := b.ensureStreams(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// EventsStream is the name of the event log stream.
func (b *Bus) EventsStream() string { return streamName(b.cfg.Prefix, "EVENTS") }

func (b *Bus) eventsSubject() string { return b.cfg.Prefix + ".events" }

func streamName(prefix, name string) string {
	// Stream names may not hold '.', '*', '>' or spaces; prefixes are
	// validated by the caller's config, so only '.' needs replacing.
	out := []byte(prefix + "_" + name)
	for i, c := range out {
		if c == '.' || c == '-' {
			out[i] = '_'
		}
	}
	return string(out)
}

func (b *Bus) ensureStreams(ctx context.Context) error {
	s, err := b.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        b.EventsStream(),
		Description: "Custos event log: accepted events until the processor has applied them",
		Subjects:    []string{b.eventsSubject()},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    b.cfg.Replicas,
		Discard:     jetstream.DiscardNew,
		MaxMsgSize:  int32(b.cfg.MaxPayload),
		Duplicates:  2 * time.Minute,
	})
	if err != nil {
		return cdp.Wrap(cdp.Unavailable, "log_unavailable", err, "create event log stream")
	}
	b.events = s
	return b.ensureOutbox(ctx)
}

// Ready reports whether the log answers: the connection is up and the event
// stream can be read.
func (b *Bus) Ready(ctx context.Context) error {
	if !b.nc.IsConnected() {
		return cdp.Reason(cdp.Unavailable, "log_unavailable", "not connected to NATS")
	}
	if _, err := b.js.Stream(ctx, b.EventsStream()); err != nil {
		return cdp.Wrap(cdp.Unavailable, "log_unavailable", err, "event log stream")
	}
	return nil
}

// Close drains the connection and stops the embedded server, if any.
func (b *Bus) Close() error {
	var err error
	if b.nc != nil {
		if derr := b.nc.Drain(); derr != nil && !errors.Is(derr, nats.ErrConnectionClosed) {
			err = derr
		}
		// Drain is asynchronous; wait for it so the server sees our acks.
		deadline := time.Now().Add(5 * time.Second)
		for !b.nc.IsClosed() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		b.nc.Close()
	}
	b.shutdownServer()
	return err
}

func (b *Bus) shutdownServer() {
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
		b.srv = nil
	}
}

// Embedded reports whether the server runs inside this process.
func (b *Bus) Embedded() bool { return b.cfg.URL == "" }

// Conn is the NATS connection, for packages that add their own streams.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// JetStream is the JetStream context, for packages that add their own streams.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// Prefix is the namespace of every stream and subject of this deployment.
func (b *Bus) Prefix() string { return b.cfg.Prefix }
