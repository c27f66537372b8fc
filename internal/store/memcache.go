package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// Memcache is a Store over one or more memcached servers. Keys are placed by
// consistent hashing (Ketama), so every process given the same servers, in
// any order, uses the same server for a key, and adding a server to n moves
// about 1/(n+1) of the keys.
//
// When a server cannot be reached, the operations on its keys fail with the
// network error (after at most Timeout) and are counted in
// arena_store_errors_total{op,server}; keys on the other servers are not
// affected (each server has its own operations in flight, so a dead one's
// backlog never holds up the others).
type Memcache struct {
	c     *memcache.Client
	ring  *Ketama
	addrs []string
	// pingers ask one server each (gomemcache's Ping stops at the first
	// server that fails).
	pingers []*memcache.Client
	// slots bounds each server's operations in flight, so bursts queue
	// here and reuse pooled connections instead of opening one per request
	// (a burst of thousands would otherwise time out on connection setup).
	slots []chan struct{}
	// pipes are each server's idle connections for SetMulti.
	pipes []pipes
}

// MemcacheConfig configures NewMemcache.
type MemcacheConfig struct {
	// Addrs are host:port of the servers: the same strings on every
	// process, in any order.
	Addrs []string
	// Timeout bounds each operation's network I/O; zero means 1s.
	Timeout time.Duration
	// MaxIdleConns per server; zero means 64. It also bounds the
	// operations in flight per server.
	MaxIdleConns int
}

// NewMemcache returns a Store over the servers in cfg. It does not dial: use
// Ping to check the servers answer.
func NewMemcache(cfg MemcacheConfig) (*Memcache, error) {
	if len(cfg.Addrs) == 0 {
		return nil, errors.New("new memcache store: no server addresses")
	}
	for _, a := range cfg.Addrs {
		if strings.TrimSpace(a) == "" {
			return nil, errors.New("new memcache store: empty server address")
		}
	}
	ring, err := NewKetama(cfg.Addrs)
	if err != nil {
		return nil, fmt.Errorf("new memcache store: %w", err)
	}
	c := memcache.NewFromSelector(ring)
	c.Timeout = cfg.Timeout
	if c.Timeout == 0 {
		c.Timeout = time.Second
	}
	c.MaxIdleConns = cfg.MaxIdleConns
	if c.MaxIdleConns == 0 {
		c.MaxIdleConns = 64
	}
	m := &Memcache{c: c, ring: ring, addrs: slices.Clone(cfg.Addrs), pipes: make([]pipes, len(ring.names))}
	for _, name := range ring.names {
		m.slots = append(m.slots, make(chan struct{}, c.MaxIdleConns))
		p := memcache.New(name)
		p.Timeout, p.MaxIdleConns = c.Timeout, 1
		m.pingers = append(m.pingers, p)
	}
	return m, nil
}

// acquire waits for an operation slot on server i, or for ctx.
func (m *Memcache) acquire(ctx context.Context, i int, op, key string) error {
	select {
	case m.slots[i] <- struct{}{}:
		return nil
	default:
	}
	select {
	case m.slots[i] <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s %q: waiting for a connection to memcached %s: %w", op, key, m.ring.names[i], ctx.Err())
	}
}

func (m *Memcache) release(i int) { <-m.slots[i] }

// do runs one single-key operation on key's server: slot, call, error
// mapping and counting.
func (m *Memcache) do(ctx context.Context, op, key string, call func() error) error {
	if !ValidKey(key) {
		return fmt.Errorf("%s %q: %w", op, key, ErrBadKey)
	}
	i := m.ring.index(key)
	if err := m.acquire(ctx, i, op, key); err != nil {
		return err
	}
	err := call()
	m.release(i)
	return m.mapErr(op, key, m.ring.names[i], err)
}

// ParseAddrs splits a comma-separated server list, dropping blanks.
func ParseAddrs(list string) []string {
	var out []string
	for _, a := range strings.Split(list, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// Addrs returns the server list.
func (m *Memcache) Addrs() []string { return append([]string(nil), m.addrs...) }

func ttlSeconds(d time.Duration) int32 {
	if d <= 0 {
		return 0
	}
	s := int32((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}

// mapErr maps gomemcache's errors to the Store's sentinels, naming the
// server; a failure (anything but a miss, a refused add or a stale CAS) is
// counted in arena_store_errors_total.
func (m *Memcache) mapErr(op, key, server string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, memcache.ErrCacheMiss):
		return fmt.Errorf("%s %q: %w", op, key, ErrNotFound)
	case errors.Is(err, memcache.ErrNotStored):
		return fmt.Errorf("%s %q: %w", op, key, ErrNotStored)
	case errors.Is(err, memcache.ErrCASConflict):
		return fmt.Errorf("%s %q: %w", op, key, ErrCASConflict)
	case errors.Is(err, memcache.ErrMalformedKey):
		return fmt.Errorf("%s %q: %w", op, key, ErrBadKey)
	}
	storeErrors.WithLabelValues(op, server).Inc()
	if strings.Contains(err.Error(), "object too large") {
		return fmt.Errorf("%s %q on memcached %s: %w: %v", op, key, server, ErrTooLarge, err)
	}
	return fmt.Errorf("%s %q on memcached %s: %w", op, key, server, err)
}

// Get implements Store.
func (m *Memcache) Get(ctx context.Context, key string) (*Item, error) {
	var it *memcache.Item
	err := m.do(ctx, "get", key, func() (err error) { it, err = m.c.Get(key); return err })
	if err != nil {
		return nil, err
	}
	return &Item{Key: it.Key, Value: it.Value, CAS: it.CasID}, nil
}

// GetMulti implements Store: one request per server, in parallel. If a
// server fails, GetMulti fails (naming it) rather than return the other
// servers' items as if the failed ones were missing.
func (m *Memcache) GetMulti(ctx context.Context, keys []string) (map[string]*Item, error) {
	groups := make(map[int][]string)
	for _, k := range keys {
		if !ValidKey(k) {
			return nil, fmt.Errorf("get multi %q: %w", k, ErrBadKey)
		}
		i := m.ring.index(k)
		groups[i] = append(groups[i], k)
	}
	type result struct {
		items map[string]*memcache.Item
		err   error
	}
	results := make(chan result, len(groups))
	for i, ks := range groups {
		go func() {
			if err := m.acquire(ctx, i, "get multi", ks[0]); err != nil {
				results <- result{err: err}
				return
			}
			got, err := m.c.GetMulti(ks)
			m.release(i)
			results <- result{got, m.mapErr("get multi", strings.Join(ks, ","), m.ring.names[i], err)}
		}()
	}
	out := make(map[string]*Item, len(keys))
	var errs []error
	for range groups {
		r := <-results
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		for k, it := range r.items {
			out[k] = &Item{Key: k, Value: it.Value, CAS: it.CasID}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// Set implements Store.
func (m *Memcache) Set(ctx context.Context, it *Item) error {
	return m.do(ctx, "set", it.Key, func() error {
		return m.c.Set(&memcache.Item{Key: it.Key, Value: it.Value, Expiration: ttlSeconds(it.TTL)})
	})
}

// Add implements Store.
func (m *Memcache) Add(ctx context.Context, it *Item) error {
	return m.do(ctx, "add", it.Key, func() error {
		return m.c.Add(&memcache.Item{Key: it.Key, Value: it.Value, Expiration: ttlSeconds(it.TTL)})
	})
}

// CompareAndSwap implements Store with memcached's cas command.
func (m *Memcache) CompareAndSwap(ctx context.Context, it *Item) error {
	return m.do(ctx, "cas", it.Key, func() error {
		return m.c.CompareAndSwap(&memcache.Item{Key: it.Key, Value: it.Value, Expiration: ttlSeconds(it.TTL), CasID: it.CAS})
	})
}

// Delete implements Store.
func (m *Memcache) Delete(ctx context.Context, key string) error {
	return m.do(ctx, "delete", key, func() error { return m.c.Delete(key) })
}

// Ping implements Store: every server is asked, and the error names each
// one that did not answer.
func (m *Memcache) Ping(_ context.Context) error {
	var errs []error
	for i, p := range m.pingers {
		if err := p.Ping(); err != nil {
			storeErrors.WithLabelValues("ping", m.ring.names[i]).Inc()
			errs = append(errs, fmt.Errorf("ping memcached %s: %w", m.ring.names[i], err))
		}
	}
	return errors.Join(errs...)
}
