package store

import "github.com/prometheus/client_golang/prometheus"

// storeErrors counts failed memcached operations by operation (get, get
// multi, set, add, cas, delete, ping) and server (as given in the server
// list). A miss, a refused add and a stale CAS are answers, not failures,
// and are not counted.
var storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "arena_store_errors_total",
	Help: "Failed memcached operations (unreachable server, timeout, server error), by operation and server.",
}, []string{"op", "server"})

// Collector returns the store's metrics (arena_store_errors_total) for a
// process's registry; they count every Memcache store of the process.
func Collector() prometheus.Collector { return storeErrors }
