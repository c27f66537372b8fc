package fleet

import (
	"strconv"

	"github.com/arena-game/arena/hostctl"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the fleet's Prometheus metrics.
type Metrics struct {
	reg           prometheus.Registerer
	Spawns        *prometheus.CounterVec
	SpawnFailures *prometheus.CounterVec
	Exits         *prometheus.CounterVec
	SpawnSeconds  prometheus.Histogram
	MaxNum        prometheus.Gauge
	HostRefusals  *prometheus.CounterVec
	HostConnects  prometheus.Counter
	StreamEnds    *prometheus.CounterVec
	// LeaseRenewFailures counts renewals of the fleet lease that could not
	// reach the store (LeaseConfig.RenewFailures).
	LeaseRenewFailures prometheus.Counter
}

// NewMetrics registers the fleet's metrics on reg (none when nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reg: reg,
		Spawns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arena_fleet_spawns_total", Help: "Processes spawned, by kind."}, []string{"kind"}),
		SpawnFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arena_fleet_spawn_failures_total", Help: "Spawns that failed, by kind and why (no_capacity: every host full; host: the host could not)."}, []string{"kind", "why"}),
		Exits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arena_fleet_exits_total", Help: "Processes that left the table, by kind and reason."}, []string{"kind", "reason"}),
		SpawnSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "arena_fleet_spawn_seconds", Help: "Time from spawn request to a listening process.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12)}),
		MaxNum: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "arena_fleet_maxnum", Help: "Current MAXNUM."}),
		HostRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arena_fleet_host_refusals_total", Help: "Hosts, streams or reported processes refused, by reason (token, register, clock, name_taken, flood, bad_message, unknown_kind, port_out_of_range, unrequested)."}, []string{"reason"}),
		HostConnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "arena_fleet_host_connects_total", Help: "Host registrations accepted."}),
		StreamEnds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arena_fleet_host_stream_ends_total", Help: "Host streams that ended, by how (eof, canceled, error: a broken or truncated stream)."}, []string{"how"}),
		LeaseRenewFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "arena_fleet_lease_renew_failures_total", Help: "Renewals of the dispatcher's fleet lease that could not reach memcached (the dispatcher keeps serving)."}),
	}
	if reg != nil {
		reg.MustRegister(m.Spawns, m.SpawnFailures, m.Exits, m.SpawnSeconds, m.MaxNum, m.HostRefusals, m.HostConnects, m.StreamEnds, m.LeaseRenewFailures)
	}
	return m
}

// register exports f's table.
func (m *Metrics) register(f *Fleet) {
	if m.reg == nil {
		return
	}
	m.reg.MustRegister(&collector{
		f:         f,
		procs:     prometheus.NewDesc("arena_fleet_processes", "Processes in the table, by kind and state.", []string{"kind", "state"}, nil),
		load:      prometheus.NewDesc("arena_fleet_load", "Load of each process (rooms or players).", []string{"kind", "host", "port"}, nil),
		conns:     prometheus.NewDesc("arena_fleet_connections", "Open client connections of each process.", []string{"kind", "host", "port"}, nil),
		mapPlayer: prometheus.NewDesc("arena_map_players", "Players per map instance.", []string{"map", "host", "port"}, nil),
		hosts:     prometheus.NewDesc("arena_fleet_hosts", "Hosts by state.", []string{"state"}, nil),
	})
}

type collector struct {
	f                                    *Fleet
	procs, load, conns, mapPlayer, hosts *prometheus.Desc
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.procs, c.load, c.conns, c.mapPlayer, c.hosts} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counts := map[[2]string]int{}
	for _, p := range c.f.Snapshot() {
		counts[[2]string{p.Kind, p.State.String()}]++
		port := strconv.Itoa(p.Port)
		ch <- prometheus.MustNewConstMetric(c.load, prometheus.GaugeValue, float64(p.Load), p.Kind, p.Host, port)
		ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(p.Conns), p.Kind, p.Host, port)
		for m, n := range p.Maps {
			ch <- prometheus.MustNewConstMetric(c.mapPlayer, prometheus.GaugeValue, float64(n), m, p.Host, port)
		}
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.procs, prometheus.GaugeValue, float64(n), k[0], k[1])
	}
	hosts := map[string]int{}
	for _, st := range []hostctl.HostState{hostctl.HostConnected, hostctl.HostDraining, hostctl.HostLost} {
		hosts[st.String()] = 0
	}
	for _, h := range c.f.Hosts() {
		hosts[h.State.String()]++
	}
	for st, n := range hosts {
		ch <- prometheus.MustNewConstMetric(c.hosts, prometheus.GaugeValue, float64(n), st)
	}
}
