package main

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/custos-cdp/custos/internal/auth"
	"github.com/custos-cdp/custos/internal/bus"
	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/dsr"
	"github.com/custos-cdp/custos/internal/dsrapi"
	"github.com/custos-cdp/custos/internal/opendsr"
	"github.com/custos-cdp/custos/internal/outbound"
	"github.com/custos-cdp/custos/internal/sqlstore"
	"github.com/custos-cdp/custos/internal/vault"
)

// publicURL is where this deployment is reached from outside.
func (c *config) publicURL(listener net.Addr) string {
	if c.PublicURL != "" {
		return strings.TrimSuffix(c.PublicURL, "/")
	}
	host := c.Addr
	if listener != nil {
		host = listener.String()
	}
	if strings.HasPrefix(host, ":") {
		host = "localhost" + host
	}
	return "http://" + host
}

// dsrSigner loads the OpenDSR signing key from files, or the one kept
// sealed in the database (made on first start), so every process of a
// deployment signs with the same key.
func dsrSigner(ctx context.Context, cfg config, v *vault.Vault, domain string) (*opendsr.Signer, error) {
	if cfg.DSRKeyFile != "" {
		key, err := os.ReadFile(cfg.DSRKeyFile)
		if err != nil {
			return nil, fmt.Errorf("--dsr-key-file: %w", err)
		}
		cert, err := os.ReadFile(cfg.DSRCertFile)
		if err != nil {
			return nil, fmt.Errorf("--dsr-cert-file: %w", err)
		}
		return opendsr.LoadSigner(key, cert, domain)
	}
	both, err := v.SystemSecret(ctx, "opendsr-key", func() ([]byte, error) {
		_, k, c, err := opendsr.GenerateSigner(domain, time.Now())
		return append(append(k, '\n'), c...), err
	})
	if err != nil {
		return nil, err
	}
	// The sealed secret holds the key and its certificate, as PEM blocks.
	var keyPEM, certPEM []byte
	rest := both
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		enc := pem.EncodeToMemory(b)
		if b.Type == "CERTIFICATE" {
			certPEM = enc
		} else {
			keyPEM = enc
		}
	}
	return opendsr.LoadSigner(keyPEM, certPEM, domain)
}

// credentialOpener opens destinations' credentials for the DSR service.
type credentialOpener struct{ v *vault.Vault }

func (c credentialOpener) Open(_ context.Context, d cdp.Destination) ([]byte, error) {
	if len(d.CredentialsSealed) == 0 {
		return nil, nil
	}
	return c.v.OpenWithRoot(d.CredentialsSealed, credentialsAD(d.ID))
}

// startDSR builds the data subject request service, runs its worker when
// this process has the dsr role, and returns its HTTP surface.
func (s *server) startDSR(ctx, bgCtx context.Context, cfg config, profiles *sqlstore.Profiles, v *vault.Vault, reg prometheus.Registerer) (*dsrapi.API, error) {
	base := cfg.publicURL(s.listener.Addr())
	domain := cfg.DSRDomain
	if domain == "" {
		if u, err := url.Parse(base); err == nil {
			domain = u.Hostname()
		}
	}
	signer, err := dsrSigner(ctx, cfg, v, domain)
	if err != nil {
		return nil, err
	}
	erasures, err := s.bus.Erasures(ctx)
	if err != nil {
		return nil, fmt.Errorf("erasure record: %w", err)
	}
	client, err := outbound.NewClient(outbound.Config{AllowPrivateNetworks: cfg.AllowPrivate, Timeout: 15 * time.Second})
	if err != nil {
		return nil, err
	}
	svc := dsr.New(dsr.Config{WaitingPeriod: cfg.DSRWaiting, ResultsTTL: cfg.DSRResultsTTL, BaseURL: base}, dsr.Deps{
		Store: profiles.DSRs(), Audit: profiles, Destinations: profiles.Destinations(), Notices: profiles.Deliveries(),
		Erasures: erasures, Credentials: credentialOpener{v}, Signer: signer, Client: client, Log: s.log, Registerer: reg,
	})
	if cfg.has("dsr") {
		s.bg.Go(func() { svc.Run(bgCtx) })
	}
	return dsrapi.New(svc, profiles.DSRs(), profiles, auth.NewTokens(s.db.Tokens()), s.log, base), nil
}

// dsrCommand runs data subject request maintenance: "custos dsr reapply"
// re-applies every completed erasure, after a database restore.
func dsrCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "reapply" {
		fmt.Fprintln(stderr, "usage: custos dsr reapply [serve flags for the database, log and master key]")
		return errUsage
	}
	cfg, err := parseConfig("dsr reapply", args[1:], os.Getenv, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg.LogLevel, stderr)
	db, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx, log); err != nil {
		return err
	}
	v, err := openVault(cfg, db)
	if err != nil {
		return err
	}
	b, err := openBus(ctx, cfg, v, log)
	if err != nil {
		return err
	}
	defer b.Close()
	return reapply(ctx, b, sqlstore.NewProfiles(db, v), stdout)
}

func reapply(ctx context.Context, b *bus.Bus, profiles *sqlstore.Profiles, stdout io.Writer) error {
	erasures, err := b.Erasures(ctx)
	if err != nil {
		return err
	}
	all, err := erasures.All(ctx)
	if err != nil {
		return err
	}
	total := cdp.ErasureCounts{}
	for _, e := range all {
		c, err := profiles.DSRs().Reapply(ctx, e.WorkspaceID, e.RequestID, e.Blinds, time.Now())
		if err != nil {
			return fmt.Errorf("re-apply erasure %s: %w", e.RequestID, err)
		}
		total.Profiles += c.Profiles
		total.Events += c.Events
		total.Identities += c.Identities
	}
	fmt.Fprintf(stdout, "re-applied %d erasures: %d profiles, %d identities, %d events removed again\n", len(all), total.Profiles, total.Identities, total.Events)
	return nil
}
