package fleet_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/arena-game/arena/fleet"
	"github.com/arena-game/arena/fleet/fleettest"
	"github.com/arena-game/arena/host"
	"github.com/arena-game/arena/hostctl"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/proc"
)

func room(id string) proc.Room {
	return proc.Room{ID: id, Players: []proc.Player{{UUID: id + "a"}, {UUID: id + "b"}}}
}

// TestSpawnAcrossHostsAsMaxnumIsReached: rooms fill the least-loaded
// process; when all are at MAXNUM the next process goes to the host with
// the most free capacity; with every host full the answer is no capacity,
// at once.
func TestSpawnAcrossHostsAsMaxnumIsReached(t *testing.T) {
	n := &fleettest.Network{}
	d := fleettest.NewDispatcher(t, n, nil) // MAXNUM 2
	a := fleettest.NewHost(t, n, "host-a", "10.0.0.1", fleettest.Kinds(t, 1), nil)
	b := fleettest.NewHost(t, n, "host-b", "10.0.0.2", fleettest.Kinds(t, 2), nil)
	fleettest.WaitHosts(t, d.F, 2)
	ctx := context.Background()
	// host-b offers 2 fights, host-a 1: the first process goes to host-b.
	var places []fleet.Placement
	for i := 0; i < 6; i++ {
		pl, err := d.F.PlaceRoom(ctx, room(fmt.Sprintf("r%d", i)))
		if err != nil {
			t.Fatalf("room %d: %v", i, err)
		}
		places = append(places, pl)
	}
	hostsOf := map[string]int{}
	for _, pl := range places {
		hostsOf[pl.Host]++
	}
	if hostsOf["host-b"] != 4 || hostsOf["host-a"] != 2 {
		t.Fatalf("rooms per host %v, want host-b 4 (2 processes) and host-a 2", hostsOf)
	}
	if !places[0].Local == (places[0].Host == "host-a") {
		t.Fatalf("locality of %+v: only host-a (10.0.0.1) is the dispatcher's machine", places[0])
	}
	for _, p := range d.F.Snapshot() {
		if p.Load > 2 {
			t.Fatalf("process %s:%d has load %d over MAXNUM", p.Host, p.Port, p.Load)
		}
	}
	start := time.Now()
	_, err := d.F.PlaceRoom(ctx, room("full"))
	if !errors.Is(err, fleet.ErrNoCapacity) {
		t.Fatalf("every host full: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("no capacity took %v", took)
	}
	if _, err := d.F.Get(ctx, proc.KindFight); !errors.Is(err, fleet.ErrNoCapacity) {
		t.Fatalf("get on a full fleet: %v", err)
	}
	// A room ends: its process has room again.
	pl := places[0]
	b.ByPort(pl.Port).EndRoom("r0")
	waitfor.Cond(t, "the end reaches the dispatcher", func() bool { return slices.Contains(d.EndedRooms(), "r0") })
	got, err := d.F.Get(ctx, proc.KindFight)
	if err != nil || got.Port != pl.Port || got.Host != pl.Host {
		t.Fatalf("get after a room ended = %+v %v, want %+v", got, err, pl)
	}
	_ = a
}

// TestConcurrentGetsShareOneSpawn: a hundred gets on a full fleet start
// one process.
func TestConcurrentGetsShareOneSpawn(t *testing.T) {
	n := &fleettest.Network{}
	d := fleettest.NewDispatcher(t, n, func(c *fleet.Config) { c.MaxNum = 1 })
	h := fleettest.NewHost(t, n, "host-a", "10.0.0.1", fleettest.Kinds(t, 5), nil)
	fleettest.WaitHosts(t, d.F, 1)
	ctx := context.Background()
	if _, err := d.F.PlaceRoom(ctx, room("r1")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	ports := make([]int, 100)
	for i := range ports {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			pl, _ := d.F.Get(ctx, proc.KindFight)
			ports[i] = pl.Port
		}(i)
	}
	wg.Wait()
	for _, p := range ports {
		if p == 0 || p != ports[0] {
			t.Fatalf("ports %v: want one new process for all", ports)
		}
	}
	spawned := len(h.Procs())
	if spawned != 2 {
		t.Fatalf("%d spawns, want 2", spawned)
	}
}

// TestLostEventCorrectedByStatus: a room's end whose event is lost still
// reaches the dispatcher through the host's Status poll.
func TestLostEventCorrectedByStatus(t *testing.T) {
	n := &fleettest.Network{}
	d := fleettest.NewDispatcher(t, n, nil)
	h := fleettest.NewHost(t, n, "host-a", "10.0.0.1", fleettest.Kinds(t, 2), nil)
	fleettest.WaitHosts(t, d.F, 1)
	pl, err := d.F.PlaceRoom(context.Background(), room("r1"))
	if err != nil {
		t.Fatal(err)
	}
	p := h.ByPort(pl.Port)
	p.Quiet()
	p.EndRoom("r1")
	waitfor.Cond(t, "the lost end corrected", func() bool {
		row, ok := d.F.Lookup(fleet.Key{Host: "host-a", Port: pl.Port})
		return ok && row.Load == 0 && len(row.Rooms) == 0 && slices.Contains(d.EndedRooms(), "r1")
	})
}

// TestStatusReadBeforeAnAssignmentKeepsIt: a Status answer the host
// asked for before a room was assigned (or ended) and that arrives after
// does not undo the assignment (or the end). CI saw dispatcher's
// TestBackfillThroughTheFleet time out: a stale answer without the new
// room made the host report it gone, the dispatcher ended it and the
// matchmaker had no room left to backfill.
func TestStatusReadBeforeAnAssignmentKeepsIt(t *testing.T) {
	n := &fleettest.Network{}
	d := fleettest.NewDispatcher(t, n, nil) // MAXNUM 2
	h := fleettest.NewHost(t, n, "host-a", "10.0.0.1", fleettest.Kinds(t, 1), nil)
	fleettest.WaitHosts(t, d.F, 1)
	ctx := context.Background()
	first, err := d.F.PlaceRoom(ctx, room("r1"))
	if err != nil {
		t.Fatal(err)
	}
	p := h.ByPort(first.Port)
	hostRooms := func() []string {
		for _, pi := range h.A.Processes() {
			if int(pi.GetPort()) == first.Port {
				return pi.GetRooms()
			}
		}
		return nil
	}

	hold := p.HoldStatus()
	defer hold.Stop()
	waitfor.Recv(t, hold.Read(), "a Status call that read r1 alone")
	second, err := d.F.PlaceRoom(ctx, room("r2"))
	if err != nil || second.Port != first.Port {
		t.Fatalf("r2 placed %+v, %v; want the same process", second, err)
	}
	hold.Answer()
	waitfor.Recv(t, hold.Read(), "the next Status call (the stale answer applied)")
	if got := hostRooms(); !slices.Contains(got, "r2") {
		t.Fatalf("the host's rooms after a Status answer read before r2 was assigned: %v, want r1 and r2", got)
	}

	// The other way: the answer read r1 and r2; r1 ends before it arrives.
	p.EndRoom("r1")
	waitfor.Cond(t, "the host learns r1 ended", func() bool { return !slices.Contains(hostRooms(), "r1") })
	hold.Answer()
	waitfor.Recv(t, hold.Read(), "the next Status call (the stale answer applied)")
	if got := hostRooms(); slices.Contains(got, "r1") {
		t.Fatalf("the host's rooms after a Status answer read before r1 ended: %v, want r2 alone", got)
	}
	// A command's result follows the snapshots the host queued before
	// it: once Backfill answers, the dispatcher has heard them all.
	if _, err := d.F.Backfill(ctx, "r2", []proc.Player{{UUID: "late"}}); err != nil {
		t.Fatalf("backfill r2: %v", err)
	}
	if ended := d.EndedRooms(); slices.Contains(ended, "r2") {
		t.Fatalf("the dispatcher ended r2 (ended: %v)", ended)
	}
	row, _ := d.F.Lookup(fleet.Key{Host: "host-a", Port: first.Port})
	if !slices.Equal(row.Rooms, []string{"r2"}) {
		t.Fatalf("the dispatcher's rooms of the process: %v, want [r2]", row.Rooms)
	}
}

// TestPlaceMapAndBackfill places map instances and backfills a room.
func TestPlaceMapAndBackfill(t *testing.T) {
	n := &fleettest.Network{}
	d := fleettest.NewDispatcher(t, n, nil)
	fleettest.NewHost(t, n, "host-a", "10.0.0.1", fleettest.Kinds(t, 2), nil)
	fleettest.WaitHosts(t, d.F, 1)
	ctx := context.Background()
	town, err := d.F.PlaceMap(ctx, "town")
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := d.F.PlaceMap(ctx, "town"); again != town {
		t.Fatalf("second place %+v, want the same instance %+v", again, town)
	}
	if _, err := d.F.PlaceMap(ctx, "nowhere"); !errors.Is(err, proc.ErrUnknownMap) {
		t.Fatalf("unknown map: %v", err)
	}
	if _, err := d.F.Backfill(ctx, "ghost", nil); !errors.Is(err, fleet.ErrUnknownRoom) {
		t.Fatalf("backfill a room nobody hosts: %v", err)
	}
	if _, err := d.F.PlaceRoom(ctx, room("r1")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.F.Backfill(ctx, "r1", []proc.Player{{UUID: "late"}}); err != nil {
		t.Fatalf("backfill: %v", err)
	}
}

// TestDispatcherRestartTakesTheFleetBack: the dispatcher dies; the hosts
// keep their processes and rooms; a new dispatcher has every process, its
// exact load and rooms back from their registrations, and no port is
// handed out twice.
func TestDispatcherRestartTakesTheFleetBack(t *testing.T) {
	n := &fleettest.Network{}
	d := fleettest.NewDispatcher(t, n, nil)
	a := fleettest.NewHost(t, n, "host-a", "10.0.0.1", fleettest.Kinds(t, 3), nil)
	fleettest.NewHost(t, n, "host-b", "10.0.0.2", fleettest.Kinds(t, 3), nil)
	fleettest.WaitHosts(t, d.F, 2)
	ctx := context.Background()
	for i := 0; i < 7; i++ {
		if _, err := d.F.PlaceRoom(ctx, room(fmt.Sprintf("r%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.F.PlaceMap(ctx, "town"); err != nil {
		t.Fatal(err)
	}
	before := d.F.Snapshot()
	d.Stop()
	waitfor.Cond(t, "the host notices", func() bool { return !a.A.Connected() })
	// A room ends while the dispatcher is away.
	var endedPort int
	for _, p := range before {
		if len(p.Rooms) > 0 && p.Host == "host-a" {
			a.ByPort(p.Port).EndRoom(p.Rooms[0])
			endedPort = p.Port
			break
		}
	}
	d2 := fleettest.NewDispatcher(t, n, nil)
	fleettest.WaitHosts(t, d2.F, 2)
	waitfor.Cond(t, "every process back", func() bool { return len(d2.F.Snapshot()) == len(before) })
	after := d2.F.Snapshot()
	for i, p := range after {
		q := before[i]
		if p.Host != q.Host || p.Port != q.Port || p.Pid != q.Pid || p.Kind != q.Kind {
			t.Fatalf("process %d: %+v, was %+v", i, p, q)
		}
		wantRooms := len(q.Rooms)
		if p.Port == endedPort && p.Host == "host-a" {
			wantRooms--
		}
		if len(p.Rooms) != wantRooms || p.Load != wantRooms && p.Kind == proc.KindFight {
			t.Fatalf("process %s:%d: rooms %v load %d, want %d rooms", p.Host, p.Port, p.Rooms, p.Load, wantRooms)
		}
	}
	// New work lands on known processes or new ports, never a used one.
	for i := 7; i < 12; i++ {
		if _, err := d2.F.PlaceRoom(ctx, room(fmt.Sprintf("r%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[fleet.Key]bool{}
	for _, p := range d2.F.Snapshot() {
		if seen[p.Key()] {
			t.Fatalf("port %v twice", p.Key())
		}
		seen[p.Key()] = true
	}
}

// TestHostGoneRemovesItsProcesses: a host whose stream closes and does
// not come back within the grace leaves the table with its processes;
// their rooms are failed; new work goes elsewhere.
func TestHostGoneRemovesItsProcesses(t *testing.T) {
	n := &fleettest.Network{}
	d := fleettest.NewDispatcher(t, n, nil)
	a := fleettest.NewHost(t, n, "host-a", "10.0.0.1", fleettest.Kinds(t, 1), nil)
	fleettest.NewHost(t, n, "host-b", "10.0.0.2", fleettest.Kinds(t, 1), nil)
	fleettest.WaitHosts(t, d.F, 2)
	ctx := context.Background()
	var onA string
	for i := 0; i < 2; i++ {
		pl, err := d.F.PlaceRoom(ctx, room(fmt.Sprintf("r%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		if pl.Host == "host-a" {
			onA = fmt.Sprintf("r%d", i)
		}
	}
	if onA == "" {
		t.Fatal("no room on host-a")
	}
	a.Stop()
	waitfor.Cond(t, "host-a's processes removed", func() bool {
		for _, p := range d.F.Snapshot() {
			if p.Host == "host-a" {
				return false
			}
		}
		return true
	})
	// The rooms are failed right after the rows leave the table.
	waitfor.Cond(t, "the room on host-a failed", func() bool {
		return slices.Contains(d.FailedRooms(), onA)
	})
	pl, err := d.F.PlaceRoom(ctx, room("r9"))
	if err != nil || pl.Host != "host-b" {
		t.Fatalf("new work went to %+v %v", pl, err)
	}
}

// TestDrainHost: a drained host gets no new work and exits once idle.
func TestDrainHost(t *testing.T) {
	n := &fleettest.Network{}
	d := fleettest.NewDispatcher(t, n, nil)
	a := fleettest.NewHost(t, n, "host-a", "10.0.0.1", fleettest.Kinds(t, 2), nil)
	fleettest.NewHost(t, n, "host-b", "10.0.0.2", fleettest.Kinds(t, 2), nil)
	fleettest.WaitHosts(t, d.F, 2)
	ctx := context.Background()
	if _, err := d.F.Get(ctx, proc.KindFight); err != nil {
		t.Fatal(err)
	}
	if err := d.F.DrainHost("host-a", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		pl, err := d.F.PlaceRoom(ctx, room(fmt.Sprintf("d%d", i)))
		if err != nil || pl.Host != "host-b" {
			t.Fatalf("room during the drain went to %+v %v", pl, err)
		}
	}
	select {
	case <-a.Done:
	case <-time.After(waitfor.Deadline()):
		t.Fatal("the drained host did not exit")
	}
	if err := d.F.DrainHost("nope", time.Second); !errors.Is(err, fleet.ErrUnknownHost) {
		t.Fatalf("drain an unknown host: %v", err)
	}
}

// BenchmarkGet is the dispatcher's own cost of a get on a fleet of 3
// hosts x 100 fight processes with varied loads: choosing the
// least-loaded ready process of the whole fleet. "cached": the table is
// unchanged since the last get (the choice is remembered); "changed": a
// load changed before every get (a full scan of the 300 rows; the load
// change itself is timed too).
func BenchmarkGet(b *testing.B) {
	n := &fleettest.Network{}
	d := fleettest.NewDispatcher(b, n, func(c *fleet.Config) {
		c.MaxNum = 1000
		c.Min = map[string]int{proc.KindFight: 300}
		c.Lease, c.Grace = time.Minute, time.Minute
	})
	for i, name := range []string{"host-a", "host-b", "host-c"} {
		f := fleettest.PortBlock(b, 100)
		fleettest.NewHost(b, n, name, fmt.Sprintf("10.0.0.%d", i+1), map[string]host.Kind{
			proc.KindFight: {FirstPort: f, LastPort: f + 99, Max: 100}}, nil)
	}
	fleettest.WaitHosts(b, d.F, 3)
	waitfor.Cond(b, "300 ready processes", func() bool { return len(d.F.Snapshot()) == 300 })
	procs := d.F.Snapshot()
	for i, p := range procs {
		for j := 0; j < (i*7)%13+1; j++ {
			_, _ = d.F.Adjust(p.Host, p.Port, 1, "")
		}
	}
	ctx := context.Background()
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := d.F.Get(ctx, proc.KindFight); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("changed", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			p := procs[i%len(procs)]
			_, _ = d.F.Adjust(p.Host, p.Port, 1-2*(i/len(procs)%2), "")
			i++
			if _, err := d.F.Get(ctx, proc.KindFight); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestPlacementAddr(t *testing.T) {
	for _, c := range []struct {
		adv, want string
	}{{"10.0.0.2", "10.0.0.2:7001"}, {"fight-1.example", "fight-1.example:7001"}, {"fd00::2", "[fd00::2]:7001"}} {
		if got := (fleet.Placement{Advertise: c.adv, Port: 7001}).Addr(); got != c.want {
			t.Errorf("Addr of %s: %s, want %s", c.adv, got, c.want)
		}
	}
}

// TestLocateMapThroughTheHost: a map process locates a map through its
// host (proc.HostServices): the host asks the dispatcher, which places
// the map; while the dispatcher is away the host answers from the table
// the dispatcher keeps in memcached, so handoffs to running maps go on; a
// map no running process hosts is refused then.
func TestLocateMapThroughTheHost(t *testing.T) {
	n := &fleettest.Network{}
	st := store.NewMemory()
	d := fleettest.NewDispatcher(t, n, nil)
	h := fleettest.NewHost(t, n, "host-a", "10.0.0.1", fleettest.Kinds(t, 2), func(c *host.Config) { c.Store = st })
	fleettest.WaitHosts(t, d.F, 1)
	ctx := context.Background()
	town, err := d.F.PlaceMap(ctx, "town")
	if err != nil {
		t.Fatal(err)
	}
	mp := h.ByPort(town.Port)
	if addr, err := mp.LocateMap(ctx, "town"); err != nil || addr != town.Addr() {
		t.Fatalf("locate town: %q %v, want %s", addr, err, town.Addr())
	}
	forest, err := mp.LocateMap(ctx, "forest")
	if err != nil || forest == "" {
		t.Fatalf("locate forest (placed by the locate): %q %v", forest, err)
	}
	if _, err := mp.LocateMap(ctx, "nowhere"); !errors.Is(err, proc.ErrUnknownMap) {
		t.Fatalf("locate an unknown map: %v", err)
	}
	// The dispatcher stores its table as it does every second, and dies.
	waitfor.Cond(t, "forest in the table", func() bool {
		for _, p := range d.F.Table().Processes {
			if _, ok := p.Maps["forest"]; ok {
				return true
			}
		}
		return false
	})
	if err := hostctl.WriteStoredTable(ctx, st, hostctl.StoredTable{Table: d.F.Table()}); err != nil {
		t.Fatal(err)
	}
	d.Stop()
	waitfor.Cond(t, "the host sees the dispatcher gone", func() bool { return !h.A.Connected() })
	if addr, err := mp.LocateMap(ctx, "town"); err != nil || addr != town.Addr() {
		t.Fatalf("locate town with the dispatcher away: %q %v, want %s", addr, err, town.Addr())
	}
	if addr, err := mp.LocateMap(ctx, "forest"); err != nil || addr != forest {
		t.Fatalf("locate forest with the dispatcher away: %q %v, want %s", addr, err, forest)
	}
	if addr, err := mp.LocateMap(ctx, "castle"); err == nil {
		t.Fatalf("a map no process hosts was located at %s with the dispatcher away", addr)
	}
}
