package sqlstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/sqlstore"
)

func testBootstrap(ws string) sqlstore.Bootstrap {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	return sqlstore.Bootstrap{
		Workspace:    cdp.Workspace{ID: cdp.WorkspaceID(ws), Name: "Default", CreatedAt: now},
		Source:       cdp.Source{ID: cdp.SourceID("src_" + ws), WorkspaceID: cdp.WorkspaceID(ws), Name: "default", CreatedAt: now},
		WriteKeyHash: []byte("wk-" + ws),
		SecretHash:   []byte("secret-" + ws),
		Token:        cdp.APIToken{ID: cdp.TokenID("tok_" + ws), WorkspaceID: cdp.WorkspaceID(ws), Name: "owner", Role: cdp.RoleOwner, CreatedAt: now},
		TokenHash:    []byte("th-" + ws),
	}
}

func TestBootstrapOnce(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		// Several first starts at once: exactly one bootstraps.
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			created int
		)
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := db.Workspaces().Bootstrap(ctx, testBootstrap(string(rune('a'+i))))
				if err != nil {
					t.Errorf("bootstrap %d: %v", i, err)
				}
				if ok {
					mu.Lock()
					created++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if created != 1 {
			t.Fatalf("got %d bootstraps, want 1", created)
		}
		wss, err := db.Workspaces().List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(wss) != 1 {
			t.Fatalf("got %d workspaces, want 1", len(wss))
		}
		ws := string(wss[0].ID)
		src, secret, err := db.Sources().ByWriteKeyHash(ctx, []byte("wk-"+ws))
		if err != nil {
			t.Fatalf("source by write key: %v", err)
		}
		if string(src.WorkspaceID) != ws || string(secret) != "secret-"+ws {
			t.Errorf("got source %+v secret %q, want workspace %s and its secret", src, secret, ws)
		}
		tok, err := db.Tokens().ByHash(ctx, []byte("th-"+ws))
		if err != nil {
			t.Fatalf("token by hash: %v", err)
		}
		if tok.Role != cdp.RoleOwner {
			t.Errorf("got role %q, want owner", tok.Role)
		}
		if !tok.CreatedAt.Equal(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)) {
			t.Errorf("got created_at %v, want 2026-11-28T12:00Z", tok.CreatedAt)
		}
	})
}

func TestLookupsNotFound(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		if _, _, err := db.Sources().ByWriteKeyHash(ctx, []byte("nope")); !cdp.IsKind(err, cdp.NotFound) {
			t.Errorf("source: got %v, want NotFound", err)
		}
		if _, err := db.Tokens().ByHash(ctx, []byte("nope")); !cdp.IsKind(err, cdp.NotFound) {
			t.Errorf("token: got %v, want NotFound", err)
		}
		if _, err := db.Workspaces().Get(ctx, "nope"); !cdp.IsKind(err, cdp.NotFound) {
			t.Errorf("workspace: got %v, want NotFound", err)
		}
	})
}

func TestDuplicateWriteKeyConflicts(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		b := testBootstrap("ws1")
		if _, err := db.Workspaces().Bootstrap(ctx, b); err != nil {
			t.Fatal(err)
		}
		dup := cdp.Source{ID: "src_other", WorkspaceID: "ws1", Name: "other", CreatedAt: time.Now()}
		err := db.Sources().Create(ctx, dup, b.WriteKeyHash, []byte("x"))
		if !cdp.IsKind(err, cdp.Conflict) {
			t.Fatalf("got %v, want Conflict", err)
		}
	})
}
