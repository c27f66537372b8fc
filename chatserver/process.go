package chatserver

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

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/fleet"
	"github.com/arena-game/arena/internal/store"
)

// Kind is the chat server's fleet kind.
const Kind = "chat"

// ErrNoRooms is returned by the fleet calls a chat server does not serve
// (AssignRoom, HostMap).
var ErrNoRooms = errors.New("a chat server hosts no fight rooms or maps")

// OpenStore returns the store chat history lives in: the memcached servers
// addrs under prefix, or, when addrs is empty, an embedded memcached started
// in this process (logged: its history is lost when the process exits).
// The returned close function stops the embedded server, if any.
func OpenStore(addrs []string, prefix string, log *slog.Logger) (store.Store, func(), error) {
	closeFn := func() {}
	if len(addrs) == 0 {
		e, err := store.StartEmbedded(0)
		if err != nil {
			return nil, nil, fmt.Errorf("open chat store: %w", err)
		}
		log.Info("no --memcache given: started an embedded memcached; chat history lasts only as long as this process",
			"memcache", e.Addr())
		addrs = []string{e.Addr()}
		closeFn = e.Close
	}
	m, err := store.NewMemcache(store.MemcacheConfig{Addrs: addrs})
	if err != nil {
		closeFn()
		return nil, nil, fmt.Errorf("open chat store: %w", err)
	}
	return store.Prefixed(m, prefix), closeFn, nil
}

// RaiseFileLimit raises this process's open-file limit (soft and, as far as
// permitted, hard) to at least want, best effort, and returns the soft limit
// in force afterwards. A chat server holds one descriptor per connection.
func RaiseFileLimit(want uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("raise file limit: %w", err)
	}
	if lim.Cur >= want {
		return lim.Cur, nil
	}
	next := lim
	next.Cur = want
	if next.Max < want {
		next.Max = want
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &next); err != nil {
		// Not privileged to raise the hard limit: go as far as it allows.
		next = lim
		next.Cur = lim.Max
		if err2 := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &next); err2 != nil {
			return lim.Cur, fmt.Errorf("raise file limit to %d: %w", want, err)
		}
		return next.Cur, fmt.Errorf("raise file limit to %d: %w (raised to the hard limit %d)", want, err, next.Cur)
	}
	return next.Cur, nil
}

// ConfigFromOptions applies the chat options a dispatcher passes in
// fleet.StartConfig.Options to cfg: operator-token, rate, burst,
// world-rate, max-conns, send-queue (docs/chat.md, "Configuration").
// A value that does not parse or is out of range is an error wrapping
// fleet.ErrBadOption; keys of other kinds are ignored.
func ConfigFromOptions(cfg Config, opts map[string]string) (Config, error) {
	for k, v := range opts {
		var err error
		switch k {
		case "operator-token":
			cfg.OperatorToken = v
		case "rate":
			cfg.Rate, err = fleet.OptionNumber(k, v, 0.001, 1e6)
		case "burst":
			cfg.Burst, err = fleet.OptionInt(k, v, 1, 1000000)
		case "world-rate":
			cfg.WorldRate, err = fleet.OptionNumber(k, v, -1e9, 1e9) // negative: no cap
		case "max-conns":
			cfg.MaxConns, err = fleet.OptionInt(k, v, 1, 100000000)
		case "send-queue":
			cfg.WS.SendQueue, err = fleet.OptionInt(k, v, 8, 65536)
		default:
			// Options of other kinds may share the map; ignore them.
		}
		if err != nil {
			return cfg, fmt.Errorf("chat %w", err)
		}
	}
	return cfg, nil
}

// Process runs a chat Server as a fleet process (fleet.Process), for the
// dispatcher to spawn with `arena chat` in `arena up`.
type Process struct {
	log *slog.Logger

	mu        sync.Mutex
	srv       *Server
	closeFn   func()
	serveDone chan struct{}
}

var _ fleet.Process = (*Process)(nil)

// NewProcess returns an unstarted chat fleet process logging to log.
func NewProcess(log *slog.Logger) *Process { return &Process{log: log} }

// Start opens the store (embedded when cfg.Memcache is empty), binds
// cfg.Host:cfg.Port (an error wrapping fleet.ErrPortInUse if taken) and
// serves chat there. It returns host:port. Starting twice fails.
func (p *Process) Start(_ context.Context, cfg fleet.StartConfig) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv != nil {
		return "", errors.New("start chat: already started")
	}
	ccfg, err := ConfigFromOptions(Config{Registry: fleet.NewRegistry()}, cfg.Options)
	if err != nil {
		return "", fmt.Errorf("start chat: %w", err)
	}
	signer, err := auth.NewSigner(cfg.Secret)
	if err != nil {
		return "", fmt.Errorf("start chat: %w", err)
	}
	if n, err := RaiseFileLimit(uint64(max(ccfg.MaxConns, 200000)) + 1024); err != nil {
		p.log.Warn("could not raise the open-file limit; connections are capped by it", "limit", n, "err", err)
	}
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return "", fmt.Errorf("start chat on %s: %w: %v", addr, fleet.ErrPortInUse, err)
		}
		return "", fmt.Errorf("start chat on %s: %w", addr, err)
	}
	st, closeFn, err := OpenStore(cfg.Memcache, cfg.StorePrefix, p.log)
	if err != nil {
		_ = ln.Close()
		return "", fmt.Errorf("start chat: %w", err)
	}
	srv, err := New(st, signer, ccfg, p.log)
	if err != nil {
		_ = ln.Close()
		closeFn()
		return "", fmt.Errorf("start chat: %w", err)
	}
	p.srv, p.closeFn, p.serveDone = srv, closeFn, make(chan struct{})
	go func() {
		defer close(p.serveDone)
		if err := srv.Serve(ln); err != nil {
			p.log.Error("chat server stopped", "err", err)
		}
	}()
	p.log.Info("chat server listening", "addr", ln.Addr().String())
	return addr, nil
}

func (p *Process) server() (*Server, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv == nil {
		return nil, fleet.ErrNotStarted
	}
	return p.srv, nil
}

// Status reports the connections as the load.
func (p *Process) Status(context.Context) (fleet.Status, error) {
	srv, err := p.server()
	if err != nil {
		return fleet.Status{}, fmt.Errorf("chat status: %w", err)
	}
	n := srv.Connections()
	return fleet.Status{Load: n, Connections: n, Draining: srv.Draining()}, nil
}

// AssignRoom is not served by a chat server.
func (p *Process) AssignRoom(context.Context, fleet.Room) (int, error) {
	return 0, fmt.Errorf("assign room: %w", ErrNoRooms)
}

// HostMap is not served by a chat server.
func (p *Process) HostMap(context.Context, string) (int, error) {
	return 0, fmt.Errorf("host map: %w", ErrNoRooms)
}

// Drain closes the listener and every connection (1001), writes pending
// history, and returns the connections left at deadline.
func (p *Process) Drain(ctx context.Context, deadline time.Time) (int, error) {
	srv, err := p.server()
	if err != nil {
		return 0, fmt.Errorf("chat drain: %w", err)
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	err = srv.Shutdown(ctx)
	if err != nil {
		p.log.Warn("chat drain incomplete", "err", err)
	}
	return srv.Connections(), nil
}

// Stop shuts the server down within timeout and releases the store; the
// command calls it when the dispatcher goes away or on a signal.
func (p *Process) Stop(timeout time.Duration) {
	p.mu.Lock()
	srv, closeFn, done := p.srv, p.closeFn, p.serveDone
	p.closeFn = func() {}
	p.mu.Unlock()
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		p.log.Warn("chat shutdown incomplete", "err", err)
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
	closeFn()
}
