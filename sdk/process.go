package sdk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/fleet"
	"github.com/arena-game/arena/internal/lineproto"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/playerdb"
	"github.com/arena-game/arena/proc"
	"github.com/arena-game/arena/results"
)

// Serve runs game as a fleet process: an arena host spawns the binary
// through go-plugin, starts it with its configuration, assigns it rooms
// and stops it; Serve returns when it is stopped. It serves the public
// process contract (package proc: plugins lifecycle and rooms) to a host
// of that contract, and the dispatcher's older fleet contract to a
// dispatcher that spawns with it. A binary started by
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
	p := NewProcess(game, proc.NewLogger(os.Stderr, lv))
	defer p.Shutdown()
	switch {
	case proc.StartedByHost():
		return proc.Serve(p.ProcServer())
	case fleet.StartedByDispatcher():
		return fleet.Serve(p, p.Shutdown)
	}
	return proc.ErrManualStart
}

// Process is a game as a fleet process (the dispatcher's go-plugin
// contract): Start builds the store, signer, recorder and load reporter
// from the start request and starts a Server. Methods other than Start
// answer "not started" until Start succeeds.
type Process struct {
	game Game
	log  *slog.Logger

	mu       sync.Mutex
	srv      *Server
	addr     string
	closeRec func()
}

// Options of the dispatcher's fleet contract (fleet.StartConfig.Options)
// that configure the process rather than the game: where results go (the
// typed proc.StartRequest has DatabaseDSN and OutboxDir instead). They are
// taken out before the other options become the game's configuration; the
// DSN is never logged.
const (
	// OptDatabase is the player database DSN (postgres://... or
	// sqlite:PATH): results are then recorded exactly once by a
	// results.Recorder, which also drains the outbox while the process
	// runs. Without it results go to a StoreRecorder.
	OptDatabase = "db"
	// OptOutbox is the results outbox directory of the host (required
	// with OptDatabase).
	OptOutbox = "outbox"
)

var _ fleet.Process = (*Process)(nil)

// NewProcess returns an unstarted Process of game that logs to log.
func NewProcess(game Game, log *slog.Logger) *Process {
	if log == nil {
		log = slog.Default()
	}
	return &Process{game: game, log: log}
}

// Start implements fleet.Process: it binds cfg.Host:cfg.Port (Host ""
// means 127.0.0.1; Port 0 picks a free port), connects the store
// (cfg.Memcache under cfg.StorePrefix) and the load reporter (add/del to
// cfg.Dispatcher with cfg.FleetToken), reads the SDK's settings and the
// game's configuration from cfg.Options, and returns the advertised
// host:port once it listens. The game's name is cfg.Kind. A taken port
// wraps fleet.ErrPortInUse; bad settings, no secret or no memcache servers
// are errors. Starting twice returns the address.
func (p *Process) Start(ctx context.Context, cfg fleet.StartConfig) (string, error) {
	// The dispatcher's fleet contract carries the results database and
	// outbox as options; they are not the game's configuration.
	opts := maps.Clone(cfg.Options)
	dsn, outbox := opts[OptDatabase], opts[OptOutbox]
	delete(opts, OptDatabase)
	delete(opts, OptOutbox)
	addr, err := p.start(ctx, startParams{
		kind: cfg.Kind, bind: cfg.Host, advertise: cfg.Host, port: cfg.Port, memcache: cfg.Memcache,
		prefix: cfg.StorePrefix, secret: cfg.Secret, dispatcher: cfg.Dispatcher, fleetToken: cfg.FleetToken,
		config: ConfigFromOptions(opts), dsn: dsn, outbox: outbox,
	})
	if errors.Is(err, ErrPortInUse) {
		return "", fmt.Errorf("start: %w", fleet.ErrPortInUse)
	}
	return addr, err
}

// startParams is a start request, from either process contract.
type startParams struct {
	kind, bind, advertise string
	port                  int
	memcache              []string
	prefix, secret        string
	dispatcher            string // line protocol for add/del ("": none)
	fleetToken            string
	config                []byte // the game's configuration JSON
	dsn, outbox           string // results database and outbox ("": the store recorder)
	events                func(Event)
}

// start builds the server from sp and listens.
func (p *Process) start(ctx context.Context, sp startParams) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv != nil {
		return p.addr, nil
	}
	if n, ok := p.game.(Namer); ok {
		if sp.kind != "" && sp.kind != n.Name() {
			return "", fmt.Errorf("start: this is a %s process, not %q", n.Name(), sp.kind)
		}
		sp.kind = n.Name()
	}
	if sp.kind == "" {
		return "", errors.New("start: no kind: the game's name comes from the start request")
	}
	scfg, err := ParseConfig(Config{Game: sp.kind}, sp.config)
	if err != nil {
		return "", fmt.Errorf("start: %w", err)
	}
	signer, err := auth.NewSigner(sp.secret)
	if err != nil {
		return "", fmt.Errorf("start: %w", err)
	}
	if len(sp.memcache) == 0 {
		return "", errors.New("start: no memcache servers: a game server keeps ratings, rooms and snapshots in memcached")
	}
	mc, err := store.NewMemcache(store.MemcacheConfig{Addrs: sp.memcache, Timeout: time.Second})
	if err != nil {
		return "", fmt.Errorf("start: %w", err)
	}
	st := store.Prefixed(mc, sp.prefix)
	bind := sp.bind
	if bind == "" {
		bind = "127.0.0.1"
	}
	advertise := sp.advertise
	if advertise == "" || advertise == "0.0.0.0" || advertise == "::" {
		advertise = "127.0.0.1"
	}
	if sp.port < 0 || sp.port > 65535 {
		return "", fmt.Errorf("start: bad port %d", sp.port)
	}
	reg := fleet.NewRegistry()
	rec, closeRec, err := p.recorder(ctx, sp, st, reg)
	if err != nil {
		return "", fmt.Errorf("start: %w", err)
	}
	rep := &deferredReporter{}
	srv, err := New(p.game, scfg, sp.config, Deps{
		Store:    st,
		Signer:   signer,
		Recorder: rec,
		Reporter: rep,
		Events:   sp.events,
		Logger:   p.log,
		Registry: reg,
	})
	if err != nil {
		closeRec()
		return "", fmt.Errorf("start: %w", err)
	}
	bound, err := srv.Listen(net.JoinHostPort(bind, strconv.Itoa(sp.port)))
	if err != nil {
		_ = srv.Close()
		closeRec()
		return "", fmt.Errorf("start: %w", err)
	}
	_, portStr, _ := net.SplitHostPort(bound)
	port, _ := strconv.Atoi(portStr)
	if sp.dispatcher != "" {
		rep.r = &lineproto.LoadReporter{C: lineproto.NewClient(sp.dispatcher, 2*time.Second), Port: port, Token: sp.fleetToken}
	} else {
		rep.r = NopReporter{}
	}
	p.srv, p.addr, p.closeRec = srv, net.JoinHostPort(advertise, portStr), closeRec
	p.log.Info("game server listening", "game", scfg.Game, "addr", p.addr, "room_timeout", scfg.RoomTimeout.String(),
		"rejoin_grace", scfg.RejoinGrace.String(), "event_rate", scfg.EventRate, "reporting", sp.dispatcher != "", "database", sp.dsn != "")
	return p.addr, nil
}

// recorder opens the results database when the start request names one
// (results.Recorder over playerdb, with its outbox); else results go to the
// store (StoreRecorder, chosen by New).
func (p *Process) recorder(ctx context.Context, sp startParams, st store.Store, reg prometheus.Registerer) (Recorder, func(), error) {
	if sp.dsn == "" {
		return nil, func() {}, nil
	}
	if sp.outbox == "" {
		return nil, nil, errors.New("a results database needs an outbox directory")
	}
	db, err := playerdb.Open(ctx, playerdb.Config{DSN: sp.dsn})
	if err != nil {
		return nil, nil, fmt.Errorf("open the results database %s: %w", playerdb.Redact(sp.dsn), err)
	}
	rec, err := results.New(db, playerdb.NewCache(db, st), results.Config{Dir: sp.outbox, Logger: p.log, Registerer: reg})
	if err != nil {
		_ = db.Close()
		return nil, nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { rec.Run(rctx); close(done) }()
	return rec, func() { cancel(); <-done; _ = db.Close() }, nil
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
	p.mu.Lock()
	s, closeRec := p.srv, p.closeRec
	p.closeRec = nil
	p.mu.Unlock()
	if s != nil {
		_ = s.Close()
	}
	if closeRec != nil {
		closeRec()
	}
}
