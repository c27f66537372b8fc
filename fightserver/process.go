package fightserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/fleet"
	"github.com/arena-game/arena/internal/lineproto"
	"github.com/arena-game/arena/internal/store"
)

// Process is a fight server as a fleet process (fleet.Process): the
// dispatcher's Start builds its store, signer and load reporter from the
// StartConfig and starts a Server. Methods other than Start answer
// fleet.ErrNotStarted until Start succeeds.
type Process struct {
	log *slog.Logger

	mu   sync.Mutex
	srv  *Server
	addr string
}

var _ fleet.Process = (*Process)(nil)

// NewProcess returns an unstarted Process that logs to log.
func NewProcess(log *slog.Logger) *Process {
	if log == nil {
		log = slog.Default()
	}
	return &Process{log: log}
}

// Start binds cfg.Host:cfg.Port (Host "" means 127.0.0.1; Port 0 picks a
// free port), connects the store (cfg.Memcache under cfg.StorePrefix) and
// the load reporter (add/del to cfg.Dispatcher with cfg.FleetToken; none
// when Dispatcher is ""), and returns the advertised host:port once it
// listens. A taken port wraps fleet.ErrPortInUse; bad options, no secret or
// no memcache servers are errors. Starting an already started process
// returns its address.
func (p *Process) Start(ctx context.Context, cfg fleet.StartConfig) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv != nil {
		return p.addr, nil
	}
	if cfg.Kind != "" && cfg.Kind != fleet.KindFight {
		return "", fmt.Errorf("start: this is a fight process, not %q", cfg.Kind)
	}
	scfg, unknown, err := ParseOptions(cfg.Options)
	if err != nil {
		return "", fmt.Errorf("start: %w", err)
	}
	if len(unknown) > 0 {
		p.log.Warn("ignoring unknown options", "options", unknown)
	}
	signer, err := auth.NewSigner(cfg.Secret)
	if err != nil {
		return "", fmt.Errorf("start: %w", err)
	}
	if len(cfg.Memcache) == 0 {
		return "", errors.New("start: no memcache servers: a fight server keeps ratings and rooms in memcached")
	}
	mc, err := store.NewMemcache(store.MemcacheConfig{Addrs: cfg.Memcache, Timeout: time.Second})
	if err != nil {
		return "", fmt.Errorf("start: %w", err)
	}
	host := cfg.Host
	if host == "" {
		host = "127.0.0.1"
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return "", fmt.Errorf("start: bad port %d", cfg.Port)
	}
	rep := &deferredReporter{}
	srv, err := New(scfg, Deps{
		Store:    store.Prefixed(mc, cfg.StorePrefix),
		Signer:   signer,
		Reporter: rep,
		Logger:   p.log,
		Registry: fleet.NewRegistry(),
	})
	if err != nil {
		return "", fmt.Errorf("start: %w", err)
	}
	bound, err := srv.Listen(net.JoinHostPort(host, strconv.Itoa(cfg.Port)))
	if err != nil {
		_ = srv.Close()
		return "", fmt.Errorf("start: %w", err)
	}
	_, portStr, _ := net.SplitHostPort(bound)
	port, _ := strconv.Atoi(portStr)
	if cfg.Dispatcher != "" {
		rep.r = &lineproto.LoadReporter{C: lineproto.NewClient(cfg.Dispatcher, 2*time.Second), Port: port, Token: cfg.FleetToken}
	} else {
		rep.r = NopReporter{}
	}
	p.srv, p.addr = srv, net.JoinHostPort(host, portStr)
	p.log.Info("fight server listening", "addr", p.addr, "room_timeout", scfg.RoomTimeout.String(),
		"rejoin_grace", scfg.RejoinGrace.String(), "event_rate", scfg.EventRate, "reporting", cfg.Dispatcher != "")
	return p.addr, nil
}

// deferredReporter forwards to r, which is set once the port is known
// (before any room can be assigned).
type deferredReporter struct{ r LoadReporter }

func (d *deferredReporter) Add(ctx context.Context, id string) error { return d.r.Add(ctx, id) }
func (d *deferredReporter) Del(ctx context.Context, id string) error { return d.r.Del(ctx, id) }

func (p *Process) server() (*Server, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv == nil {
		return nil, fleet.ErrNotStarted
	}
	return p.srv, nil
}

// Status implements fleet.Process.
func (p *Process) Status(ctx context.Context) (fleet.Status, error) {
	s, err := p.server()
	if err != nil {
		return fleet.Status{}, fmt.Errorf("status: %w", err)
	}
	return s.Status(ctx)
}

// AssignRoom implements fleet.Process (see Server.AssignRoom).
func (p *Process) AssignRoom(ctx context.Context, room fleet.Room) (int, error) {
	s, err := p.server()
	if err != nil {
		return 0, fmt.Errorf("assign room: %w", err)
	}
	return s.AssignRoom(ctx, room)
}

// HostMap implements fleet.Process: a fight process hosts no maps.
func (p *Process) HostMap(context.Context, string) (int, error) {
	return 0, fmt.Errorf("host map: a fight process hosts no maps: %w", fleet.ErrUnknownMap)
}

// Drain implements fleet.Process (see Server.Drain).
func (p *Process) Drain(ctx context.Context, deadline time.Time) (int, error) {
	s, err := p.server()
	if err != nil {
		return 0, fmt.Errorf("drain: %w", err)
	}
	return s.Drain(ctx, deadline)
}

// Shutdown closes the server (see Server.Close), if started. It is the
// onOrphan hook of fleet.Serve and runs after Serve returns.
func (p *Process) Shutdown() {
	p.mu.Lock()
	s := p.srv
	p.mu.Unlock()
	if s != nil {
		_ = s.Close()
	}
}
