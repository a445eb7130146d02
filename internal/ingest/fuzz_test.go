package ingest

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/jsonscan"
)

// The fuzz targets check the decoders' contract on any input: no panic,
// errors that are *cdp.Error with a code, and only events that every later
// stage can trust.

var singleEndpoints = []cdp.EventType{cdp.Identify, cdp.Track, cdp.Page, cdp.Screen, cdp.Group, cdp.Alias}

func FuzzDecodeSegment(f *testing.F) {
	f.Add([]byte(trackBody), uint8(1))
	f.Add([]byte(`{"userId":12,"traits":{"email":"A@B.C","phone":"+1 202 555 0123"},"context":{"device":{"type":"ios","id":"x"}}}`), uint8(0))
	f.Add([]byte(`{"userId":"u","previousId":"p","originalTimestamp":"2025-11-28T10:00:00Z","sentAt":"2025-11-28T10:00:01Z"}`), uint8(5))
	f.Fuzz(func(t *testing.T, body []byte, endpoint uint8) {
		req, err := DecodeSegment(body, singleEndpoints[int(endpoint)%len(singleEndpoints)], Limits{}, receivedAt)
		checkDecoded(t, req.Events, req.Rejected, err)
		if err == nil && len(req.Events) != 1 {
			t.Fatalf("got %d events from a single-message endpoint, want 1", len(req.Events))
		}
	})
}

func FuzzDecodeSegmentBatch(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "segment_batch.json")); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"batch":[{"type":"track","userId":"u","event":"E"},{"type":"x"}],"context":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeSegment(body, "", Limits{}, receivedAt)
		checkDecoded(t, req.Events, req.Rejected, err)
	})
}

func FuzzDecodeMParticle(f *testing.F) {
	for _, name := range []string{"mparticle_batch.json", "mparticle_bulk.json"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(b, name == "mparticle_bulk.json")
		}
	}
	f.Add([]byte(mpBody), false)
	f.Fuzz(func(t *testing.T, body []byte, bulk bool) {
		req, err := DecodeMParticle(body, bulk, Limits{}, receivedAt)
		checkDecoded(t, req.Events, req.Rejected, err)
	})
}

func checkDecoded(t *testing.T, events []cdp.Event, rejected []Rejection, err error) {
	t.Helper()
	if err != nil {
		e, ok := errors.AsType[*cdp.Error](err)
		if !ok || e.Code == "" || e.Message == "" {
			t.Fatalf("got error %#v, want a *cdp.Error with a code and a message", err)
		}
		if e.Kind != cdp.Invalid && e.Kind != cdp.TooLarge {
			t.Fatalf("got error kind %v, want invalid or too_large", e.Kind)
		}
		if len(events) != 0 {
			t.Fatalf("got %d events with an error, want none", len(events))
		}
	}
	for _, r := range rejected {
		if r.Code == "" || r.Message == "" || r.Index < 0 {
			t.Fatalf("got rejection %+v, want a code, a message and an index", r)
		}
	}
	for i, ev := range events {
		if !ev.Type.Valid() {
			t.Fatalf("event %d: got type %q, want a valid one", i, ev.Type)
		}
		if ev.Format != cdp.FormatSegment && ev.Format != cdp.FormatMParticle {
			t.Fatalf("event %d: got format %q", i, ev.Format)
		}
		if ev.MessageID == "" || len(ev.MessageID) > maxMessageIDLen {
			t.Fatalf("event %d: got message id of %d bytes, want 1 to %d", i, len(ev.MessageID), maxMessageIDLen)
		}
		if len(ev.Identities) == 0 {
			t.Fatalf("event %d: got no identity, want at least one", i)
		}
		seen := map[cdp.Identity]bool{}
		for _, id := range ev.Identities {
			norm, err := cdp.NewIdentity(id.Type, id.Value)
			if err != nil || norm != id || cdp.IsJunkIdentityValue(id.Value) {
				t.Fatalf("event %d: got identity %s that cdp does not accept as is (%v)", i, id.Type, err)
			}
			if seen[id] {
				t.Fatalf("event %d: got identity %s twice", i, id.Type)
			}
			seen[id] = true
		}
		for name, raw := range map[string]json.RawMessage{"Traits": ev.Traits, "Properties": ev.Properties, "Context": ev.Context, "Integrations": ev.Integrations} {
			if raw != nil && (jsonscan.FirstByte(raw) != '{' || !json.Valid(raw)) {
				t.Fatalf("event %d: got %s %q, want nil or a JSON object", i, name, raw)
			}
		}
		if ev.Timestamp.IsZero() || !representable(ev.Timestamp) {
			t.Fatalf("event %d: got timestamp %v, want one the log can store", i, ev.Timestamp)
		}
		for _, tm := range []time.Time{ev.OriginalTimestamp, ev.SentAt} {
			if !tm.IsZero() && !representable(tm) {
				t.Fatalf("event %d: got time %v, want zero or one the log can store", i, tm)
			}
		}
		if !ev.ReceivedAt.Equal(receivedAt) {
			t.Fatalf("event %d: got received at %v, want %v", i, ev.ReceivedAt, receivedAt)
		}
		if ev.Type == cdp.Alias && ev.PreviousID == "" {
			t.Fatalf("event %d: got an alias without previous id", i)
		}
		if ev.Type == cdp.Group && ev.GroupID == "" {
			t.Fatalf("event %d: got a group without group id", i)
		}
		if ev.Format == cdp.FormatSegment && ev.Type == cdp.Track && ev.Name == "" {
			t.Fatalf("event %d: got a track without a name", i)
		}
		for _, c := range ev.Consent {
			if c.Vocabulary == "" || c.Key == "" || !c.CollectedAt.IsZero() && !representable(c.CollectedAt) {
				t.Fatalf("event %d: got consent signal %s/%q collected at %v, want a vocabulary, a key and a storable time", i, c.Vocabulary, c.Key, c.CollectedAt)
			}
		}
	}
	if _, err := json.Marshal(events); err != nil {
		t.Fatalf("got events that do not marshal: %v", err)
	}
}
