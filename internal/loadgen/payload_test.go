package loadgen

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

const testRunID = "lgtest0000ab"

// sentMessage is what a test reads back out of a built body.
type sentMessage struct {
	id     string
	user   string
	device string // anonymousId or ios_idfv: must be stable per user
	size   int    // bytes of the message itself (Segment)
}

type segmentTrack struct {
	Type        string `json:"type"`
	UserID      string `json:"userId"`
	AnonymousID string `json:"anonymousId"`
	MessageID   string `json:"messageId"`
	Timestamp   string `json:"timestamp"`
	Event       string `json:"event"`
	Properties  struct {
		OrderID  string  `json:"order_id"`
		Revenue  float64 `json:"revenue"`
		Currency string  `json:"currency"`
		Products []struct {
			ProductID string  `json:"product_id"`
			SKU       string  `json:"sku"`
			Name      string  `json:"name"`
			Price     float64 `json:"price"`
			Quantity  int     `json:"quantity"`
		} `json:"products"`
	} `json:"properties"`
	Context struct {
		IP        string `json:"ip"`
		UserAgent string `json:"userAgent"`
		Library   struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"library"`
	} `json:"context"`
}

type mparticleBatch struct {
	Environment     string `json:"environment"`
	SourceRequestID string `json:"source_request_id"`
	MPID            int64  `json:"mpid"`
	UserIdentities  struct {
		CustomerID string `json:"customer_id"`
		Email      string `json:"email"`
	} `json:"user_identities"`
	DeviceInfo struct {
		IOSIDFV string `json:"ios_idfv"`
	} `json:"device_info"`
	UserAttributes json.RawMessage `json:"user_attributes"`
	Events         []struct {
		EventType string `json:"event_type"`
		Data      struct {
			EventName        string            `json:"event_name"`
			CustomEventType  string            `json:"custom_event_type"`
			SourceMessageID  string            `json:"source_message_id"`
			TimestampMS      int64             `json:"timestamp_unixtime_ms"`
			CustomAttributes map[string]string `json:"custom_attributes"`
		} `json:"data"`
	} `json:"events"`
}

// decodeSegment checks one Segment body and returns its messages.
func decodeSegment(t *testing.T, body []byte, batch int) []sentMessage {
	t.Helper()
	raws := []json.RawMessage{body}
	if batch > 1 {
		var b struct {
			Batch  []json.RawMessage `json:"batch"`
			SentAt string            `json:"sentAt"`
		}
		if err := json.Unmarshal(body, &b); err != nil {
			t.Fatalf("batch body is not JSON: %v", err)
		}
		if _, err := time.Parse(time.RFC3339Nano, b.SentAt); err != nil {
			t.Errorf("sentAt %q: %v", b.SentAt, err)
		}
		raws = b.Batch
	}
	var out []sentMessage
	for _, raw := range raws {
		var m segmentTrack
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("message is not the expected JSON: %v\n%s", err, raw)
		}
		if m.Type != "track" || m.Event != "Order Completed" || m.Properties.Currency != "USD" || m.Context.Library.Name != "analytics-go" {
			t.Errorf("message fields: got %+v", m)
		}
		if _, err := time.Parse(time.RFC3339Nano, m.Timestamp); err != nil {
			t.Errorf("timestamp %q: %v", m.Timestamp, err)
		}
		if len(m.Properties.Products) != 2 || m.Context.IP == "" || !strings.HasPrefix(m.Context.UserAgent, "Mozilla/5.0 (") {
			t.Errorf("products %d, ip %q, user agent %q: want 2 products, an ip and a browser user agent",
				len(m.Properties.Products), m.Context.IP, m.Context.UserAgent)
		}
		var revenue float64
		for _, p := range m.Properties.Products {
			revenue += p.Price * float64(p.Quantity)
		}
		if math.Abs(revenue-m.Properties.Revenue) > 0.005 {
			t.Errorf("revenue %.2f, want the sum of the lines %.2f", m.Properties.Revenue, revenue)
		}
		out = append(out, sentMessage{id: m.MessageID, user: m.UserID, device: m.AnonymousID, size: len(raw)})
	}
	return out
}

// decodeMParticle checks one mParticle body and returns its events.
func decodeMParticle(t *testing.T, body []byte) (mparticleBatch, []sentMessage) {
	t.Helper()
	var b mparticleBatch
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		t.Fatalf("batch is not the expected JSON: %v\n%s", err, body)
	}
	if b.Environment != "production" || b.MPID <= 0 || b.UserIdentities.Email != b.UserIdentities.CustomerID+"@example.com" {
		t.Errorf("batch fields: got %+v", b)
	}
	if b.UserAttributes != nil {
		t.Errorf("batch has user_attributes %s: the server would add an identify event per batch", b.UserAttributes)
	}
	var out []sentMessage
	for _, e := range b.Events {
		d := e.Data
		if e.EventType != "custom_event" || d.EventName != "Order Completed" || d.CustomEventType != "transaction" || d.TimestampMS <= 0 {
			t.Errorf("event fields: got %+v", e)
		}
		if d.CustomAttributes["currency"] != "USD" || d.CustomAttributes["order_id"] == "" || d.CustomAttributes["revenue"] == "" {
			t.Errorf("custom attributes: got %v", d.CustomAttributes)
		}
		out = append(out, sentMessage{id: d.SourceMessageID, user: b.UserIdentities.CustomerID, device: b.DeviceInfo.IOSIDFV})
	}
	return b, out
}

func TestGeneratorBuild(t *testing.T) {
	const worker, users = 3, 50
	tests := []struct {
		name           string
		format         string
		batch          int
		maxBodyBytes   int
		minMsg, maxMsg int // bytes per Segment message
	}{
		{"segment track", FormatSegment, 1, segmentMaxMessageBytes, 600, 900},
		{"segment batch of 10", FormatSegment, 10, segmentMaxBatchBytes, 600, 900},
		{"segment batch of 500", FormatSegment, 500, segmentMaxBatchBytes, 600, 900},
		{"mparticle one event", FormatMParticle, 1, mparticleMaxBatchBytes, 0, 0},
		{"mparticle 300 events", FormatMParticle, 300, mparticleMaxBatchBytes, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGenerator(tt.format, testRunID, 42, worker, users)
			ids := map[string]bool{}
			devices := map[string]string{}
			requestIDs := map[string]bool{}
			var buf []byte
			for round := range 2 {
				first := uint64(round * tt.batch)
				buf = g.build(buf[:0], first, tt.batch, time.Now())
				if len(buf) > tt.maxBodyBytes {
					t.Errorf("body of %d bytes, want at most %d", len(buf), tt.maxBodyBytes)
				}
				var msgs []sentMessage
				if tt.format == FormatSegment {
					msgs = decodeSegment(t, buf, tt.batch)
				} else {
					b, m := decodeMParticle(t, buf)
					if requestIDs[b.SourceRequestID] {
						t.Errorf("source_request_id %q repeated", b.SourceRequestID)
					}
					requestIDs[b.SourceRequestID] = true
					msgs = m
				}
				if len(msgs) != tt.batch {
					t.Fatalf("got %d messages, want %d", len(msgs), tt.batch)
				}
				for i, m := range msgs {
					w, seq, ok := parseMessageID(m.id, testRunID)
					if !ok || w != worker || seq != first+uint64(i) {
						t.Errorf("message id %q: got worker %d seq %d ok %v, want worker %d seq %d", m.id, w, seq, ok, worker, first+uint64(i))
					}
					if ids[m.id] {
						t.Errorf("message id %q repeated", m.id)
					}
					ids[m.id] = true
					if d, seen := devices[m.user]; seen && d != m.device {
						t.Errorf("user %s has device %q and %q, want one per user", m.user, d, m.device)
					}
					devices[m.user] = m.device
					if !strings.HasPrefix(m.user, "user-") {
						t.Errorf("user %q, want user-<n>", m.user)
					}
					if tt.format == FormatSegment && (m.size < tt.minMsg || m.size > tt.maxMsg) {
						t.Errorf("message of %d bytes, want %d..%d", m.size, tt.minMsg, tt.maxMsg)
					}
				}
			}
			if len(devices) > users {
				t.Errorf("%d distinct users, want at most %d", len(devices), users)
			}
		})
	}
}

func TestCheckSize(t *testing.T) {
	tests := []struct {
		name    string
		format  string
		batch   int
		wantErr bool
	}{
		{"segment track", FormatSegment, 1, false},
		{"segment batch of 500", FormatSegment, 500, false},
		{"segment batch over 500 KB", FormatSegment, 700, true},
		{"segment batch over 2500 messages", FormatSegment, 2501, true},
		{"mparticle 300 events", FormatMParticle, 300, false},
		{"mparticle batch over 128 KB", FormatMParticle, 600, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkSize(tt.format, testRunID, 64, 1_000_000, tt.batch)
			if (err != nil) != tt.wantErr {
				t.Errorf("got error %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestParseMessageID(t *testing.T) {
	tests := []struct {
		id         string
		wantOK     bool
		wantWorker int
		wantSeq    uint64
	}{
		{testRunID + "-0-0", true, 0, 0},
		{testRunID + "-63-1234567", true, 63, 1234567},
		{"lgother000000-1-2", false, 0, 0},
		{testRunID + "x-1-2", false, 0, 0},
		{testRunID[:len(testRunID)-1] + "-1-2", false, 0, 0},
		{testRunID + "-1", false, 0, 0},
		{testRunID + "-1-", false, 0, 0},
		{testRunID + "--2", false, 0, 0},
		{testRunID + "-1-+2", false, 0, 0},
		{testRunID + "-1-2:identify", false, 0, 0},
		{testRunID + "-req-1-2", false, 0, 0},
		{testRunID + "-1-99999999999999999999999", false, 0, 0},
		{testRunID + "-9999999999-1", false, 0, 0},
		{"", false, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			w, seq, ok := parseMessageID(tt.id, testRunID)
			if ok != tt.wantOK || w != tt.wantWorker || seq != tt.wantSeq {
				t.Errorf("got (%d, %d, %v), want (%d, %d, %v)", w, seq, ok, tt.wantWorker, tt.wantSeq, tt.wantOK)
			}
		})
	}
}

func BenchmarkBuildSegmentTrack(b *testing.B) {
	g := newGenerator(FormatSegment, testRunID, 1, 1, 300)
	var buf []byte
	now := time.Now()
	for i := range b.N {
		buf = g.build(buf[:0], uint64(i), 1, now)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkBuildMParticle100(b *testing.B) {
	g := newGenerator(FormatMParticle, testRunID, 1, 1, 300)
	var buf []byte
	now := time.Now()
	for i := range b.N {
		buf = g.build(buf[:0], uint64(i*100), 100, now)
	}
	b.SetBytes(int64(len(buf)))
}
