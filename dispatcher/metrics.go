package dispatcher

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the dispatcher's Prometheus metrics.
type Metrics struct {
	Registry      *prometheus.Registry
	Spawns        *prometheus.CounterVec
	SpawnFailures *prometheus.CounterVec
	Exits         *prometheus.CounterVec
	Corrections   *prometheus.CounterVec
	SpawnSeconds  prometheus.Histogram
	GetSeconds    *prometheus.HistogramVec
	LineRequests  *prometheus.CounterVec
	LineConns     prometheus.Gauge
	MaxNum        prometheus.Gauge
}

// NewMetrics registers the dispatcher's metrics on reg (a new registry if
// nil).
func NewMetrics(reg *prometheus.Registry) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &Metrics{
		Registry: reg,
		Spawns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arena_fleet_spawns_total", Help: "Processes spawned, by kind."}, []string{"kind"}),
		SpawnFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arena_fleet_spawn_failures_total", Help: "Spawns that failed, by kind."}, []string{"kind"}),
		Exits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arena_fleet_exits_total", Help: "Processes that left the table, by kind and reason."}, []string{"kind", "reason"}),
		Corrections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arena_fleet_load_corrections_total", Help: "Status polls that found a load the table had not heard of (an event was lost), by kind."}, []string{"kind"}),
		SpawnSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "arena_fleet_spawn_seconds", Help: "Time from spawn request to a listening process.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12)}),
		GetSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "arena_dispatch_get_seconds", Help: "Time to answer a get on the line protocol, by kind.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 12)}, []string{"kind"}),
		LineRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arena_line_requests_total", Help: "Line protocol requests, by verb and result."}, []string{"verb", "result"}),
		LineConns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "arena_line_connections", Help: "Open line protocol connections."}),
		MaxNum: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "arena_fleet_maxnum", Help: "Current MAXNUM."}),
	}
	reg.MustRegister(m.Spawns, m.SpawnFailures, m.Exits, m.Corrections, m.SpawnSeconds, m.GetSeconds, m.LineRequests, m.LineConns, m.MaxNum)
	return m
}

// fleetCollector exports the live table: processes by kind and state, and
// load per process.
type fleetCollector struct {
	f         *Fleet
	procs     *prometheus.Desc
	load      *prometheus.Desc
	conns     *prometheus.Desc
	mapPlayer *prometheus.Desc
}

// RegisterFleet exports f's table on the registry.
func (m *Metrics) RegisterFleet(f *Fleet) {
	m.Registry.MustRegister(&fleetCollector{
		f:         f,
		procs:     prometheus.NewDesc("arena_fleet_processes", "Processes in the table, by kind and state.", []string{"kind", "state"}, nil),
		load:      prometheus.NewDesc("arena_fleet_load", "Load of each process (rooms or players).", []string{"kind", "port"}, nil),
		conns:     prometheus.NewDesc("arena_fleet_connections", "Open client connections of each process.", []string{"kind", "port"}, nil),
		mapPlayer: prometheus.NewDesc("arena_map_players", "Players per map instance.", []string{"map", "port"}, nil),
	})
}

func (c *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.procs
	ch <- c.load
	ch <- c.conns
	ch <- c.mapPlayer
}

func (c *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[[2]string]int{}
	for kind := range c.f.cfg.Kinds {
		for _, st := range []string{StateStarting, StateReady, StateDraining} {
			counts[[2]string{kind, st}] = 0
		}
	}
	for _, p := range c.f.Snapshot() {
		counts[[2]string{p.Kind, p.State}]++
		port := strconv.Itoa(p.Port)
		ch <- prometheus.MustNewConstMetric(c.load, prometheus.GaugeValue, float64(p.Load), p.Kind, port)
		ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(p.Conns), p.Kind, port)
		for m, n := range p.Maps {
			ch <- prometheus.MustNewConstMetric(c.mapPlayer, prometheus.GaugeValue, float64(n), m, port)
		}
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.procs, prometheus.GaugeValue, float64(n), k[0], k[1])
	}
}
