package sdk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/fleet"
	"github.com/arena-game/arena/internal/lineproto"
	"github.com/arena-game/arena/internal/store"
)

// Serve runs game as a fleet process: the dispatcher (or host) spawns the
// binary through go-plugin, starts it with its configuration, assigns it
// rooms and stops it; Serve returns when it is stopped. A binary started by
// hand refuses with an error saying so. Nothing may be printed on stdout
// before Serve: go-plugin speaks its handshake there.
//
//	func main() {
//		if err := sdk.Serve(mygame.Game{}); err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			os.Exit(1)
//		}
//	}
func Serve(game Game) error {
	lv := slog.LevelInfo
	if v := os.Getenv("ARENA_LOG_LEVEL"); v != "" {
		_ = lv.UnmarshalText([]byte(v))
	}
	p := NewProcess(game, fleet.NewProcessLogger(os.Stderr, lv))
	err := fleet.Serve(p, p.Shutdown)
	p.Shutdown()
	return err
}

// Process is a game as a fleet process (the dispatcher's go-plugin
// contract): Start builds the store, signer, recorder and load reporter
// from the start request and starts a Server. Methods other than Start
// answer "not started" until Start succeeds.
type Process struct {
	game Game
	log  *slog.Logger

	mu   sync.Mutex
	srv  *Server
	addr string
}

var _ fleet.Process = (*Process)(nil)

// NewProcess returns an unstarted Process of game that logs to log.
func NewProcess(game Game, log *slog.Logger) *Process {
	if log == nil {
		log = slog.Default()
	}
	return &Process{game: game, log: log}
}

// Start binds cfg.Host:cfg.Port (Host "" means 127.0.0.1; Port 0 picks a
// free port), connects the store (cfg.Memcache under cfg.StorePrefix) and
// the load reporter (add/del to cfg.Dispatcher with cfg.FleetToken), reads
// the SDK's settings and the game's configuration from cfg.Options, and
// returns the advertised host:port once it listens. The game's name is
// cfg.Kind. A taken port wraps fleet.ErrPortInUse; bad settings, no secret
// or no memcache servers are errors. Starting twice returns the address.
func (p *Process) Start(ctx context.Context, cfg fleet.StartConfig) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv != nil {
		return p.addr, nil
	}
	if n, ok := p.game.(Namer); ok {
		if cfg.Kind != "" && cfg.Kind != n.Name() {
			return "", fmt.Errorf("start: this is a %s process, not %q", n.Name(), cfg.Kind)
		}
		cfg.Kind = n.Name()
	}
	if cfg.Kind == "" {
		return "", errors.New("start: no kind: the game's name comes from the start request")
	}
	raw := ConfigFromOptions(cfg.Options)
	scfg, err := ParseConfig(Config{Game: cfg.Kind}, raw)
	if err != nil {
		return "", fmt.Errorf("start: %w", err)
	}
	signer, err := auth.NewSigner(cfg.Secret)
	if err != nil {
		return "", fmt.Errorf("start: %w", err)
	}
	if len(cfg.Memcache) == 0 {
		return "", errors.New("start: no memcache servers: a game server keeps ratings, rooms and snapshots in memcached")
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
	srv, err := New(p.game, scfg, raw, Deps{
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
		if errors.Is(err, ErrPortInUse) {
			return "", fmt.Errorf("start: %w", fleet.ErrPortInUse)
		}
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
	p.log.Info("game server listening", "game", scfg.Game, "addr", p.addr, "room_timeout", scfg.RoomTimeout.String(),
		"rejoin_grace", scfg.RejoinGrace.String(), "event_rate", scfg.EventRate, "reporting", cfg.Dispatcher != "")
	return p.addr, nil
}

// deferredReporter forwards to r, which is set once the port is known
// (before any room can be assigned).
type deferredReporter struct{ r LoadReporter }

func (d *deferredReporter) Add(ctx context.Context, id string) error { return d.r.Add(ctx, id) }
func (d *deferredReporter) Del(ctx context.Context, id string) error { return d.r.Del(ctx, id) }

// Server returns the started Server, or nil.
func (p *Process) Server() *Server {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.srv
}

func (p *Process) server() (*Server, error) {
	if s := p.Server(); s != nil {
		return s, nil
	}
	return nil, fleet.ErrNotStarted
}

// Status implements fleet.Process.
func (p *Process) Status(context.Context) (fleet.Status, error) {
	s, err := p.server()
	if err != nil {
		return fleet.Status{}, fmt.Errorf("status: %w", err)
	}
	st := s.Status()
	return fleet.Status{Load: st.Load, Draining: st.Draining, Connections: st.Connections}, nil
}

// AssignRoom implements fleet.Process (see Server.AssignRoom).
func (p *Process) AssignRoom(ctx context.Context, room fleet.Room) (int, error) {
	s, err := p.server()
	if err != nil {
		return 0, fmt.Errorf("assign room: %w", err)
	}
	spec := RoomSpec{ID: room.ID, Mode: room.Mode, Expires: room.Expires}
	for _, pl := range room.Players {
		spec.Players = append(spec.Players, PlayerSpec{UUID: pl.UUID, Username: pl.Username, Photo: pl.Photo, Rating: pl.Score, Bot: pl.Bot})
	}
	load, err := s.AssignRoom(ctx, spec)
	switch {
	case errors.Is(err, ErrDraining):
		// Bare: the fleet's gRPC adapter recognises draining by its text.
		return 0, fleet.ErrDraining
	case errors.Is(err, ErrRoomExists):
		return 0, fmt.Errorf("%w: %w", err, fleet.ErrExists)
	}
	return load, err
}

// HostMap implements fleet.Process: a game process hosts no maps.
func (p *Process) HostMap(context.Context, string) (int, error) {
	return 0, fmt.Errorf("host map: a game process hosts no maps: %w", fleet.ErrUnknownMap)
}

// Drain implements fleet.Process (see Server.Drain).
func (p *Process) Drain(ctx context.Context, deadline time.Time) (int, error) {
	s, err := p.server()
	if err != nil {
		return 0, fmt.Errorf("drain: %w", err)
	}
	return s.Drain(ctx, deadline), nil
}

// Shutdown closes the server (see Server.Close), if started. It is the
// onOrphan hook of the fleet's Serve and runs after Serve returns.
func (p *Process) Shutdown() {
	if s := p.Server(); s != nil {
		_ = s.Close()
	}
}
