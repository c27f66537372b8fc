package fleet_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/arena-game/arena/fleet"
	"github.com/arena-game/arena/fleet/fleettest"
	"github.com/arena-game/arena/hostctl"
	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/proc"
	"github.com/arena-game/arena/proto/hostpb"
)

// rawHost is a hand-driven host-control client: it says exactly what a
// test makes it say.
type rawHost struct {
	stream hostpb.HostControl_ConnectClient
	cancel context.CancelFunc
}

func dialRaw(t *testing.T, n *fleettest.Network, token string) *rawHost {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///raw", grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
		return n.Dial(ctx)
	}), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token))
	t.Cleanup(cancel)
	stream, err := hostpb.NewHostControlClient(conn).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &rawHost{stream: stream, cancel: cancel}
}

func register(name, instance string, first int, procs ...*hostpb.ProcessInfo) *hostpb.HostMessage {
	return &hostpb.HostMessage{Msg: &hostpb.HostMessage_Register{Register: &hostpb.Register{
		Name: name, Instance: instance, Advertise: "10.9.9.9", ClockUnixMs: time.Now().UnixMilli(),
		Kinds:     []*hostpb.KindCapacity{{Kind: proc.KindFight, FirstPort: int32(first), LastPort: int32(first + 9), MaxProcesses: 4}},
		Processes: procs,
	}}}
}

// refusal sends msgs and returns the status the stream ends with.
func (r *rawHost) refusal(t *testing.T, msgs ...*hostpb.HostMessage) codes.Code {
	t.Helper()
	for _, m := range msgs {
		if err := r.stream.Send(m); err != nil {
			break
		}
	}
	for {
		m, err := r.stream.Recv()
		if err != nil {
			return status.Code(err)
		}
		_ = m
	}
}

// healthy starts a dispatcher with one good host holding one room, and
// returns a check that the good host is untouched.
func healthy(t *testing.T) (*fleettest.Network, *fleettest.Dispatcher, func()) {
	t.Helper()
	n := &fleettest.Network{}
	d := fleettest.NewDispatcher(t, n, nil)
	fleettest.NewHost(t, n, "good", "10.0.0.1", fleettest.Kinds(t, 2), nil)
	fleettest.WaitHosts(t, d.F, 1)
	pl, err := d.F.PlaceRoom(context.Background(), room("keep"))
	if err != nil {
		t.Fatal(err)
	}
	return n, d, func() {
		t.Helper()
		p, ok := d.F.Lookup(fleet.Key{Host: "good", Port: pl.Port})
		if !ok || p.State != hostctl.Ready || !slices.Contains(p.Rooms, "keep") || p.Load != len(p.Rooms) {
			t.Fatalf("the good host's process changed: %+v %v", p, ok)
		}
		for _, h := range d.F.Hosts() {
			if h.Name == "good" && h.State != hostctl.HostConnected {
				t.Fatalf("the good host is %s", h.State)
			}
		}
	}
}

func TestWrongFleetTokenIsRefused(t *testing.T) {
	n, d, untouched := healthy(t)
	r := dialRaw(t, n, "not-the-token")
	if code := r.refusal(t, register("intruder", "i1", 9000)); code != codes.Unauthenticated {
		t.Fatalf("wrong token: %v", code)
	}
	if len(d.F.Hosts()) != 1 {
		t.Fatalf("hosts %+v", d.F.Hosts())
	}
	untouched()
}

func TestNameAlreadyConnectedIsRefused(t *testing.T) {
	n, _, untouched := healthy(t)
	r := dialRaw(t, n, fleettest.Token)
	if code := r.refusal(t, register("good", "another-instance", 9000)); code != codes.AlreadyExists {
		t.Fatalf("a second host named good: %v", code)
	}
	untouched()
}

func TestClockOffByMinutesIsRefused(t *testing.T) {
	n, _, untouched := healthy(t)
	r := dialRaw(t, n, fleettest.Token)
	m := register("skewed", "s1", 9000)
	m.GetRegister().ClockUnixMs = time.Now().Add(-5 * time.Minute).UnixMilli()
	if code := r.refusal(t, m); code != codes.FailedPrecondition {
		t.Fatalf("clock off by 5 minutes: %v", code)
	}
	untouched()
}

func TestMalformedRegistrationIsRefused(t *testing.T) {
	n, _, untouched := healthy(t)
	for name, m := range map[string]*hostpb.HostMessage{
		"heartbeat first": {Msg: &hostpb.HostMessage_Heartbeat{Heartbeat: &hostpb.Heartbeat{}}},
		"bad name":        register("no spaces allowed", "x", 9000),
		"bad range":       register("ranges", "x", 70000),
	} {
		r := dialRaw(t, n, fleettest.Token)
		if code := r.refusal(t, m); code != codes.InvalidArgument {
			t.Errorf("%s: %v", name, code)
		}
	}
	untouched()
}

// A host reporting a process on a port outside its kind's range, or one
// the dispatcher never asked for, gets it refused: not in the table, and
// the host is told to stop it.
func TestBadProcessesAreRefused(t *testing.T) {
	n, d, untouched := healthy(t)
	r := dialRaw(t, n, fleettest.Token)
	if err := r.stream.Send(register("odd", "o1", 9000)); err != nil {
		t.Fatal(err)
	}
	if m, err := r.stream.Recv(); err != nil || m.GetRegistered() == nil {
		t.Fatalf("registration: %v %v", m, err)
	}
	for _, p := range []*hostpb.ProcessInfo{
		{Kind: proc.KindFight, Port: 12345, Pid: 1, State: hostpb.ProcessState_PROCESS_STATE_READY}, // outside 9000-9009
		{Kind: proc.KindFight, Port: 9001, Pid: 2, State: hostpb.ProcessState_PROCESS_STATE_READY},  // never asked for
		{Kind: "dragon", Port: 9002, Pid: 3, State: hostpb.ProcessState_PROCESS_STATE_READY},        // a kind it never registered
	} {
		if err := r.stream.Send(&hostpb.HostMessage{Msg: &hostpb.HostMessage_Process{Process: p}}); err != nil {
			t.Fatal(err)
		}
		m, err := r.stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if dp := m.GetCommand().GetDrainProcess(); dp == nil || dp.GetPort() != p.GetPort() {
			t.Fatalf("process %d: the host was told %v, want to stop it", p.GetPort(), m)
		}
	}
	for _, p := range d.F.Snapshot() {
		if p.Host == "odd" {
			t.Fatalf("a refused process is in the table: %+v", p)
		}
	}
	untouched()
}

// A host that floods the dispatcher is cut off; the others are not.
func TestFloodingHostIsClosed(t *testing.T) {
	n, d, untouched := healthy(t)
	r := dialRaw(t, n, fleettest.Token)
	if err := r.stream.Send(register("flood", "f1", 9000)); err != nil {
		t.Fatal(err)
	}
	if m, err := r.stream.Recv(); err != nil || m.GetRegistered() == nil {
		t.Fatalf("registration: %v %v", m, err)
	}
	hb := &hostpb.HostMessage{Msg: &hostpb.HostMessage_Heartbeat{Heartbeat: &hostpb.Heartbeat{ClockUnixMs: time.Now().UnixMilli()}}}
	go func() {
		for i := 0; i < 100000; i++ {
			if r.stream.Send(hb) != nil {
				return
			}
		}
	}()
	if code := r.refusal(t); code != codes.ResourceExhausted {
		t.Fatalf("flood: %v", code)
	}
	waitfor.Cond(t, "the flooding host removed", func() bool {
		for _, h := range d.F.Hosts() {
			if h.Name == "flood" {
				return false
			}
		}
		return true
	})
	untouched()
}

// A stream cut in the middle of a message (a registration whose bytes
// stop half way) ends that stream alone.
func TestTruncatedStreamEndsAlone(t *testing.T) {
	n, d, untouched := healthy(t)
	c, err := n.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var hdr bytes.Buffer
	enc := hpack.NewEncoder(&hdr)
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", "/arena.host.v1.HostControl/Connect"},
		{":authority", "raw"}, {"content-type", "application/grpc"}, {"te", "trailers"}, {"authorization", "Bearer " + fleettest.Token}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hdr.Bytes(), EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	msg, _ := proto.Marshal(register("truncated", "t1", 9000))
	var frame []byte
	frame = append(frame, 0)
	frame = binary.BigEndian.AppendUint32(frame, uint32(len(msg)))
	frame = append(frame, msg[:len(msg)/2]...) // half the message, then the connection dies
	if err := fr.WriteData(1, false, frame); err != nil {
		t.Fatal(err)
	}
	c.Close()
	// Nothing registered; the fleet goes on.
	if _, err := d.F.PlaceRoom(context.Background(), room("after")); err != nil {
		t.Fatalf("after a truncated stream: %v", err)
	}
	for _, h := range d.F.Hosts() {
		if h.Name == "truncated" {
			t.Fatalf("a truncated registration registered: %+v", h)
		}
	}
	untouched()
}

// A host cut off from the network gets no new work once its lease ends;
// its rooms stay in the table; healed, it is taken back with the same
// processes and loads, nothing counted twice.
func TestNetworkCutAndHeal(t *testing.T) {
	n := &fleettest.Network{}
	// A lease short enough to wait for, long enough that host-b, whose
	// heartbeats flow, is never taken for lost on a loaded machine.
	d := fleettest.NewDispatcher(t, n, func(c *fleet.Config) { c.Lease, c.HostExpiry = time.Second, time.Minute })
	a := fleettest.NewHost(t, n, "host-a", "10.0.0.1", fleettest.Kinds(t, 2), nil)
	fleettest.NewHost(t, n, "host-b", "10.0.0.2", fleettest.Kinds(t, 2), nil)
	fleettest.WaitHosts(t, d.F, 2)
	ctx := context.Background()
	var onA fleet.Placement
	for i := 0; onA.Host != "host-a"; i++ {
		pl, err := d.F.PlaceRoom(ctx, room(fmt.Sprintf("c%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		if pl.Host == "host-a" {
			onA = pl
		}
	}
	before, _ := d.F.Lookup(fleet.Key{Host: "host-a", Port: onA.Port})
	n.Cut("host-a", true)
	waitfor.Cond(t, "host-a lost after its lease", func() bool {
		for _, h := range d.F.Hosts() {
			if h.Name == "host-a" {
				return h.State == hostctl.HostLost
			}
		}
		return false
	})
	for i := 0; i < 3; i++ {
		pl, err := d.F.PlaceRoom(ctx, room(fmt.Sprintf("during%d", i)))
		if err != nil || pl.Host != "host-b" {
			t.Fatalf("work during the cut went to %+v %v", pl, err)
		}
	}
	if p, ok := d.F.Lookup(before.Key()); !ok || len(p.Rooms) != len(before.Rooms) {
		t.Fatalf("host-a's rooms left the table during the cut: %+v", p)
	}
	// A room on host-a ends during the cut; the dispatcher learns it once healed.
	a.ByPort(onA.Port).EndRoom(before.Rooms[0])
	n.Cut("host-a", false)
	fleettest.WaitHosts(t, d.F, 2)
	waitfor.Cond(t, "host-a's table right again", func() bool {
		p, ok := d.F.Lookup(before.Key())
		return ok && p.Pid == before.Pid && len(p.Rooms) == len(before.Rooms)-1 && p.Load == before.Load-1
	})
	seen := map[fleet.Key]bool{}
	for _, p := range d.F.Snapshot() {
		if seen[p.Key()] {
			t.Fatalf("%v twice", p.Key())
		}
		seen[p.Key()] = true
	}
}
