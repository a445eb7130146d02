package main

import (
	"bytes"
	"context"
	"database/sql"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/sqlstore"
	"github.com/custos-cdp/custos/internal/testenv"
)

// Canary values: personal data that must never be readable at rest.
var canaries = []string{
	"canary.zq7@example.org",   // e-mail
	"+15550199887", "0199 887", // phone, normalised and as sent
	"trait-canary-81xq", // trait value
	"prop-canary-7hh2",  // event property
	"198.51.100.77",     // IP address
	"idfv-canary-52kd",  // device id
	"crm-canary-90zt",   // custom identity (context.externalIds)
	"group-canary-3mbv", // group trait
}

// TestNoPlaintextAtRest sends personal data through a running server and
// reads every byte it stored (the SQLite file with its WAL and the log's
// files; on PostgreSQL every row of every table, and the external NATS
// server's store for our stream if it is on this machine): no canary may
// appear, neither before nor after the person's key is destroyed.
func TestNoPlaintextAtRest(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		dir := t.TempDir()
		srv := startInProcess(t, be, dir)
		c := newClient(srv.url)
		identify := `{"userId":"canary-user","messageId":"c1","traits":{"email":"Canary.ZQ7@example.org","phone":"+1 555 0199 887","favourite":"trait-canary-81xq"},"context":{"ip":"198.51.100.77"}}`
		if status, body := c.do(t, "POST", "/v1/identify", segmentAuth(), []byte(identify)); status != 200 {
			t.Fatalf("identify: %d %s", status, body)
		}
		track := `{"userId":"canary-user","messageId":"c2","event":"Bought","properties":{"note":"prop-canary-7hh2"},
			"context":{"device":{"id":"IDFV-CANARY-52KD","type":"ios"},"externalIds":[{"id":"crm-canary-90zt","type":"crm_id","collection":"users","encoding":"none"}]}}`
		if status, body := c.do(t, "POST", "/v1/track", segmentAuth(), []byte(track)); status != 200 {
			t.Fatalf("track: %d %s", status, body)
		}
		group := `{"userId":"canary-user","messageId":"c3","groupId":"acct-1","traits":{"name":"group-canary-3mbv"}}`
		if status, body := c.do(t, "POST", "/v1/group", segmentAuth(), []byte(group)); status != 200 {
			t.Fatalf("group: %d %s", status, body)
		}
		c.waitForEvents(t, "every event", 20*time.Second, func(evs []listedEvent) bool { return len(evs) == 3 })
		status, body := c.do(t, "GET", "/api/v1/profiles?identity="+url.QueryEscape("email:canary.zq7@example.org"), adminAuth(), nil)
		for _, want := range []string{"trait-canary-81xq", "idfv-canary-52kd", "crm-canary-90zt", "group-canary-3mbv"} {
			if status != http.StatusOK || !strings.Contains(string(body), want) {
				t.Fatalf("profile by e-mail lacks %s: %d %s", want, status, body)
			}
		}
		if err := srv.stop(t); err != nil {
			t.Fatal(err)
		}

		scan := func(when string) {
			t.Helper()
			for _, hit := range scanAtRest(t, be, dir) {
				t.Errorf("%s: plaintext %q found in %s", when, hit.canary, hit.where)
			}
		}
		scan("before shredding")

		// Shred the person: destroy their data key.
		ctx := context.Background()
		cfg, err := parseConfig("serve", be.args(dir, "127.0.0.1:0"), fixedEnv, os.Stderr)
		if err != nil {
			t.Fatal(err)
		}
		db, err := openDB(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		v, err := openVault(cfg, db)
		if err != nil {
			t.Fatal(err)
		}
		profiles := sqlstore.NewProfiles(db, v)
		wss, err := db.Workspaces().List(ctx)
		if err != nil || len(wss) != 1 {
			t.Fatalf("workspaces: %v %v", wss, err)
		}
		ws := wss[0].ID
		id, err := profiles.Find(ctx, ws, cdp.Identity{Type: cdp.Email, Value: "canary.zq7@example.org"})
		if err != nil {
			t.Fatal(err)
		}
		if err := profiles.DestroyKey(ctx, ws, id); err != nil {
			t.Fatal(err)
		}
		if _, err := sqlstore.NewProfiles(db, v).Get(ctx, ws, id); err == nil {
			t.Error("the profile is readable after its key was destroyed")
		}
		scan("after shredding")
	})
}

type canaryHit struct{ canary, where string }

func findCanaries(b []byte, where string) []canaryHit {
	var hits []canaryHit
	lower := bytes.ToLower(b)
	for _, c := range canaries {
		if bytes.Contains(lower, bytes.ToLower([]byte(c))) {
			hits = append(hits, canaryHit{c, where})
		}
	}
	return hits
}

func scanAtRest(t *testing.T, be backend, dataDir string) []canaryHit {
	t.Helper()
	var hits []canaryHit
	scanDir := func(root string) {
		_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return nil
			}
			hits = append(hits, findCanaries(b, path)...)
			return nil
		})
	}
	scanDir(dataDir)
	if be.databaseURL != "" {
		hits = append(hits, scanPostgres(t, be.databaseURL)...)
	}
	if be.natsURL != "" {
		// The external server of this machine keeps its store here; scan our
		// stream's files if we can see them.
		matches, _ := filepath.Glob("/var/lib/nats-server/jetstream/*/streams/" + be.natsPrefix + "_*")
		if len(matches) == 0 && os.Getenv(testenv.RequireVar) == "1" {
			// In CI the server runs here: not finding the store means the
			// scan would prove nothing.
			t.Fatalf("no store of stream %s_* under /var/lib/nats-server", be.natsPrefix)
		}
		for _, m := range matches {
			scanDir(m)
		}
	}
	return hits
}

func scanPostgres(t *testing.T, dbURL string) []canaryHit {
	t.Helper()
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT tablename FROM pg_tables WHERE schemaname = 'public'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	if len(tables) < 10 {
		t.Fatalf("found %d tables: the scan is broken", len(tables))
	}
	var hits []canaryHit
	for _, table := range tables {
		rows, err := db.Query(`SELECT * FROM ` + table)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				switch x := v.(type) {
				case []byte:
					hits = append(hits, findCanaries(x, "table "+table)...)
				case string:
					hits = append(hits, findCanaries([]byte(x), "table "+table)...)
				}
			}
		}
		rows.Close()
	}
	return hits
}
