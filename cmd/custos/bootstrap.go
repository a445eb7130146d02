package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/custos-cdp/custos/internal/auth"
	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/sqlstore"
)

// The variables that fix the first start's credentials, for scripted
// set-ups and tests. They are read on the first start only.
const (
	envBootstrapWriteKey    = "CUSTOS_BOOTSTRAP_WRITE_KEY"
	envBootstrapWriteSecret = "CUSTOS_BOOTSTRAP_WRITE_SECRET"
	envBootstrapAdminToken  = "CUSTOS_BOOTSTRAP_ADMIN_TOKEN"
)

// bootstrapCredentials are the first start's credentials when fixed in
// advance; empty ones are generated.
type bootstrapCredentials struct {
	WriteKey, WriteSecret, AdminToken string
}

// bootstrap creates the first workspace, source and owner token if the
// database has none, and prints the credentials once to out. They are
// never logged and never shown again: only their hashes are stored.
func bootstrap(ctx context.Context, db *sqlstore.DB, fixed bootstrapCredentials, out io.Writer, now func() time.Time) error {
	orGenerate := func(v, prefix string) string {
		if v != "" {
			return v
		}
		return auth.NewSecret(prefix)
	}
	writeKey := orGenerate(fixed.WriteKey, "cwk_")
	writeSecret := orGenerate(fixed.WriteSecret, "cws_")
	adminToken := orGenerate(fixed.AdminToken, "cat_")
	at := now().UTC()
	ws := cdp.WorkspaceID(auth.NewID("ws_"))
	b := sqlstore.Bootstrap{
		Workspace:    cdp.Workspace{ID: ws, Name: "Default", CreatedAt: at},
		Source:       cdp.Source{ID: cdp.SourceID(auth.NewID("src_")), WorkspaceID: ws, Name: "Default source", CreatedAt: at},
		WriteKeyHash: auth.Hash(writeKey),
		SecretHash:   auth.Hash(writeSecret),
		Token:        cdp.APIToken{ID: cdp.TokenID(auth.NewID("tok_")), WorkspaceID: ws, Name: "Owner (first start)", Role: cdp.RoleOwner, CreatedAt: at},
		TokenHash:    auth.Hash(adminToken),
	}
	created, err := db.Workspaces().Bootstrap(ctx, b)
	if err != nil || !created {
		return err
	}
	_, err = fmt.Fprintf(out, `
Custos first start: created a workspace, a source and an owner API token.
These credentials are shown once and never again; only their hashes are kept.

  workspace id   %s
  source id      %s
  write key      %s
  write secret   %s
  admin token    %s

Segment-style clients: write key as the HTTP Basic user name.
mParticle-style clients: write key and write secret as key:secret.
Admin API: Authorization: Bearer <admin token>.

`, ws, b.Source.ID, writeKey, writeSecret, adminToken)
	return err
}
