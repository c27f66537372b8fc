package dispatcher

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/arena-game/arena/proc"
)

// fakeSpawner starts in-process fake fleet processes.
type fakeSpawner struct {
	mu      sync.Mutex
	taken   map[int]bool // ports whose Start fails with ErrPortInUse
	spawned atomic.Int32
	gate    chan struct{} // when set, Spawn waits until it is closed
	procs   []*fakeProc
	onRoom  func(p *fakeProc, r proc.Room) // e.g. publish events
	// backfill makes Backfill accept players into rooms the process hosts.
	backfill bool
}

// fakeProc serves the process contract in memory: rooms it hosts until
// endRoom, maps it hosts, and an event hub.
type fakeProc struct {
	proc.Events
	sp     *fakeSpawner
	pid    int
	port   int
	exited atomic.Bool

	mu    sync.Mutex
	rooms map[string]bool
	maps  map[string]int
	// quiet drops the events of endRoom, as a lost event would.
	quiet bool
	// joined lists "ROOM/UUID" for each backfilled player.
	joined []string
}

func (s *fakeSpawner) Spawn(ctx context.Context, kind string, port int) (Handle, error) {
	n := s.spawned.Add(1)
	if s.gate != nil {
		<-s.gate
	}
	p := &fakeProc{sp: s, pid: 10000 + int(n), rooms: map[string]bool{}, maps: map[string]int{}}
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	return p, nil
}

func (s *fakeSpawner) proc(i int) *fakeProc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.procs[i]
}

func (p *fakeProc) Client() proc.Client {
	return proc.Client{Lifecycle: p, Rooms: p, Maps: p}
}
func (p *fakeProc) Pid() int     { return p.pid }
func (p *fakeProc) Exited() bool { return p.exited.Load() }
func (p *fakeProc) Kill()        { p.exited.Store(true) }

func (p *fakeProc) Start(_ context.Context, req proc.StartRequest) (proc.Started, error) {
	p.sp.mu.Lock()
	taken := p.sp.taken[req.Port]
	p.sp.mu.Unlock()
	if taken {
		return proc.Started{}, fmt.Errorf("listen: %w", proc.ErrPortInUse)
	}
	p.mu.Lock()
	p.port = req.Port
	p.mu.Unlock()
	return proc.Started{Addr: fmt.Sprintf("%s:%d", req.Advertised(), req.Port), Pid: p.pid}, nil
}

func (p *fakeProc) Status(context.Context) (proc.Status, error) {
	if p.exited.Load() {
		return proc.Status{}, fmt.Errorf("gone")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	st := proc.Status{Load: len(p.rooms), Maps: map[string]int{}}
	for r := range p.rooms {
		st.Rooms = append(st.Rooms, r)
	}
	for m, n := range p.maps {
		st.Maps[m] = n
		st.Load += n
	}
	return st, nil
}

func (p *fakeProc) AssignRoom(_ context.Context, r proc.Room) (int, error) {
	p.mu.Lock()
	if p.rooms[r.ID] {
		p.mu.Unlock()
		return 0, proc.ErrRoomExists
	}
	p.rooms[r.ID] = true
	n := len(p.rooms)
	p.mu.Unlock()
	if p.sp.onRoom != nil {
		p.sp.onRoom(p, r)
	}
	return n, nil
}

func (p *fakeProc) Backfill(_ context.Context, room string, players []proc.Player) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.rooms[room] {
		return 0, proc.ErrUnknownRoom
	}
	if !p.sp.backfill {
		return 0, proc.ErrRoomFull
	}
	for _, pl := range players {
		p.joined = append(p.joined, room+"/"+pl.UUID)
	}
	return len(p.rooms), nil
}

// endRoom ends a room as a fight server does: RoomEnded on Watch (unless
// quiet).
func (p *fakeProc) endRoom(id string) {
	p.mu.Lock()
	delete(p.rooms, id)
	n, quiet := len(p.rooms), p.quiet
	p.mu.Unlock()
	if !quiet {
		p.Publish(proc.RoomEnded{Room: id, Load: n, Reason: "test"})
	}
}

// setPlayers changes the players on a map as a map server does:
// LoadChanged on Watch (unless quiet).
func (p *fakeProc) setPlayers(mapID string, n int) {
	p.mu.Lock()
	p.maps[mapID] = n
	lc := proc.LoadChanged{Maps: map[string]int{}}
	for m, k := range p.maps {
		lc.Maps[m] = k
		lc.Load += k
	}
	quiet := p.quiet
	p.mu.Unlock()
	if !quiet {
		p.Publish(lc)
	}
}

func (p *fakeProc) HostMap(_ context.Context, id string) (int, error) {
	if id == "nowhere" {
		return 0, proc.ErrUnknownMap
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.maps[id]; !ok {
		p.maps[id] = 0
	}
	n := 0
	for _, k := range p.maps {
		n += k
	}
	return n, nil
}

func (p *fakeProc) Drain(context.Context, time.Time) (int, error) { return 0, nil }

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newTestFleet(sp *fakeSpawner, maxnum, min int) *Fleet {
	return NewFleet(FleetConfig{
		Host: "127.0.0.1", MaxNum: maxnum, IdleTimeout: time.Hour, HealthEvery: 20 * time.Millisecond,
		StatusEvery: 20 * time.Millisecond,
		Kinds: map[string]KindConfig{
			proc.KindFight: {PortBase: 7000, Min: min},
			proc.KindMap:   {PortBase: 7500},
		},
	}, sp, quietLog(), nil)
}
