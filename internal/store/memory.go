package store

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Memory is an in-process Store with memcached's semantics (expiry, add,
// cas versions). Tests and single-process tools use it.
type Memory struct {
	mu    sync.Mutex
	items map[string]memItem
	next  uint64
	now   func() time.Time
	// MaxValue is the largest value accepted; zero means 1 MiB, as memcached.
	MaxValue int
}

type memItem struct {
	value   []byte
	cas     uint64
	expires time.Time // zero: never
}

// NewMemory returns an empty Memory store.
func NewMemory() *Memory {
	return &Memory{items: make(map[string]memItem), now: time.Now}
}

// SetClock makes m read time from now (for expiry tests).
func (m *Memory) SetClock(now func() time.Time) { m.mu.Lock(); m.now = now; m.mu.Unlock() }

func (m *Memory) live(key string) (memItem, bool) {
	it, ok := m.items[key]
	if !ok {
		return it, false
	}
	if !it.expires.IsZero() && !m.now().Before(it.expires) {
		delete(m.items, key)
		return it, false
	}
	return it, true
}

func (m *Memory) put(it *Item) error {
	max := m.MaxValue
	if max == 0 {
		max = 1 << 20
	}
	if len(it.Value) > max {
		return fmt.Errorf("store %q: %w", it.Key, ErrTooLarge)
	}
	m.next++
	var exp time.Time
	if it.TTL > 0 {
		exp = m.now().Add(time.Duration(ttlSeconds(it.TTL)) * time.Second)
	}
	m.items[it.Key] = memItem{value: append([]byte(nil), it.Value...), cas: m.next, expires: exp}
	return nil
}

// Get implements Store.
func (m *Memory) Get(_ context.Context, key string) (*Item, error) {
	if !ValidKey(key) {
		return nil, fmt.Errorf("get %q: %w", key, ErrBadKey)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.live(key)
	if !ok {
		return nil, fmt.Errorf("get %q: %w", key, ErrNotFound)
	}
	return &Item{Key: key, Value: append([]byte(nil), it.value...), CAS: it.cas}, nil
}

// GetMulti implements Store.
func (m *Memory) GetMulti(ctx context.Context, keys []string) (map[string]*Item, error) {
	out := make(map[string]*Item, len(keys))
	for _, k := range keys {
		it, err := m.Get(ctx, k)
		if err == nil {
			out[k] = it
		} else if !ValidKey(k) {
			return nil, err
		}
	}
	return out, nil
}

// Set implements Store.
func (m *Memory) Set(_ context.Context, it *Item) error {
	if !ValidKey(it.Key) {
		return fmt.Errorf("set %q: %w", it.Key, ErrBadKey)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.put(it)
}

// Add implements Store.
func (m *Memory) Add(_ context.Context, it *Item) error {
	if !ValidKey(it.Key) {
		return fmt.Errorf("add %q: %w", it.Key, ErrBadKey)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.live(it.Key); ok {
		return fmt.Errorf("add %q: %w", it.Key, ErrNotStored)
	}
	return m.put(it)
}

// CompareAndSwap implements Store.
func (m *Memory) CompareAndSwap(_ context.Context, it *Item) error {
	if !ValidKey(it.Key) {
		return fmt.Errorf("cas %q: %w", it.Key, ErrBadKey)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.live(it.Key)
	if !ok {
		return fmt.Errorf("cas %q: %w", it.Key, ErrNotFound)
	}
	if cur.cas != it.CAS {
		return fmt.Errorf("cas %q: %w", it.Key, ErrCASConflict)
	}
	return m.put(it)
}

// Delete implements Store.
func (m *Memory) Delete(_ context.Context, key string) error {
	if !ValidKey(key) {
		return fmt.Errorf("delete %q: %w", key, ErrBadKey)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.live(key); !ok {
		return fmt.Errorf("delete %q: %w", key, ErrNotFound)
	}
	delete(m.items, key)
	return nil
}

// Ping implements Store.
func (m *Memory) Ping(context.Context) error { return nil }
