// Package fakeproc is an in-process fake of a fleet process: it serves the
// process contract (lifecycle, rooms, maps) from memory, for tests and for
// `arena bench fleet`, where the fleet's own costs are measured without
// the processes'.
package fakeproc

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/arena-game/arena/host"
	"github.com/arena-game/arena/proc"
)

// Proc serves the process contract in memory.
type Proc struct {
	proc.Events
	kind   string
	pid    int
	exited atomic.Bool

	mu     sync.Mutex
	port   int
	rooms  map[string]bool
	maps   map[string]int
	quiet  bool // drop events, as a lost event would
	joined []string
	sp     *Spawner
	host   proc.HostServices
	hold   *StatusHold
}

// StatusHold holds a process's Status answers (HoldStatus).
type StatusHold struct {
	read, answer, done chan struct{}
	once               sync.Once
}

// HoldStatus makes every later Status call read its answer, announce
// that on Read, and answer only when Answer lets it: a test can change
// the process while an answer is on its way, as on a slow machine. Stop
// ends the hold (calls waiting answer at once).
func (p *Proc) HoldStatus() *StatusHold {
	h := &StatusHold{read: make(chan struct{}), answer: make(chan struct{}), done: make(chan struct{})}
	p.mu.Lock()
	p.hold = h
	p.mu.Unlock()
	return h
}

// Read receives a value once a held Status call has read its answer.
func (h *StatusHold) Read() <-chan struct{} { return h.read }

// Answer lets one held Status call answer (the one that announced on
// Read); it waits until that call takes it or the hold stops.
func (h *StatusHold) Answer() {
	select {
	case h.answer <- struct{}{}:
	case <-h.done:
	}
}

// Stop ends the hold.
func (h *StatusHold) Stop() { h.once.Do(func() { close(h.done) }) }

// wait announces a read answer and waits until it may go.
func (h *StatusHold) wait() {
	select {
	case h.read <- struct{}{}:
	case <-h.done:
		return
	}
	select {
	case <-h.answer:
	case <-h.done:
	}
}

// Quiet makes the process drop its events from now on, as lost events
// are lost.
func (p *Proc) Quiet() {
	p.mu.Lock()
	p.quiet = true
	p.mu.Unlock()
}

// Exit makes the process exit, as kill -9 does.
func (p *Proc) Exit() { p.exited.Store(true) }

// LocateMap locates a map through the process's host, as a map server
// does for a portal to a map it does not host.
func (p *Proc) LocateMap(ctx context.Context, mapID string) (string, error) {
	p.mu.Lock()
	h := p.host
	p.mu.Unlock()
	if h == nil {
		return "", fmt.Errorf("locate map %s: the host offered no services", mapID)
	}
	return h.LocateMap(ctx, mapID)
}

// Pid returns the process's (made-up) pid.
func (p *Proc) Pid() int { return p.pid }

// Exited reports whether the process exited (Exit, or killed by its host).
func (p *Proc) Exited() bool { return p.exited.Load() }

// Port returns the port the process was started on.
func (p *Proc) Port() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.port
}

// Rooms returns the rooms it hosts.
func (p *Proc) Rooms() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.rooms))
	for r := range p.rooms {
		out = append(out, r)
	}
	return out
}

// SetPlayers sets the players on a map, as a map server does, and tells
// the host (LoadChanged) unless quiet.
func (p *Proc) SetPlayers(mapID string, n int) {
	p.mu.Lock()
	p.maps[mapID] = n
	lc := proc.LoadChanged{Maps: map[string]int{}}
	for m, k := range p.maps {
		lc.Maps[m] = k
		lc.Load += k
	}
	for range p.rooms {
		lc.Load++
	}
	q := p.quiet
	p.mu.Unlock()
	if !q {
		p.Publish(lc)
	}
}

// Start implements proc.Lifecycle.
func (p *Proc) Start(_ context.Context, req proc.StartRequest) (proc.Started, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.port, p.host = req.Port, req.Host
	return proc.Started{Addr: fmt.Sprintf("%s:%d", req.Advertised(), req.Port), Pid: p.pid}, nil
}

// Status implements proc.Lifecycle.
func (p *Proc) Status(context.Context) (proc.Status, error) {
	if p.exited.Load() {
		return proc.Status{}, fmt.Errorf("gone")
	}
	p.mu.Lock()
	st := proc.Status{Maps: map[string]int{}}
	for r := range p.rooms {
		st.Rooms = append(st.Rooms, r)
		st.Load++
	}
	for m, n := range p.maps {
		st.Maps[m] = n
		st.Load += n
	}
	h := p.hold
	p.mu.Unlock()
	if h != nil {
		h.wait()
	}
	return st, nil
}

// Drain implements proc.Lifecycle.
func (p *Proc) Drain(context.Context, time.Time) (int, error) { return 0, nil }

// AssignRoom implements proc.Rooms.
func (p *Proc) AssignRoom(_ context.Context, r proc.Room) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rooms[r.ID] {
		return 0, proc.ErrRoomExists
	}
	p.rooms[r.ID] = true
	return len(p.rooms), nil
}

// Backfill implements proc.Rooms: players join a hosted room (recorded
// as "ROOM/UUID", see Joined) unless the host's NoBackfill is set.
func (p *Proc) Backfill(_ context.Context, id string, players []proc.Player) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.rooms[id] {
		return 0, proc.ErrUnknownRoom
	}
	if p.sp != nil && p.sp.NoBackfill.Load() {
		return 0, proc.ErrRoomFull
	}
	for _, pl := range players {
		p.joined = append(p.joined, id+"/"+pl.UUID)
	}
	return len(p.rooms), nil
}

// Joined lists "ROOM/UUID" for each player backfilled into the process.
func (p *Proc) Joined() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.joined...)
}

// HostMap implements proc.Maps.
func (p *Proc) HostMap(_ context.Context, id string) (int, error) {
	if id == "nowhere" {
		return 0, proc.ErrUnknownMap
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.maps[id]; !ok {
		p.maps[id] = 0
	}
	return 0, nil
}

// EndRoom ends a room as a fight process does.
func (p *Proc) EndRoom(id string) {
	p.mu.Lock()
	delete(p.rooms, id)
	n, q := len(p.rooms), p.quiet
	p.mu.Unlock()
	if !q {
		p.Publish(proc.RoomEnded{Room: id, Load: n})
	}
}

var pids atomic.Int32

// Spawner is a host.Spawner of Procs; it keeps every Proc it started.
type Spawner struct {
	// NoBackfill makes its processes refuse backfills (ROOM_FULL).
	NoBackfill atomic.Bool

	mu    sync.Mutex
	procs []*Proc
}

// Spawn implements host.Spawner.
func (s *Spawner) Spawn(_ context.Context, sc host.SpawnConfig) (*host.Child, error) {
	p := &Proc{kind: sc.Kind, pid: int(pids.Add(1)) + 40000, rooms: map[string]bool{}, maps: map[string]int{}, sp: s}
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	return host.NewChild(proc.Client{Lifecycle: p, Rooms: p, Maps: p}, p.pid, p.exited.Load, func() { p.exited.Store(true) }), nil
}

// Proc returns the i-th process started.
func (s *Spawner) Proc(i int) *Proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.procs[i]
}

// Procs returns the processes started, in order.
func (s *Spawner) Procs() []*Proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Proc(nil), s.procs...)
}

// ByPort returns the live process listening on port.
func (s *Spawner) ByPort(port int) *Proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.procs {
		if p.Port() == port && !p.exited.Load() {
			return p
		}
	}
	return nil
}

// PortBlock returns the first of n ports free now on 127.0.0.1, for a
// kind's range, below the ephemeral range (busy machines fill that with
// connections).
func PortBlock(n int) (int, error) {
	for try := 0; try < 200; try++ {
		base := 20000 + rand.IntN(12000-n)
		ok := true
		for p := base; p < base+n; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return base, nil
		}
	}
	return 0, fmt.Errorf("no block of %d free ports", n)
}
