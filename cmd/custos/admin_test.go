package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestTokensRolesAndAudit: an owner creates a DSR-only token for a
// controller; that token reaches the OpenDSR API and nothing else; every
// operator change lands in the audit log, whose chain verifies.
func TestTokensRolesAndAudit(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		srv := startInProcess(t, be, t.TempDir())
		c := newClient(srv.url)

		status, body := c.putJSON(t, "POST", "/api/v1/tokens", map[string]string{"name": "controller", "role": "dsr"})
		var tok struct{ ID, Token, Role string }
		if err := json.Unmarshal(body, &tok); status != http.StatusCreated || err != nil || !strings.HasPrefix(tok.Token, "cat_") || tok.Role != "dsr" {
			t.Fatalf("create dsr token: %d %s", status, body)
		}
		if status, body = c.putJSON(t, "POST", "/api/v1/tokens", map[string]string{"name": "x", "role": "root"}); status != http.StatusBadRequest || !strings.Contains(string(body), "invalid_role") {
			t.Errorf("unknown role: %d %s", status, body)
		}
		dsrAuth := http.Header{"Authorization": {"Bearer " + tok.Token}}
		if status, body = c.do(t, "GET", "/api/v1/purposes", dsrAuth, nil); status != http.StatusForbidden || !strings.Contains(string(body), "wrong_role") {
			t.Errorf("a dsr token on the admin API: %d %s, want 403 wrong_role", status, body)
		}
		if status, body = c.do(t, "GET", "/opendsr/v1/requests/0d4f6c2e-7b8a-4e2f-9c1d-3a5b7c9d1e2f", dsrAuth, nil); status != http.StatusNotFound {
			t.Errorf("a dsr token on the OpenDSR API: %d %s, want 404 for an unknown request", status, body)
		}
		status, body = c.do(t, "GET", "/api/v1/tokens", adminAuth(), nil)
		if status != http.StatusOK || strings.Contains(string(body), tok.Token) || !strings.Contains(string(body), tok.ID) {
			t.Errorf("token list: %d %s (must list the token without its secret)", status, body)
		}

		if status, body = c.putJSON(t, "PUT", "/api/v1/purposes/marketing", map[string]any{"name": "Marketing", "regime": "opt_in"}); status != http.StatusCreated {
			t.Fatalf("purpose: %d %s", status, body)
		}
		if status, body = c.do(t, "DELETE", "/api/v1/tokens/"+tok.ID, adminAuth(), nil); status != http.StatusNoContent {
			t.Fatalf("revoke: %d %s", status, body)
		}
		if status, _ = c.do(t, "GET", "/opendsr/v1/requests/0d4f6c2e-7b8a-4e2f-9c1d-3a5b7c9d1e2f", dsrAuth, nil); status != http.StatusUnauthorized {
			t.Errorf("a revoked token: %d, want 401", status)
		}
		// A failed change is not an operator change.
		if status, _ = c.putJSON(t, "PUT", "/api/v1/purposes/bad", map[string]any{"name": "x", "regime": "sometimes"}); status != http.StatusBadRequest {
			t.Errorf("bad purpose: %d", status)
		}

		status, body = c.do(t, "GET", "/api/v1/audit?limit=2", adminAuth(), nil)
		var page struct {
			Records []struct {
				Kind, Subject, Hash string
				PrevHash            string `json:"prev_hash"`
				Record              struct{ Token, Method, Route, Path string }
			} `json:"records"`
			NextCursor string `json:"next_cursor"`
		}
		if err := json.Unmarshal(body, &page); status != http.StatusOK || err != nil || len(page.Records) != 2 || page.NextCursor == "" {
			t.Fatalf("audit page: %d %s", status, body)
		}
		var routes []string
		for _, r := range page.Records {
			routes = append(routes, r.Subject)
		}
		status, body = c.do(t, "GET", "/api/v1/audit?cursor="+page.NextCursor, adminAuth(), nil)
		first := slices.Clone(page.Records)
		if err := json.Unmarshal(body, &page); status != http.StatusOK || err != nil {
			t.Fatalf("audit next page: %d %s", status, body)
		}
		for _, r := range page.Records {
			routes = append(routes, r.Subject)
		}
		want := "POST /api/v1/tokens,PUT /api/v1/purposes/{key},DELETE /api/v1/tokens/{id}"
		if strings.Join(routes, ",") != want {
			t.Errorf("audited changes %v, want %s", routes, want)
		}
		if first[1].PrevHash != first[0].Hash || first[0].Record.Method != "POST" || first[0].Record.Token == "" {
			t.Errorf("records not chained or incomplete: %+v", first)
		}
		if strings.Contains(string(body), tok.Token) {
			t.Error("the audit log holds a token secret")
		}
		if status, body = c.do(t, "GET", "/api/v1/audit/verify", adminAuth(), nil); status != http.StatusOK || !strings.Contains(string(body), `"intact":true`) {
			t.Errorf("verify: %d %s", status, body)
		}
	})
}
