package bus

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// startEmbedded runs a JetStream server inside the process. It listens on no
// port: the process reaches it in memory. Every write is fsynced before it is
// acknowledged, and the store is encrypted with cfg.StoreKey.
func startEmbedded(cfg Config, log *slog.Logger) (*server.Server, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("embedded JetStream: no store directory")
	}
	if len(cfg.StoreKey) < 32 {
		return nil, errors.New("embedded JetStream: store key shorter than 32 bytes")
	}
	opts := &server.Options{
		ServerName:      "custos-embedded",
		DontListen:      true,
		NoSigs:          true,
		NoLog:           true,
		JetStream:       true,
		StoreDir:        cfg.StoreDir,
		SyncAlways:      true,
		JetStreamCipher: server.ChaCha,
		JetStreamKey:    hex.EncodeToString(cfg.StoreKey),
		MaxPayload:      int32(cfg.MaxPayload),
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded JetStream: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("embedded JetStream: not ready after 30s")
	}
	log.Info("embedded JetStream started", "store_dir", cfg.StoreDir, "fsync", "always", "encryption", "chacha20-poly1305")
	return srv, nil
}
