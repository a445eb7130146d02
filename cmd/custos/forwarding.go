package main

import (
	"context"
	"crypto/rand"
	"os"
	"time"

	"github.com/custos-cdp/custos/internal/bus"
	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/destinations/raw"
	"github.com/custos-cdp/custos/internal/destinations/segment"
	"github.com/custos-cdp/custos/internal/destinations/warehouse"
	"github.com/custos-cdp/custos/internal/destinations/webhook"
	"github.com/custos-cdp/custos/internal/forward"
	"github.com/custos-cdp/custos/internal/outbound"
	"github.com/custos-cdp/custos/internal/vault"
)

// registry is every destination type this binary delivers to.
func registry() forward.Registry {
	return forward.Registry{
		webhook.Type:   webhook.Factory,
		segment.Type:   segment.Factory,
		raw.Type:       raw.Factory,
		warehouse.Type: warehouse.Factory,
	}
}

// forwarding is the glue between the admin API, the registry and the bus.
type forwarding struct {
	registry     forward.Registry
	vault        *vault.Vault
	bus          *bus.Bus
	allowPrivate bool
}

func credentialsAD(id cdp.DestinationID) []byte {
	return []byte("custos/destination-credentials/" + id)
}

// Configure opens a destination's credentials and builds its guarded HTTP
// client and dialer.
func (f *forwarding) Configure(_ context.Context, d cdp.Destination) (forward.SenderConfig, error) {
	var creds []byte
	if len(d.CredentialsSealed) > 0 {
		var err error
		if creds, err = f.vault.OpenWithRoot(d.CredentialsSealed, credentialsAD(d.ID)); err != nil {
			return forward.SenderConfig{}, err
		}
	}
	return f.senderConfig(d, creds)
}

func (f *forwarding) senderConfig(d cdp.Destination, creds []byte) (forward.SenderConfig, error) {
	ocfg := outbound.Config{AllowPrivateNetworks: f.allowPrivate, Timeout: d.Settings.Timeout, PinSHA256: d.Settings.PinSHA256}
	client, err := outbound.NewClient(ocfg)
	if err != nil {
		return forward.SenderConfig{}, err
	}
	return forward.SenderConfig{Destination: d, Credentials: creds, HTTPClient: client, Dial: outbound.Dialer(ocfg), Now: time.Now}, nil
}

// Validate builds the destination's sender once, so bad settings are a
// clear 400 when they are saved rather than a router that cannot start.
func (f *forwarding) Validate(_ context.Context, d cdp.Destination, creds []byte) error {
	factory, ok := f.registry[d.Type]
	if !ok {
		return cdp.Reason(cdp.Invalid, "invalid_type", "no sender for this destination type")
	}
	cfg, err := f.senderConfig(d, creds)
	if err != nil {
		return err
	}
	s, err := factory(cfg)
	if err != nil {
		return err
	}
	return s.Close()
}

func (f *forwarding) CheckURL(raw string) error { return outbound.CheckURL(raw, f.allowPrivate) }

func (f *forwarding) DeleteQueue(ctx context.Context, id cdp.DestinationID) error {
	return f.bus.DeleteDestinationQueue(ctx, id)
}

// holderName names this process in leases.
func holderName() string {
	host, _ := os.Hostname()
	return host + "/" + rand.Text()[:10]
}
