package mapbench

import (
	"context"
	"log/slog"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/mapserver"
	"github.com/arena-game/arena/proc"
)

// TestMain lets the test binary be the map server child: go-plugin starts
// it with the handshake cookie set.
func TestMain(m *testing.M) {
	if proc.StartedByHost() {
		p := mapserver.NewProcess(proc.NewLogger(os.Stderr, slog.LevelWarn))
		if err := proc.Serve(proc.Server{Lifecycle: p, Maps: p, OnOrphan: p.Orphaned}); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestBenchSmall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := Run(ctx, Config{
		Players: 60, Servers: 3, Duration: 3 * time.Second, MoveRate: 5, MapSize: 800,
		Command: []string{os.Args[0]}, Seed: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", r.Text())
	if r.Connected != 60 || r.Servers != 3 || r.Moves == 0 {
		t.Fatalf("result %+v", r)
	}
	if r.Handoffs == 0 || r.SeenSamples == 0 || r.BaselineP50 <= 0 {
		t.Fatalf("nothing measured: %+v", r)
	}
	if r.HandoffFailures > 0 {
		t.Fatalf("%d handoffs failed: %v", r.HandoffFailures, r.Errors)
	}
}

func TestHistogram(t *testing.T) {
	var h hist
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Millisecond)
	}
	if p := h.quantile(.5); p < 495000 || p > 505000 {
		t.Fatalf("p50 %v", p)
	}
	if p := h.quantile(.99); p < 985000 || p > 995000 {
		t.Fatalf("p99 %v", p)
	}
	for _, us := range []uint64{0, 1, 1023, 1024, 5000, 1 << 30} {
		if v := bucketValue(bucket(us)); v > us || float64(us-v) > float64(us)*0.002+1 {
			t.Fatalf("bucket of %d is %d", us, v)
		}
	}
}

// TestBenchAgainstRunningArena runs the bench in --dispatcher mode against
// a stand-in arena: memcached, a line-protocol responder and one map
// server hosting the default world.
func TestBenchAgainstRunningArena(t *testing.T) {
	addrs, stop, err := startMemcached("")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	resp, err := startResponder("tok")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.close()
	const secret, prefix = "arena-secret", "arena:"
	mc, _ := store.NewMemcache(store.MemcacheConfig{Addrs: addrs})
	signer, _ := auth.NewSigner(secret)
	srv, err := mapserver.New(mapserver.Deps{Store: store.Prefixed(mc, prefix), Signer: signer,
		Locator: mapserver.NewLineLocator(resp.addr(), "127.0.0.1", 2), World: mapserver.DefaultWorld()})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	_, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	for _, id := range mapserver.DefaultWorld().IDs() {
		resp.place(id, p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := Run(ctx, Config{Players: 30, Duration: 3 * time.Second, MoveRate: 4, Dispatcher: resp.addr(),
		Memcache: addrs, StorePrefix: prefix, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", r.Text())
	if r.Connected != 30 || r.Moves == 0 || r.Servers != 0 {
		t.Fatalf("result %+v", r)
	}
}
