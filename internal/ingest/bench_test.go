package ingest

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/custos-cdp/custos/internal/cdp"
)

// benchTrack is a typical server-side Segment track of about 500 bytes.
const benchTrack = `{"type":"track","userId":"user-1001","anonymousId":"7f3a9c2e-5b1d-4e8f-a6c0-2d9e8b7f1a34",` +
	`"messageId":"ajs-next-1764331200000-6f0b2c1e-9d8a-4b7c","timestamp":"2025-11-28T11:59:58.123Z","event":"Order Completed",` +
	`"properties":{"order_id":"o-50314","revenue":25.0,"currency":"USD","products":[` +
	`{"product_id":"507f1f77","sku":"45790-32","name":"Monopoly","price":19,"quantity":1},` +
	`{"product_id":"505bd76785","sku":"46493-32","name":"Uno","price":3,"quantity":2}]},` +
	`"context":{"ip":"203.0.113.9","library":{"name":"analytics-node","version":"2.1.2"},` +
	`"userAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15"}}`

func BenchmarkDecodeSegmentTrack(b *testing.B) {
	body := []byte(benchTrack)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		req, err := DecodeSegment(body, cdp.Track, Limits{}, receivedAt)
		if err != nil || len(req.Events) != 1 {
			b.Fatalf("got %d events and error %v, want 1 and none", len(req.Events), err)
		}
	}
}

type discardLog struct{}

func (discardLog) Append(context.Context, []cdp.Event) error { return nil }

func BenchmarkHandlerSegmentBatch20(b *testing.B) {
	var body strings.Builder
	body.WriteString(`{"sentAt":"2025-11-28T11:59:59Z","batch":[`)
	for i := range 20 {
		if i > 0 {
			body.WriteByte(',')
		}
		body.WriteString(benchTrack)
	}
	body.WriteString(`]}`)
	payload := []byte(body.String())

	mux := http.NewServeMux()
	New(Config{Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler), Now: time.Now}, &fakeAuth{}, discardLog{}).Register(mux)
	auth := basic(goodWriteKey, "")["Authorization"]
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "/v1/batch", bytes.NewReader(payload))
		r.Header["Authorization"] = auth
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("got status %d, want 200: %s", w.Code, w.Body)
		}
	}
}
