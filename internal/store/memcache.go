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
}

// MemcacheConfig configures NewMemcache.
type MemcacheConfig struct {
	// Addrs are host:port of the servers, in the same order on every process.
	Addrs []string
	// Timeout bounds each operation; zero means 500ms.
	Timeout time.Duration
	// MaxIdleConns per server; zero means 64.
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
		c.Timeout = 500 * time.Millisecond
	}
	c.MaxIdleConns = cfg.MaxIdleConns
	if c.MaxIdleConns == 0 {
		c.MaxIdleConns = 64
	}
	return &Memcache{c: c, addrs: append([]string(nil), cfg.Addrs...)}, nil
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
func (m *Memcache) Get(_ context.Context, key string) (*Item, error) {
	if !ValidKey(key) {
		return nil, fmt.Errorf("get %q: %w", key, ErrBadKey)
	}
	it, err := m.c.Get(key)
	if err != nil {
		return nil, mapErr("get", key, err)
	}
	return &Item{Key: it.Key, Value: it.Value, CAS: it.CasID}, nil
}

// GetMulti implements Store.
func (m *Memcache) GetMulti(_ context.Context, keys []string) (map[string]*Item, error) {
	for _, k := range keys {
		if !ValidKey(k) {
			return nil, fmt.Errorf("get multi %q: %w", k, ErrBadKey)
		}
	}
	got, err := m.c.GetMulti(keys)
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
func (m *Memcache) Set(_ context.Context, it *Item) error {
	if !ValidKey(it.Key) {
		return fmt.Errorf("set %q: %w", it.Key, ErrBadKey)
	}
	return mapErr("set", it.Key, m.c.Set(&memcache.Item{Key: it.Key, Value: it.Value, Expiration: ttlSeconds(it.TTL)}))
}

// Add implements Store.
func (m *Memcache) Add(_ context.Context, it *Item) error {
	if !ValidKey(it.Key) {
		return fmt.Errorf("add %q: %w", it.Key, ErrBadKey)
	}
	return mapErr("add", it.Key, m.c.Add(&memcache.Item{Key: it.Key, Value: it.Value, Expiration: ttlSeconds(it.TTL)}))
}

// CompareAndSwap implements Store with memcached's cas command.
func (m *Memcache) CompareAndSwap(_ context.Context, it *Item) error {
	if !ValidKey(it.Key) {
		return fmt.Errorf("cas %q: %w", it.Key, ErrBadKey)
	}
	return mapErr("cas", it.Key, m.c.CompareAndSwap(&memcache.Item{
		Key: it.Key, Value: it.Value, Expiration: ttlSeconds(it.TTL), CasID: it.CAS,
	}))
}

// Delete implements Store.
func (m *Memcache) Delete(_ context.Context, key string) error {
	if !ValidKey(key) {
		return fmt.Errorf("delete %q: %w", key, ErrBadKey)
	}
	return mapErr("delete", key, m.c.Delete(key))
}

// Ping implements Store.
func (m *Memcache) Ping(_ context.Context) error {
	if err := m.c.Ping(); err != nil {
		return fmt.Errorf("ping memcached %v: %w", m.addrs, err)
	}
	return nil
}
