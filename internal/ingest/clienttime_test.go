package ingest

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
)

// TestRetryKeepsItsKey: the same request received again later (a client
// retry) gives every event that has a message id of the client's the same
// message id and client time, the two that key deduplication.
func TestRetryKeepsItsKey(t *testing.T) {
	later := receivedAt.Add(37*time.Minute + 123456789)
	for _, c := range []struct {
		name   string
		decode func([]byte, time.Time) ([]cdp.Event, error)
	}{
		{"segment_batch", func(b []byte, at time.Time) ([]cdp.Event, error) {
			req, err := DecodeSegment(b, "", Limits{}, at)
			return req.Events, err
		}},
		{"mparticle_batch", func(b []byte, at time.Time) ([]cdp.Event, error) {
			req, err := DecodeMParticle(b, false, Limits{}, at)
			return req.Events, err
		}},
		{"mparticle_bulk", func(b []byte, at time.Time) ([]cdp.Event, error) {
			req, err := DecodeMParticle(b, true, Limits{}, at)
			return req.Events, err
		}},
	} {
		in, err := os.ReadFile(filepath.Join("testdata", c.name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		first, err := c.decode(in, receivedAt)
		if err != nil {
			t.Fatal(err)
		}
		again, err := c.decode(in, later)
		if err != nil || len(again) != len(first) {
			t.Fatalf("%s: %d events and %v again, %d the first time", c.name, len(again), err, len(first))
		}
		keyed := 0
		for i := range first {
			if first[i].MessageID != again[i].MessageID {
				continue // an id Custos made up: no retry can match it
			}
			keyed++
			if !first[i].ClientTime.Equal(again[i].ClientTime) {
				t.Errorf("%s event %d (%s): client time %v, then %v when received later",
					c.name, i, first[i].MessageID, first[i].ClientTime, again[i].ClientTime)
			}
		}
		if keyed == 0 {
			t.Errorf("%s: no event keeps its message id", c.name)
		}
	}
}
