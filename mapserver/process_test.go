package mapserver

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/internal/store/storetest"
	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/proc"
	"github.com/arena-game/arena/proto/procpb"
)

// fakeHost answers LocateMap with one address and counts the calls.
type fakeHost struct {
	mu    sync.Mutex
	addr  string
	calls []string
}

func (h *fakeHost) LocateMap(_ context.Context, mapID string) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, mapID)
	if h.addr == "" {
		return "", errors.New("no address yet")
	}
	return h.addr, nil
}

func TestProcessLifecycle(t *testing.T) {
	_, prefix := storetest.NewWithPrefix(t)
	addrs := storetest.Addrs(t)
	host := &fakeHost{}
	p := NewProcess(slog.New(slog.DiscardHandler))
	t.Cleanup(p.Orphaned)
	load := watchLoad(t, p)
	ctx := context.Background()
	if _, err := p.Status(ctx); !errors.Is(err, proc.ErrNotStarted) {
		t.Fatalf("status before start: %v", err)
	}
	if _, err := p.HostMap(ctx, "town"); !errors.Is(err, proc.ErrNotStarted) {
		t.Fatalf("host map before start: %v", err)
	}
	req := proc.StartRequest{Kind: proc.KindMap, BindHost: "127.0.0.1", Memcache: addrs, StorePrefix: prefix,
		Secret: testSecret, Host: host,
		Map: &procpb.MapOptions{SaveInterval: durationpb.New(300 * time.Millisecond), MaxSpeed: proto.Float64(1000000)}}

	bad := req
	bad.Map = &procpb.MapOptions{SaveInterval: durationpb.New(time.Hour)}
	if _, err := p.Start(ctx, bad); !errors.Is(err, proc.ErrBadOptions) {
		t.Fatalf("started with a bad option: %v", err)
	}
	bad.Map = &procpb.MapOptions{World: "/nonexistent/world.json"}
	if _, err := p.Start(ctx, bad); !errors.Is(err, proc.ErrBadOptions) {
		t.Fatalf("started with a missing world file: %v", err)
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	busy := req
	busy.Port = taken.Addr().(*net.TCPAddr).Port
	if _, err := p.Start(ctx, busy); !errors.Is(err, proc.ErrPortInUse) {
		t.Fatalf("start on a taken port: %v", err)
	}

	started, err := p.Start(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	addr := started.Addr
	host.mu.Lock()
	host.addr = addr
	host.mu.Unlock()
	if _, err := p.Start(ctx, req); err == nil {
		t.Fatal("started twice")
	}
	if _, err := p.HostMap(ctx, "atlantis"); !errors.Is(err, proc.ErrUnknownMap) {
		t.Fatalf("host unknown map: %v", err)
	}
	if load, err := p.HostMap(ctx, "town"); err != nil || load != 0 {
		t.Fatalf("host town: %d %v", load, err)
	}
	if _, err := p.HostMap(ctx, "town"); err != nil {
		t.Fatalf("host town twice: %v", err)
	}

	// A player placed through the host's locator joins; the process
	// publishes its load per map on Watch.
	mc, _ := store.NewMemcache(store.MemcacheConfig{Addrs: addrs})
	st := store.Prefixed(mc, prefix)
	signer, _ := auth.NewSigner(testSecret)
	pl := newPlayer("p")
	ans, err := Enter(ctx, st, signer, DefaultWorld(), LocatorFunc(host.LocateMap), pl, "town")
	if err != nil {
		t.Fatal(err)
	}
	if ans.Addr != WebSocketURL(addr) {
		t.Fatalf("enter addr %s, process at %s", ans.Addr, addr)
	}
	cl := dial(t, ans.Addr, ans.Ticket)
	welcome(t, cl)
	status, err := p.Status(ctx)
	if err != nil || status.Load != 1 || status.Maps["town"] != 1 || status.Connections != 1 {
		t.Fatalf("status %+v %v", status, err)
	}
	waitfor.Cond(t, "town's load on Watch", func() bool { return load.Load("town") == 1 })
	// Switch to the forest, which the host places on this same process:
	// the process asks its host (HostServices), not the line protocol.
	move(t, cl, 980, 500)
	var sw SwitchAnswer
	if err := cl.RecvType(ctxT(t, waitfor.Deadline()), "switch", &sw); err != nil {
		t.Fatal(err)
	}
	welcome(t, dial(t, sw.Addr, sw.Ticket))
	waitfor.Cond(t, "town 0, forest 1 on Watch", func() bool { return load.Load("town") == 0 && load.Load("forest") == 1 })
	host.mu.Lock()
	calls := strings.Join(host.calls, ",")
	host.mu.Unlock()
	if !strings.Contains(calls, "forest") {
		t.Fatalf("the switch did not ask the host: %q", calls)
	}
	if load, err := p.Drain(ctx, time.Now().Add(5*time.Second)); err != nil || load != 0 {
		t.Fatalf("drain: %d %v", load, err)
	}
	if rec, _, _ := GetState(ctx, st, pl.Subject); rec.Status != StatusOffline || rec.Map != "forest" {
		t.Fatalf("record after drain: %+v", rec)
	}
}

// TestProcessOverGRPC drives the process through the go-plugin gRPC
// adapters, as a host does, including its call back to the host's
// LocateMap over the plugin broker.
func TestProcessOverGRPC(t *testing.T) {
	_, prefix := storetest.NewWithPrefix(t)
	impl := NewProcess(slog.New(slog.DiscardHandler))
	t.Cleanup(impl.Orphaned)
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{
		proc.PluginLifecycle: &proc.LifecyclePlugin{Impl: impl},
		proc.PluginMaps:      &proc.MapsPlugin{Impl: impl},
	})
	defer client.Close()
	p, err := proc.Dispense(client, proc.KindMap)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := p.Lifecycle.Status(ctx); !errors.Is(err, proc.ErrNotStarted) {
		t.Fatalf("status before start: %v", err)
	}
	host := &fakeHost{addr: "10.1.2.3:7501"}
	st, err := p.Lifecycle.Start(ctx, proc.StartRequest{Kind: proc.KindMap, BindHost: "127.0.0.1", Memcache: storetest.Addrs(t),
		StorePrefix: prefix, Secret: testSecret, Host: host})
	if err != nil || !strings.HasPrefix(st.Addr, "127.0.0.1:") {
		t.Fatalf("start: %+v %v", st, err)
	}
	if got, err := impl.srv.loc.Locate(ctx, "cave"); err != nil || got != "10.1.2.3:7501" {
		t.Fatalf("locate through the broker: %q %v", got, err)
	}
	if _, err := p.Maps.HostMap(ctx, "nowhere"); !errors.Is(err, proc.ErrUnknownMap) {
		t.Fatalf("host unknown map: %v", err)
	}
	if _, err := p.Maps.HostMap(ctx, "cave"); err != nil {
		t.Fatal(err)
	}
	status, err := p.Lifecycle.Status(ctx)
	if err != nil || status.Maps["cave"] != 0 || len(status.Maps) != 1 {
		t.Fatalf("status %+v %v", status, err)
	}
	if load, err := p.Lifecycle.Drain(ctx, time.Now().Add(time.Second)); err != nil || load != 0 {
		t.Fatalf("drain %d %v", load, err)
	}
	if _, err := p.Maps.HostMap(ctx, "town"); !errors.Is(err, proc.ErrDraining) {
		t.Fatalf("host while draining: %v", err)
	}
}
