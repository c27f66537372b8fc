package mapserver

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/fleet"
	"github.com/arena-game/arena/internal/lineproto"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/internal/store/storetest"
	"github.com/arena-game/arena/internal/waitfor"
)

// fakeDispatcher answers the line protocol: get|map|X with port, add/del
// with ok (recording them).
type fakeDispatcher struct {
	addr string
	mu   sync.Mutex
	port int
	log  []string
}

func newFakeDispatcher(t *testing.T) *fakeDispatcher {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	d := &fakeDispatcher{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					req, err := lineproto.Parse([]byte(strings.TrimSuffix(line, "\n")))
					ans := "ok"
					switch {
					case err != nil:
						ans = "err|" + err.Error()
					case req.Verb == lineproto.VerbGet:
						d.mu.Lock()
						ans = strconv.Itoa(d.port)
						d.mu.Unlock()
					default:
						d.mu.Lock()
						d.log = append(d.log, line[:len(line)-1])
						d.mu.Unlock()
					}
					if _, err := c.Write([]byte(ans + "\n")); err != nil {
						return
					}
				}
			}()
		}
	}()
	return d
}

func (d *fakeDispatcher) lines() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.log...)
}

func TestProcessLifecycle(t *testing.T) {
	_, prefix := storetest.NewWithPrefix(t)
	addrs := storetest.Addrs(t)
	disp := newFakeDispatcher(t)
	proc := NewProcess(slog.New(slog.DiscardHandler))
	t.Cleanup(proc.Orphaned)
	ctx := context.Background()
	if _, err := proc.Status(ctx); !errors.Is(err, fleet.ErrNotStarted) {
		t.Fatalf("status before start: %v", err)
	}
	if _, err := proc.HostMap(ctx, "town"); !errors.Is(err, fleet.ErrNotStarted) {
		t.Fatalf("host map before start: %v", err)
	}
	cfg := fleet.StartConfig{Kind: fleet.KindMap, Host: "127.0.0.1", Memcache: addrs, StorePrefix: prefix,
		Secret: testSecret, FleetToken: "fleet-tok", Dispatcher: disp.addr,
		Options: map[string]string{OptSaveInterval: "300ms", OptMaxSpeed: "1000000", "colour": "blue"}}

	bad := cfg
	bad.Options = map[string]string{OptSaveInterval: "forever"}
	if _, err := proc.Start(ctx, bad); err == nil {
		t.Fatal("started with a bad option")
	}
	bad.Options = map[string]string{OptWorld: "/nonexistent/world.json"}
	if _, err := proc.Start(ctx, bad); err == nil {
		t.Fatal("started with a missing world file")
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	busy := cfg
	busy.Port = taken.Addr().(*net.TCPAddr).Port
	if _, err := proc.Start(ctx, busy); !errors.Is(err, fleet.ErrPortInUse) {
		t.Fatalf("start on a taken port: %v", err)
	}

	addr, err := proc.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := splitHostPort(addr)
	disp.mu.Lock()
	disp.port = port
	disp.mu.Unlock()
	if _, err := proc.Start(ctx, cfg); err == nil {
		t.Fatal("started twice")
	}
	if _, err := proc.HostMap(ctx, "atlantis"); !errors.Is(err, fleet.ErrUnknownMap) {
		t.Fatalf("host unknown map: %v", err)
	}
	if load, err := proc.HostMap(ctx, "town"); err != nil || load != 0 {
		t.Fatalf("host town: %d %v", load, err)
	}
	if _, err := proc.HostMap(ctx, "town"); err != nil {
		t.Fatalf("host town twice: %v", err)
	}
	if _, err := proc.AssignRoom(ctx, fleet.Room{ID: "r"}); err == nil {
		t.Fatal("a map server took a room")
	}

	// A player placed through the line protocol joins and leaves; the
	// dispatcher hears add and del for its map.
	mc, _ := store.NewMemcache(store.MemcacheConfig{Addrs: addrs})
	st := store.Prefixed(mc, prefix)
	signer, _ := auth.NewSigner(testSecret)
	loc := NewLineLocator(disp.addr, "127.0.0.1", 2)
	p := newPlayer("p")
	ans, err := Enter(ctx, st, signer, DefaultWorld(), loc, p, "town")
	if err != nil {
		t.Fatal(err)
	}
	if ans.Addr != WebSocketURL(addr) {
		t.Fatalf("enter addr %s, process at %s", ans.Addr, addr)
	}
	cl := dial(t, ans.Addr, ans.Ticket)
	welcome(t, cl)
	status, err := proc.Status(ctx)
	if err != nil || status.Load != 1 || status.Maps["town"] != 1 || status.Connections != 1 {
		t.Fatalf("status %+v %v", status, err)
	}
	want := "add|" + strconv.Itoa(port) + "|fleet-tok|town"
	waitfor.Cond(t, "add reported", func() bool { l := disp.lines(); return len(l) == 1 && l[0] == want })
	// Switch to the forest, which the dispatcher places on this same process.
	move(t, cl, 980, 500)
	var sw SwitchAnswer
	if err := cl.RecvType(ctxT(t, 5*time.Second), "switch", &sw); err != nil {
		t.Fatal(err)
	}
	welcome(t, dial(t, sw.Addr, sw.Ticket))
	waitfor.Cond(t, "del town, add forest", func() bool {
		l := strings.Join(disp.lines(), " ")
		return strings.Contains(l, "del|"+strconv.Itoa(port)+"|fleet-tok|town") && strings.Contains(l, "add|"+strconv.Itoa(port)+"|fleet-tok|forest")
	})
	if load, err := proc.Drain(ctx, time.Now().Add(5*time.Second)); err != nil || load != 0 {
		t.Fatalf("drain: %d %v", load, err)
	}
	if rec, _, _ := GetState(ctx, st, p.Subject); rec.Status != StatusOffline || rec.Map != "forest" {
		t.Fatalf("record after drain: %+v", rec)
	}
}

// TestProcessOverGRPC drives the process through the go-plugin gRPC
// adapters, as the dispatcher does.
func TestProcessOverGRPC(t *testing.T) {
	_, prefix := storetest.NewWithPrefix(t)
	impl := NewProcess(slog.New(slog.DiscardHandler))
	t.Cleanup(impl.Orphaned)
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{fleet.PluginName: &fleet.GRPCPlugin{Impl: impl}})
	defer client.Close()
	raw, err := client.Dispense(fleet.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	p := raw.(fleet.Process)
	ctx := context.Background()
	if _, err := p.Status(ctx); !errors.Is(err, fleet.ErrNotStarted) {
		t.Fatalf("status before start: %v", err)
	}
	addr, err := p.Start(ctx, fleet.StartConfig{Kind: fleet.KindMap, Host: "127.0.0.1", Memcache: storetest.Addrs(t),
		StorePrefix: prefix, Secret: testSecret})
	if err != nil || !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("start: %q %v", addr, err)
	}
	if _, err := p.HostMap(ctx, "nowhere"); !errors.Is(err, fleet.ErrUnknownMap) {
		t.Fatalf("host unknown map: %v", err)
	}
	if _, err := p.HostMap(ctx, "cave"); err != nil {
		t.Fatal(err)
	}
	st, err := p.Status(ctx)
	if err != nil || st.Maps["cave"] != 0 || len(st.Maps) != 1 {
		t.Fatalf("status %+v %v", st, err)
	}
	if load, err := p.Drain(ctx, time.Now().Add(time.Second)); err != nil || load != 0 {
		t.Fatalf("drain %d %v", load, err)
	}
	if _, err := p.HostMap(ctx, "town"); !errors.Is(err, fleet.ErrDraining) {
		t.Fatalf("host while draining: %v", err)
	}
}
