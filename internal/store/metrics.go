package store

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// storeErrors counts failed memcached operations by operation (get, get
// multi, set, add, cas, delete, ping) and server (as given in the server
// list). A miss, a refused add and a stale CAS are answers, not failures,
// and are not counted.
var storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "arena_store_errors_total",
	Help: "Failed memcached operations (unreachable server, timeout, server error), by operation and server.",
}, []string{"op", "server"})

// embedded are the embedded servers running in this process, for the
// collector.
var embedded struct {
	mu      sync.Mutex
	servers map[*Embedded]struct{}
}

func registerEmbedded(e *Embedded) {
	embedded.mu.Lock()
	defer embedded.mu.Unlock()
	if embedded.servers == nil {
		embedded.servers = map[*Embedded]struct{}{}
	}
	embedded.servers[e] = struct{}{}
}

func unregisterEmbedded(e *Embedded) {
	embedded.mu.Lock()
	defer embedded.mu.Unlock()
	delete(embedded.servers, e)
}

var (
	descItems     = prometheus.NewDesc("arena_memcached_items", "Items held by an embedded memcached.", []string{"addr"}, nil)
	descBytes     = prometheus.NewDesc("arena_memcached_bytes", "Bytes of items held by an embedded memcached, as counted against its memory limit.", []string{"addr"}, nil)
	descLimit     = prometheus.NewDesc("arena_memcached_limit_bytes", "An embedded memcached's memory limit.", []string{"addr"}, nil)
	descEvictions = prometheus.NewDesc("arena_memcached_evictions_total", "Items an embedded memcached evicted to stay within its memory limit (arena state lost).", []string{"addr"}, nil)
	descConns     = prometheus.NewDesc("arena_memcached_connections", "Open connections of an embedded memcached.", []string{"addr"}, nil)
	descRejected  = prometheus.NewDesc("arena_memcached_rejected_connections_total", "Connections an embedded memcached refused over its connection limit.", []string{"addr"}, nil)
	descPanics    = prometheus.NewDesc("arena_memcached_panics_total", "Connections of an embedded memcached closed by a recovered panic (none is expected).", []string{"addr"}, nil)
)

// collector is the store's metrics: arena_store_errors_total, and the
// arena_memcached_* series of each embedded server running in the process.
type collector struct{}

func (collector) Describe(ch chan<- *prometheus.Desc) {
	storeErrors.Describe(ch)
	for _, d := range []*prometheus.Desc{descItems, descBytes, descLimit, descEvictions, descConns, descRejected, descPanics} {
		ch <- d
	}
}

func (collector) Collect(ch chan<- prometheus.Metric) {
	storeErrors.Collect(ch)
	embedded.mu.Lock()
	servers := make([]*Embedded, 0, len(embedded.servers))
	for e := range embedded.servers {
		servers = append(servers, e)
	}
	embedded.mu.Unlock()
	for _, e := range servers {
		st, addr := e.s.Stats(), e.Addr()
		ch <- prometheus.MustNewConstMetric(descItems, prometheus.GaugeValue, float64(st.Items), addr)
		ch <- prometheus.MustNewConstMetric(descBytes, prometheus.GaugeValue, float64(st.Bytes), addr)
		ch <- prometheus.MustNewConstMetric(descLimit, prometheus.GaugeValue, float64(e.limit), addr)
		ch <- prometheus.MustNewConstMetric(descEvictions, prometheus.CounterValue, float64(st.Evictions), addr)
		ch <- prometheus.MustNewConstMetric(descConns, prometheus.GaugeValue, float64(st.CurrConns), addr)
		ch <- prometheus.MustNewConstMetric(descRejected, prometheus.CounterValue, float64(st.RejectedConns), addr)
		ch <- prometheus.MustNewConstMetric(descPanics, prometheus.CounterValue, float64(st.Panics), addr)
	}
}

// Collector returns the store's metrics for a process's registry:
// arena_store_errors_total (every Memcache store of the process) and the
// arena_memcached_* series of every embedded server the process runs.
func Collector() prometheus.Collector { return collector{} }
