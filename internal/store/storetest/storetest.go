// Package storetest gives tests a real memcached-protocol Store: the
// memcached named by ARENA_TEST_MEMCACHE (host:port[,host:port]) when set,
// as the test script does when a memcached binary exists, otherwise an
// embedded one started for the test.
package storetest

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/store"
)

var seq atomic.Int64

// Addrs returns memcached addresses for a test: ARENA_TEST_MEMCACHE's, or a
// fresh embedded server's (closed when the test ends).
func Addrs(t testing.TB) []string {
	t.Helper()
	if env := os.Getenv("ARENA_TEST_MEMCACHE"); env != "" {
		return store.ParseAddrs(env)
	}
	e, err := store.StartEmbedded(0)
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	t.Cleanup(e.Close)
	return []string{e.Addr()}
}

// New returns a Store for a test with a key prefix unique to this test, so
// tests sharing one real memcached never see each other's keys.
func New(t testing.TB) store.Store {
	t.Helper()
	s, _ := NewWithPrefix(t)
	return s
}

// NewWithPrefix is New, also returning the prefix (for handing to child
// processes that must see the same keys).
func NewWithPrefix(t testing.TB) (store.Store, string) {
	t.Helper()
	m, err := store.NewMemcache(store.MemcacheConfig{Addrs: Addrs(t), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	prefix := fmt.Sprintf("t%d.%d.", time.Now().UnixNano()%1e9, seq.Add(1))
	return store.Prefixed(m, prefix), prefix
}

// Real reports whether tests run against an external memcached.
func Real() bool { return os.Getenv("ARENA_TEST_MEMCACHE") != "" }
