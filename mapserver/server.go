// Package mapserver is arena's map server: a fleet process (`arena map`)
// that hosts instances of the world's maps, lets players walk them over
// WebSocket with server-checked moves and grid-based interest areas, and
// hands players to the next map server through a versioned,
// compare-and-swapped record in memcached.
//
// The protocol, the world format, the handoff and lease rules and the
// options are documented in docs/maps.md. The dispatcher places players
// with Enter and hosts maps with the proc.Lifecycle and proc.Maps methods.
package mapserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/httpguard"
	"github.com/arena-game/arena/internal/ids"
	"github.com/arena-game/arena/internal/mailbox"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/internal/wsconn"
	"github.com/arena-game/arena/proc"
)

// Deps are a Server's collaborators. Store, Signer and World are
// required; a nil Locator refuses every switch, a nil Events publishes to
// a hub of the server's own, a nil Logger discards, a nil Registry uses a
// private one.
type Deps struct {
	Store    store.Store
	Signer   *auth.Signer
	Locator  Locator
	Events   *proc.Events // receives proc.LoadChanged on every load change
	World    *World
	Config   Config
	Logger   *slog.Logger
	Registry prometheus.Registerer
}

// Server is one map server: the map instances it hosts and their players.
// Create it with New, then Listen (or Serve); stop it with Close.
type Server struct {
	st     store.Store
	signer *auth.Signer
	loc    Locator
	world  *World
	cfg    Config
	log    *slog.Logger
	met    *metrics
	gather prometheus.Gatherer
	reg    prometheus.Registerer
	events *proc.Events
	notify *loadNotifier
	ws     *wsconn.Server
	self   owner

	ctx    context.Context
	cancel context.CancelFunc
	saveq  chan []saveJob
	// finalSem bounds concurrent final saves and handoffs.
	finalSem chan struct{}
	bg       sync.WaitGroup // save workers, handoffs and final saves

	mu        sync.Mutex
	instances map[string]*instance
	sessions  map[*session]struct{}
	httpSrv   *http.Server
	ln        net.Listener

	// tuneConn, when set (tests), is applied to each accepted connection.
	tuneConn func(net.Conn)

	draining atomic.Bool
	crashed  atomic.Bool
	closed   atomic.Bool
	conns    atomic.Int32
}

// New returns a Server with explicit dependencies; it serves nothing until
// Listen or Serve.
func New(d Deps) (*Server, error) {
	if d.Store == nil || d.Signer == nil || d.World == nil {
		return nil, errors.New("new map server: store, signer and world are required")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Locator == nil {
		d.Locator = LocatorFunc(func(context.Context, string) (string, error) {
			return "", errors.New("no locator configured")
		})
	}
	if d.Events == nil {
		d.Events = &proc.Events{}
	}
	var gather prometheus.Gatherer
	if d.Registry == nil {
		r := prometheus.NewRegistry()
		d.Registry, gather = r, r
	} else if g, ok := d.Registry.(prometheus.Gatherer); ok {
		gather = g
	}
	cfg := d.Config.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		st: d.Store, signer: d.Signer, loc: d.Locator, world: d.World, cfg: cfg, log: d.Logger,
		met: newMetrics(d.Registry), gather: gather, reg: d.Registry,
		events: d.Events,
		self:   owner{ID: auth.RandomID(8)},
		ctx:    ctx, cancel: cancel,
		saveq:     make(chan []saveJob, 1024),
		finalSem:  make(chan struct{}, 64),
		instances: make(map[string]*instance),
		sessions:  make(map[*session]struct{}),
	}
	s.notify = newLoadNotifier(s.events, s.loadChanged)
	s.ws = wsconn.NewServer(handler{s}, wsconn.Options{
		MaxMessage: cfg.MaxMessage, SendQueue: cfg.SendQueue,
		IdleTimeout: cfg.IdleTimeout, PingInterval: cfg.IdleTimeout / 3,
		AllowedOrigins: cfg.AllowedOrigins,
	})
	for i := 0; i < cfg.SaveWorkers; i++ {
		s.bg.Add(1)
		go s.saveWorker()
	}
	return s, nil
}

// Listen binds addr (host:port; port 0 picks a free one) and serves. It
// returns the advertised host:port once the port accepts connections; a
// taken port is an error wrapping proc.ErrPortInUse.
func (s *Server) Listen(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return "", fmt.Errorf("listen %s: %w: %v", addr, proc.ErrPortInUse, err)
		}
		return "", fmt.Errorf("listen %s: %w", addr, err)
	}
	host, _, _ := net.SplitHostPort(addr)
	return s.Serve(ln, host)
}

// Serve serves on ln, advertising host (ln's own host when empty) and
// ln's port, and returns the advertised host:port. Map tickets must name
// exactly that address.
func (s *Server) Serve(ln net.Listener, host string) (string, error) {
	h, port, err := splitHostPort(ln.Addr().String())
	if err != nil {
		return "", fmt.Errorf("serve: %w", err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = h
		if host == "0.0.0.0" || host == "::" || host == "" {
			host = "127.0.0.1"
		}
	}
	addr := net.JoinHostPort(host, fmt.Sprint(port))
	names := localNames(ln.Addr(), host, s.cfg.PublicHost)
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", s.serveWS)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	if s.gather != nil {
		mux.Handle("/metrics", promhttp.HandlerFor(s.gather, promhttp.HandlerOpts{}))
	}
	guard := httpguard.New("map", httpguard.Limits{}, s.reg, s.log)
	srv := guard.Server(mux)
	s.mu.Lock()
	if s.httpSrv != nil {
		s.mu.Unlock()
		return "", errors.New("serve: already serving")
	}
	s.self.Addr = addr
	s.self.is = func(a string) bool {
		h, p, err := splitHostPort(a)
		return err == nil && p == port && names[strings.ToLower(h)]
	}
	s.httpSrv, s.ln = srv, ln
	s.mu.Unlock()
	if s.tuneConn != nil {
		ln = tunedListener{ln, s.tuneConn}
	}
	go func() {
		if err := srv.Serve(guard.Listener(ln)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("map server http", "err", err)
		}
	}()
	s.log.Info("map server listening", "addr", addr)
	return addr, nil
}

// localNames returns the host names that reach a listener at bound on
// this machine: the advertised and public hosts, the loopback names when
// it listens on loopback or on every interface, and the machine's host
// name and interface addresses when it listens on every interface. A
// ticket naming any of them with this server's port is for this server:
// one port on one machine is one listening process.
func localNames(bound net.Addr, host, public string) map[string]bool {
	names := map[string]bool{strings.ToLower(host): true}
	if public != "" {
		names[strings.ToLower(public)] = true
	}
	ta, ok := bound.(*net.TCPAddr)
	if !ok {
		return names
	}
	names[ta.IP.String()] = true
	if ta.IP.IsLoopback() || ta.IP.IsUnspecified() {
		for _, n := range []string{"localhost", "127.0.0.1", "::1", "ip6-localhost", "localhost.localdomain"} {
			names[n] = true
		}
	}
	if ta.IP.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			names[strings.ToLower(h)] = true
		}
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if ipn, ok := a.(*net.IPNet); ok {
					names[ipn.IP.String()] = true
				}
			}
		}
	}
	return names
}

// Addr returns the advertised host:port ("" before Listen).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.self.Addr
}

// World returns the world this server hosts maps of.
func (s *Server) World() *World { return s.world }

// HostMap makes this server host an instance of mapID (a no-op when it
// already does) and returns the server's load (players). ErrUnknownMap
// for ids not in the world, proc.ErrDraining while draining.
func (s *Server) HostMap(_ context.Context, mapID string) (int, error) {
	if s.draining.Load() {
		return s.load(), fmt.Errorf("host map %q: %w", mapID, proc.ErrDraining)
	}
	if _, err := s.instance(mapID); err != nil {
		return s.load(), fmt.Errorf("host map %q: %w", mapID, err)
	}
	return s.load(), nil
}

// instance returns the instance of mapID, starting it if needed.
func (s *Server) instance(mapID string) (*instance, error) {
	m := s.world.Map(mapID)
	if m == nil {
		return nil, ErrUnknownMap
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if in := s.instances[mapID]; in != nil {
		return in, nil
	}
	if s.draining.Load() || s.closed.Load() {
		return nil, proc.ErrDraining
	}
	in := newInstance(s, m)
	s.instances[mapID] = in
	s.met.players.WithLabelValues(mapID).Set(0)
	go in.run()
	return in, nil
}

func (s *Server) load() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, in := range s.instances {
		n += int(in.count.Load())
	}
	return n
}

// Status reports the load (players), the players per hosted map and the
// open connections.
func (s *Server) Status(context.Context) (proc.Status, error) {
	lc := s.loadChanged()
	return proc.Status{Load: lc.Load, Maps: lc.Maps, Connections: lc.Connections, Draining: s.draining.Load()}, nil
}

// loadChanged returns the load as a proc.LoadChanged event.
func (s *Server) loadChanged() proc.LoadChanged {
	s.mu.Lock()
	defer s.mu.Unlock()
	lc := proc.LoadChanged{Connections: int(s.conns.Load()), Maps: make(map[string]int, len(s.instances))}
	for id, in := range s.instances {
		n := int(in.count.Load())
		lc.Maps[id] = n
		lc.Load += n
	}
	return lc
}

// Watch returns the server's events (proc.LoadChanged) until ctx ends.
func (s *Server) Watch(ctx context.Context) (<-chan proc.Event, error) { return s.events.Watch(ctx) }

// Drain stops accepting players and hands every player on to another
// server hosting the same map (through the Locator, as a switch to the
// same map at the same position); a player the Locator cannot place
// elsewhere is saved offline and disconnected with code "draining" (its
// next Enter resumes it). It returns when no player is left or at
// deadline, with the load left.
func (s *Server) Drain(ctx context.Context, deadline time.Time) (int, error) {
	s.draining.Store(true)
	s.mu.Lock()
	ins := make([]*instance, 0, len(s.instances))
	for _, in := range s.instances {
		ins = append(ins, in)
	}
	s.mu.Unlock()
	for _, in := range ins {
		_ = in.drainReq.Post(drainMsg{}) // ErrUsed: drained before; ErrClosed: stopped
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for s.load() > 0 {
		select {
		case <-ctx.Done():
			return s.load(), nil
		case <-t.C:
		}
	}
	s.notify.flush()
	return 0, nil
}

// Close stops the server gracefully: no new players, every player's state
// saved offline (so its next Enter resumes it at once) and disconnected
// with code "draining", load reported, the listener closed. It waits for
// the saves until ctx ends.
func (s *Server) Close(ctx context.Context) error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.draining.Store(true)
	s.mu.Lock()
	ins := make([]*instance, 0, len(s.instances))
	for _, in := range s.instances {
		ins = append(ins, in)
	}
	srv := s.httpSrv
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
	for _, in := range ins {
		done := make(chan struct{})
		if in.shutdownReq.Post(shutdownMsg{done: done}) != nil {
			continue // the instance has stopped
		}
		select {
		case <-done:
		case <-in.done:
		case <-ctx.Done():
		}
	}
	s.closeSessions(wsconn.CloseGoingAway, CodeDraining, "map server shutting down")
	s.cancel()
	s.notify.close()
	s.notify.flush()
	return nil
}

// crash stops the server as a kill -9 would, as far as the store sees it:
// no final save, no load report; the listener and every connection close.
// Tests use it.
func (s *Server) crash() {
	s.crashed.Store(true)
	s.closed.Store(true)
	s.mu.Lock()
	srv := s.httpSrv
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
	s.cancel()
	s.closeSessions(wsconn.CloseGoingAway, "", "")
	s.notify.close()
}

func (s *Server) closeSessions(code uint16, errCode, msg string) {
	s.mu.Lock()
	ss := make([]*session, 0, len(s.sessions))
	for ss1 := range s.sessions {
		ss = append(ss, ss1)
	}
	s.mu.Unlock()
	for _, ss1 := range ss {
		if errCode != "" {
			ss1.sendError(errCode, msg)
		}
		ss1.conn.Close(code, msg)
	}
}

// serveWS upgrades /ws?ticket=... and joins the player; every refusal is an
// error message followed by a close.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	ticket := r.URL.Query().Get("ticket")
	sess := &session{srv: s, limit: newMsgLimiter(s.cfg.MaxMsgRate)}
	c, err := s.ws.Upgrade(w, r, sess)
	if err != nil {
		return
	}
	sess.conn = c
	start := time.Now()
	if err := s.join(sess, ticket); err != nil {
		code := errCode(err)
		s.met.claims.WithLabelValues(code).Inc()
		s.log.Debug("map join refused", "code", code, "err", err)
		sess.sendError(code, err.Error())
		c.Close(wsconn.ClosePolicy, code)
		return
	}
	s.met.claims.WithLabelValues("ok").Inc()
	s.met.claimSeconds.Observe(time.Since(start).Seconds())
}

// join verifies ticket, claims the player's record and hands the player
// to its map instance.
func (s *Server) join(sess *session, ticket string) error {
	if s.draining.Load() {
		return fmt.Errorf("join: %w", proc.ErrDraining)
	}
	if ticket == "" {
		return fmt.Errorf("join: %w", errNoTicket)
	}
	cl, err := s.signer.Verify(auth.KindMap, ticket)
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	if !ids.Valid(cl.Subject) {
		return fmt.Errorf("join: %w: bad subject", auth.ErrMalformed)
	}
	if !s.self.names(cl.Addr) {
		return fmt.Errorf("join: %w", errWrongServer)
	}
	in, err := s.instance(cl.Map)
	if err != nil {
		return fmt.Errorf("join map %q: %w", cl.Map, err)
	}
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	lease := time.Now().Add(s.cfg.lease())
	rec, err := claimState(ctx, s.st, cl.Subject, cl.Map, cl.Version, s.self, lease)
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	sess.claims = cl
	sess.inst = in
	sess.rec = rec
	sess.leaseUntil.Store(lease.UnixMilli())
	s.mu.Lock()
	s.sessions[sess] = struct{}{}
	s.mu.Unlock()
	sess.mu.Lock()
	if sess.closed {
		sess.mu.Unlock()
		// The client left while we claimed: give the record back.
		s.finalSave(sess, rec.X, rec.Y)
		return nil
	}
	sess.leave = in.inbox.Reserve()
	err = in.inbox.Post(joinMsg{s: sess})
	sess.joined = err == nil
	sess.mu.Unlock()
	switch {
	case errors.Is(err, mailbox.ErrFull):
		s.met.busy.WithLabelValues("join").Inc()
		s.finalSave(sess, rec.X, rec.Y)
		return fmt.Errorf("join: %w", errBusy)
	case err != nil:
		s.finalSave(sess, rec.X, rec.Y)
		return fmt.Errorf("join: %w", proc.ErrDraining)
	}
	return nil
}

// tunedListener applies tune to every accepted connection.
type tunedListener struct {
	net.Listener
	tune func(net.Conn)
}

func (l tunedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.tune(c)
	}
	return c, err
}

// handler adapts the Server to wsconn.Handler.
type handler struct{ s *Server }

func (h handler) OnOpen(*wsconn.Conn) {
	h.s.conns.Add(1)
	h.s.met.connections.Inc()
}

func (h handler) OnClose(c *wsconn.Conn, _ error) {
	h.s.conns.Add(-1)
	h.s.met.connections.Dec()
	sess, _ := c.Value.(*session)
	if sess == nil {
		return
	}
	h.s.mu.Lock()
	delete(h.s.sessions, sess)
	h.s.mu.Unlock()
	sess.mu.Lock()
	sess.closed = true
	joined := sess.joined
	sess.mu.Unlock()
	if joined {
		_ = sess.leave.Post(leaveMsg{s: sess}) // ErrClosed: the instance has stopped
	}
}

// AllowPing implements wsconn.PingLimiter: a WebSocket ping spends the
// connection's budget like a message, and a connection that keeps
// flooding past a second's worth of refusals is closed with 1008.
func (h handler) AllowPing(c *wsconn.Conn) bool {
	sess, _ := c.Value.(*session)
	if sess == nil {
		return true
	}
	if sess.allow(c, time.Now()) {
		return true
	}
	if sess.strikes++; float64(sess.strikes) > h.s.cfg.MaxMsgRate {
		c.Close(wsconn.ClosePolicy, "flood")
	}
	return false
}

func (h handler) OnMessage(c *wsconn.Conn, data []byte) {
	sess, _ := c.Value.(*session)
	if sess == nil {
		return
	}
	now := time.Now()
	if !sess.allow(c, now) {
		return
	}
	m, err := parseClientMsg(data)
	if err != nil {
		sendError(c, CodeBadMessage, err.Error())
		return
	}
	switch m.Type {
	case msgPing:
		_ = c.Send([]byte(`{"type":"pong"}`))
		return
	case msgMove, msgSwitch:
	default:
		sendError(c, CodeUnknownType, fmt.Sprintf("unknown message type %.32q", m.Type))
		return
	}
	sess.mu.Lock()
	joined := sess.joined
	sess.mu.Unlock()
	if !joined {
		sendError(c, CodeNotReady, "wait for the welcome before sending "+m.Type)
		return
	}
	if m.Type == msgMove {
		err = sess.inst.postMove(moveMsg{s: sess, p: Point{*m.X, *m.Y}, at: now})
	} else {
		err = sess.inst.inbox.Post(switchMsg{s: sess, to: m.Map})
	}
	if errors.Is(err, mailbox.ErrFull) {
		h.s.met.busy.WithLabelValues(m.Type).Inc()
		if now.Sub(sess.lastBusy) >= time.Second {
			sess.lastBusy = now
			// Joined (read under sess.mu above): ss.conn is set.
			sess.sendError(CodeBusy, "the map is busy; "+m.Type+" dropped (this error is sent at most once a second)")
		}
	}
}

// clientConn is what a session needs of its connection; *wsconn.Conn
// implements it.
type clientConn interface {
	Send(msg []byte) error
	SendNow(msgs ...[]byte) error
	SendJSON(v any) error
	Close(code uint16, reason string)
}

// session is one player's connection and the record it owns.
type session struct {
	srv    *Server
	conn   clientConn
	claims auth.Claims
	inst   *instance

	mu     sync.Mutex // guards joined and closed
	joined bool
	closed bool
	// leave is the inbox reservation for this session's leave, taken when
	// it joins its instance.
	leave *mailbox.Reservation[any]

	storeMu sync.Mutex // serialises this player's record writes
	rec     State      // the record as this server last wrote it (storeMu)
	done    bool       // storeMu: handed off, saved offline or lost; write no more
	lastSeq uint64     // storeMu: the newest periodic snapshot saved

	leaseUntil atomic.Int64 // unix ms: self-fencing deadline

	limit    *rate.Limiter // MaxMsgRate per second, one second's burst
	lastWarn time.Time     // read goroutine only
	lastBusy time.Time     // read goroutine only
	strikes  int           // pings refused (read goroutine only)
}

// newMsgLimiter returns a connection's message rate limit: perSecond
// messages a second with one second's burst.
func newMsgLimiter(perSecond float64) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(perSecond), max(1, int(perSecond)))
}

// allow applies the per-connection message rate limit; a refused message
// gets a rate_limited error on c, at most one a second. It runs on the
// connection's read goroutine, which is given c: it may run before the
// upgrading goroutine has set ss.conn.
func (ss *session) allow(c clientConn, now time.Time) bool {
	if ss.limit.AllowN(now, 1) {
		return true
	}
	if now.Sub(ss.lastWarn) >= time.Second {
		ss.lastWarn = now
		sendError(c, CodeRateLimited, fmt.Sprintf("more than %v messages per second; message dropped", ss.srv.cfg.MaxMsgRate))
	}
	return false
}

func (ss *session) sendError(code, msg string) { sendError(ss.conn, code, msg) }

// sendError sends an error message on c.
func sendError(c clientConn, code, msg string) { _ = c.SendJSON(newError(code, msg)) }
