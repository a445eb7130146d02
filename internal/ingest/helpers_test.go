package ingest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
)

// receivedAt is the server clock of every decoder test.
var receivedAt = time.Date(2025, 11, 28, 12, 0, 0, 0, time.UTC)

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// ids builds identities from type, value pairs.
func ids(pairs ...string) []cdp.Identity {
	out := make([]cdp.Identity, 0, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, cdp.Identity{Type: cdp.IdentityType(pairs[i]), Value: pairs[i+1]})
	}
	return out
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm.UTC()
}

// eventDiff lists the fields in which got differs from want. JSON fields
// compare by meaning, times by instant.
func eventDiff(got, want cdp.Event) []string {
	var d []string
	check := func(name string, g, w any) {
		if !reflect.DeepEqual(g, w) {
			d = append(d, fmt.Sprintf("%s: got %v, want %v", name, g, w))
		}
	}
	checkJSON := func(name string, g, w json.RawMessage) {
		if !jsonEqual(g, w) {
			d = append(d, fmt.Sprintf("%s: got %s, want %s", name, g, w))
		}
	}
	checkTime := func(name string, g, w time.Time) {
		if !g.Equal(w) {
			d = append(d, fmt.Sprintf("%s: got %v, want %v", name, g, w))
		}
	}
	check("MessageID", got.MessageID, want.MessageID)
	check("WorkspaceID", got.WorkspaceID, want.WorkspaceID)
	check("SourceID", got.SourceID, want.SourceID)
	check("Format", got.Format, want.Format)
	check("Type", got.Type, want.Type)
	check("Name", got.Name, want.Name)
	if len(got.Identities) != 0 || len(want.Identities) != 0 {
		check("Identities", got.Identities, want.Identities)
	}
	check("PreviousID", got.PreviousID, want.PreviousID)
	check("GroupID", got.GroupID, want.GroupID)
	checkJSON("Traits", got.Traits, want.Traits)
	if len(got.DeletedTraits) != 0 || len(want.DeletedTraits) != 0 {
		check("DeletedTraits", got.DeletedTraits, want.DeletedTraits)
	}
	checkJSON("Properties", got.Properties, want.Properties)
	checkJSON("Context", got.Context, want.Context)
	checkJSON("Integrations", got.Integrations, want.Integrations)
	check("IP", got.IP, want.IP)
	if len(got.Consent) != 0 || len(want.Consent) != 0 {
		check("Consent", got.Consent, want.Consent)
	}
	check("GPC", got.GPC, want.GPC)
	checkTime("Timestamp", got.Timestamp, want.Timestamp)
	checkTime("OriginalTimestamp", got.OriginalTimestamp, want.OriginalTimestamp)
	checkTime("SentAt", got.SentAt, want.SentAt)
	checkTime("ReceivedAt", got.ReceivedAt, want.ReceivedAt)
	return d
}

// jsonEqual compares two JSON values by meaning; nil equals nil only.
func jsonEqual(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	return reflect.DeepEqual(x, y)
}

func assertEvent(t *testing.T, got, want cdp.Event) {
	t.Helper()
	for _, line := range eventDiff(got, want) {
		t.Error(line)
	}
}

// assertCode checks that err is a *cdp.Error of kind and code.
func assertCode(t *testing.T, err error, kind cdp.Kind, code string) {
	t.Helper()
	e, ok := errors.AsType[*cdp.Error](err)
	if !ok {
		t.Fatalf("got error %v, want a *cdp.Error with code %s", err, code)
	}
	if e.Kind != kind || e.Code != code {
		t.Errorf("got %v/%s (%q), want %v/%s", e.Kind, e.Code, e.Message, kind, code)
	}
}

func assertRejections(t *testing.T, got []Rejection, want []Rejection) {
	t.Helper()
	strip := func(rs []Rejection) []string {
		var out []string
		for _, r := range rs {
			bi := "-"
			if r.BatchIndex != nil {
				bi = fmt.Sprint(*r.BatchIndex)
			}
			out = append(out, fmt.Sprintf("%s/%d:%s", bi, r.Index, r.Code))
		}
		return out
	}
	if g, w := strip(got), strip(want); !slices.Equal(g, w) {
		t.Errorf("got rejections %v, want %v", g, w)
	}
	for _, r := range got {
		if r.Message == "" {
			t.Errorf("rejection %d (%s) has no message", r.Index, r.Code)
		}
	}
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
