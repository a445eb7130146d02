package warehouse

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/eventjson"
	"github.com/custos-cdp/custos/internal/forward"
)

// Type is the destination type this package delivers to.
const Type = cdp.DestinationWarehouse

// DefaultSchema is the schema of the tables when the credentials name
// none.
const DefaultSchema = "custos"

// maxConns bounds the connections of one destination.
const maxConns = 4

// defaultTimeout bounds a batch when the destination sets no timeout.
const defaultTimeout = 10 * time.Second

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Sender loads batches into one database schema.
type Sender struct {
	pool    *pgxpool.Pool
	schema  string
	sql     statements
	timeout time.Duration

	mu       sync.Mutex
	migrated bool
}

var _ forward.Sender = (*Sender)(nil)

type credentials struct {
	URL    string `json:"url"`
	Schema string `json:"schema"`
}

// New returns the sender of a warehouse destination. It does not connect:
// the first Send does, and prepares the schema. Credentials without a
// usable postgres URL, or with an invalid schema name, are an Invalid
// *cdp.Error whose message never repeats the URL.
func New(cfg forward.SenderConfig) (*Sender, error) {
	var c credentials
	dec := json.NewDecoder(bytes.NewReader(cfg.Credentials))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, cdp.Reason(cdp.Invalid, "invalid_credentials", `credentials must be a JSON object {"url": "postgres://...", "schema": "..."}`)
	}
	if !strings.HasPrefix(c.URL, "postgres://") && !strings.HasPrefix(c.URL, "postgresql://") {
		return nil, cdp.Reason(cdp.Invalid, "invalid_credentials", "credentials need a url starting with postgres:// or postgresql://")
	}
	pc, err := pgxpool.ParseConfig(c.URL)
	if err != nil {
		// The parse error may quote the URL, password included: it stays out.
		return nil, cdp.Reason(cdp.Invalid, "invalid_credentials", "the credentials url is not a valid PostgreSQL connection URL")
	}
	if c.Schema == "" {
		c.Schema = DefaultSchema
	}
	if !schemaName.MatchString(c.Schema) || strings.HasPrefix(c.Schema, "pg_") {
		return nil, cdp.Reason(cdp.Invalid, "invalid_credentials", "schema must be a lower-case identifier ([a-z_][a-z0-9_]*, at most 63 characters, not starting with pg_)")
	}
	pc.MaxConns = maxConns
	pc.MinConns = 0
	if cfg.Dial != nil {
		pc.ConnConfig.DialFunc = cfg.Dial
	}
	if _, ok := pc.ConnConfig.RuntimeParams["application_name"]; !ok {
		pc.ConnConfig.RuntimeParams["application_name"] = "custos-warehouse"
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		return nil, cdp.Reason(cdp.Invalid, "invalid_credentials", "the credentials url is not usable")
	}
	timeout := cfg.Destination.Settings.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	return &Sender{pool: pool, schema: c.Schema, sql: newStatements(quote(c.Schema)), timeout: timeout}, nil
}

// Factory is New as a forward.Factory.
func Factory(cfg forward.SenderConfig) (forward.Sender, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func quote(schema string) string { return pgx.Identifier{schema}.Sanitize() }

// Close closes the connections.
func (s *Sender) Close() error {
	s.pool.Close()
	return nil
}

// statements are the sender's SQL, qualified by its schema.
type statements struct {
	insertEvent, upsertProfile, insertConsent string
	eraseEvents, eraseProfile, eraseConsent   string
}

func newStatements(q string) statements {
	return statements{
		insertEvent: `INSERT INTO ` + q + `.events (message_id, source_id, profile_id, type, event, user_id, anonymous_id,
			identities, properties, traits, context, ip, timestamp, received_at, group_id, previous_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
			ON CONFLICT (message_id) DO NOTHING`,
		// Last write wins by event time: a row updated by a later event
		// is left alone.
		upsertProfile: `INSERT INTO ` + q + `.profiles AS p (profile_id, identities, traits, updated_at)
			VALUES ($1, $2, coalesce($3::jsonb, '{}') - $4::text[], $5)
			ON CONFLICT (profile_id) DO UPDATE SET
				traits = (p.traits || excluded.traits) - $4::text[],
				identities = excluded.identities,
				updated_at = excluded.updated_at
			WHERE p.updated_at <= excluded.updated_at`,
		insertConsent: `INSERT INTO ` + q + `.consent_changes (entry_id, profile_id, purpose, old_state, new_state,
			collected_at, received_at, source, document)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (entry_id) DO NOTHING`,
		eraseEvents:  `DELETE FROM ` + q + `.events WHERE profile_id = $1`,
		eraseProfile: `DELETE FROM ` + q + `.profiles WHERE profile_id = $1`,
		eraseConsent: `DELETE FROM ` + q + `.consent_changes WHERE profile_id = $1`,
	}
}

// Send loads the batch in one transaction, preparing the schema first if
// this sender has not yet. The error is a *forward.SendError.
func (s *Sender) Send(ctx context.Context, batch []cdp.Delivery) error {
	if len(batch) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for i := range batch {
		if err := s.queue(b, &batch[i]); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.ensureSchema(ctx); err != nil {
		se := classify("preparing the warehouse schema", err)
		se.Retryable = true // the batch is not at fault
		return se
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return classify("loading the batch", err)
	}
	return nil
}

func (s *Sender) ensureSchema(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.migrated {
		return nil
	}
	if err := migrate(ctx, s.pool, s.schema, migrations); err != nil {
		return err
	}
	s.migrated = true
	return nil
}

// queue adds the statements of one delivery to b.
func (s *Sender) queue(b *pgx.Batch, d *cdp.Delivery) error {
	switch {
	case d.Kind == cdp.DeliverEvent && d.Event != nil:
		return s.queueEvent(b, d)
	case d.Kind == cdp.DeliverConsent && d.Consent != nil:
		c := d.Consent
		b.Queue(s.sql.insertConsent, string(c.Entry.ID), string(d.Profile), string(c.Entry.Purpose), string(c.Old), string(c.New),
			when(c.Entry.CollectedAt), when(c.Entry.ReceivedAt), text(string(c.Entry.Source)), text(c.Entry.Document))
		return nil
	case d.Kind == cdp.DeliverErasure:
		b.Queue(s.sql.eraseEvents, string(d.Profile))
		b.Queue(s.sql.eraseProfile, string(d.Profile))
		b.Queue(s.sql.eraseConsent, string(d.Profile))
		return nil
	}
	return forward.Permanent(fmt.Sprintf("delivery %s: kind %q without its item", d.Key, d.Kind), nil)
}

func (s *Sender) queueEvent(b *pgx.Batch, d *cdp.Delivery) error {
	ev := d.Event
	if ev.MessageID == "" {
		return forward.Permanent(fmt.Sprintf("delivery %s: an event without a message id", d.Key), nil)
	}
	ids, err := identities(ev.Identities)
	if err != nil {
		return forward.Permanent(fmt.Sprintf("message %s: encoding identities failed", ev.MessageID), err)
	}
	user, _ := ev.Identity(cdp.UserID)
	anon, _ := ev.Identity(cdp.AnonymousID)
	b.Queue(s.sql.insertEvent, ev.MessageID, string(ev.SourceID), string(d.Profile), string(ev.Type), text(ev.Name),
		text(user.Value), text(anon.Value), ids, jsonb(ev.Properties), jsonb(ev.Traits), jsonb(ev.Context), text(ev.IP),
		when(ev.Timestamp), when(ev.ReceivedAt), text(ev.GroupID), text(ev.PreviousID))
	if ev.Type != cdp.Identify {
		return nil
	}
	person := d.Identities
	if len(person) == 0 {
		person = ev.Identities
	}
	pids, err := identities(person)
	if err != nil {
		return forward.Permanent(fmt.Sprintf("message %s: encoding identities failed", ev.MessageID), err)
	}
	at := ev.Timestamp
	if at.IsZero() {
		at = ev.ReceivedAt
	}
	deleted := ev.DeletedTraits
	if deleted == nil {
		deleted = []string{} // NULL would erase every trait: jsonb - NULL is NULL
	}
	b.Queue(s.sql.upsertProfile, string(d.Profile), pids, jsonb(ev.Traits), deleted, at)
	return nil
}

// identities is the JSON array of ids.
func identities(ids []cdp.Identity) (json.RawMessage, error) {
	out := make([]eventjson.Identity, len(ids))
	for i, id := range ids {
		out[i] = eventjson.Identity{Type: string(id.Type), Value: id.Value}
	}
	return json.Marshal(out)
}

// jsonb is a JSONB parameter: NULL for nothing.
func jsonb(raw json.RawMessage) any {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	return raw
}

// text is a TEXT parameter: NULL for the empty string.
func text(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// when is a TIMESTAMPTZ parameter: NULL for the zero time.
func when(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}
