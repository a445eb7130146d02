package warehouse

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/destinations/internal/deliverytest"
	"github.com/custos-cdp/custos/internal/forward"
	"github.com/custos-cdp/custos/internal/testenv"
)

// warehouse is a test database and a connection to inspect it.
type warehouse struct {
	url   string
	db    *pgx.Conn
	dials atomic.Int64 // connections the senders opened through cfg.Dial
}

func newWarehouse(t *testing.T) *warehouse {
	t.Helper()
	url := testenv.PostgresURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { db.Close(context.Background()) })
	return &warehouse{url: url, db: db}
}

// sender returns a sender loading into schema ("" for the default),
// dialling through a counting dialer as the guarded one would.
func (w *warehouse) sender(t *testing.T, schema string) *Sender {
	t.Helper()
	creds, _ := json.Marshal(credentials{URL: w.url, Schema: schema})
	var d net.Dialer
	s, err := New(forward.SenderConfig{
		Destination: cdp.Destination{ID: deliverytest.Destination, Type: Type},
		Credentials: creds,
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			w.dials.Add(1)
			return d.DialContext(ctx, network, address)
		},
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func (w *warehouse) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	if err := w.db.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func send(t *testing.T, s *Sender, batch []cdp.Delivery) {
	t.Helper()
	if err := s.Send(context.Background(), batch); err != nil {
		t.Fatalf("Send: %v", err)
	}
}

func TestLoadsBatch(t *testing.T) {
	w := newWarehouse(t)
	s := w.sender(t, "")
	batch := deliverytest.Batch()
	batch = batch[:len(batch)-1] // without the erasure
	send(t, s, batch)
	if w.dials.Load() == 0 {
		t.Errorf("dials through cfg.Dial: got 0, want at least 1")
	}

	tables := w.count(t, `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'custos'
		AND table_name IN ('events', 'profiles', 'consent_changes', 'custos_schema_versions')`)
	if tables != 4 {
		t.Errorf("tables in schema custos: got %d, want 4", tables)
	}
	if got := w.count(t, `SELECT count(*) FROM custos.events`); got != 6 {
		t.Errorf("events: got %d, want 6", got)
	}

	var (
		src, profile, typ, user, anon, ip string
		event, group, previous            *string
		ids, traits, ctx                  string
		ts, received, loaded              time.Time
	)
	err := w.db.QueryRow(context.Background(), `SELECT source_id, profile_id, type, event, user_id, anonymous_id, identities::text,
		traits::text, context::text, ip, timestamp, received_at, loaded_at, group_id, previous_id
		FROM custos.events WHERE message_id = 'msg-identify'`).
		Scan(&src, &profile, &typ, &event, &user, &anon, &ids, &traits, &ctx, &ip, &ts, &received, &loaded, &group, &previous)
	if err != nil {
		t.Fatalf("read identify: %v", err)
	}
	ev := batch[0].Event
	if src != "src_web" || profile != "prf_alice" || typ != "identify" || event != nil || user != "u-1" || anon != "anon-1" || ip != "203.0.113.9" ||
		!ts.Equal(ev.Timestamp.Truncate(time.Microsecond)) || !received.Equal(ev.ReceivedAt.Truncate(time.Microsecond)) || loaded.IsZero() || group != nil || previous != nil {
		t.Errorf("identify row: got %s %s %s %v %s %s %s %v %v %v %v %v", src, profile, typ, event, user, anon, ip, ts, received, loaded, group, previous)
	}
	if want := `[{"type": "user_id", "value": "u-1"}, {"type": "anonymous_id", "value": "anon-1"}, {"type": "email", "value": "alice@example.com"}]`; ids != want {
		t.Errorf("identities: got %s, want %s", ids, want)
	}
	if want := `{"name": "Alice", "plan": "pro", "email": "alice@example.com"}`; traits != want {
		t.Errorf("traits: got %s, want %s", traits, want)
	}

	rows := []struct {
		id, column, want string
	}{
		{"msg-track", "event", "Order Completed"},
		{"msg-track", "properties->>'total'", "42.5"},
		{"msg-page", "event", "Pricing"},
		{"msg-page", "anonymous_id", "anon-1"},
		{"msg-screen", "coalesce(user_id, 'none')", "none"},
		{"msg-group", "group_id", "acme"},
		{"msg-group", "traits->>'name'", "Acme Inc"},
		{"msg-alias", "previous_id", "anon-1"},
	}
	for _, r := range rows {
		var got string
		if err := w.db.QueryRow(context.Background(), `SELECT `+r.column+` FROM custos.events WHERE message_id = $1`, r.id).Scan(&got); err != nil {
			t.Fatalf("%s.%s: %v", r.id, r.column, err)
		}
		if got != r.want {
			t.Errorf("%s.%s: got %q, want %q", r.id, r.column, got, r.want)
		}
	}

	var ptraits string
	if err := w.db.QueryRow(context.Background(), `SELECT traits::text FROM custos.profiles WHERE profile_id = 'prf_alice'`).Scan(&ptraits); err != nil {
		t.Fatalf("read profile: %v", err)
	}
	if want := `{"name": "Alice", "plan": "pro", "email": "alice@example.com"}`; ptraits != want {
		t.Errorf("profile traits: got %s, want %s (group traits stay on the group event)", ptraits, want)
	}

	var purpose, from, to, source, doc string
	var collected time.Time
	err = w.db.QueryRow(context.Background(), `SELECT purpose, old_state, new_state, source, document, collected_at
		FROM custos.consent_changes WHERE entry_id = 'cen_1' AND profile_id = 'prf_alice'`).Scan(&purpose, &from, &to, &source, &doc, &collected)
	if err != nil {
		t.Fatalf("read consent change: %v", err)
	}
	c := batch[6].Consent
	if purpose != "marketing" || from != "granted" || to != "withdrawn" || source != "server" || doc != "privacy-v3" || !collected.Equal(c.Entry.CollectedAt.Truncate(time.Microsecond)) {
		t.Errorf("consent change: got %s %s %s %s %s %v", purpose, from, to, source, doc, collected)
	}
}

func TestResendInsertsNothing(t *testing.T) {
	w := newWarehouse(t)
	s := w.sender(t, "")
	batch := deliverytest.Batch()
	batch = batch[:len(batch)-1]
	send(t, s, batch)
	snapshot := func() string {
		var out string
		err := w.db.QueryRow(context.Background(), `SELECT
			(SELECT json_agg(e ORDER BY message_id) FROM custos.events e)::text ||
			(SELECT json_agg(p) FROM custos.profiles p)::text ||
			(SELECT json_agg(c) FROM custos.consent_changes c)::text`).Scan(&out)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	before := snapshot()
	send(t, s, batch)
	send(t, w.sender(t, ""), batch) // another node
	if after := snapshot(); after != before {
		t.Errorf("after resending: got\n%s\nwant unchanged\n%s", after, before)
	}
	if got := w.count(t, `SELECT count(*) FROM custos.events`); got != 6 {
		t.Errorf("events: got %d, want 6", got)
	}
}

func identify(key, id string, at time.Time, traits string, deleted ...string) cdp.Delivery {
	return deliverytest.Event(key, deliverytest.Alice, deliverytest.AliceIdentities, cdp.Event{MessageID: id, Type: cdp.Identify,
		Identities: []cdp.Identity{{Type: cdp.UserID, Value: "u-1"}}, Traits: json.RawMessage(traits), DeletedTraits: deleted, Timestamp: at})
}

func TestTraitsLastWriteWins(t *testing.T) {
	w := newWarehouse(t)
	s := w.sender(t, "")
	t0 := deliverytest.T0
	steps := []struct {
		name  string
		batch []cdp.Delivery
		want  string
	}{
		{"first identify", []cdp.Delivery{identify("k1", "m1", t0.Add(2*time.Minute), `{"plan":"pro","name":"Alice"}`)},
			`{"name": "Alice", "plan": "pro"}`},
		{"older identify arriving later", []cdp.Delivery{identify("k2", "m2", t0.Add(time.Minute), `{"plan":"free","age":30}`)},
			`{"name": "Alice", "plan": "pro"}`},
		{"newer identify merges", []cdp.Delivery{identify("k3", "m3", t0.Add(3*time.Minute), `{"plan":"team"}`)},
			`{"name": "Alice", "plan": "team"}`},
		{"same batch, out of order", []cdp.Delivery{
			identify("k4", "m4", t0.Add(5*time.Minute), `{"plan":"enterprise"}`),
			identify("k5", "m5", t0.Add(4*time.Minute), `{"plan":"starter"}`),
		}, `{"name": "Alice", "plan": "enterprise"}`},
		{"deleted trait", []cdp.Delivery{identify("k6", "m6", t0.Add(6*time.Minute), `{"seats":3}`, "name")},
			`{"plan": "enterprise", "seats": 3}`},
		{"deletion without traits", []cdp.Delivery{identify("k7", "m7", t0.Add(7*time.Minute), ``, "seats")},
			`{"plan": "enterprise"}`},
	}
	for _, st := range steps {
		send(t, s, st.batch)
		var got string
		var updated time.Time
		if err := w.db.QueryRow(context.Background(), `SELECT traits::text, updated_at FROM custos.profiles WHERE profile_id = 'prf_alice'`).Scan(&got, &updated); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got != st.want {
			t.Errorf("%s: got traits %s, want %s", st.name, got, st.want)
		}
	}
}

func TestErasure(t *testing.T) {
	w := newWarehouse(t)
	s := w.sender(t, "erasure_test")
	bob := []cdp.Identity{{Type: cdp.UserID, Value: "u-2"}}
	batch := deliverytest.Batch()
	batch = batch[:len(batch)-1]
	batch = append(batch,
		deliverytest.Event("b1", deliverytest.Bob, bob, cdp.Event{MessageID: "bob-identify", Type: cdp.Identify, Identities: bob,
			Traits: json.RawMessage(`{"name":"Bob"}`), Timestamp: deliverytest.T0}),
		deliverytest.Event("b2", deliverytest.Bob, bob, cdp.Event{MessageID: "bob-track", Type: cdp.Track, Name: "Opened", Identities: bob, Timestamp: deliverytest.T0}),
		deliverytest.Consent("b3", deliverytest.Bob, bob, "cen_bob", "marketing", cdp.Unknown, cdp.Granted, deliverytest.T0),
	)
	send(t, s, batch)
	counts := func(p cdp.ProfileID) [3]int {
		return [3]int{
			w.count(t, `SELECT count(*) FROM erasure_test.events WHERE profile_id = $1`, string(p)),
			w.count(t, `SELECT count(*) FROM erasure_test.profiles WHERE profile_id = $1`, string(p)),
			w.count(t, `SELECT count(*) FROM erasure_test.consent_changes WHERE profile_id = $1`, string(p)),
		}
	}
	if got, want := counts(deliverytest.Alice), [3]int{6, 1, 1}; got != want {
		t.Fatalf("Alice's rows before: got %v, want %v", got, want)
	}
	send(t, s, []cdp.Delivery{deliverytest.Erasure("k-erase", deliverytest.Alice, deliverytest.AliceIdentities)})
	if got, want := counts(deliverytest.Alice), [3]int{0, 0, 0}; got != want {
		t.Errorf("Alice's rows after her erasure: got %v, want %v", got, want)
	}
	if got, want := counts(deliverytest.Bob), [3]int{2, 1, 1}; got != want {
		t.Errorf("Bob's rows after Alice's erasure: got %v, want %v", got, want)
	}
	send(t, s, []cdp.Delivery{deliverytest.Erasure("k-erase-2", "prf_nobody", nil)})
	send(t, s, []cdp.Delivery{deliverytest.Erasure("k-erase", deliverytest.Alice, deliverytest.AliceIdentities)})
}

func TestRefusedContentIsPermanentAndRolledBack(t *testing.T) {
	w := newWarehouse(t)
	s := w.sender(t, "")
	bad := deliverytest.Event("k2", deliverytest.Alice, nil, cdp.Event{MessageID: "msg-nul", Type: cdp.Track, Name: "Bad",
		Properties: json.RawMessage(`{"email":"` + deliverytest.Email + `","x":"\u0000"}`), Timestamp: deliverytest.T0})
	good := identify("k1", "msg-good", deliverytest.T0, `{"plan":"pro"}`)
	err := s.Send(context.Background(), []cdp.Delivery{good, bad})
	var se *forward.SendError
	if !errors.As(err, &se) {
		t.Fatalf("got %v, want a *forward.SendError", err)
	}
	if se.Retryable {
		t.Errorf("retryable: got true, want false")
	}
	if !strings.Contains(se.Message, "SQLSTATE 22") || strings.Contains(se.Message, deliverytest.Email) {
		t.Errorf("message: got %q, want the SQLSTATE and no value", se.Message)
	}
	if got := w.count(t, `SELECT count(*) FROM custos.events`); got != 0 {
		t.Errorf("events after a refused batch: got %d, want 0 (one transaction)", got)
	}
	if got := w.count(t, `SELECT count(*) FROM custos.profiles`); got != 0 {
		t.Errorf("profiles after a refused batch: got %d, want 0 (one transaction)", got)
	}
	send(t, s, []cdp.Delivery{good})
	if got := w.count(t, `SELECT count(*) FROM custos.events`); got != 1 {
		t.Errorf("events after sending the good delivery alone: got %d, want 1", got)
	}
}

func TestMigrations(t *testing.T) {
	w := newWarehouse(t)
	s := w.sender(t, "evolve")
	ctx := context.Background()
	columns := func() int {
		return w.count(t, `SELECT count(*) FROM information_schema.columns WHERE table_schema = 'evolve' AND table_name = 'events'
			AND column_name IN ('group_id', 'previous_id')`)
	}

	// A warehouse made by a version that knew only migration 1.
	if err := migrate(ctx, s.pool, "evolve", migrations[:1]); err != nil {
		t.Fatalf("migrate to version 1: %v", err)
	}
	if got := columns(); got != 0 {
		t.Fatalf("version 2 columns at version 1: got %d, want 0", got)
	}
	if _, err := w.db.Exec(ctx, `INSERT INTO evolve.events (message_id, source_id, profile_id, type) VALUES ('old', 'src', 'prf', 'track')`); err != nil {
		t.Fatal(err)
	}

	send(t, s, deliverytest.Batch()[4:5]) // a group event: needs group_id
	if got := columns(); got != 2 {
		t.Errorf("version 2 columns after the upgrade: got %d, want 2", got)
	}
	if got := w.count(t, `SELECT count(*) FROM evolve.events WHERE message_id = 'old' OR group_id = 'acme'`); got != 2 {
		t.Errorf("rows after the upgrade: got %d, want the old one and the group event", got)
	}
	versions := func() string {
		var out string
		if err := w.db.QueryRow(ctx, `SELECT string_agg(version || ':' || name || '@' || applied_at, ';' ORDER BY version) FROM evolve.custos_schema_versions`).Scan(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	before := versions()
	if !strings.HasPrefix(before, "1:") || !strings.Contains(before, ";2:") || strings.Count(before, ";") != len(migrations)-1 {
		t.Fatalf("versions: got %s, want 1 and 2", before)
	}
	for range 2 {
		if err := migrate(ctx, s.pool, "evolve", migrations); err != nil {
			t.Fatalf("migrate again: %v", err)
		}
	}
	send(t, w.sender(t, "evolve"), deliverytest.Batch()[:1]) // a new sender migrates on first use
	if after := versions(); after != before {
		t.Errorf("versions after re-running: got %s, want unchanged %s", after, before)
	}
}

func TestConcurrentMigrations(t *testing.T) {
	w := newWarehouse(t)
	const nodes = 4
	senders := make([]*Sender, nodes)
	for i := range senders {
		senders[i] = w.sender(t, "together")
	}
	var wg sync.WaitGroup
	errs := make([]error, nodes)
	for i, s := range senders {
		wg.Go(func() { errs[i] = s.Send(context.Background(), deliverytest.Batch()[:2]) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("node %d: got %v, want nil", i, err)
		}
	}
	if got := w.count(t, `SELECT count(*) FROM together.custos_schema_versions`); got != len(migrations) {
		t.Errorf("versions: got %d, want %d", got, len(migrations))
	}
	if got := w.count(t, `SELECT count(*) FROM together.events`); got != 2 {
		t.Errorf("events: got %d, want 2", got)
	}
}

func TestUnreachableIsRetryable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s, err := New(forward.SenderConfig{
		Destination: cdp.Destination{ID: "dst_1", Type: Type, Settings: cdp.DestinationSettings{Timeout: 5 * time.Second}},
		Credentials: []byte(`{"url":"postgres://custos:secret-password@` + addr + `/db?sslmode=disable"}`),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer s.Close()
	err = s.Send(context.Background(), deliverytest.Batch())
	var se *forward.SendError
	if !errors.As(err, &se) || !se.Retryable {
		t.Fatalf("got %v, want a retryable send error", err)
	}
	if strings.Contains(se.Message, "secret-password") || strings.Contains(se.Message, addr) {
		t.Errorf("message: got %q, want neither the password nor the address", se.Message)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name          string
		err           error
		wantRetryable bool
		wantInMessage string
	}{
		{"serialization failure", &pgconn.PgError{Code: "40001"}, true, "SQLSTATE 40001"},
		{"deadlock", &pgconn.PgError{Code: "40P01"}, true, "SQLSTATE 40P01"},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, true, "SQLSTATE 57P01"},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true, "SQLSTATE 53300"},
		{"bad password", &pgconn.PgError{Code: "28P01"}, true, "SQLSTATE 28P01"},
		{"missing privilege", &pgconn.PgError{Code: "42501"}, true, "SQLSTATE 42501"},
		{"unique violation", &pgconn.PgError{Code: "23505", Detail: "Key (x)=(alice@example.com)"}, false, "SQLSTATE 23505"},
		{"invalid json", &pgconn.PgError{Code: "22P02", Message: "invalid input syntax for type json: alice@example.com"}, false, "SQLSTATE 22P02"},
		{"row too big", &pgconn.PgError{Code: "54000"}, false, "SQLSTATE 54000"},
		{"undefined column", &pgconn.PgError{Code: "42703"}, false, "SQLSTATE 42703"},
		{"wrapped", errors.Join(errors.New("batch"), &pgconn.PgError{Code: "23502"}), false, "SQLSTATE 23502"},
		{"deadline", context.DeadlineExceeded, true, "timeout"},
		{"refused", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, true, "connection failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			se := classify("loading the batch", tt.err)
			if se.Retryable != tt.wantRetryable || !strings.Contains(se.Message, tt.wantInMessage) {
				t.Errorf("got retryable %v message %q, want %v and %q", se.Retryable, se.Message, tt.wantRetryable, tt.wantInMessage)
			}
			if strings.Contains(se.Message, "alice") {
				t.Errorf("message: got %q, want no value", se.Message)
			}
		})
	}
}

func TestFactory(t *testing.T) {
	tests := []struct {
		name    string
		creds   string
		wantErr bool
	}{
		{"url", `{"url":"postgres://u:p@db.example.com:5432/analytics?sslmode=verify-full"}`, false},
		{"postgresql scheme and schema", `{"url":"postgresql://u@db.example.com/analytics","schema":"custos_prod"}`, false},
		{"no credentials", ``, true},
		{"no url", `{"schema":"custos"}`, true},
		{"keyword form", `{"url":"host=db.example.com user=u password=p"}`, true},
		{"mysql", `{"url":"mysql://u:p@db.example.com/analytics"}`, true},
		{"bad url", `{"url":"postgres://u:p@db.example.com:notaport/x"}`, true},
		{"upper-case schema", `{"url":"postgres://db.example.com/x","schema":"Custos"}`, true},
		{"schema with a quote", `{"url":"postgres://db.example.com/x","schema":"a\"b"}`, true},
		{"schema injection", `{"url":"postgres://db.example.com/x","schema":"x; DROP TABLE y"}`, true},
		{"pg_ schema", `{"url":"postgres://db.example.com/x","schema":"pg_custos"}`, true},
		{"long schema", `{"url":"postgres://db.example.com/x","schema":"` + strings.Repeat("a", 64) + `"}`, true},
		{"unknown field", `{"url":"postgres://db.example.com/x","password":"p"}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Factory(forward.SenderConfig{Destination: cdp.Destination{ID: "dst_1", Type: Type}, Credentials: []byte(tt.creds)})
			if !tt.wantErr {
				if err != nil || s == nil {
					t.Fatalf("got %v, %v, want a sender", s, err)
				}
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
				return
			}
			if s != nil || !cdp.IsKind(err, cdp.Invalid) {
				t.Fatalf("got %v, %v, want no sender and an invalid error", s, err)
			}
			if strings.Contains(err.Error(), "u:p@") || strings.Contains(err.Error(), "password=p") {
				t.Errorf("got %q, want an error that does not repeat the url", err)
			}
		})
	}
}
