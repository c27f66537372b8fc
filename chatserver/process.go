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
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/proc"
	"github.com/arena-game/arena/proto/procpb"
)

// Kind is the chat server's fleet kind.
const Kind = proc.KindChat

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

// ConfigFromOptions applies the typed chat options a host passes in
// proc.StartRequest to cfg (nil: cfg unchanged): operator-token, rate
// (0.001..1e6), burst (1..1e6), world-rate (negative: no cap), max-conns
// (1..1e8), send-queue (8..65536) (docs/chat.md, "Configuration"). A value
// out of range is an error wrapping proc.ErrBadOptions.
func ConfigFromOptions(cfg Config, o *procpb.ChatOptions) (Config, error) {
	if o == nil {
		return cfg, nil
	}
	var errs []error
	if o.OperatorToken != "" {
		cfg.OperatorToken = o.OperatorToken
	}
	if o.Rate != nil {
		cfg.Rate = o.GetRate()
		errs = append(errs, proc.CheckRange("rate", cfg.Rate, 0.001, 1e6))
	}
	if o.Burst != nil {
		cfg.Burst = int(o.GetBurst())
		errs = append(errs, proc.CheckRange("burst", cfg.Burst, 1, 1000000))
	}
	if o.WorldRate != nil {
		cfg.WorldRate = o.GetWorldRate()
	}
	if o.MaxConns != nil {
		cfg.MaxConns = int(o.GetMaxConns())
		errs = append(errs, proc.CheckRange("max-conns", cfg.MaxConns, 1, 100000000))
	}
	if o.SendQueue != nil {
		cfg.WS.SendQueue = int(o.GetSendQueue())
		errs = append(errs, proc.CheckRange("send-queue", cfg.WS.SendQueue, 8, 65536))
	}
	if err := errors.Join(errs...); err != nil {
		return cfg, fmt.Errorf("chat options: %w", err)
	}
	return cfg, nil
}

// Process runs a chat Server as a fleet process (proc.Lifecycle), for a
// host to spawn with `arena chat` in `arena up`.
type Process struct {
	log    *slog.Logger
	events proc.Events

	mu        sync.Mutex
	srv       *Server
	closeFn   func()
	serveDone chan struct{}
}

var _ proc.Lifecycle = (*Process)(nil)

// NewProcess returns an unstarted chat fleet process logging to log.
func NewProcess(log *slog.Logger) *Process { return &Process{log: log} }

// Start opens the store (embedded when req.Memcache is empty), binds
// req.Bind():req.Port (an error wrapping proc.ErrPortInUse if taken) and
// serves chat there. It returns the advertised host:port. Starting twice
// fails.
func (p *Process) Start(_ context.Context, req proc.StartRequest) (proc.Started, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv != nil {
		return proc.Started{}, errors.New("start chat: already started")
	}
	ccfg, err := ConfigFromOptions(Config{Registry: proc.NewRegistry()}, req.Chat)
	if err != nil {
		return proc.Started{}, fmt.Errorf("start chat: %w", err)
	}
	ccfg.WS.AllowedOrigins = req.AllowedOrigins
	signer, err := auth.NewSigner(req.Secret)
	if err != nil {
		return proc.Started{}, fmt.Errorf("start chat: %w: %v", proc.ErrBadOptions, err)
	}
	if n, err := RaiseFileLimit(uint64(max(ccfg.MaxConns, 200000)) + 1024); err != nil {
		p.log.Warn("could not raise the open-file limit; connections are capped by it", "limit", n, "err", err)
	}
	addr := net.JoinHostPort(req.Bind(), strconv.Itoa(req.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return proc.Started{}, fmt.Errorf("start chat on %s: %w: %v", addr, proc.ErrPortInUse, err)
		}
		return proc.Started{}, fmt.Errorf("start chat on %s: %w", addr, err)
	}
	st, closeFn, err := OpenStore(req.Memcache, req.StorePrefix, p.log)
	if err != nil {
		_ = ln.Close()
		return proc.Started{}, fmt.Errorf("start chat: %w", err)
	}
	srv, err := New(st, signer, ccfg, p.log)
	if err != nil {
		_ = ln.Close()
		closeFn()
		return proc.Started{}, fmt.Errorf("start chat: %w", err)
	}
	p.srv, p.closeFn, p.serveDone = srv, closeFn, make(chan struct{})
	go func() {
		defer close(p.serveDone)
		if err := srv.Serve(ln); err != nil {
			p.log.Error("chat server stopped", "err", err)
		}
	}()
	p.log.Info("chat server listening", "addr", ln.Addr().String())
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return proc.Started{Addr: net.JoinHostPort(req.Advertised(), port)}, nil
}

func (p *Process) server() (*Server, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv == nil {
		return nil, proc.ErrNotStarted
	}
	return p.srv, nil
}

// Status reports the connections as the load.
func (p *Process) Status(context.Context) (proc.Status, error) {
	srv, err := p.server()
	if err != nil {
		return proc.Status{}, fmt.Errorf("chat status: %w", err)
	}
	n := srv.Connections()
	return proc.Status{Load: n, Connections: n, Draining: srv.Draining()}, nil
}

// Watch implements proc.Lifecycle. A chat server publishes no events: its
// load (connections) reaches the host through Status.
func (p *Process) Watch(ctx context.Context) (<-chan proc.Event, error) { return p.events.Watch(ctx) }

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
