package auth

import (
	"context"
	"net/http"
	"strings"

	"github.com/custos-cdp/custos/internal/cdp"
)

// TokenStore finds a live API token by the hash of its secret.
type TokenStore interface {
	ByHash(ctx context.Context, h []byte) (cdp.APIToken, error)
}

// Tokens authenticates admin API bearer tokens.
type Tokens struct{ store TokenStore }

// NewTokens returns an authenticator over store.
func NewTokens(store TokenStore) *Tokens { return &Tokens{store: store} }

// Bearer returns the token of an "Authorization: Bearer <token>" request;
// Unauthenticated when the header is missing or the token unknown.
func (t *Tokens) Bearer(r *http.Request) (cdp.APIToken, error) {
	scheme, secret, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
		return cdp.APIToken{}, cdp.Reason(cdp.Unauthenticated, "missing_token", "an Authorization: Bearer token is required")
	}
	tok, err := t.store.ByHash(r.Context(), Hash(secret))
	if cdp.IsKind(err, cdp.NotFound) {
		return cdp.APIToken{}, cdp.Reason(cdp.Unauthenticated, "invalid_token", "unknown or revoked token")
	}
	return tok, err
}
