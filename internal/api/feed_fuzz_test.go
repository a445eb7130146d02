package api

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
)

// FuzzParseFeed: any partner feed body is either a checked payload or a
// 4xx reason; nothing panics, every purpose is accounted for, and an error
// never repeats the person's identifier.
func FuzzParseFeed(f *testing.F) {
	for _, seed := range []string{
		`{"identifier":"feed.person@example.com","consentDate":"2026-11-28T12:00:00Z","collectionPointVersion":"3","purposes":[{"Id":"C0004","TransactionType":"WITHDRAWN"},{"Id":"C9999","TransactionType":"CONFIRMED"}]}`,
		`{"identifier":"+44 20 7946 0958","identifierType":"phone","purposes":[{"Id":"C0002","TransactionType":"NO_CONSENT"}]}`,
		`{"identifier":"null","purposes":[{"Id":"C1","TransactionType":"CONFIRMED"}]}`,
		`{"identifier":"a@b.co","identifierType":"custom:crm","purposes":[]}`,
		`{"identifier":"a@b.co","purposes":[{"Id":"C1","TransactionType":"maybe"}]}`,
		`{"identifier":"a@b.co","identifierType":"telepathy","purposes":[{"Id":"C1","TransactionType":"CONFIRMED"}]}`,
		`[]`, `{`, ``, `{"identifier":12}`,
	} {
		f.Add([]byte(seed))
	}
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := parseFeed(body, now)
		var in struct {
			Identifier string            `json:"identifier"`
			Purposes   []json.RawMessage `json:"purposes"`
		}
		_ = json.Unmarshal(body, &in)
		if err != nil {
			if !cdp.IsKind(err, cdp.Invalid) {
				t.Fatalf("error of kind other than Invalid: %v", err)
			}
			if len(in.Identifier) >= 6 && strings.Contains(err.Error(), in.Identifier) {
				t.Fatalf("error repeats the identifier: %v", err)
			}
			return
		}
		if got.identity.Value == "" || cdp.IsJunkIdentityValue(got.identity.Value) {
			t.Fatalf("accepted identity %q", got.identity.Value)
		}
		n := len(got.signals) + len(got.rejected)
		if n < 1 || n > 200 || n != len(in.Purposes) {
			t.Fatalf("%d signals and %d rejected for %d purposes", len(got.signals), len(got.rejected), len(in.Purposes))
		}
		if got.messageID == "" || !got.received.Equal(now) {
			t.Fatalf("message id %q, received %v", got.messageID, got.received)
		}
	})
}
