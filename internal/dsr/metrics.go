package dsr

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	received  *prometheus.CounterVec
	completed *prometheus.CounterVec
	erased    prometheus.Counter
	callbacks *prometheus.CounterVec
	open      *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custos_dsr_received_total", Help: "Data subject requests received, by type and regulation.",
		}, []string{"type", "regulation"}),
		completed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custos_dsr_completed_total", Help: "Data subject requests completed, by type.",
		}, []string{"type"}),
		erased: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "custos_dsr_profiles_erased_total", Help: "Profiles erased by data subject requests.",
		}),
		callbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custos_dsr_callbacks_total", Help: "Status callback attempts, by outcome (acknowledged, retried, gave_up).",
		}, []string{"outcome"}),
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "custos_dsr_open_requests", Help: "Open data subject requests by deadline urgency (on_track, due_soon, overdue).",
		}, []string{"urgency"}),
	}
	if reg != nil {
		reg.MustRegister(m.received, m.completed, m.erased, m.callbacks, m.open)
	}
	return m
}
