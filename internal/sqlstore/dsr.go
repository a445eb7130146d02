package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
)

// DSRs stores data subject requests, their destinations' states, status
// callbacks, suppressions and the erasure itself.
type DSRs struct{ p *Profiles }

// DSRs returns the data subject request store.
func (s *Profiles) DSRs() *DSRs { return &DSRs{p: s} }

func dsrAD(ws cdp.WorkspaceID, id string) []byte {
	return []byte("custos/dsr/" + string(ws) + "/" + id)
}

type dsrIdentityJSON struct {
	Type        string `json:"t"`
	RequestType string `json:"rt"`
	Format      string `json:"f"`
	Value       string `json:"v"`
}

const dsrColumns = `workspace_id, id, regulation, type, status, fingerprint, identities_sealed, identity_summary, callback_urls,
	submitted_at, received_at, expected_at, start_after, deadlines, results_count, results_expires_at, outcome,
	started_at, completed_at, cancelled_at, updated_at`

func nullMicros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return micros(t)
}

func timeOf(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromMicros(n.Int64)
}

func (s *DSRs) scan(row interface{ Scan(...any) error }) (cdp.DSR, error) {
	var (
		d                                           cdp.DSR
		sealed                                      []byte
		callbacks, deadlines, outcome               string
		submitted, received, expected, startAfter   int64
		updated                                     int64
		count, resultsExp, started, completed, canc sql.NullInt64
	)
	err := row.Scan(&d.WorkspaceID, &d.ID, &d.Regulation, &d.Type, &d.Status, &d.Fingerprint, &sealed, &d.IdentitySummary, &callbacks,
		&submitted, &received, &expected, &startAfter, &deadlines, &count, &resultsExp, &outcome, &started, &completed, &canc, &updated)
	if err != nil {
		return d, err
	}
	_ = json.Unmarshal([]byte(callbacks), &d.CallbackURLs)
	d.Deadlines, d.Outcome = json.RawMessage(deadlines), json.RawMessage(outcome)
	d.SubmittedAt, d.ReceivedAt, d.ExpectedAt, d.StartAfter = fromMicros(submitted), fromMicros(received), fromMicros(expected), fromMicros(startAfter)
	d.ResultsCount, d.ResultsExpires = int(count.Int64), timeOf(resultsExp)
	d.StartedAt, d.CompletedAt, d.CancelledAt, d.UpdatedAt = timeOf(started), timeOf(completed), timeOf(canc), fromMicros(updated)
	if sealed != nil {
		pt, err := s.p.vault.OpenWithRoot(sealed, dsrAD(d.WorkspaceID, d.ID))
		if err != nil {
			return d, err
		}
		var ids []dsrIdentityJSON
		if err := json.Unmarshal(pt, &ids); err != nil {
			return d, err
		}
		for _, id := range ids {
			d.Identities = append(d.Identities, cdp.DSRIdentity{Type: cdp.IdentityType(id.Type), RequestType: id.RequestType, Format: id.Format, Value: id.Value})
		}
	}
	return d, nil
}

// Create stores a new request. If the workspace already has a request with
// that id, it returns the stored one and created false; the caller tells a
// resend (same fingerprint) from a conflict.
func (s *DSRs) Create(ctx context.Context, d cdp.DSR) (cdp.DSR, bool, error) {
	ids := make([]dsrIdentityJSON, len(d.Identities))
	for i, id := range d.Identities {
		ids[i] = dsrIdentityJSON{Type: string(id.Type), RequestType: id.RequestType, Format: id.Format, Value: id.Value}
	}
	pt, err := json.Marshal(ids)
	if err != nil {
		return d, false, err
	}
	sealed, err := s.p.vault.SealWithRoot(pt, dsrAD(d.WorkspaceID, d.ID))
	if err != nil {
		return d, false, err
	}
	callbacks, _ := json.Marshal(d.CallbackURLs)
	if d.Outcome == nil {
		d.Outcome = json.RawMessage(`{}`)
	}
	db := s.p.db
	res, err := db.wr().ExecContext(ctx, `INSERT INTO dsr_requests (`+dsrColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, NULL, NULL, $15, NULL, NULL, NULL, $16)
		ON CONFLICT (workspace_id, id) DO NOTHING`,
		d.WorkspaceID, d.ID, d.Regulation, string(d.Type), string(d.Status), d.Fingerprint, sealed, d.IdentitySummary, string(callbacks),
		micros(d.SubmittedAt), micros(d.ReceivedAt), micros(d.ExpectedAt), micros(d.StartAfter), string(d.Deadlines), string(d.Outcome), micros(d.ReceivedAt))
	if err != nil {
		return d, false, db.dialect.translate(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		existing, err := s.Get(ctx, d.WorkspaceID, d.ID)
		return existing, false, err
	}
	got, err := s.Get(ctx, d.WorkspaceID, d.ID)
	return got, true, err
}

// Get returns a request; NotFound if the workspace has none by that id.
func (s *DSRs) Get(ctx context.Context, ws cdp.WorkspaceID, id string) (cdp.DSR, error) {
	d, err := s.scan(s.p.db.rd().QueryRowContext(ctx, `SELECT `+dsrColumns+` FROM dsr_requests WHERE workspace_id = $1 AND id = $2`, ws, id))
	if errors.Is(err, sql.ErrNoRows) {
		return d, cdp.Errorf(cdp.NotFound, "request not found")
	}
	return d, s.p.db.dialect.translate(err)
}

// List returns a workspace's requests, newest first; status filters when
// not empty.
func (s *DSRs) List(ctx context.Context, ws cdp.WorkspaceID, status cdp.DSRStatus, limit int) ([]cdp.DSR, error) {
	q := `SELECT ` + dsrColumns + ` FROM dsr_requests WHERE workspace_id = $1`
	args := []any{ws}
	if status != "" {
		q += ` AND status = $2`
		args = append(args, string(status))
	}
	q += ` ORDER BY received_at DESC LIMIT ` + strconv.Itoa(limit)
	rows, err := s.p.db.rd().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.p.db.dialect.translate(err)
	}
	defer rows.Close()
	var out []cdp.DSR
	for rows.Next() {
		d, err := s.scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Open returns every request not completed or cancelled, of all
// workspaces: the deadline watch.
func (s *DSRs) Open(ctx context.Context) ([]cdp.DSR, error) {
	rows, err := s.p.db.rd().QueryContext(ctx, `SELECT `+dsrColumns+` FROM dsr_requests WHERE status IN ('pending', 'in_progress')`)
	if err != nil {
		return nil, s.p.db.dialect.translate(err)
	}
	defer rows.Close()
	var out []cdp.DSR
	for rows.Next() {
		d, err := s.scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Cancel moves a pending request to cancelled. Conflict if it is not
// pending any more.
func (s *DSRs) Cancel(ctx context.Context, ws cdp.WorkspaceID, id string, at time.Time) error {
	db := s.p.db
	res, err := db.wr().ExecContext(ctx, `UPDATE dsr_requests SET status = 'cancelled', cancelled_at = $1, updated_at = $1, identities_sealed = NULL
		WHERE workspace_id = $2 AND id = $3 AND status = 'pending'`, micros(at), ws, id)
	if err != nil {
		return db.dialect.translate(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := s.Get(ctx, ws, id); err != nil {
			return err
		}
		return cdp.Reason(cdp.Conflict, "not_pending", "only a pending request can be cancelled")
	}
	return nil
}

// ClaimDue moves pending requests whose waiting period is over to
// in_progress and returns them; several processes never claim the same
// one.
func (s *DSRs) ClaimDue(ctx context.Context, now time.Time, limit int) ([]cdp.DSR, error) {
	db := s.p.db
	var out []cdp.DSR
	err := db.tx(ctx, func(tx querier) error {
		lock := ""
		if db.dialect.lockUpdate() != "" {
			lock = db.dialect.lockUpdate() + " SKIP LOCKED"
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+dsrColumns+` FROM dsr_requests WHERE status = 'pending' AND start_after <= $1 ORDER BY received_at LIMIT $2`+lock, micros(now), limit)
		if err != nil {
			return db.dialect.translate(err)
		}
		for rows.Next() {
			d, err := s.scan(rows)
			if err != nil {
				rows.Close()
				return err
			}
			out = append(out, d)
		}
		rows.Close()
		for i := range out {
			out[i].Status, out[i].StartedAt = cdp.DSRInProgress, now
			if _, err := tx.ExecContext(ctx, `UPDATE dsr_requests SET status = 'in_progress', started_at = $1, updated_at = $1 WHERE workspace_id = $2 AND id = $3`,
				micros(now), out[i].WorkspaceID, out[i].ID); err != nil {
				return db.dialect.translate(err)
			}
		}
		return nil
	})
	return out, err
}

// InProgress returns the requests being worked on, of all workspaces.
func (s *DSRs) InProgress(ctx context.Context) ([]cdp.DSR, error) {
	rows, err := s.p.db.rd().QueryContext(ctx, `SELECT `+dsrColumns+` FROM dsr_requests WHERE status = 'in_progress' ORDER BY received_at`)
	if err != nil {
		return nil, s.p.db.dialect.translate(err)
	}
	defer rows.Close()
	var out []cdp.DSR
	for rows.Next() {
		d, err := s.scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// SetDeadlines stores new deadlines (an extension).
func (s *DSRs) SetDeadlines(ctx context.Context, ws cdp.WorkspaceID, id string, deadlines json.RawMessage, expected time.Time) error {
	_, err := s.p.db.wr().ExecContext(ctx, `UPDATE dsr_requests SET deadlines = $1, expected_at = $2, updated_at = $3 WHERE workspace_id = $4 AND id = $5`,
		string(deadlines), micros(expected), micros(time.Now()), ws, id)
	return s.p.db.dialect.translate(err)
}

// SetOutcome stores what was done so far.
func (s *DSRs) SetOutcome(ctx context.Context, ws cdp.WorkspaceID, id string, outcome json.RawMessage) error {
	_, err := s.p.db.wr().ExecContext(ctx, `UPDATE dsr_requests SET outcome = $1, updated_at = $2 WHERE workspace_id = $3 AND id = $4`,
		string(outcome), micros(time.Now()), ws, id)
	return s.p.db.dialect.translate(err)
}

// Complete finishes a request: status completed, identities and the
// erasure key destroyed; for access and portability the export (sealed
// under the root key), the hash of its download token, its expiry and its
// record count.
func (s *DSRs) Complete(ctx context.Context, ws cdp.WorkspaceID, id string, at time.Time, outcome json.RawMessage, export []byte, tokenHash []byte, expires time.Time, count int) error {
	db := s.p.db
	var sealed []byte
	if export != nil {
		var err error
		if sealed, err = s.p.vault.SealWithRoot(export, exportAD(ws, id)); err != nil {
			return err
		}
	}
	_, err := db.wr().ExecContext(ctx, `UPDATE dsr_requests SET status = 'completed', completed_at = $1, updated_at = $1, outcome = $2,
		identities_sealed = NULL, erase_key_sealed = NULL, export_sealed = $3, results_token_hash = $4, results_expires_at = $5, results_count = $6
		WHERE workspace_id = $7 AND id = $8`,
		micros(at), string(outcome), sealed, tokenHash, nullMicros(expires), count, ws, id)
	return db.dialect.translate(err)
}

func exportAD(ws cdp.WorkspaceID, id string) []byte {
	return []byte("custos/dsr-export/" + string(ws) + "/" + id)
}

// Export returns the export a download token names: NotFound for an unknown
// token, Gone (Conflict with code "expired") once it expired, when its file
// is deleted too.
func (s *DSRs) Export(ctx context.Context, token string, now time.Time) (cdp.DSR, []byte, error) {
	h := sha256.Sum256([]byte(token))
	db := s.p.db
	var (
		ws, id  string
		sealed  []byte
		expires sql.NullInt64
	)
	err := db.rd().QueryRowContext(ctx, `SELECT workspace_id, id, export_sealed, results_expires_at FROM dsr_requests WHERE results_token_hash = $1`, h[:]).
		Scan(&ws, &id, &sealed, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return cdp.DSR{}, nil, cdp.Errorf(cdp.NotFound, "no such export")
	}
	if err != nil {
		return cdp.DSR{}, nil, db.dialect.translate(err)
	}
	if sealed == nil || (expires.Valid && now.After(fromMicros(expires.Int64))) {
		if sealed != nil {
			_, _ = db.wr().ExecContext(ctx, `UPDATE dsr_requests SET export_sealed = NULL WHERE workspace_id = $1 AND id = $2`, ws, id)
		}
		return cdp.DSR{}, nil, cdp.Reason(cdp.Conflict, "expired", "this export has expired")
	}
	zip, err := s.p.vault.OpenWithRoot(sealed, exportAD(cdp.WorkspaceID(ws), id))
	if err != nil {
		return cdp.DSR{}, nil, err
	}
	d, err := s.Get(ctx, cdp.WorkspaceID(ws), id)
	return d, zip, err
}

// PurgeExpiredExports deletes exports past their expiry.
func (s *DSRs) PurgeExpiredExports(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.p.db.wr().ExecContext(ctx, `UPDATE dsr_requests SET export_sealed = NULL WHERE export_sealed IS NOT NULL AND results_expires_at < $1`, micros(now))
	if err != nil {
		return 0, s.p.db.dialect.translate(err)
	}
	return res.RowsAffected()
}

// SetDestination records a destination's state in an erasure.
func (s *DSRs) SetDestination(ctx context.Context, ws cdp.WorkspaceID, id string, d cdp.DSRDestination) error {
	_, err := s.p.db.wr().ExecContext(ctx, `INSERT INTO dsr_destinations (workspace_id, request_id, destination_id, state, reason, attempts, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (workspace_id, request_id, destination_id) DO UPDATE SET state = excluded.state, reason = excluded.reason, attempts = excluded.attempts, updated_at = excluded.updated_at`,
		ws, id, d.Destination, string(d.State), d.Reason, d.Attempts, micros(d.UpdatedAt))
	return s.p.db.dialect.translate(err)
}

// Destinations returns the destinations' states in an erasure.
func (s *DSRs) Destinations(ctx context.Context, ws cdp.WorkspaceID, id string) ([]cdp.DSRDestination, error) {
	rows, err := s.p.db.rd().QueryContext(ctx, `SELECT destination_id, state, reason, attempts, updated_at FROM dsr_destinations WHERE workspace_id = $1 AND request_id = $2 ORDER BY destination_id`, ws, id)
	if err != nil {
		return nil, s.p.db.dialect.translate(err)
	}
	defer rows.Close()
	var out []cdp.DSRDestination
	for rows.Next() {
		var (
			d       cdp.DSRDestination
			state   string
			updated int64
		)
		if err := rows.Scan(&d.Destination, &state, &d.Reason, &d.Attempts, &updated); err != nil {
			return nil, err
		}
		d.State, d.UpdatedAt = cdp.DSRDestinationState(state), fromMicros(updated)
		out = append(out, d)
	}
	return out, rows.Err()
}

// AddCallbacks records callbacks to send.
func (s *DSRs) AddCallbacks(ctx context.Context, cbs []cdp.DSRCallback) error {
	db := s.p.db
	return db.tx(ctx, func(tx querier) error {
		for _, c := range cbs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO dsr_callbacks (id, workspace_id, request_id, url, status, body, attempts, done, next_at, created_at)
				VALUES ($1, $2, $3, $4, $5, $6, 0, 0, $7, $7)`, c.ID, c.WorkspaceID, c.RequestID, c.URL, string(c.Status), c.Body, micros(c.NextAt)); err != nil {
				return db.dialect.translate(err)
			}
		}
		return nil
	})
}

// DueCallbacks returns callbacks not yet acknowledged whose next attempt is
// due, oldest first.
func (s *DSRs) DueCallbacks(ctx context.Context, now time.Time, limit int) ([]cdp.DSRCallback, error) {
	rows, err := s.p.db.rd().QueryContext(ctx, `SELECT id, workspace_id, request_id, url, status, body, attempts, next_at FROM dsr_callbacks
		WHERE done = 0 AND next_at <= $1 ORDER BY created_at LIMIT $2`, micros(now), limit)
	if err != nil {
		return nil, s.p.db.dialect.translate(err)
	}
	defer rows.Close()
	var out []cdp.DSRCallback
	for rows.Next() {
		var (
			c      cdp.DSRCallback
			status string
			next   int64
		)
		if err := rows.Scan(&c.ID, &c.WorkspaceID, &c.RequestID, &c.URL, &status, &c.Body, &c.Attempts, &next); err != nil {
			return nil, err
		}
		c.Status, c.NextAt = cdp.DSRStatus(status), fromMicros(next)
		out = append(out, c)
	}
	return out, rows.Err()
}

// CallbackAttempt records one attempt; done marks the callback finished
// (acknowledged, or given up), next when to try again otherwise.
func (s *DSRs) CallbackAttempt(ctx context.Context, id string, attempt int, at time.Time, httpStatus int, errText string, done bool, next time.Time) error {
	db := s.p.db
	return db.tx(ctx, func(tx querier) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO dsr_callback_attempts (callback_id, attempt, at, http_status, error) VALUES ($1, $2, $3, $4, $5)`,
			id, attempt, micros(at), httpStatus, errText); err != nil {
			return db.dialect.translate(err)
		}
		_, err := tx.ExecContext(ctx, `UPDATE dsr_callbacks SET attempts = $1, done = $2, next_at = $3 WHERE id = $4`, attempt, boolInt(done), micros(next), id)
		return db.dialect.translate(err)
	})
}

// CallbackAttempts returns every attempt for a request's callbacks.
func (s *DSRs) CallbackAttempts(ctx context.Context, ws cdp.WorkspaceID, id string) ([]cdp.DSRCallbackAttempt, error) {
	rows, err := s.p.db.rd().QueryContext(ctx, `SELECT c.url, c.status, a.attempt, a.at, a.http_status, a.error, c.done
		FROM dsr_callbacks c JOIN dsr_callback_attempts a ON a.callback_id = c.id
		WHERE c.workspace_id = $1 AND c.request_id = $2 ORDER BY a.at`, ws, id)
	if err != nil {
		return nil, s.p.db.dialect.translate(err)
	}
	defer rows.Close()
	var out []cdp.DSRCallbackAttempt
	for rows.Next() {
		var (
			r    cdp.DSRCallbackAttempt
			at   int64
			done int64
		)
		if err := rows.Scan(&r.URL, &r.Status, &r.Attempt, &at, &r.HTTPStatus, &r.Error, &done); err != nil {
			return nil, err
		}
		r.At, r.Done = fromMicros(at), done != 0
		out = append(out, r)
	}
	return out, rows.Err()
}

// Summary lists identity types and formats, never values.
func Summary(ids []cdp.DSRIdentity) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = id.RequestType + ":" + id.Format
	}
	return strings.Join(parts, ",")
}
