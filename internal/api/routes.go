package api

import "net/http"

// Register adds the admin API routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.Handle("GET /api/v1/events", a.authed(a.listEvents))
}
