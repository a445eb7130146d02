package api

import "net/http"

// route is one entry of the API's route table.
type route struct {
	pattern string // "METHOD /path"
	handler http.Handler
}

func (a *API) routes() []route {
	return []route{
		{"GET /api/v1/events", a.authed(a.listEvents)},
		{"GET /api/v1/profiles", a.authed(a.findProfile)},
		{"GET /api/v1/profiles/{id}", a.authed(a.getProfile)},
		{"GET /api/v1/profiles/{id}/events", a.authed(a.profileEvents)},
		{"GET /api/v1/profiles/{id}/merges", a.authed(a.profileMerges)},
		{"POST /api/v1/merges/{id}/split", a.authed(a.splitMerge)},
		{"GET /api/v1/identity-rules", a.authed(a.getRules)},
		{"PUT /api/v1/identity-rules", a.authed(a.putRules)},
	}
}

// Register adds the admin API routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/openapi.json", serveOpenAPI)
	for _, rt := range a.routes() {
		mux.Handle(rt.pattern, rt.handler)
	}
}
