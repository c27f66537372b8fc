package dispatcher

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the dispatcher's Prometheus metrics.
type Metrics struct {
	Registry     *prometheus.Registry
	GetSeconds   *prometheus.HistogramVec
	LineRequests *prometheus.CounterVec
	LineConns    prometheus.Gauge
}

// NewMetrics registers the dispatcher's metrics on reg (a new registry if
// nil).
func NewMetrics(reg *prometheus.Registry) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &Metrics{
		Registry: reg,
		GetSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "arena_dispatch_get_seconds", Help: "Time to answer a get on the line protocol, by kind.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 12)}, []string{"kind"}),
		LineRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arena_line_requests_total", Help: "Line protocol requests, by verb and result."}, []string{"verb", "result"}),
		LineConns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "arena_line_connections", Help: "Open line protocol connections."}),
	}
	reg.MustRegister(m.GetSeconds, m.LineRequests, m.LineConns)
	return m
}
