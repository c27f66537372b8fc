// Package store is arena's shared state: a small key-value interface with
// compare-and-swap, implemented over memcached (github.com/bradfitz/gomemcache)
// and in memory for tests.
//
// Everything that must survive a process crash (the process table, player
// records, rooms, map handoff records, chat history) lives behind this
// interface. Keys are namespaced by a prefix so two arenas can share one
// memcached.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Implementations wrap them; callers check with errors.Is.
var (
	// ErrNotFound means the key holds no item (never set, deleted or expired).
	ErrNotFound = errors.New("store: not found")
	// ErrNotStored means an Add found the key already present.
	ErrNotStored = errors.New("store: not stored")
	// ErrCASConflict means the item changed since it was read.
	ErrCASConflict = errors.New("store: cas conflict")
	// ErrBadKey means the key is empty, too long or has spaces or control characters.
	ErrBadKey = errors.New("store: bad key")
	// ErrTooLarge means the value is over the server's item size limit.
	ErrTooLarge = errors.New("store: value too large")
)

// MaxKeyLen is memcached's key length limit, prefix included.
const MaxKeyLen = 250

// Item is one stored value. CAS is the opaque version Get returned; it is
// what CompareAndSwap checks.
type Item struct {
	Key   string
	Value []byte
	// TTL is how long the item lives; zero means no expiry. Memcached
	// rounds it to whole seconds (at least one).
	TTL time.Duration
	CAS uint64
}

// Store is the shared state interface. Implementations are safe for
// concurrent use.
type Store interface {
	// Get returns the item at key, or ErrNotFound.
	Get(ctx context.Context, key string) (*Item, error)
	// GetMulti returns the items found among keys; missing keys are absent
	// from the map.
	GetMulti(ctx context.Context, keys []string) (map[string]*Item, error)
	// Set stores it unconditionally.
	Set(ctx context.Context, it *Item) error
	// Add stores it only if key holds nothing; otherwise ErrNotStored.
	Add(ctx context.Context, it *Item) error
	// CompareAndSwap stores it only if the key still holds the version it.CAS
	// read by Get; otherwise ErrCASConflict, or ErrNotFound if it is gone.
	CompareAndSwap(ctx context.Context, it *Item) error
	// Delete removes key; ErrNotFound if it held nothing.
	Delete(ctx context.Context, key string) error
	// Ping checks that every server answers.
	Ping(ctx context.Context) error
}

// ValidKey reports whether key is a legal memcached key.
func ValidKey(key string) bool {
	if key == "" || len(key) > MaxKeyLen {
		return false
	}
	for i := 0; i < len(key); i++ {
		if key[i] <= ' ' || key[i] == 0x7f {
			return false
		}
	}
	return true
}

// Prefixed wraps s so every key gets prefix in front of it. Two arenas that
// share a memcached use different prefixes.
func Prefixed(s Store, prefix string) Store {
	if prefix == "" {
		return s
	}
	return &prefixed{s: s, p: prefix}
}

type prefixed struct {
	s Store
	p string
}

func (p *prefixed) Get(ctx context.Context, key string) (*Item, error) {
	it, err := p.s.Get(ctx, p.p+key)
	if it != nil {
		it.Key = key
	}
	return it, err
}

func (p *prefixed) GetMulti(ctx context.Context, keys []string) (map[string]*Item, error) {
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = p.p + k
	}
	got, err := p.s.GetMulti(ctx, full)
	out := make(map[string]*Item, len(got))
	for k, it := range got {
		short := k[len(p.p):]
		it.Key = short
		out[short] = it
	}
	return out, err
}

func (p *prefixed) Set(ctx context.Context, it *Item) error {
	c := *it
	c.Key = p.p + it.Key
	return p.s.Set(ctx, &c)
}

func (p *prefixed) Add(ctx context.Context, it *Item) error {
	c := *it
	c.Key = p.p + it.Key
	return p.s.Add(ctx, &c)
}

func (p *prefixed) CompareAndSwap(ctx context.Context, it *Item) error {
	c := *it
	c.Key = p.p + it.Key
	return p.s.CompareAndSwap(ctx, &c)
}

func (p *prefixed) Delete(ctx context.Context, key string) error {
	return p.s.Delete(ctx, p.p+key)
}

func (p *prefixed) Ping(ctx context.Context) error { return p.s.Ping(ctx) }

// GetJSON reads key and decodes its JSON value into v. It returns the
// item's CAS version for a later CompareAndSwap, or the Get error
// (ErrNotFound, wrapped, when the key holds nothing).
func GetJSON(ctx context.Context, s Store, key string, v any) (uint64, error) {
	it, err := s.Get(ctx, key)
	if err != nil {
		return 0, err
	}
	if err := json.Unmarshal(it.Value, v); err != nil {
		return 0, fmt.Errorf("decode %q: %w", key, err)
	}
	return it.CAS, nil
}
