package ingest

import (
	"net/http"

	"github.com/custos-cdp/custos/internal/cdp"
)

// Register adds the ingestion routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle("POST /v1/identify", h.segment(cdp.Identify))
	mux.Handle("POST /v1/track", h.segment(cdp.Track))
	mux.Handle("POST /v1/page", h.segment(cdp.Page))
	mux.Handle("POST /v1/screen", h.segment(cdp.Screen))
	mux.Handle("POST /v1/group", h.segment(cdp.Group))
	mux.Handle("POST /v1/alias", h.segment(cdp.Alias))
	mux.Handle("POST /v1/batch", h.segment(""))
	mux.Handle("POST /v1/import", h.segment(""))
	mux.Handle("POST /v2/events", h.mparticle(false))
	mux.Handle("POST /v2/bulkevents", h.mparticle(true))
}
