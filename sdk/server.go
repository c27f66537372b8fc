package sdk

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
	"github.com/arena-game/arena/internal/httpguard"
	"github.com/arena-game/arena/internal/ids"
	"github.com/arena-game/arena/internal/jsonscan"
	"github.com/arena-game/arena/internal/mailbox"
	"github.com/arena-game/arena/internal/records"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/internal/wsconn"
	"github.com/arena-game/arena/playerdb"
)

// Error codes the SDK sends as {"type":"error","code","message"}. Codes
// marked "then close" are followed by a close frame.
const (
	CodeBadTicket      = "bad_ticket"      // missing, malformed or forged ticket; then close
	CodeExpiredTicket  = "expired_ticket"  // the ticket's expiry passed; then close
	CodeWrongKind      = "wrong_kind"      // a token of another kind (e.g. a player token); then close
	CodeWrongRoom      = "wrong_room"      // the ticket's room is not hosted here; then close
	CodeNotMember      = "not_member"      // the ticket's subject is not a member of the room; then close
	CodeRoomOver       = "room_over"       // the room has ended; then close
	CodeLeftRoom       = "left_room"       // the player left or its rejoin grace passed; then close
	CodeReplaced       = "replaced"        // a newer connection with the same ticket took over; then close
	CodeRateLimited    = "rate_limited"    // more messages than the event rate allows; then close
	CodeServerShutdown = "server_shutdown" // the process is stopping; the message names the room; then close
	CodeBadJSON        = "bad_json"        // not one JSON object
	CodeUnknownType    = "unknown_type"    // "type" missing or not a string
	CodeBadMessage     = "bad_message"     // the game's Parse refused the message without a code of its own
	CodeRoomBusy       = "room_busy"       // the room's inbox is full: the message was dropped
)

// Sentinel errors of the Server (the process adapter maps them to the
// fleet's error reasons).
var (
	ErrBadRoom     = errors.New("bad room")
	ErrRoomExists  = errors.New("room already hosted")
	ErrUnknownRoom = errors.New("unknown room")
	ErrRoomFull    = errors.New("room full")
	ErrDraining    = errors.New("process is draining")
	ErrPortInUse   = errors.New("port in use")
	// ErrBadConfig: the configuration does not validate: the game's
	// configuration JSON, an SDK setting out of range, a value the game's
	// Setup refuses, or a start request's own fields (kind, secret,
	// memcached list, port, database DSN). Over the process contract it is
	// proc.ErrBadOptions (BAD_OPTIONS).
	ErrBadConfig = errors.New("bad configuration")
)

// PlayerSpec is a member as the dispatcher assigns it.
type PlayerSpec struct {
	UUID     string
	Username string
	Photo    string
	Rating   int
	Bot      bool
}

// RoomSpec is a room as the dispatcher assigns it.
type RoomSpec struct {
	ID      string
	Mode    string
	Players []PlayerSpec
	// Expires is when the room's tickets expire (zero: never); the room
	// ends by then at the latest.
	Expires time.Time
	// Options are the room's own options (JSON), if any.
	Options []byte
}

// Deps are a Server's collaborators.
type Deps struct {
	// Signer verifies room tickets (required).
	Signer *auth.Signer
	// Store holds room records and snapshots; nil disables both (and
	// Room.Save answers ErrNoSnapshot).
	Store store.Store
	// Recorder records results and rates players; nil means a
	// StoreRecorder on Store (or none without a Store).
	Recorder Recorder
	// Reporter reports add/del load; nil means NopReporter.
	Reporter LoadReporter
	// Events receives BackfillWanted hints (nil: dropped).
	Events func(Event)
	// Logger; nil discards.
	Logger *slog.Logger
	// Registry receives the metrics and is served on /metrics; nil means
	// a registry of the server's own.
	Registry *prometheus.Registry
	// Advertise is the host (name or IP, no port) players and the fleet
	// reach this server at: results name ADVERTISE:PORT as the room's host
	// (PublicAddr). Empty: the address Listen bound.
	Advertise string
}

// Event is something the process tells its host about a room.
type Event struct {
	// Kind is "room_ended" or "backfill_wanted".
	Kind string
	Room string
	// Reason is why a room ended.
	Reason string
	// Load is the process's load after a room ended.
	Load int
	// Open is the number of seats a backfill_wanted room asks for.
	Open int
}

// Server hosts the rooms of one Game: their WebSocket endpoint, tickets,
// limits, timers, results and metrics. Create it with New, then Listen
// (or mount Handler), then AssignRoom.
type Server struct {
	game   Game
	parser Parser
	cfg    Config
	signer *auth.Signer
	store  store.Store
	rec    Recorder
	rep    LoadReporter
	events func(Event)
	log    *slog.Logger
	reg    *prometheus.Registry
	met    *metrics
	snaps  *snapWriter // nil without a store
	ws     *wsconn.Server
	mux    *http.ServeMux

	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	rooms    map[string]*Room
	pending  map[string]bool
	ended    map[string]time.Time
	endedQ   []endedRoom
	draining bool
	closed   bool
	httpSrv  *http.Server
	addr     string // bound
	adv      string // Deps.Advertise
	roomsWG  sync.WaitGroup

	conns atomic.Int64
}

type endedRoom struct {
	id string
	at time.Time
}

// New returns a Server for game with cfg (zero fields take defaults) and
// deps. It calls the game's Setup (see Setupper) with gameConfig (nil
// means {}). It does not listen; call Listen, or mount Handler.
func New(game Game, cfg Config, gameConfig []byte, deps Deps) (*Server, error) {
	if game == nil || deps.Signer == nil {
		return nil, errors.New("new game server: a game and a signer are required")
	}
	s := &Server{
		game:    game,
		cfg:     cfg.withDefaults(),
		signer:  deps.Signer,
		store:   deps.Store,
		rec:     deps.Recorder,
		rep:     deps.Reporter,
		events:  deps.Events,
		log:     deps.Logger,
		reg:     deps.Registry,
		adv:     deps.Advertise,
		rooms:   make(map[string]*Room),
		pending: make(map[string]bool),
		ended:   make(map[string]time.Time),
	}
	s.parser, _ = game.(Parser)
	if s.rep == nil {
		s.rep = NopReporter{}
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s.log = s.log.With("game", s.cfg.Game)
	if s.reg == nil {
		s.reg = prometheus.NewRegistry()
	}
	s.met = newMetrics(s.reg, s)
	if s.rec == nil {
		if s.store != nil {
			s.rec = StoreRecorder{Store: s.store, Players: s.lookupPlayer}
		} else {
			s.rec = RecorderFunc(func(context.Context, playerdb.Result) (playerdb.Applied, error) { return playerdb.Applied{}, nil })
		}
	}
	if su, ok := game.(Setupper); ok {
		if len(gameConfig) == 0 {
			gameConfig = []byte("{}")
		}
		if err := su.Setup(Env{Config: gameConfig, Log: s.log, Metrics: s.reg}); err != nil {
			return nil, fmt.Errorf("new game server: setup %s: %w: %w", s.cfg.Game, ErrBadConfig, err)
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.ws = wsconn.NewServer(connHandler{s}, s.cfg.WS)
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok")
	})
	s.mux.HandleFunc("GET /ws", s.handleWS)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	if s.store != nil {
		s.snaps = newSnapWriter(s.store, s.met)
		go s.snaps.run()
	}
	go s.watchdog()
	return s, nil
}

// Handler serves /healthz, /ws and /metrics.
func (s *Server) Handler() http.Handler { return s.mux }

// Mux is the server's HTTP mux, for a game that serves pages or files of
// its own beside /ws (register before Listen).
func (s *Server) Mux() *http.ServeMux { return s.mux }

// Listen binds addr (host:port; port 0 picks one) and serves Handler on it
// in the background. It returns the bound host:port once the port accepts
// connections; an address in use is an error wrapping ErrPortInUse.
func (s *Server) Listen(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return "", fmt.Errorf("listen %s: %w", addr, ErrPortInUse)
		}
		return "", fmt.Errorf("listen %s: %w", addr, err)
	}
	guard := httpguard.New("game", httpguard.Limits{}, s.reg, s.log)
	hs := guard.Server(s.mux)
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
		if err := hs.Serve(guard.Listener(ln)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("game http server stopped", "err", err)
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

// PublicAddr returns Deps.Advertise with the port Listen bound (the
// address players and the match history know the server by), or Addr
// when no advertised host was given; "" before Listen.
func (s *Server) PublicAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return publicAddr(s.addr, s.adv)
}

// publicAddr is advertise with bound's port; bound itself without an
// advertised host or a bound address.
func publicAddr(bound, advertise string) string {
	_, port, err := net.SplitHostPort(bound)
	if advertise == "" || err != nil {
		return bound
	}
	return net.JoinHostPort(advertise, port)
}

// Close ends every room with reason "shutdown" (players get
// server_shutdown naming the room; nothing is rated; room records are
// marked failed), stops the listener and waits (at most 5 s) for the
// rooms to finish, then for the snapshot writer's batch in flight (each
// room that ended by then had its newest snapshot written; later ones are
// dropped). Closing twice is a no-op.
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
	if s.snaps != nil {
		// After the rooms' last snapshots (a shutdown writes each room's
		// newest); a room still ending now has its snapshot dropped.
		s.snaps.close()
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

// RoomIDs returns the ids of the rooms hosted now.
func (s *Server) RoomIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.rooms))
	for id := range s.rooms {
		out = append(out, id)
	}
	return out
}

// Status is a server's report of itself.
type Status struct {
	Load        int // rooms hosted
	Draining    bool
	Connections int
}

// Status reports load (rooms hosted), draining and open connections.
func (s *Server) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Status{Load: len(s.rooms), Draining: s.draining, Connections: int(s.conns.Load())}
}

// AssignRoom hosts spec: it reports add (and waits for the dispatcher's
// ok), makes the room's Handler (NewRoom, and Restore when the room has a
// snapshot in the store), starts the room's goroutine and returns the load
// after it. A room hosted (or ended) here is ErrRoomExists; a draining or
// closed server ErrDraining; a malformed room ErrBadRoom; a NewRoom error,
// a failed add report or a failed Restore fail the assignment (nothing is
// hosted, del is reported for a room whose add was).
func (s *Server) AssignRoom(ctx context.Context, spec RoomSpec) (int, error) {
	now := time.Now()
	if err := validateRoom(spec, now); err != nil {
		return 0, err
	}
	s.mu.Lock()
	if s.draining || s.closed {
		s.mu.Unlock()
		return 0, fmt.Errorf("assign room %s: %w", spec.ID, ErrDraining)
	}
	if s.rooms[spec.ID] != nil || s.pending[spec.ID] || !s.ended[spec.ID].IsZero() {
		s.mu.Unlock()
		return 0, fmt.Errorf("assign room %s: %w", spec.ID, ErrRoomExists)
	}
	s.pending[spec.ID] = true
	s.mu.Unlock()
	unpend := func() {
		s.mu.Lock()
		delete(s.pending, spec.ID)
		s.mu.Unlock()
	}
	snapshot := s.loadSnapshot(ctx, spec.ID)
	r := newRoom(s, spec, now)
	// NewRoom runs on the room's goroutine: start it, wait for its
	// answer, then let it run once the room is registered.
	started, ready := make(chan error, 1), make(chan bool, 1)
	s.roomsWG.Add(1)
	go func() {
		defer s.roomsWG.Done()
		err := r.start(s.game, snapshot)
		started <- err
		if err == nil && <-ready {
			r.run(s.ctx)
		}
	}()
	fail := func(err error) (int, error) {
		unpend()
		r.over.Store(true)
		close(r.done)
		return 0, err
	}
	if err := <-started; err != nil {
		return fail(fmt.Errorf("assign room %s: %w: %w", spec.ID, ErrBadRoom, err))
	}
	if err := s.rep.Add(ctx, spec.ID); err != nil {
		ready <- false
		return fail(fmt.Errorf("assign room %s: report add: %w", spec.ID, err))
	}
	s.mu.Lock()
	delete(s.pending, spec.ID)
	s.rooms[spec.ID] = r
	load := len(s.rooms)
	s.mu.Unlock()
	ready <- true
	s.met.assigned.Inc()
	s.log.Info("room assigned", "room", spec.ID, "mode", spec.Mode, "players", len(spec.Players), "load", load, "restored", snapshot != nil)
	return load, nil
}

// Backfill adds players to the running room id (see Backfiller) and
// returns the load. ErrUnknownRoom for a room not hosted here (or over),
// ErrRoomFull when the game refuses, ErrBadRoom for bad players.
func (s *Server) Backfill(ctx context.Context, id string, players []PlayerSpec) (int, error) {
	s.mu.Lock()
	r := s.rooms[id]
	s.mu.Unlock()
	if r == nil {
		return 0, fmt.Errorf("backfill room %s: %w", id, ErrUnknownRoom)
	}
	if len(players) == 0 || len(players)+len(r.snapshotPlayers()) > MaxPlayers {
		return 0, fmt.Errorf("backfill room %s: %w: %d players", id, ErrBadRoom, len(players))
	}
	seen := map[string]bool{}
	ps := make([]*Player, 0, len(players))
	for _, p := range players {
		if !ids.Valid(p.UUID) || seen[p.UUID] {
			return 0, fmt.Errorf("backfill room %s: %w: bad or repeated uuid %q", id, ErrBadRoom, p.UUID)
		}
		seen[p.UUID] = true
		ps = append(ps, r.newPlayer(p))
	}
	req := &backfillReq{players: ps, reply: make(chan error, 1)}
	if r.inbox.Reserve().Post(item{kind: itBackfill, bf: req}) != nil {
		return 0, fmt.Errorf("backfill room %s: %w", id, ErrUnknownRoom)
	}
	select {
	case err := <-req.reply:
		if err != nil {
			return 0, err
		}
		return s.load(), nil
	case <-ctx.Done():
		return 0, fmt.Errorf("backfill room %s: %w", id, ctx.Err())
	}
}

func (r *Room) snapshotPlayers() []*Player {
	r.cmu.Lock()
	defer r.cmu.Unlock()
	return append([]*Player(nil), r.players...)
}

func validateRoom(spec RoomSpec, now time.Time) error {
	if !ids.Valid(spec.ID) {
		return fmt.Errorf("assign room: %w: id must be 1 to 64 of [A-Za-z0-9_-]", ErrBadRoom)
	}
	if n := len(spec.Players); n < MinPlayers || n > MaxPlayers {
		return fmt.Errorf("assign room %s: %w: %d players, want %d to %d", spec.ID, ErrBadRoom, n, MinPlayers, MaxPlayers)
	}
	seen := make(map[string]bool, len(spec.Players))
	for _, p := range spec.Players {
		if !ids.Valid(p.UUID) || seen[p.UUID] {
			return fmt.Errorf("assign room %s: %w: bad or repeated player uuid %q", spec.ID, ErrBadRoom, p.UUID)
		}
		seen[p.UUID] = true
	}
	if !spec.Expires.IsZero() && spec.Expires.Unix() > 0 && !spec.Expires.After(now) {
		return fmt.Errorf("assign room %s: %w: expired at %v", spec.ID, ErrBadRoom, spec.Expires)
	}
	return nil
}

// Drain stops accepting rooms and waits until none are left, deadline
// passes or ctx is done; it returns the number of rooms left. Rooms still
// running go on until they end.
func (s *Server) Drain(ctx context.Context, deadline time.Time) int {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		n := s.load()
		if n == 0 || !time.Now().Before(deadline) {
			return n
		}
		select {
		case <-ctx.Done():
			return s.load()
		case <-t.C:
		}
	}
}

// roomEnded removes r, remembers its id (late joiners hear room_over),
// stops its snapshot writes (and drops its snapshot unless the server is
// shutting down), reports del and counts the end.
func (s *Server) roomEnded(r *Room, res Result, at time.Time) {
	s.mu.Lock()
	if s.rooms[r.id] == r {
		delete(s.rooms, r.id)
	}
	for len(s.endedQ) > 0 && at.Sub(s.endedQ[0].at) > s.cfg.EndedMemory {
		delete(s.ended, s.endedQ[0].id)
		s.endedQ = s.endedQ[1:]
	}
	s.ended[r.id] = at
	s.endedQ = append(s.endedQ, endedRoom{r.id, at})
	load := len(s.rooms)
	s.mu.Unlock()
	s.met.ended.WithLabelValues(res.Reason).Inc()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// Nothing is saved after the end: a room that ended for good drops its
	// snapshot, one stopped by a shutdown keeps its newest.
	r.snapshot.stop(s.snaps, res.Reason == ReasonShutdown)
	if res.Reason != ReasonShutdown {
		s.deleteSnapshot(ctx, r.id)
		if err := s.rep.Del(ctx, r.id); err != nil {
			s.log.Warn("report del", "room", r.id, "err", err)
		}
		if s.events != nil {
			s.events(Event{Kind: "room_ended", Room: r.id, Load: load, Reason: res.Reason})
		}
	}
	s.log.Info("room ended", "room", r.id, "reason", res.Reason, "winner", winnerOf(res), "load", load)
}

func (s *Server) backfillWanted(room string, n int) {
	if s.events != nil {
		s.events(Event{Kind: "backfill_wanted", Room: room, Open: n})
	}
}

// lookupPlayer finds a member of a hosted room (for the StoreRecorder's
// fresh records).
func (s *Server) lookupPlayer(uuid string) *Player {
	s.mu.Lock()
	rooms := make([]*Room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
	for _, r := range rooms {
		if p := r.member(uuid); p != nil {
			return p
		}
	}
	return nil
}

// markPlaying moves the room record from assigned to playing (best effort).
func (s *Server) markPlaying(id string) {
	if s.store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	errSkip := errors.New("skip")
	_, err := records.UpdateRoom(ctx, s.store, id, func(rr *records.Room) error {
		if rr.State != records.RoomAssigned && rr.State != "" {
			return errSkip
		}
		rr.State = records.RoomPlaying
		return nil
	})
	if err != nil && !errors.Is(err, errSkip) && !errors.Is(err, store.ErrNotFound) {
		s.log.Warn("room record: mark playing", "room", id, "err", err)
	}
}

// saveRecord writes the room record's end (creating the record if the
// dispatcher's is gone).
func (s *Server) saveRecord(ctx context.Context, r *Room, state string, res Result, ap playerdb.Applied, now time.Time) {
	if s.store == nil {
		return
	}
	players := r.snapshotPlayers()
	score := func(p *Player) int {
		if ch, ok := ap.Ratings[p.UUID]; ok {
			return ch.After
		}
		return p.Rating
	}
	apply := func(rr *records.Room) error {
		rr.State, rr.Ended, rr.Winner, rr.Reason = state, now.Unix(), winnerOf(res), res.Reason
		have := make(map[string]bool, len(rr.Players))
		for i := range rr.Players {
			have[rr.Players[i].UUID] = true
			if p := r.member(rr.Players[i].UUID); p != nil {
				rr.Players[i].Score = score(p)
			}
		}
		for _, p := range players {
			if !have[p.UUID] {
				rr.Players = append(rr.Players, records.RoomPlayer{UUID: p.UUID, Username: p.Username, Photo: p.Photo, Score: score(p), Bot: p.Bot})
			}
		}
		return nil
	}
	_, err := records.UpdateRoom(ctx, s.store, r.id, apply)
	if errors.Is(err, store.ErrNotFound) {
		rr := records.Room{ID: r.id, Mode: r.mode, Created: r.started.Unix()}
		_ = apply(&rr)
		err = records.PutRoom(ctx, s.store, rr)
	}
	if err != nil {
		s.log.Warn("room record: save end", "room", r.id, "err", err)
	}
}

// watchdog ends rooms whose Handler call runs past the deadline.
func (s *Server) watchdog() {
	every := max(5*time.Millisecond, s.cfg.CallbackDeadline/4)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case now := <-t.C:
			s.mu.Lock()
			var stuck []*Room
			for _, r := range s.rooms {
				if st := r.callStart.Load(); st != 0 && now.UnixNano()-st > int64(s.cfg.CallbackDeadline) {
					stuck = append(stuck, r)
				}
			}
			s.mu.Unlock()
			for _, r := range stuck {
				name, _ := r.callName.Load().(string)
				s.met.stuck.Inc()
				r.log.Error("game call ran past the callback deadline; the room ends", "call", name, "deadline", s.cfg.CallbackDeadline.String())
				go r.abort(ReasonStuck)
			}
		}
	}
}

// --- connections ---

// session is one WebSocket connection's state, set before the upgrade.
// Its reservations make sure the room hears of the connection's join,
// leave and close even when its mailbox is full of client messages.
type session struct {
	reject *ClientError // non-nil: refused; tell and close on open
	room   *Room
	p      *Player

	join, leave, closed *mailbox.Reservation[item]
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
		return &session{reject: Errorf(CodeBadTicket, "missing ticket")}
	}
	c, err := s.signer.Verify(auth.KindRoom, ticket)
	switch {
	case errors.Is(err, auth.ErrExpired):
		return &session{reject: Errorf(CodeExpiredTicket, "the ticket has expired")}
	case errors.Is(err, auth.ErrWrongKind):
		return &session{reject: Errorf(CodeWrongKind, "not a room ticket")}
	case err != nil:
		return &session{reject: Errorf(CodeBadTicket, "the ticket is malformed or not signed by this cluster")}
	case c.Room == "":
		return &session{reject: Errorf(CodeBadTicket, "the ticket names no room")}
	}
	s.mu.Lock()
	r := s.rooms[c.Room]
	_, over := s.ended[c.Room]
	s.mu.Unlock()
	if r == nil {
		if over {
			return &session{reject: Errorf(CodeRoomOver, "room "+c.Room+" has ended")}
		}
		return &session{reject: Errorf(CodeWrongRoom, "room "+quoteShort(c.Room)+" is not hosted on this server")}
	}
	p := r.member(c.Subject)
	if p == nil {
		return &session{reject: Errorf(CodeNotMember, "not a member of room "+c.Room)}
	}
	return &session{room: r, p: p, join: r.inbox.Reserve(), leave: r.inbox.Reserve(), closed: r.inbox.Reserve()}
}

func quoteShort(s string) string {
	if len(s) > 32 {
		s = s[:32] + "..."
	}
	return strconv.Quote(s)
}

// sendError tells c about e (and counts it).
func (s *Server) sendError(c *wsconn.Conn, e *ClientError) {
	s.met.errors.WithLabelValues(e.Code).Inc()
	_ = c.Send(errorMsg(e.Code, e.Message))
}

// refuse tells c about e and closes it with 1008.
func (s *Server) refuse(c *wsconn.Conn, e *ClientError) {
	s.sendError(c, e)
	c.Close(wsconn.ClosePolicy, e.Code)
}

var pongMsg = []byte(`{"type":"pong"}`)

// connHandler is the wsconn.Handler of every game connection.
type connHandler struct{ s *Server }

func (h connHandler) OnOpen(c *wsconn.Conn) {
	h.s.conns.Add(1)
	sess := c.Value.(*session)
	if sess.reject != nil {
		h.s.refuse(c, sess.reject)
		return
	}
	if !sess.room.admitConn(c) {
		h.s.refuse(c, Errorf(CodeRoomOver, "room "+sess.room.id+" has ended"))
		return
	}
	if sess.join.Post(item{kind: itJoin, conn: c, p: sess.p}) != nil {
		h.s.refuse(c, Errorf(CodeRoomOver, "room "+sess.room.id+" has ended"))
	}
}

// AllowPing implements wsconn.PingLimiter: a WebSocket ping counts
// against the player's rate like a message.
func (h connHandler) AllowPing(c *wsconn.Conn) bool {
	sess, _ := c.Value.(*session)
	if sess == nil || sess.reject != nil {
		return true
	}
	if !sess.p.limiter.Allow() {
		h.s.refuse(c, Errorf(CodeRateLimited, "more than "+strconv.FormatFloat(h.s.cfg.EventRate, 'g', -1, 64)+" messages per second"))
		return false
	}
	return true
}

func (h connHandler) OnMessage(c *wsconn.Conn, data []byte) {
	sess := c.Value.(*session)
	if sess.reject != nil || c.Closed() {
		return
	}
	s := h.s
	if !sess.p.limiter.Allow() {
		s.refuse(c, Errorf(CodeRateLimited, "more than "+strconv.FormatFloat(s.cfg.EventRate, 'g', -1, 64)+" messages per second"))
		return
	}
	typ, typed, ok := jsonscan.Type(data)
	switch {
	case !ok:
		s.sendError(c, Errorf(CodeBadJSON, "a message is one JSON object"))
		return
	case !typed:
		s.sendError(c, Errorf(CodeUnknownType, `"type" missing or not a string`))
		return
	}
	switch string(typ) {
	case "ping":
		_ = c.Send(pongMsg)
		return
	case "leave":
		_ = sess.leave.Post(item{kind: itLeave, conn: c, p: sess.p}) // a second leave is ErrUsed: one is enough
		return
	}
	m := Message{Type: string(typ)}
	if s.parser != nil {
		v, err := s.parser.Parse(m.Type, data)
		if err != nil {
			var ce *ClientError
			if !errors.As(err, &ce) {
				ce = Errorf(CodeBadMessage, err.Error())
			}
			s.sendError(c, ce)
			return
		}
		m.Value = v
	} else {
		m.Raw = append([]byte(nil), data...)
	}
	if err := sess.room.inbox.Post(item{kind: itMsg, conn: c, p: sess.p, msg: m}); err != nil {
		if errors.Is(err, mailbox.ErrClosed) || sess.room.over.Load() {
			s.refuse(c, Errorf(CodeRoomOver, "room "+sess.room.id+" has ended"))
			return
		}
		s.met.busy.Inc()
		s.sendError(c, Errorf(CodeRoomBusy, "the room is busy; the message was dropped"))
	}
}

func (h connHandler) OnClose(c *wsconn.Conn, _ error) {
	h.s.conns.Add(-1)
	sess := c.Value.(*session)
	if sess.reject != nil {
		return
	}
	sess.room.dropConn(c)
	_ = sess.closed.Post(item{kind: itClosed, conn: c, p: sess.p})
}
