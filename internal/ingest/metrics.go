package ingest

import (
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/custos-cdp/custos/internal/cdp"
)

// metrics are the gateway's counters. Labels hold only formats, event
// types, status codes and fixed reason codes, never payload content.
type metrics struct {
	events     *prometheus.CounterVec
	rejections *prometheus.CounterVec
	requests   *prometheus.CounterVec
	ack        *prometheus.HistogramVec
	consent    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	return &metrics{
		events: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custos_ingest_events_total",
			Help: "Events accepted and made durable, by wire format and event type.",
		}, []string{"format", "type"})),
		rejections: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custos_ingest_rejections_total",
			Help: "Requests and single messages refused, by wire format and reason code.",
		}, []string{"format", "reason"})),
		requests: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custos_ingest_requests_total",
			Help: "Ingestion requests answered, by wire format and HTTP status.",
		}, []string{"format", "status"})),
		ack: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "custos_ingest_ack_seconds",
			Help:    "Time the event log took to make a request's events durable.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"format"})),
		consent: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custos_ingest_consent_rejections_total",
			Help: "Consent carried by accepted events that was not recorded, by wire format and reason.",
		}, []string{"format", "reason"})),
	}
}

func (m *metrics) rejectedConsent(format cdp.Format, reason string) {
	m.consent.WithLabelValues(string(format), reason).Inc()
}

// register adds c to reg, or returns the collector already registered under
// the same name, so that two Handlers can share one registry.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

func (m *metrics) request(format cdp.Format, status int) {
	m.requests.WithLabelValues(string(format), strconv.Itoa(status)).Inc()
}

func (m *metrics) rejected(format cdp.Format, code string) {
	m.rejections.WithLabelValues(string(format), reasonLabel(code)).Inc()
}

func (m *metrics) rejectedMessages(format cdp.Format, rs []Rejection) {
	for _, r := range rs {
		m.rejected(format, r.Code)
	}
}

var eventTypes = []cdp.EventType{cdp.Identify, cdp.Track, cdp.Page, cdp.Screen, cdp.Group, cdp.Alias}

func (m *metrics) accepted(format cdp.Format, events []cdp.Event, took time.Duration) {
	m.ack.WithLabelValues(string(format)).Observe(took.Seconds())
	for _, t := range eventTypes {
		n := 0
		for i := range events {
			if events[i].Type == t {
				n++
			}
		}
		if n > 0 {
			m.events.WithLabelValues(string(format), string(t)).Add(float64(n))
		}
	}
}

// reasonLabel keeps a reason label to the shape of a code. Codes of this
// package are constants; codes from the Authenticator and Log are too, and
// this guards the metric against one that is not.
func reasonLabel(code string) string {
	if code == "" || len(code) > 40 {
		return "other"
	}
	for _, c := range code {
		if !(c >= 'a' && c <= 'z' || c == '_') {
			return "other"
		}
	}
	return code
}
