package store

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/arena-game/arena/internal/memcached"
	"github.com/arena-game/arena/internal/waitfor"
)

func testKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "arena:player:" + strconv.Itoa(i)
	}
	return keys
}

func servers(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("10.0.0.%d:11211", i+1)
	}
	return s
}

// TestKetamaPins pins where keys go: a change of the ring would move every
// key of a running arena, so it must be deliberate. (Checked against an
// independent implementation of libketama's construction.)
func TestKetamaPins(t *testing.T) {
	k, err := NewKetama(servers(3))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ key, server string }{
		{"arena:player:alice", "10.0.0.2:11211"},
		{"arena:room:r1", "10.0.0.2:11211"},
		{"arena:fleet", "10.0.0.2:11211"},
		{"a", "10.0.0.3:11211"},
		{"zz", "10.0.0.3:11211"},
		{"arena:map:world:3", "10.0.0.1:11211"},
	} {
		if got := k.Server(tc.key); got != tc.server {
			t.Errorf("%q goes to %s, pinned %s", tc.key, got, tc.server)
		}
	}
}

// moved returns the fraction of keys whose server differs between a and b.
func moved(keys []string, a, b func(string) string) float64 {
	n := 0
	for _, k := range keys {
		if a(k) != b(k) {
			n++
		}
	}
	return float64(n) / float64(len(keys))
}

// modulo is gomemcache's own ServerList placement (crc32 modulo the server
// count), the baseline consistent hashing replaces.
func modulo(servers []string) func(string) string {
	return func(k string) string { return servers[crc32.ChecksumIEEE([]byte(k))%uint32(len(servers))] }
}

// TestKetamaAddingAServerMovesAFourth adds a 4th server to 3: about 25% of
// the keys move (all to the new server), where modulo placement moves
// about 75%. Removing it again moves exactly those keys back.
func TestKetamaAddingAServerMovesAFourth(t *testing.T) {
	keys := testKeys(100_000)
	three, err := NewKetama(servers(3))
	if err != nil {
		t.Fatal(err)
	}
	four, err := NewKetama(servers(4))
	if err != nil {
		t.Fatal(err)
	}
	f := moved(keys, three.Server, four.Server)
	t.Logf("ketama: adding a 4th server moved %.1f%% of %d keys; modulo placement: %.1f%%",
		100*f, len(keys), 100*moved(keys, modulo(servers(3)), modulo(servers(4))))
	if f < 0.20 || f > 0.30 {
		t.Fatalf("adding a 4th server moved %.1f%% of the keys, want 25%% ± 5", 100*f)
	}
	for _, k := range keys {
		if a, b := three.Server(k), four.Server(k); a != b && b != "10.0.0.4:11211" {
			t.Fatalf("key %q moved from %s to %s, not to the new server", k, a, b)
		}
	}
	if m := moved(keys, modulo(servers(3)), modulo(servers(4))); m < 0.6 {
		t.Fatalf("baseline: modulo placement moved only %.1f%%", 100*m)
	}
}

// TestKetamaOrderIndependent gives the same servers in every order: every
// key goes to the same server.
func TestKetamaOrderIndependent(t *testing.T) {
	keys := testKeys(20_000)
	s := servers(3)
	base, err := NewKetama(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, order := range [][]string{{s[2], s[1], s[0]}, {s[1], s[0], s[2]}, {s[0], s[2], s[1]}} {
		k, err := NewKetama(order)
		if err != nil {
			t.Fatal(err)
		}
		if f := moved(keys, base.Server, k.Server); f != 0 {
			t.Fatalf("order %v places %.2f%% of the keys elsewhere", order, 100*f)
		}
	}
}

// TestKetamaBalance spreads keys over servers within a few percent of even.
func TestKetamaBalance(t *testing.T) {
	keys := testKeys(100_000)
	for _, n := range []int{2, 3, 5} {
		k, err := NewKetama(servers(n))
		if err != nil {
			t.Fatal(err)
		}
		count := map[string]int{}
		for _, key := range keys {
			count[k.Server(key)]++
		}
		for s, c := range count {
			if share := float64(c) / float64(len(keys)); share < 0.7/float64(n) || share > 1.3/float64(n) {
				t.Errorf("%d servers: %s holds %.1f%% of the keys", n, s, 100*share)
			}
		}
	}
}

func TestKetamaRefusesDuplicatesAndEmpty(t *testing.T) {
	if _, err := NewKetama(nil); err == nil {
		t.Fatal("no servers accepted")
	}
	s := servers(2)
	if _, err := NewKetama([]string{s[0], s[1], s[0]}); err == nil {
		t.Fatal("a server listed twice accepted")
	}
	if _, err := NewMemcache(MemcacheConfig{Addrs: []string{s[1], s[1]}}); err == nil {
		t.Fatal("memcache store with a server listed twice")
	}
}

// TestMemcachePlacesByKetama writes through the store to two real
// memcached-protocol servers and finds each key on the server the ring
// names, whatever order the list is given in.
func TestMemcachePlacesByKetama(t *testing.T) {
	var addrs []string
	direct := map[string]*Memcache{}
	for range 2 {
		s, err := memcached.Start(memcached.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		addrs = append(addrs, s.Addr())
		one, err := NewMemcache(MemcacheConfig{Addrs: []string{s.Addr()}})
		if err != nil {
			t.Fatal(err)
		}
		direct[s.Addr()] = one
	}
	ctx := context.Background()
	st, err := NewMemcache(MemcacheConfig{Addrs: addrs})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := NewMemcache(MemcacheConfig{Addrs: []string{addrs[1], addrs[0]}})
	if err != nil {
		t.Fatal(err)
	}
	keys := testKeys(200)
	for _, k := range keys {
		if err := st.Set(ctx, &Item{Key: k, Value: []byte(k)}); err != nil {
			t.Fatal(err)
		}
	}
	perServer := map[string]int{}
	for _, k := range keys {
		want := st.ring.Server(k)
		perServer[want]++
		if _, err := direct[want].Get(ctx, k); err != nil {
			t.Fatalf("%q not on %s: %v", k, want, err)
		}
		if it, err := rev.Get(ctx, k); err != nil || string(it.Value) != k {
			t.Fatalf("the reversed list does not find %q: %v", k, err)
		}
	}
	if len(perServer) != 2 {
		t.Fatalf("keys on %v", perServer)
	}
	got, err := rev.GetMulti(ctx, keys)
	if err != nil || len(got) != len(keys) {
		t.Fatalf("get multi over both servers: %d items, %v", len(got), err)
	}
}

// TestMemcacheOneServerDown stops one of two servers: operations on its
// keys fail naming it and are counted in arena_store_errors_total; the
// other server's keys still work; a get multi over both fails instead of
// reporting the dead server's keys as missing; Ping names the dead server.
func TestMemcacheOneServerDown(t *testing.T) {
	up, err := memcached.Start(memcached.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	down, err := memcached.Start(memcached.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := NewMemcache(MemcacheConfig{Addrs: []string{up.Addr(), down.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	keys := testKeys(100)
	for _, k := range keys {
		if err := st.Set(ctx, &Item{Key: k, Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	down.Close()
	before := counterValue(t, "get", down.Addr())
	var onDown, onUp []string
	for _, k := range keys {
		if st.ring.Server(k) == down.Addr() {
			onDown = append(onDown, k)
		} else {
			onUp = append(onUp, k)
		}
	}
	for _, k := range onDown {
		_, err := st.Get(ctx, k)
		if err == nil || errors.Is(err, ErrNotFound) {
			t.Fatalf("get %q on the stopped server: %v, want a failure (not a miss)", k, err)
		}
	}
	if got := counterValue(t, "get", down.Addr()) - before; got != float64(len(onDown)) {
		t.Fatalf("arena_store_errors_total{op=get,server=%s} rose by %v, want %d", down.Addr(), got, len(onDown))
	}
	for _, k := range onUp {
		if _, err := st.Get(ctx, k); err != nil {
			t.Fatalf("get %q on the running server: %v", k, err)
		}
	}
	if _, err := st.GetMulti(ctx, keys); err == nil {
		t.Fatal("get multi over both servers succeeded with one stopped")
	}
	if got, err := st.GetMulti(ctx, onUp); err != nil || len(got) != len(onUp) {
		t.Fatalf("get multi on the running server: %d, %v", len(got), err)
	}
	if err := st.Ping(ctx); err == nil || !strings.Contains(err.Error(), down.Addr()) {
		t.Fatalf("ping: %v, want an error naming %s", err, down.Addr())
	}
}

// counterValue reads arena_store_errors_total{op,server}.
func counterValue(t *testing.T, op, server string) float64 {
	t.Helper()
	var m dto.Metric
	if err := storeErrors.WithLabelValues(op, server).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func BenchmarkKetamaPick(b *testing.B) {
	k, err := NewKetama(servers(3))
	if err != nil {
		b.Fatal(err)
	}
	keys := testKeys(1024)
	b.ResetTimer()
	for i := range b.N {
		k.Server(keys[i%len(keys)])
	}
}

// TestMemcacheServerHung puts a server that accepts connections and never
// answers (a hung or stopped memcached) beside a working one: operations on
// its keys fail after the timeout and are counted, and a burst of them does
// not hold up the working server's keys (each server has its own
// operations in flight).
func TestMemcacheServerHung(t *testing.T) {
	up, err := memcached.Start(memcached.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := hung.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	const timeout = 300 * time.Millisecond
	st, err := NewMemcache(MemcacheConfig{Addrs: []string{up.Addr(), hung.Addr().String()}, Timeout: timeout, MaxIdleConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var onHung, onUp []string
	for _, k := range testKeys(200) {
		if st.ring.Server(k) == hung.Addr().String() {
			onHung = append(onHung, k)
		} else {
			onUp = append(onUp, k)
		}
	}
	before := counterValue(t, "get", hung.Addr().String())
	// A burst on the hung server: more operations than it has slots.
	var wg sync.WaitGroup
	failed := make(chan error, len(onHung))
	for _, k := range onHung[:20] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := st.Get(ctx, k)
			failed <- err
		}()
	}
	// Once every slot of the hung server is taken (four connections held,
	// sixteen operations queued), the working server still has all of its
	// own: an operation whose context allows no waiting goes through.
	waitfor.Cond(t, "the hung server to hold four connections", func() bool { return accepted.Load() >= 4 })
	noWait, cancel := context.WithCancel(ctx)
	cancel()
	for _, k := range onUp[:20] {
		if err := st.Set(noWait, &Item{Key: k, Value: []byte("v")}); err != nil {
			t.Fatalf("set on the working server while the hung one's slots are full: %v", err)
		}
	}
	wg.Wait()
	close(failed)
	for err := range failed {
		if err == nil || errors.Is(err, ErrNotFound) {
			t.Fatalf("get on the hung server: %v, want a failure", err)
		}
	}
	if got := counterValue(t, "get", hung.Addr().String()) - before; got != 20 {
		t.Fatalf("arena_store_errors_total{op=get} on the hung server rose by %v, want 20", got)
	}
}
