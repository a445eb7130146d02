package sqlstore_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/sqlstore"
)

// TestAuditLogIsTamperEvident: editing, or deleting, any record of the
// audit log breaks the hash chain, and verification names the record.
func TestAuditLogIsTamperEvident(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		p := newProfiles(t, db)
		var recs []cdp.AuditRecord
		for i, subj := range []string{"PUT /api/v1/purposes/{key}", "dsr_1", "DELETE /api/v1/tokens/{id}", "dsr_1"} {
			kind := "operator"
			if subj == "dsr_1" {
				kind = "dsr"
			}
			r, err := p.AppendAudit(ctx, ws, kind, subj, json.RawMessage(`{"step":`+string(rune('0'+i))+`}`), t0)
			if err != nil {
				t.Fatal(err)
			}
			recs = append(recs, r)
		}
		if err := p.VerifyAudit(ctx); err != nil {
			t.Fatalf("an untouched log must verify: %v", err)
		}
		if recs[1].PrevHash != recs[0].Hash || recs[0].PrevHash != "" {
			t.Fatalf("records are not chained: %+v", recs[:2])
		}
		all, err := p.AuditLog(ctx, ws, 0, 10)
		if err != nil || len(all) != 4 {
			t.Fatalf("audit log: %d records, %v", len(all), err)
		}
		page, err := p.AuditLog(ctx, ws, all[1].Seq, 1)
		if err != nil || len(page) != 1 || page[0].Seq != all[2].Seq {
			t.Fatalf("paging after %d: %+v %v", all[1].Seq, page, err)
		}
		steps, err := p.Audit(ctx, ws, "dsr", "dsr_1")
		if err != nil || len(steps) != 2 {
			t.Fatalf("a request's steps: %d %v", len(steps), err)
		}

		// An edit of one record's content.
		if err := db.ExecForTest(ctx, `UPDATE audit_log SET record = '{"step":9}' WHERE seq = $1`, recs[1].Seq); err != nil {
			t.Fatal(err)
		}
		if err := p.VerifyAudit(ctx); !cdp.IsKind(err, cdp.Conflict) {
			t.Fatalf("an edited record must break the chain, got %v", err)
		}
		if err := db.ExecForTest(ctx, `UPDATE audit_log SET record = $1 WHERE seq = $2`, string(recs[1].Record), recs[1].Seq); err != nil {
			t.Fatal(err)
		}
		if err := p.VerifyAudit(ctx); err != nil {
			t.Fatalf("restored record: %v", err)
		}
		// A deletion in the middle.
		if err := db.ExecForTest(ctx, `DELETE FROM audit_log WHERE seq = $1`, recs[2].Seq); err != nil {
			t.Fatal(err)
		}
		if err := p.VerifyAudit(ctx); !cdp.IsKind(err, cdp.Conflict) {
			t.Fatalf("a deleted record must break the chain, got %v", err)
		}
	})
}
