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
		{"GET /api/v1/tokens", a.authed(a.listTokens)},
		{"POST /api/v1/tokens", a.authed(a.createToken)},
		{"DELETE /api/v1/tokens/{id}", a.authed(a.revokeToken)},
		{"GET /api/v1/audit", a.authed(a.listAudit)},
		{"GET /api/v1/audit/verify", a.authed(a.verifyAudit)},
		{"GET /api/v1/profiles", a.authed(a.findProfile)},
		{"GET /api/v1/profiles/{id}", a.authed(a.getProfile)},
		{"GET /api/v1/profiles/{id}/events", a.authed(a.profileEvents)},
		{"GET /api/v1/profiles/{id}/merges", a.authed(a.profileMerges)},
		{"POST /api/v1/merges/{id}/split", a.authed(a.splitMerge)},
		{"GET /api/v1/identity-rules", a.authed(a.getRules)},
		{"PUT /api/v1/identity-rules", a.authed(a.putRules)},
		{"GET /api/v1/purposes", a.authed(a.listPurposes)},
		{"PUT /api/v1/purposes/{key}", a.authed(a.putPurpose)},
		{"DELETE /api/v1/purposes/{key}", a.authed(a.deletePurpose)},
		{"GET /api/v1/consent-mappings", a.authed(a.listMappings)},
		{"PUT /api/v1/consent-mappings/{vocabulary}/{external}", a.authed(a.putMapping)},
		{"DELETE /api/v1/consent-mappings/{vocabulary}/{external}", a.authed(a.deleteMapping)},
		{"POST /api/v1/consent", a.authed(a.recordConsent)},
		{"GET /api/v1/feeds", a.authed(a.listFeeds)},
		{"POST /api/v1/feeds", a.authed(a.createFeed)},
		{"DELETE /api/v1/feeds/{id}", a.authed(a.deleteFeed)},
		{"POST /api/v1/feeds/{feed}/consent", http.HandlerFunc(a.feedConsent)},
		{"GET /api/v1/profiles/{id}/consent/history", a.authed(a.consentHistory)},
		{"GET /api/v1/profiles/{id}/consent/receipt/{entry}", a.authed(a.consentReceipt)},
		{"GET /.well-known/custos/jwks.json", http.HandlerFunc(a.serveJWKS)},
		{"GET /api/v1/destinations", a.authed(a.listDestinations)},
		{"POST /api/v1/destinations", a.authed(a.createDestination)},
		{"GET /api/v1/destinations/{id}", a.authed(a.getDestination)},
		{"PUT /api/v1/destinations/{id}", a.authed(a.updateDestination)},
		{"DELETE /api/v1/destinations/{id}", a.authed(a.deleteDestination)},
		{"POST /api/v1/destinations/{id}/pause", a.authed(a.setEnabled(false))},
		{"POST /api/v1/destinations/{id}/resume", a.authed(a.setEnabled(true))},
		{"GET /api/v1/destinations/{id}/dead-letters", a.authed(a.listDeadLetters)},
		{"POST /api/v1/destinations/{id}/dead-letters/replay", a.authed(a.replayDeadLetters)},
		{"POST /api/v1/destinations/{id}/replay", a.authed(a.replayDestination)},
	}
}

// Register adds the admin API routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/openapi.json", serveOpenAPI)
	for _, rt := range a.routes() {
		mux.Handle(rt.pattern, rt.handler)
	}
}
