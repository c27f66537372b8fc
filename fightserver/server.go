// Package fightserver hosts fight rooms: a fleet process (`arena fight`)
// that the dispatcher spawns with go-plugin, assigns rooms to, and whose
// players join over WebSocket with a room ticket. See docs/fight.md for the
// protocol, error codes, options and the Elo scheme.
//
// One goroutine owns each room's state (members, hp, positions) and selects
// on its inbox, a ticker and the server's context; connection read loops
// parse, validate and rate-limit client messages and hand them to it.
package fightserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/fleet"
	"github.com/arena-game/arena/internal/ids"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/internal/wsconn"
)

// ErrBadRoom is returned (wrapped) by AssignRoom for a room it cannot host:
// an id that is not 1-64 of [A-Za-z0-9_-], fewer than MinPlayers or more
// than MaxPlayers members, a bad or repeated uuid, or an Expires in the past.
var ErrBadRoom = errors.New("bad room")

// Deps are a Server's collaborators.
type Deps struct {
	// Store holds player and room records (required).
	Store store.Store
	// Signer verifies room tickets (required).
	Signer *auth.Signer
	// Reporter reports add/del load; nil means NopReporter.
	Reporter LoadReporter
	// Logger; nil discards.
	Logger *slog.Logger
	// Registry receives the server's metrics and is served on /metrics;
	// nil means a new registry of the server's own.
	Registry *prometheus.Registry
}

// Server is one fight server: its rooms, its WebSocket endpoint and its
// HTTP listener. Create it with New, then Listen.
type Server struct {
	cfg    Config
	store  store.Store
	signer *auth.Signer
	rep    LoadReporter
	log    *slog.Logger
	reg    *prometheus.Registry
	met    *metrics
	ws     *wsconn.Server
	mux    *http.ServeMux

	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	rooms    map[string]*room
	pending  map[string]bool
	ended    map[string]time.Time
	endedQ   []endedRoom
	draining bool
	closed   bool
	httpSrv  *http.Server
	addr     string
	roomsWG  sync.WaitGroup

	conns atomic.Int64
}

type endedRoom struct {
	id string
	at time.Time
}

// New returns a Server with cfg (zero fields take defaults) and deps. It
// does not listen; call Listen, or mount Handler on a server of your own.
func New(cfg Config, deps Deps) (*Server, error) {
	if deps.Store == nil || deps.Signer == nil {
		return nil, errors.New("new fight server: store and signer are required")
	}
	s := &Server{
		cfg:     cfg.withDefaults(),
		store:   deps.Store,
		signer:  deps.Signer,
		rep:     deps.Reporter,
		log:     deps.Logger,
		reg:     deps.Registry,
		rooms:   make(map[string]*room),
		pending: make(map[string]bool),
		ended:   make(map[string]time.Time),
	}
	if s.rep == nil {
		s.rep = NopReporter{}
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.reg == nil {
		s.reg = prometheus.NewRegistry()
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.met = newMetrics(s.reg, s)
	s.ws = wsconn.NewServer(connHandler{s}, s.cfg.WS)
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok")
	})
	s.mux.HandleFunc("GET /ws", s.handleWS)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	return s, nil
}

// Handler serves /healthz, /ws and /metrics.
func (s *Server) Handler() http.Handler { return s.mux }

// Listen binds addr (host:port; port 0 picks one) and serves Handler on it
// in the background. It returns the bound host:port once the port accepts
// connections; an address already in use is an error wrapping
// fleet.ErrPortInUse.
func (s *Server) Listen(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return "", fmt.Errorf("listen %s: %w", addr, fleet.ErrPortInUse)
		}
		return "", fmt.Errorf("listen %s: %w", addr, err)
	}
	hs := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 5 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.mu.Lock()
	if s.closed || s.httpSrv != nil {
		s.mu.Unlock()
		_ = ln.Close()
		return "", errors.New("listen: server closed or already listening")
	}
	s.httpSrv = hs
	s.addr = ln.Addr().String()
	s.mu.Unlock()
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("fight http server stopped", "err", err)
		}
	}()
	return s.addr, nil
}

// Addr returns the address Listen bound, or "".
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Close ends every room with reason "shutdown" (members get a
// server_shutdown error naming the room; ratings are not changed; the room
// record is marked failed), stops the listener and waits (at most 5s) for
// the rooms to finish. Closing twice is a no-op.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	hs := s.httpSrv
	s.mu.Unlock()
	s.cancel()
	done := make(chan struct{})
	go func() { s.roomsWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	if hs != nil {
		return hs.Close()
	}
	return nil
}

func (s *Server) load() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rooms)
}

// Status reports load (rooms hosted), draining and open connections.
func (s *Server) Status(context.Context) (fleet.Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fleet.Status{Load: len(s.rooms), Draining: s.draining, Connections: int(s.conns.Load())}, nil
}

// AssignRoom hosts room: it reports add for it (and waits for the
// dispatcher's ok), starts the room's goroutine and returns the load after
// it. A room already hosted (or recently ended) here is fleet.ErrExists; a
// draining or closed server answers fleet.ErrDraining; a malformed room is
// ErrBadRoom; a failed add report fails the assignment (nothing is hosted).
func (s *Server) AssignRoom(ctx context.Context, fr fleet.Room) (int, error) {
	now := time.Now()
	if err := validateRoom(fr, now); err != nil {
		return 0, err
	}
	s.mu.Lock()
	if s.draining || s.closed {
		s.mu.Unlock()
		// Bare: fleet's gRPC adapter recognises draining by its exact text.
		return 0, fleet.ErrDraining
	}
	if s.rooms[fr.ID] != nil || s.pending[fr.ID] || !s.ended[fr.ID].IsZero() {
		s.mu.Unlock()
		return 0, fmt.Errorf("assign room %s: %w", fr.ID, fleet.ErrExists)
	}
	s.pending[fr.ID] = true
	s.mu.Unlock()

	if err := s.rep.Add(ctx, fr.ID); err != nil {
		s.mu.Lock()
		delete(s.pending, fr.ID)
		s.mu.Unlock()
		return 0, fmt.Errorf("assign room %s: report add: %w", fr.ID, err)
	}
	r := newRoom(s, fr, now)
	s.mu.Lock()
	delete(s.pending, fr.ID)
	s.rooms[fr.ID] = r
	load := len(s.rooms)
	s.roomsWG.Add(1)
	s.mu.Unlock()
	s.met.assigned.Inc()
	go func() {
		defer s.roomsWG.Done()
		r.run(s.ctx)
	}()
	s.log.Info("room assigned", "room", fr.ID, "players", len(fr.Players), "load", load)
	return load, nil
}

func validateRoom(fr fleet.Room, now time.Time) error {
	if !ids.Valid(fr.ID) {
		return fmt.Errorf("assign room: %w: id must be 1 to 64 of [A-Za-z0-9_-]", ErrBadRoom)
	}
	if n := len(fr.Players); n < MinPlayers || n > MaxPlayers {
		return fmt.Errorf("assign room %s: %w: %d players, want %d to %d", fr.ID, ErrBadRoom, n, MinPlayers, MaxPlayers)
	}
	seen := make(map[string]bool, len(fr.Players))
	for _, p := range fr.Players {
		if !ids.Valid(p.UUID) || seen[p.UUID] {
			return fmt.Errorf("assign room %s: %w: bad or repeated player uuid %q", fr.ID, ErrBadRoom, p.UUID)
		}
		seen[p.UUID] = true
	}
	if !fr.Expires.IsZero() && fr.Expires.Unix() > 0 && !fr.Expires.After(now) {
		return fmt.Errorf("assign room %s: %w: expired at %v", fr.ID, ErrBadRoom, fr.Expires)
	}
	return nil
}

// Drain stops accepting rooms and waits until none are left, deadline
// passes or ctx is done; it returns the number of rooms left. Rooms still
// running go on until they end.
func (s *Server) Drain(ctx context.Context, deadline time.Time) (int, error) {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		n := s.load()
		if n == 0 || !time.Now().Before(deadline) {
			return n, nil
		}
		select {
		case <-ctx.Done():
			return s.load(), nil
		case <-t.C:
		}
	}
}

// roomEnded removes r and remembers its id, so late joiners hear room_over.
func (s *Server) roomEnded(r *room, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rooms[r.id] == r {
		delete(s.rooms, r.id)
	}
	for len(s.endedQ) > 0 && at.Sub(s.endedQ[0].at) > s.cfg.EndedMemory {
		delete(s.ended, s.endedQ[0].id)
		s.endedQ = s.endedQ[1:]
	}
	s.ended[r.id] = at
	s.endedQ = append(s.endedQ, endedRoom{r.id, at})
}

// session is one WebSocket connection's state, set before the upgrade.
type session struct {
	reject *protoError // non-nil: refused; tell and close on open
	room   *room
	uuid   string
	limit  *limiter
}

// handleWS admits a ticket and upgrades. Refusals are told over the
// WebSocket ({"type":"error"} then close), so browsers can read them.
func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	sess := s.admit(r.URL.Query().Get("ticket"))
	if _, err := s.ws.Upgrade(w, r, sess); err != nil {
		s.log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
	}
}

// admit verifies a room ticket: signature, kind, expiry, that its room is
// hosted here and that its subject is a member.
func (s *Server) admit(ticket string) *session {
	if ticket == "" {
		return &session{reject: perr(CodeBadTicket, "missing ticket")}
	}
	c, err := s.signer.Verify(auth.KindRoom, ticket)
	switch {
	case errors.Is(err, auth.ErrExpired):
		return &session{reject: perr(CodeExpiredTicket, "the ticket has expired")}
	case errors.Is(err, auth.ErrWrongKind):
		return &session{reject: perr(CodeWrongKind, "not a room ticket")}
	case err != nil:
		return &session{reject: perr(CodeBadTicket, "the ticket is malformed or not signed by this cluster")}
	case c.Room == "":
		return &session{reject: perr(CodeBadTicket, "the ticket names no room")}
	}
	s.mu.Lock()
	r := s.rooms[c.Room]
	_, over := s.ended[c.Room]
	s.mu.Unlock()
	if r == nil {
		if over {
			return &session{reject: perr(CodeRoomOver, "room "+c.Room+" has ended")}
		}
		return &session{reject: perr(CodeWrongRoom, "room "+quoteShort(c.Room)+" is not hosted on this server")}
	}
	if r.byUUID[c.Subject] == nil {
		return &session{reject: perr(CodeNotMember, "not a member of room "+c.Room)}
	}
	return &session{room: r, uuid: c.Subject, limit: r.byUUID[c.Subject].limit}
}

// sendError tells c about e (and counts it).
func (s *Server) sendError(c *wsconn.Conn, e *protoError) {
	s.met.errors.WithLabelValues(e.Code).Inc()
	_ = c.Send(errorMsg(e.Code, e.Message))
}

// refuse tells c about e and closes it with 1008.
func (s *Server) refuse(c *wsconn.Conn, e *protoError) {
	s.sendError(c, e)
	c.Close(wsconn.ClosePolicy, e.Code)
}

var pongMsg = []byte(`{"type":"pong"}`)

// connHandler is the wsconn.Handler of every fight connection.
type connHandler struct{ s *Server }

func (h connHandler) OnOpen(c *wsconn.Conn) {
	h.s.conns.Add(1)
	sess := c.Value.(*session)
	if sess.reject != nil {
		h.s.refuse(c, sess.reject)
		return
	}
	if !sess.room.admitConn(c) {
		h.s.refuse(c, perr(CodeRoomOver, "room "+sess.room.id+" has ended"))
		return
	}
	sess.room.post(roomMsg{kind: rmJoin, conn: c, uuid: sess.uuid})
}

func (h connHandler) OnMessage(c *wsconn.Conn, data []byte) {
	sess := c.Value.(*session)
	if sess.reject != nil || c.Closed() {
		return
	}
	if !sess.limit.allow(time.Now()) {
		h.s.refuse(c, perr(CodeRateLimited, "more than "+strconv.FormatFloat(h.s.cfg.EventRate, 'g', -1, 64)+" messages per second"))
		return
	}
	typ, ev, e := parseClient(data)
	if e != nil {
		h.s.sendError(c, e)
		return
	}
	switch typ {
	case msgPing:
		_ = c.Send(pongMsg)
	case msgLeave:
		sess.room.post(roomMsg{kind: rmLeave, conn: c, uuid: sess.uuid})
	case msgEvent:
		sess.room.post(roomMsg{kind: rmEvent, conn: c, uuid: sess.uuid, ev: ev})
	}
}

func (h connHandler) OnClose(c *wsconn.Conn, _ error) {
	h.s.conns.Add(-1)
	sess := c.Value.(*session)
	if sess.reject != nil {
		return
	}
	sess.room.dropConn(c)
	sess.room.post(roomMsg{kind: rmClosed, conn: c, uuid: sess.uuid})
}
