package dispatcher

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/arena-game/arena/internal/fleet"
)

// fakeSpawner starts in-process fake fleet processes.
type fakeSpawner struct {
	mu      sync.Mutex
	taken   map[int]bool // ports whose Start fails with ErrPortInUse
	spawned atomic.Int32
	gate    chan struct{} // when set, Spawn waits until it is closed
	procs   []*fakeProc
	onRoom  func(p *fakeProc, r fleet.Room) // e.g. report add
}

type fakeProc struct {
	sp     *fakeSpawner
	pid    int
	port   int
	exited atomic.Bool
	rooms  atomic.Int32
	maps   sync.Map
}

func (s *fakeSpawner) Spawn(ctx context.Context, kind string) (Handle, error) {
	n := s.spawned.Add(1)
	if s.gate != nil {
		<-s.gate
	}
	p := &fakeProc{sp: s, pid: 10000 + int(n)}
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	return p, nil
}

func (p *fakeProc) Process() fleet.Process { return p }
func (p *fakeProc) Pid() int               { return p.pid }
func (p *fakeProc) Exited() bool           { return p.exited.Load() }
func (p *fakeProc) Kill()                  { p.exited.Store(true) }

func (p *fakeProc) Start(_ context.Context, cfg fleet.StartConfig) (string, error) {
	p.sp.mu.Lock()
	taken := p.sp.taken[cfg.Port]
	p.sp.mu.Unlock()
	if taken {
		return "", fmt.Errorf("listen: %w", fleet.ErrPortInUse)
	}
	p.port = cfg.Port
	return fmt.Sprintf("%s:%d", cfg.Host, cfg.Port), nil
}
func (p *fakeProc) Status(context.Context) (fleet.Status, error) {
	if p.exited.Load() {
		return fleet.Status{}, fmt.Errorf("gone")
	}
	return fleet.Status{Load: int(p.rooms.Load())}, nil
}
func (p *fakeProc) AssignRoom(_ context.Context, r fleet.Room) (int, error) {
	if p.sp.onRoom != nil {
		p.sp.onRoom(p, r)
	}
	return int(p.rooms.Add(1)), nil
}
func (p *fakeProc) HostMap(_ context.Context, id string) (int, error) {
	if id == "nowhere" {
		return 0, fleet.ErrUnknownMap
	}
	p.maps.Store(id, true)
	return 0, nil
}
func (p *fakeProc) Drain(context.Context, time.Time) (int, error) { return 0, nil }

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newTestFleet(sp *fakeSpawner, maxnum, min int) *Fleet {
	return NewFleet(FleetConfig{
		Host: "127.0.0.1", MaxNum: maxnum, IdleTimeout: time.Hour, HealthEvery: 20 * time.Millisecond,
		Kinds: map[string]KindConfig{
			fleet.KindFight: {PortBase: 7000, Min: min},
			fleet.KindMap:   {PortBase: 7500},
		},
	}, sp, quietLog(), nil)
}
