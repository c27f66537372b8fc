// Package fleettest runs fleets in tests: an in-memory network between a
// dispatcher's host-control service and hosts, in-process fake processes
// that serve the process contract, and helpers that start them.
package fleettest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/arena-game/arena/fleet"
	"github.com/arena-game/arena/fleet/fakeproc"
	"github.com/arena-game/arena/host"
	"github.com/arena-game/arena/hostctl"
	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/proc"
	"github.com/arena-game/arena/proto/hostpb"
)

// Token is the fleet token of the fleets fleettest starts.
const Token = "fleet-test-token"

// Quiet is a logger that discards.
func Quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Network is the in-memory network between hosts and the dispatcher: a
// restarted dispatcher listens anew and the hosts' next dials reach it.
type Network struct {
	mu  sync.Mutex
	lis *bufconn.Listener
	cut map[string]*gate // per host name: a network cut
}

// gate blocks a connection's reads and writes while closed.
type gate struct {
	mu   sync.Mutex
	cond *sync.Cond
	shut bool
}

func newGate() *gate {
	g := &gate{}
	g.cond = sync.NewCond(&g.mu)
	return g
}

func (g *gate) wait() {
	g.mu.Lock()
	for g.shut {
		g.cond.Wait()
	}
	g.mu.Unlock()
}

func (g *gate) set(shut bool) {
	g.mu.Lock()
	g.shut = shut
	g.mu.Unlock()
	g.cond.Broadcast()
}

// gatedConn is a connection through a gate: a cut network holds its
// bytes (the TCP connection stays up, as when a cable is pulled).
type gatedConn struct {
	net.Conn
	g *gate
}

func (c gatedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.g.wait()
	return n, err
}

func (c gatedConn) Write(b []byte) (int, error) {
	c.g.wait()
	return c.Conn.Write(b)
}

// Cut cuts (true) or heals (false) the network between host name and the
// dispatcher: bytes stop flowing both ways, connections stay open.
func (n *Network) Cut(name string, cut bool) {
	n.gate(name).set(cut)
}

func (n *Network) gate(name string) *gate {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cut == nil {
		n.cut = map[string]*gate{}
	}
	if n.cut[name] == nil {
		n.cut[name] = newGate()
	}
	return n.cut[name]
}

// DialAs dials the dispatcher as host name (through its cut gate).
func (n *Network) DialAs(ctx context.Context, name string) (net.Conn, error) {
	c, err := n.Dial(ctx)
	if err != nil {
		return nil, err
	}
	return gatedConn{Conn: c, g: n.gate(name)}, nil
}

func (n *Network) Listen() *bufconn.Listener {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.lis = bufconn.Listen(1 << 20)
	return n.lis
}

func (n *Network) Dial(ctx context.Context) (net.Conn, error) {
	n.mu.Lock()
	lis := n.lis
	n.mu.Unlock()
	if lis == nil {
		return nil, fmt.Errorf("no dispatcher")
	}
	return lis.DialContext(ctx)
}

// Dispatcher is a Fleet served on an in-memory listener, as the
// dispatcher serves it on --host-listen.
type Dispatcher struct {
	F      *fleet.Fleet
	lis    *bufconn.Listener
	srv    *grpc.Server
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	ended  []string
	failed []string
}

func NewDispatcher(t testing.TB, n *Network, mutate func(*fleet.Config)) *Dispatcher {
	t.Helper()
	lis := n.Listen()
	d := &Dispatcher{lis: lis, done: make(chan struct{})}
	// The production lease (3 s): a loaded machine (the race detector on
	// two cores) can hold a host's 20 ms heartbeats back for a few hundred
	// milliseconds, and a host marked lost takes no work; a test about
	// leases sets its own. The grace stays short: it only runs once a
	// host's stream has closed, which load does not do.
	cfg := fleet.Config{MaxNum: 2, FleetToken: Token, LocalAddrs: []string{"10.0.0.1"},
		Heartbeat: 20 * time.Millisecond, Lease: 3 * time.Second, Grace: 300 * time.Millisecond,
		Defaults:    proc.StartRequest{Secret: "s", Memcache: []string{"127.0.0.1:1"}},
		OnRoomEnded: func(room string) { d.mu.Lock(); d.ended = append(d.ended, room); d.mu.Unlock() },
		OnRoomsFailed: func(_ fleet.Proc, rooms []string) {
			d.mu.Lock()
			d.failed = append(d.failed, rooms...)
			d.mu.Unlock()
		},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	d.F = fleet.New(cfg, Quiet(), nil)
	d.srv = grpc.NewServer()
	hostpb.RegisterHostControlServer(d.srv, d.F.Service())
	go func() { _ = d.srv.Serve(lis) }()
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	go func() { _ = d.F.Run(ctx); close(d.done) }()
	t.Cleanup(d.Stop)
	return d
}

// Stop ends the dispatcher as a kill would: its streams close, nothing is
// told to the hosts.
func (d *Dispatcher) Stop() {
	d.cancel()
	d.srv.Stop()
	<-d.done
}

// EndedRooms returns the rooms whose end reached the fleet.
func (d *Dispatcher) EndedRooms() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.ended...)
}

// FailedRooms returns the rooms failed with their process.
func (d *Dispatcher) FailedRooms() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.failed...)
}

// Proc is a fake process (fakeproc.Proc).
type Proc = fakeproc.Proc

// Host is an Agent whose processes are Procs.
type Host struct {
	*fakeproc.Spawner
	A      *host.Agent
	cancel context.CancelFunc
	// Done is closed when the agent's Run returned.
	Done chan struct{}
}

// NewHost starts an Agent named name advertising advertise on n,
// with the given capacity per kind.
func NewHost(t testing.TB, n *Network, name, advertise string, kinds map[string]host.Kind, mutate func(*host.Config)) *Host {
	t.Helper()
	h := &Host{Spawner: &fakeproc.Spawner{}, Done: make(chan struct{})}
	cfg := host.Config{Name: name, Advertise: advertise, Bind: "127.0.0.1", FleetToken: Token, Kinds: kinds, Log: Quiet(),
		StatusEvery: 20 * time.Millisecond, ExitEvery: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		Dial: func(context.Context) (*grpc.ClientConn, error) {
			return grpc.NewClient("passthrough:///"+name, grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
				return n.DialAs(ctx, name)
			}), grpc.WithTransportCredentials(insecure.NewCredentials()))
		},
		Spawner: h.Spawn,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	a, err := host.NewAgent(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.A = a
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { _ = a.Run(ctx); close(h.Done) }()
	t.Cleanup(h.Stop)
	return h
}

// NewSpawner returns a Host with no agent, whose Spawn a test passes to an
// agent it configures itself (the dispatcher's local host).
func NewSpawner() *Host { return &Host{Spawner: &fakeproc.Spawner{}, Done: make(chan struct{})} }

// Stop ends the agent as a kill would, its processes with it.
func (h *Host) Stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	<-h.Done
}

// PortBlock returns the first of n ports free now, for a kind's range,
// below the ephemeral range (busy machines fill that with connections).
func PortBlock(t testing.TB, n int) int {
	t.Helper()
	base, err := fakeproc.PortBlock(n)
	if err != nil {
		t.Fatal(err)
	}
	return base
}

// Kinds is a fight and a map kind with max processes each, on free ports.
func Kinds(t testing.TB, max int) map[string]host.Kind {
	f, m := PortBlock(t, 20), PortBlock(t, 20)
	return map[string]host.Kind{
		proc.KindFight: {FirstPort: f, LastPort: f + 19, Max: max},
		proc.KindMap:   {FirstPort: m, LastPort: m + 19, Max: max},
	}
}

// HostsConnected reports whether n hosts are connected.
func HostsConnected(f *fleet.Fleet, n int) func() bool {
	return func() bool {
		c := 0
		for _, h := range f.Hosts() {
			if h.State == hostctl.HostConnected {
				c++
			}
		}
		return c == n
	}
}

// WaitHosts waits until n hosts are connected.
func WaitHosts(t testing.TB, f *fleet.Fleet, n int) {
	t.Helper()
	waitfor.Cond(t, fmt.Sprintf("%d hosts connected", n), HostsConnected(f, n))
}
