package store

import (
	"fmt"

	"github.com/arena-game/arena/internal/memcached"
)

// Embedded is a memcached-protocol server inside this process
// (internal/memcached), for `arena up` without --memcache and for tests. It
// listens on 127.0.0.1 only, holds at most 64 MiB of items (least recently
// used evicted first) and no input crashes it. Its counters are among the
// store's metrics (Collector) while it runs.
type Embedded struct {
	s     *memcached.Server
	limit int64
}

// StartEmbedded starts an embedded memcached on port (0: any free port).
func StartEmbedded(port int) (*Embedded, error) {
	return StartEmbeddedConfig(memcached.Config{Port: port})
}

// StartEmbeddedConfig starts an embedded memcached configured by cfg (its
// logger, memory limit, ...).
func StartEmbeddedConfig(cfg memcached.Config) (*Embedded, error) {
	s, err := memcached.Start(cfg)
	if err != nil {
		return nil, fmt.Errorf("start embedded memcached: %w", err)
	}
	e := &Embedded{s: s, limit: cfg.MaxMemory}
	if e.limit <= 0 {
		e.limit = memcached.DefaultMaxMemory
	}
	registerEmbedded(e)
	return e, nil
}

// Addr returns host:port to hand to memcached clients.
func (e *Embedded) Addr() string { return e.s.Addr() }

// Stats returns the server's counters.
func (e *Embedded) Stats() memcached.Stats { return e.s.Stats() }

// Close stops the server and drops its data.
func (e *Embedded) Close() {
	unregisterEmbedded(e)
	e.s.Close()
}
