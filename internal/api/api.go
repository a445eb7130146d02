package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/httpjson"
)

// Authenticator returns the API token a request carries.
type Authenticator interface {
	Bearer(r *http.Request) (cdp.APIToken, error)
}

// EventLister pages a workspace's stored events, newest first.
type EventLister interface {
	List(ctx context.Context, ws cdp.WorkspaceID, before int64, limit int) ([]cdp.StoredEvent, error)
}

// Config holds the API's settings.
type Config struct {
	Logger *slog.Logger
	// MaxBodyBytes bounds request bodies. Default 1 MiB.
	MaxBodyBytes int64
	// Timeout bounds each request. Default 30s.
	Timeout time.Duration
}

// API serves /api/v1.
type API struct {
	cfg    Config
	auth   Authenticator
	events EventLister
}

// New returns the admin API.
func New(cfg Config, auth Authenticator, events EventLister) *API {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	return &API{cfg: cfg, auth: auth, events: events}
}

// handlerFunc is an API handler: it returns an error instead of writing one.
type handlerFunc func(w http.ResponseWriter, r *http.Request, tok cdp.APIToken) error

// authed wraps h with the body limit, the deadline, token authentication
// and the one error mapping.
func (a *API) authed(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), a.cfg.Timeout)
		defer cancel()
		r = r.WithContext(ctx)
		r.Body = http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes)
		tok, err := a.auth.Bearer(r)
		if err == nil {
			err = h(w, r, tok)
		}
		if err != nil {
			httpjson.Error(ctx, a.cfg.Logger, w, err)
		}
	})
}
