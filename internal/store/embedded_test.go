package store_test

import (
	"context"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/internal/waitfor"
)

// TestEmbeddedSurvivesHostileInput sends the embedded memcached what made
// the one arena used before (minimemcached) panic and take the whole
// process down, then pipelined requests it lost, and checks that the store
// still works.
func TestEmbeddedSurvivesHostileInput(t *testing.T) {
	e, err := store.StartEmbedded(0)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, in := range []string{"get foo\r\n", "gets a b\r\n", "\r\n", "set k 0 0 -1\r\n", "\x80\x01"} {
		c, err := net.Dial("tcp", e.Addr())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(waitfor.Deadline()))
		io.WriteString(c, in)
		c.(*net.TCPConn).CloseWrite()
		io.ReadAll(c)
		c.Close()
	}
	c, err := net.Dial("tcp", e.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(waitfor.Deadline()))
	const want = "STORED\r\nVALUE p 0 1\r\n1\r\nEND\r\nSTORED\r\n"
	io.WriteString(c, "set p 0 0 1\r\n1\r\nget p\r\nset q 0 0 1\r\n2\r\n")
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
		t.Fatalf("pipelined requests: got %q, %v; want %q", got, err, want)
	}
	s, err := store.NewMemcache(store.MemcacheConfig{Addrs: []string{e.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Set(ctx, &store.Item{Key: "after", Value: []byte("ok")}); err != nil {
		t.Fatal(err)
	}
	if it, err := s.Get(ctx, "after"); err != nil || string(it.Value) != "ok" {
		t.Fatalf("get after hostile input: %v %v", it, err)
	}
}

// TestEmbeddedMetrics exports a running embedded server's counters through
// the store's collector, and stops when it is closed.
func TestEmbeddedMetrics(t *testing.T) {
	e, err := store.StartEmbedded(0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.NewMemcache(store.MemcacheConfig{Addrs: []string{e.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := s.Set(context.Background(), &store.Item{Key: "m" + strconv.Itoa(i), Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(store.Collector())
	series := func() map[string]float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "addr" && l.GetValue() == e.Addr() {
						out[mf.GetName()] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
					}
				}
			}
		}
		return out
	}
	got := series()
	if got["arena_memcached_items"] != 5 || got["arena_memcached_limit_bytes"] != 64<<20 || got["arena_memcached_bytes"] <= 0 {
		t.Fatalf("series of %s: %v", e.Addr(), got)
	}
	if _, ok := got["arena_memcached_evictions_total"]; !ok {
		t.Fatalf("no evictions series: %v", got)
	}
	e.Close()
	if got := series(); len(got) != 0 {
		t.Fatalf("series after Close: %v", got)
	}
}
