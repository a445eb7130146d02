package segment_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
	"github.com/custos-cdp/custos/internal/destinations/internal/deliverytest"
	"github.com/custos-cdp/custos/internal/ingest"
)

// TestCustosReadsWhatItSends decodes the requests with Custos's own
// gateway decoder, the real target of a Custos-to-Custos destination: no
// message may be rejected, and each must come back as the event it was.
func TestCustosReadsWhatItSends(t *testing.T) {
	srv, requests := deliverytest.Server(t, nil)
	batch := deliverytest.Batch()
	if err := newSender(t, srv.URL).Send(context.Background(), batch); err != nil {
		t.Fatalf("Send: %v", err)
	}
	var got []cdp.Event
	for _, r := range requests() {
		req, err := ingest.DecodeSegment(r.Body, "", ingest.Limits{}, deliverytest.T0.Add(2*time.Hour))
		if err != nil {
			t.Fatalf("DecodeSegment: %v", err)
		}
		if len(req.Rejected) > 0 {
			t.Fatalf("got rejections %+v, want none", req.Rejected)
		}
		got = append(got, req.Events...)
	}
	var want []*cdp.Event
	for _, d := range batch {
		switch d.Kind {
		case cdp.DeliverEvent:
			want = append(want, d.Event)
		case cdp.DeliverConsent:
			want = append(want, &cdp.Event{MessageID: d.Key, Type: cdp.Track, Name: "Consent Updated", Timestamp: d.Consent.Entry.CollectedAt})
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i, w := range want {
		t.Run(w.MessageID, func(t *testing.T) {
			g := got[i]
			if g.MessageID != w.MessageID || g.Type != w.Type || g.Name != w.Name || g.GroupID != w.GroupID || g.PreviousID != w.PreviousID || !g.Timestamp.Equal(w.Timestamp) {
				t.Errorf("got %s %s %q group %q previous %q at %v, want %s %s %q group %q previous %q at %v",
					g.MessageID, g.Type, g.Name, g.GroupID, g.PreviousID, g.Timestamp, w.MessageID, w.Type, w.Name, w.GroupID, w.PreviousID, w.Timestamp)
			}
			if w.Type != cdp.Track || w.Name != "Consent Updated" {
				if !bytes.Equal(g.Properties, w.Properties) || !bytes.Equal(g.Traits, w.Traits) {
					t.Errorf("got properties %s traits %s, want %s and %s", g.Properties, g.Traits, w.Properties, w.Traits)
				}
			}
			if _, ok := g.Identity(cdp.UserID); !ok {
				if _, ok := g.Identity(cdp.AnonymousID); !ok {
					t.Errorf("got no user or anonymous id, want one")
				}
			}
			if w.IP != "" && g.IP == "" {
				t.Errorf("ip: got none, want one from the context")
			}
		})
	}
}
