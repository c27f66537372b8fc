package mapserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/proc"
)

// Process is a map server as a fleet process: `arena map` serves it with
// proc.Serve (proc.Lifecycle and proc.Maps), and its host configures it
// with Start. Before a successful Start every method but Start and Watch
// returns proc.ErrNotStarted.
type Process struct {
	log    *slog.Logger
	reg    *prometheus.Registry
	events proc.Events

	mu  sync.Mutex
	srv *Server
}

var (
	_ proc.Lifecycle = (*Process)(nil)
	_ proc.Maps      = (*Process)(nil)
)

// NewProcess returns an unstarted map process that logs to log.
func NewProcess(log *slog.Logger) *Process {
	return &Process{log: log, reg: proc.NewRegistry()}
}

// Start builds the server from req and serves on req.Bind():req.Port
// (port 0: any free port): the store is req.Memcache with req.StorePrefix,
// tickets are verified with req.Secret, maps are located through the
// host's services (req.Host; without them every switch is refused), and
// req.Map is read by ConfigFromOptions. It returns the advertised
// host:port once the port accepts connections; a taken port wraps
// proc.ErrPortInUse, options that do not validate proc.ErrBadOptions.
func (p *Process) Start(ctx context.Context, req proc.StartRequest) (proc.Started, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv != nil {
		return proc.Started{}, errors.New("start map server: already started")
	}
	if req.Kind != "" && req.Kind != proc.KindMap {
		return proc.Started{}, fmt.Errorf("start map server: %w: this is a map process, not %q", proc.ErrBadOptions, req.Kind)
	}
	mcfg, worldPath, err := ConfigFromOptions(req.Map)
	if err != nil {
		return proc.Started{}, fmt.Errorf("start map server: %w", err)
	}
	mcfg.AllowedOrigins = req.AllowedOrigins
	world, err := LoadWorld(worldPath)
	if err != nil {
		return proc.Started{}, fmt.Errorf("start map server: %w: %v", proc.ErrBadOptions, err)
	}
	signer, err := auth.NewSigner(req.Secret)
	if err != nil {
		return proc.Started{}, fmt.Errorf("start map server: %w: %v", proc.ErrBadOptions, err)
	}
	if len(req.Memcache) == 0 {
		return proc.Started{}, fmt.Errorf("start map server: %w: no memcached servers configured", proc.ErrBadOptions)
	}
	// Save workers, handoffs and final saves each hold a connection.
	mc, err := store.NewMemcache(store.MemcacheConfig{Addrs: req.Memcache, MaxIdleConns: 160})
	if err != nil {
		return proc.Started{}, fmt.Errorf("start map server: %w", err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(req.Bind(), strconv.Itoa(req.Port)))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return proc.Started{}, fmt.Errorf("start map server on port %d: %w", req.Port, proc.ErrPortInUse)
		}
		return proc.Started{}, fmt.Errorf("start map server: %w", err)
	}
	var loc Locator
	if req.Host != nil {
		loc = LocatorFunc(req.Host.LocateMap)
	} else {
		p.log.Warn("no host services: switches to other maps are refused")
	}
	srv, err := New(Deps{Store: store.Prefixed(mc, req.StorePrefix), Signer: signer, Locator: loc, Events: &p.events,
		World: world, Config: mcfg, Logger: p.log, Registry: p.reg})
	if err != nil {
		ln.Close()
		return proc.Started{}, fmt.Errorf("start map server: %w", err)
	}
	addr, err := srv.Serve(ln, req.Advertised())
	if err != nil {
		ln.Close()
		return proc.Started{}, fmt.Errorf("start map server: %w", err)
	}
	p.srv = srv
	return proc.Started{Addr: addr}, nil
}

func (p *Process) server() (*Server, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv == nil {
		return nil, proc.ErrNotStarted
	}
	return p.srv, nil
}

// Status implements proc.Lifecycle.
func (p *Process) Status(ctx context.Context) (proc.Status, error) {
	s, err := p.server()
	if err != nil {
		return proc.Status{}, fmt.Errorf("status: %w", err)
	}
	return s.Status(ctx)
}

// Watch implements proc.Lifecycle: proc.LoadChanged on every change of
// the players per map.
func (p *Process) Watch(ctx context.Context) (<-chan proc.Event, error) { return p.events.Watch(ctx) }

// HostMap implements proc.Maps (see Server.HostMap).
func (p *Process) HostMap(ctx context.Context, mapID string) (int, error) {
	s, err := p.server()
	if err != nil {
		return 0, fmt.Errorf("host map: %w", err)
	}
	return s.HostMap(ctx, mapID)
}

// Drain implements proc.Lifecycle (see Server.Drain).
func (p *Process) Drain(ctx context.Context, deadline time.Time) (int, error) {
	s, err := p.server()
	if err != nil {
		return 0, fmt.Errorf("drain: %w", err)
	}
	return s.Drain(ctx, deadline)
}

// Orphaned is proc.Serve's OnOrphan: the host died, so save every player
// offline and stop (proc.Serve exits the process 2 s later at the latest).
func (p *Process) Orphaned() {
	p.mu.Lock()
	s := p.srv
	p.mu.Unlock()
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1800*time.Millisecond)
	defer cancel()
	_ = s.Close(ctx)
}
