package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// Memcache is a Store over one or more memcached servers. gomemcache hashes
// each key to one server modulo the server count, so every process of one
// arena must be given the same server list in the same order.
type Memcache struct {
	c     *memcache.Client
	addrs []string
	// slots bounds operations in flight, so bursts queue here and reuse
	// pooled connections instead of opening one per request (a burst of
	// thousands would otherwise time out on connection setup).
	slots chan struct{}
}

// MemcacheConfig configures NewMemcache.
type MemcacheConfig struct {
	// Addrs are host:port of the servers, in the same order on every process.
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
	c := memcache.New(cfg.Addrs...)
	c.Timeout = cfg.Timeout
	if c.Timeout == 0 {
		c.Timeout = time.Second
	}
	c.MaxIdleConns = cfg.MaxIdleConns
	if c.MaxIdleConns == 0 {
		c.MaxIdleConns = 64
	}
	return &Memcache{c: c, addrs: append([]string(nil), cfg.Addrs...), slots: make(chan struct{}, c.MaxIdleConns*len(cfg.Addrs))}, nil
}

// acquire waits for an operation slot, or for ctx.
func (m *Memcache) acquire(ctx context.Context, op, key string) error {
	select {
	case m.slots <- struct{}{}:
		return nil
	default:
	}
	select {
	case m.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s %q: waiting for a memcached connection: %w", op, key, ctx.Err())
	}
}

func (m *Memcache) release() { <-m.slots }

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

func mapErr(op, key string, err error) error {
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
	case strings.Contains(err.Error(), "object too large"), strings.Contains(err.Error(), "SERVER_ERROR"):
		return fmt.Errorf("%s %q: %w: %v", op, key, ErrTooLarge, err)
	default:
		return fmt.Errorf("%s %q: %w", op, key, err)
	}
}

// Get implements Store.
func (m *Memcache) Get(ctx context.Context, key string) (*Item, error) {
	if !ValidKey(key) {
		return nil, fmt.Errorf("get %q: %w", key, ErrBadKey)
	}
	if err := m.acquire(ctx, "get", key); err != nil {
		return nil, err
	}
	it, err := m.c.Get(key)
	m.release()
	if err != nil {
		return nil, mapErr("get", key, err)
	}
	return &Item{Key: it.Key, Value: it.Value, CAS: it.CasID}, nil
}

// GetMulti implements Store.
func (m *Memcache) GetMulti(ctx context.Context, keys []string) (map[string]*Item, error) {
	for _, k := range keys {
		if !ValidKey(k) {
			return nil, fmt.Errorf("get multi %q: %w", k, ErrBadKey)
		}
	}
	if err := m.acquire(ctx, "get multi", ""); err != nil {
		return nil, err
	}
	got, err := m.c.GetMulti(keys)
	m.release()
	if err != nil {
		return nil, mapErr("get multi", strings.Join(keys, ","), err)
	}
	out := make(map[string]*Item, len(got))
	for k, it := range got {
		out[k] = &Item{Key: k, Value: it.Value, CAS: it.CasID}
	}
	return out, nil
}

// Set implements Store.
func (m *Memcache) Set(ctx context.Context, it *Item) error {
	if !ValidKey(it.Key) {
		return fmt.Errorf("set %q: %w", it.Key, ErrBadKey)
	}
	if err := m.acquire(ctx, "set", it.Key); err != nil {
		return err
	}
	defer m.release()
	return mapErr("set", it.Key, m.c.Set(&memcache.Item{Key: it.Key, Value: it.Value, Expiration: ttlSeconds(it.TTL)}))
}

// Add implements Store.
func (m *Memcache) Add(ctx context.Context, it *Item) error {
	if !ValidKey(it.Key) {
		return fmt.Errorf("add %q: %w", it.Key, ErrBadKey)
	}
	if err := m.acquire(ctx, "add", it.Key); err != nil {
		return err
	}
	defer m.release()
	return mapErr("add", it.Key, m.c.Add(&memcache.Item{Key: it.Key, Value: it.Value, Expiration: ttlSeconds(it.TTL)}))
}

// CompareAndSwap implements Store with memcached's cas command.
func (m *Memcache) CompareAndSwap(ctx context.Context, it *Item) error {
	if !ValidKey(it.Key) {
		return fmt.Errorf("cas %q: %w", it.Key, ErrBadKey)
	}
	if err := m.acquire(ctx, "cas", it.Key); err != nil {
		return err
	}
	defer m.release()
	return mapErr("cas", it.Key, m.c.CompareAndSwap(&memcache.Item{
		Key: it.Key, Value: it.Value, Expiration: ttlSeconds(it.TTL), CasID: it.CAS,
	}))
}

// Delete implements Store.
func (m *Memcache) Delete(ctx context.Context, key string) error {
	if !ValidKey(key) {
		return fmt.Errorf("delete %q: %w", key, ErrBadKey)
	}
	if err := m.acquire(ctx, "delete", key); err != nil {
		return err
	}
	defer m.release()
	return mapErr("delete", key, m.c.Delete(key))
}

// Ping implements Store.
func (m *Memcache) Ping(_ context.Context) error {
	if err := m.c.Ping(); err != nil {
		return fmt.Errorf("ping memcached %v: %w", m.addrs, err)
	}
	return nil
}
