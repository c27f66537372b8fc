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

	"github.com/prometheus/client_golang/prometheus"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/playerdb"
	"github.com/arena-game/arena/proc"
	"github.com/arena-game/arena/results"
)

// Serve runs game as a fleet process: an arena host spawns the binary
// through go-plugin, starts it with its configuration, assigns it rooms
// and stops it; Serve returns when it is stopped. It serves the public
// process contract (package proc: plugins lifecycle and rooms) to its
// host. A binary started by hand refuses with an error saying so. Nothing may be printed on stdout
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
	return proc.Serve(p.ProcServer())
}

// Process is a game as a fleet process: ProcServer serves it on the
// process contract, whose Start builds the store, signer and recorder from
// the start request and starts a Server.
type Process struct {
	game Game
	log  *slog.Logger

	mu       sync.Mutex
	srv      *Server
	addr     string
	closeRec func()
}

// NewProcess returns an unstarted Process of game that logs to log.
func NewProcess(game Game, log *slog.Logger) *Process {
	if log == nil {
		log = slog.Default()
	}
	return &Process{game: game, log: log}
}

// startParams is a start request.
type startParams struct {
	kind, bind, advertise string
	port                  int
	memcache              []string
	prefix, secret        string
	config                []byte // the game's configuration JSON
	dsn, outbox           string // results database and outbox ("": the store recorder)
	events                func(Event)
	origins               []string // browser origins allowed besides the defaults
}

// badConfig is a start error of the configuration: it wraps ErrBadConfig
// (BAD_OPTIONS over the process contract).
func badConfig(format string, args ...any) error {
	return fmt.Errorf("start: %w: %s", ErrBadConfig, fmt.Sprintf(format, args...))
}

// start builds the server from sp and listens. Whatever in sp does not
// validate (kind, the configuration JSON, the secret, the memcached list,
// the port, the database DSN, what the game's Setup refuses) is an error
// wrapping ErrBadConfig; a taken port wraps ErrPortInUse.
func (p *Process) start(ctx context.Context, sp startParams) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv != nil {
		return p.addr, nil
	}
	if n, ok := p.game.(Namer); ok {
		if sp.kind != "" && sp.kind != n.Name() {
			return "", badConfig("this is a %s process, not %q", n.Name(), sp.kind)
		}
		sp.kind = n.Name()
	}
	if sp.kind == "" {
		return "", badConfig("no kind: the game's name comes from the start request")
	}
	scfg, err := ParseConfig(Config{Game: sp.kind}, sp.config)
	if err != nil {
		return "", fmt.Errorf("start: %w", err)
	}
	scfg.WS.AllowedOrigins = sp.origins
	signer, err := auth.NewSigner(sp.secret)
	if err != nil {
		return "", badConfig("%v", err)
	}
	if len(sp.memcache) == 0 {
		return "", badConfig("no memcache servers: a game server keeps ratings, rooms and snapshots in memcached")
	}
	mc, err := store.NewMemcache(store.MemcacheConfig{Addrs: sp.memcache, Timeout: time.Second})
	if err != nil {
		return "", badConfig("%v", err)
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
		return "", badConfig("bad port %d", sp.port)
	}
	reg := proc.NewRegistry()
	rec, closeRec, err := p.recorder(ctx, sp, st, reg)
	if err != nil {
		return "", fmt.Errorf("start: %w", err)
	}
	srv, err := New(p.game, scfg, sp.config, Deps{
		Store:     st,
		Signer:    signer,
		Recorder:  rec,
		Events:    sp.events,
		Logger:    p.log,
		Registry:  reg,
		Advertise: advertise,
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
	p.srv, p.addr, p.closeRec = srv, publicAddr(bound, advertise), closeRec
	p.log.Info("game server listening", "game", scfg.Game, "addr", p.addr, "room_timeout", scfg.RoomTimeout.String(),
		"rejoin_grace", scfg.RejoinGrace.String(), "event_rate", scfg.EventRate, "database", sp.dsn != "")
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
		return nil, nil, fmt.Errorf("%w: a results database needs an outbox directory", ErrBadConfig)
	}
	db, err := playerdb.Open(ctx, playerdb.Config{DSN: sp.dsn})
	if errors.Is(err, playerdb.ErrInvalid) {
		return nil, nil, fmt.Errorf("open the results database %s: %w: %w", playerdb.Redact(sp.dsn), ErrBadConfig, err)
	}
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
	return rec, func() { cancel(); <-done; _ = rec.Close(); _ = db.Close() }, nil
}

// Server returns the started Server, or nil.
func (p *Process) Server() *Server {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.srv
}

// Shutdown closes the server (see Server.Close), if started. It is the
// OnOrphan hook of proc.Serve and runs after Serve returns.
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
