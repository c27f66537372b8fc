package fleet

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/arena-game/arena/internal/store"
)

// NewRegistry returns the Prometheus registry an arena process (the
// dispatcher, a fight, map or chat process) serves on its /metrics: the Go
// runtime's series (go_memstats_*, go_goroutines, ...) and the process's
// (process_cpu_seconds_total, process_resident_memory_bytes, ...) are
// registered, and the store's (arena_store_errors_total); the server adds
// its own.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), store.Collector())
	return r
}
