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
	"github.com/arena-game/arena/internal/fleet"
	"github.com/arena-game/arena/internal/lineproto"
	"github.com/arena-game/arena/internal/store"
)

// Process is a map server as a fleet process: `arena map` serves it with
// fleet.Serve, and the dispatcher configures it with Start. Before a
// successful Start every other method returns fleet.ErrNotStarted.
type Process struct {
	log *slog.Logger
	reg *prometheus.Registry

	mu  sync.Mutex
	srv *Server
}

var _ fleet.Process = (*Process)(nil)

// NewProcess returns an unstarted map process that logs to log.
func NewProcess(log *slog.Logger) *Process {
	return &Process{log: log, reg: fleet.NewRegistry()}
}

// Start builds the server from cfg and serves on cfg.Host:cfg.Port (port
// 0: any free port): the store is cfg.Memcache with cfg.StorePrefix,
// tickets are verified with cfg.Secret, maps are located with
// `get|map|MAPID` and load reported with add/del (with cfg.FleetToken) on
// the dispatcher's line protocol at cfg.Dispatcher, and cfg.Options are
// parsed by ConfigFromOptions. It returns the advertised host:port once
// the port accepts connections; a taken port wraps fleet.ErrPortInUse.
func (p *Process) Start(ctx context.Context, cfg fleet.StartConfig) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv != nil {
		return "", errors.New("start map server: already started")
	}
	mcfg, worldPath, ignored, err := ConfigFromOptions(cfg.Options)
	if err != nil {
		return "", fmt.Errorf("start map server: %w", err)
	}
	for _, k := range ignored {
		p.log.Warn("ignoring unknown map option", "option", k)
	}
	world, err := LoadWorld(worldPath)
	if err != nil {
		return "", fmt.Errorf("start map server: %w", err)
	}
	signer, err := auth.NewSigner(cfg.Secret)
	if err != nil {
		return "", fmt.Errorf("start map server: %w", err)
	}
	if len(cfg.Memcache) == 0 {
		return "", errors.New("start map server: no memcached servers configured")
	}
	// Save workers, handoffs and final saves each hold a connection.
	mc, err := store.NewMemcache(store.MemcacheConfig{Addrs: cfg.Memcache, MaxIdleConns: 160})
	if err != nil {
		return "", fmt.Errorf("start map server: %w", err)
	}
	st := store.Prefixed(mc, cfg.StorePrefix)
	host := cfg.Host
	if host == "" {
		host = "127.0.0.1"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(cfg.Port)))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return "", fmt.Errorf("start map server on port %d: %w", cfg.Port, fleet.ErrPortInUse)
		}
		return "", fmt.Errorf("start map server: %w", err)
	}
	_, port, _ := splitHostPort(ln.Addr().String())
	var loc Locator
	var rep LoadReporter = &MemReporter{}
	if cfg.Dispatcher != "" {
		loc = NewLineLocator(cfg.Dispatcher, dispatcherHost(cfg.Dispatcher, host), 4)
		rep = &lineproto.LoadReporter{C: lineproto.NewClient(cfg.Dispatcher, 2*time.Second), Port: port, Token: cfg.FleetToken}
	} else {
		p.log.Warn("no dispatcher address: switches are refused and load is not reported")
	}
	srv, err := New(Deps{Store: st, Signer: signer, Locator: loc, Reporter: rep, World: world,
		Config: mcfg, Logger: p.log, Registry: p.reg})
	if err != nil {
		ln.Close()
		return "", fmt.Errorf("start map server: %w", err)
	}
	addr, err := srv.Serve(ln, host)
	if err != nil {
		ln.Close()
		return "", fmt.Errorf("start map server: %w", err)
	}
	p.srv = srv
	return addr, nil
}

// dispatcherHost is the host to pair with a bare port in a get|map answer:
// the dispatcher's host, unless it listens on a wildcard address.
func dispatcherHost(dispatcher, fallback string) string {
	h, _, err := net.SplitHostPort(dispatcher)
	if err != nil || h == "" || h == "0.0.0.0" || h == "::" {
		return fallback
	}
	return h
}

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
		return fleet.Status{}, err
	}
	return s.Status(ctx)
}

// AssignRoom implements fleet.Process: map servers host no fight rooms.
func (p *Process) AssignRoom(context.Context, fleet.Room) (int, error) {
	return 0, errors.New("assign room: a map server hosts no rooms")
}

// HostMap implements fleet.Process (see Server.HostMap).
func (p *Process) HostMap(ctx context.Context, mapID string) (int, error) {
	s, err := p.server()
	if err != nil {
		return 0, err
	}
	return s.HostMap(ctx, mapID)
}

// Drain implements fleet.Process (see Server.Drain).
func (p *Process) Drain(ctx context.Context, deadline time.Time) (int, error) {
	s, err := p.server()
	if err != nil {
		return 0, err
	}
	return s.Drain(ctx, deadline)
}

// Orphaned is fleet.Serve's onOrphan: the dispatcher died, so save every
// player offline and stop (fleet.Serve exits the process 2 s later at the
// latest).
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
