package sqlstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/sqlstore"
)

func testEvent(src, mid string, at time.Time) cdp.Event {
	return cdp.Event{
		MessageID: mid, WorkspaceID: "ws1", SourceID: cdp.SourceID(src), Format: cdp.FormatSegment,
		Type: cdp.Track, Name: "Order Completed",
		Identities: []cdp.Identity{{Type: cdp.UserID, Value: "u-" + mid}},
		Properties: json.RawMessage(`{"revenue":12.5}`),
		Timestamp:  at, ReceivedAt: at,
	}
}

func TestApplyDeduplicates(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		at := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
		events := db.Events()
		tests := []struct {
			name  string
			batch []cdp.Event
			want  int
		}{
			{"new", []cdp.Event{testEvent("s1", "m1", at), testEvent("s1", "m2", at)}, 2},
			{"all seen", []cdp.Event{testEvent("s1", "m1", at), testEvent("s1", "m2", at)}, 0},
			{"copies in one batch", []cdp.Event{testEvent("s1", "m3", at), testEvent("s1", "m3", at)}, 1},
			{"same id other source", []cdp.Event{testEvent("s2", "m1", at)}, 1},
			{"mixed", []cdp.Event{testEvent("s1", "m1", at), testEvent("s1", "m4", at)}, 1},
		}
		for _, tt := range tests {
			got, err := events.Apply(ctx, tt.batch)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if got != tt.want {
				t.Errorf("%s: applied %d, want %d", tt.name, got, tt.want)
			}
		}
		n, err := events.Count(ctx, "ws1")
		if err != nil {
			t.Fatal(err)
		}
		if n != 5 {
			t.Errorf("stored %d events, want 5", n)
		}
	})
}

func TestApplyLargeBatchAndList(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		at := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
		var batch []cdp.Event
		for i := range 1000 { // more than one multi-row statement
			batch = append(batch, testEvent("s1", fmt.Sprintf("m%04d", i), at.Add(time.Duration(i)*time.Second)))
		}
		got, err := db.Events().Apply(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		if got != 1000 {
			t.Fatalf("applied %d, want 1000", got)
		}
		var (
			before int64
			seen   []string
		)
		for {
			page, err := db.Events().List(ctx, "ws1", before, 300)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			for _, se := range page {
				seen = append(seen, se.Event.MessageID)
			}
			before = page[len(page)-1].Seq
		}
		if len(seen) != 1000 {
			t.Fatalf("listed %d events, want 1000", len(seen))
		}
		if seen[0] != "m0999" || seen[999] != "m0000" {
			t.Errorf("got order %s..%s, want newest first m0999..m0000", seen[0], seen[999])
		}
		page, _ := db.Events().List(ctx, "ws1", 0, 1)
		ev := page[0].Event
		if ev.Type != cdp.Track || ev.Name != "Order Completed" || string(ev.Properties) != `{"revenue":12.5}` ||
			len(ev.Identities) != 1 || ev.Identities[0].Value != "u-m0999" || !ev.Timestamp.Equal(at.Add(999*time.Second)) {
			t.Errorf("round trip changed the event: %+v", ev)
		}
		if other, _ := db.Events().List(ctx, "ws2", 0, 10); len(other) != 0 {
			t.Errorf("workspace ws2 sees %d events of ws1, want 0", len(other))
		}
	})
}

func TestPruneMessageIDs(t *testing.T) {
	eachDB(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		old := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
		recent := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
		if _, err := db.Events().Apply(ctx, []cdp.Event{testEvent("s1", "old", old), testEvent("s1", "recent", recent)}); err != nil {
			t.Fatal(err)
		}
		n, err := db.Events().PruneMessageIDs(ctx, recent.Add(-7*24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("pruned %d, want 1", n)
		}
		got, err := db.Events().Apply(ctx, []cdp.Event{testEvent("s1", "old", old), testEvent("s1", "recent", recent)})
		if err != nil {
			t.Fatal(err)
		}
		if got != 1 {
			t.Errorf("after pruning applied %d, want 1 (only the forgotten id)", got)
		}
	})
}
