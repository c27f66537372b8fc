package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/arena-game/arena/internal/mailbox"
	"github.com/arena-game/arena/internal/records"
	"github.com/arena-game/arena/internal/wsconn"
	"github.com/arena-game/arena/playerdb"
	"github.com/arena-game/arena/results"
)

// Errors of the Room methods a Handler calls.
var (
	// ErrTooBig: a message longer than Config.MaxMessage; it is not sent.
	ErrTooBig = errors.New("message over the size limit")
	// ErrNotConnected: the player has no connection now; the message is
	// dropped (send the state again on its next Join).
	ErrNotConnected = errors.New("player not connected")
	// ErrNoSnapshot: Save on a Handler that is not a Snapshotter, or a
	// server without a store.
	ErrNoSnapshot = errors.New("room state cannot be saved")
)

// Player is one member of a room. Its identity fields never change; its
// state is the room goroutine's, so a Handler reads it freely.
type Player struct {
	UUID     string
	Username string
	Photo    string
	// Rating is the rating the room was formed with.
	Rating int
	Bot    bool
	// Data is the Handler's own per-player state.
	Data any

	room      *Room
	state     PlayerState
	conn      *wsconn.Conn
	joins     int
	awaySince time.Time     // when it dropped, or (Pending) when its seat was given
	limiter   *rate.Limiter // shared by the player's connections

	// tick batching: messages queued during a tick, flushed at its end
	batch    []byte
	batchEnd []int
}

// State returns where the player is in the room's life.
func (p *Player) State() PlayerState { return p.state }

// Connected reports whether the player has a live connection.
func (p *Player) Connected() bool { return p.state == Connected }

// Seated reports whether the player has not left for good (Pending,
// Connected or Away).
func (p *Player) Seated() bool { return p.state != Gone }

// Joins counts the player's accepted connections.
func (p *Player) Joins() int { return p.joins }

// Room is one room as its Handler sees it. Every method must be called
// from the room's goroutine (inside a Handler call or a Room.After
// function), except ID, Mode, Options and Log, which are immutable.
type Room struct {
	id, mode string
	options  json.RawMessage
	srv      *Server
	log      *slog.Logger
	h        Handler
	started  time.Time
	deadline time.Time

	players []*Player          // members in assignment order; appended (under cmu) by backfill
	byUUID  map[string]*Player // idem

	// inbox is the room's mailbox (internal/mailbox, policy Reject):
	// client messages past Config.Inbox are refused (the sender is told
	// room_busy); joins, drops and leaves (reserved per connection when it
	// is admitted), timers (reserved by After) and backfills (reserved per
	// call) always get in, so the queue is bounded by Inbox plus three per
	// connection, one per pending timer and one per backfill call.
	inbox *mailbox.Mailbox[item]
	items []item        // the owner's buffer for Take
	done  chan struct{} // closed when the room is over
	over  atomic.Bool   // the room's end has begun (by its goroutine, the watchdog or shutdown)

	// cmu guards conns and shut (every admitted connection, so an end
	// closes also those whose join is still queued) and the membership
	// (players, byUUID) for readers on other goroutines.
	cmu   sync.Mutex
	conns map[*wsconn.Conn]struct{}
	shut  bool

	// callStart is when the running Handler call began (unix ns), 0
	// between calls: the watchdog's view.
	callStart atomic.Int64
	callName  atomic.Value // string

	// Owned by the room goroutine.
	ending    *Result
	tick      time.Duration
	ticker    *time.Ticker
	anyJoined bool
	dirty     []*Player // players with batched messages
	scratch   [][]byte  // flushPlayer's message list, reused
	snapshot  saver
}

// ID is the room's id.
func (r *Room) ID() string { return r.id }

// Mode is the room's mode (its matchmaking profile), "" for the default.
func (r *Room) Mode() string { return r.mode }

// Options is the room's own options JSON from the dispatcher ("" none).
func (r *Room) Options() json.RawMessage { return r.options }

// Log is the room's logger (with game and room attributes).
func (r *Room) Log() *slog.Logger { return r.log }

// Players returns the room's members in assignment order (backfilled
// players last). The slice must not be modified.
func (r *Room) Players() []*Player { return r.players }

// Player returns the member with uuid, or nil.
func (r *Room) Player(uuid string) *Player { return r.byUUID[uuid] }

// Deadline is when the room timeout ends the room.
func (r *Room) Deadline() time.Time { return r.deadline }

// Started is when the room was assigned.
func (r *Room) Started() time.Time { return r.started }

// Config is the process's SDK configuration.
func (r *Room) Config() Config { return r.srv.cfg }

// SetTick makes the SDK call the Handler's Tick every d (the Handler must
// be a Ticker), and batch what the Handler sends per player until the end
// of each tick. d <= 0 stops the tick (messages are sent at once again).
func (r *Room) SetTick(d time.Duration) {
	if _, ok := r.h.(Ticker); !ok && r.h != nil && d > 0 {
		panic("sdk: SetTick on a Handler that is not a Ticker")
	}
	if r.ticker != nil {
		r.ticker.Stop()
		r.ticker = nil
	}
	r.flush()
	r.tick = max(d, 0)
	if r.tick > 0 {
		r.ticker = time.NewTicker(r.tick)
	}
}

// Send sends msg (one JSON object) to p. The SDK copies msg before Send
// returns. It returns ErrTooBig for a message over Config.MaxMessage,
// ErrNotConnected when p has no connection; a player whose connection
// cannot keep up is disconnected (and becomes Away).
func (r *Room) Send(p *Player, msg []byte) error {
	if len(msg) > r.srv.cfg.MaxMessage {
		r.srv.met.tooBig.Inc()
		return fmt.Errorf("send to %s: %d bytes: %w", p.UUID, len(msg), ErrTooBig)
	}
	if p.conn == nil {
		return ErrNotConnected
	}
	r.srv.met.sent.Inc()
	if r.tick > 0 {
		if len(p.batchEnd) == 0 {
			r.dirty = append(r.dirty, p)
		}
		p.batch = append(p.batch, msg...)
		p.batchEnd = append(p.batchEnd, len(p.batch))
		return nil
	}
	return p.conn.Send(msg)
}

// SendJSON marshals v and sends it to p.
func (r *Room) SendJSON(p *Player, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("send to %s: %w", p.UUID, err)
	}
	return r.Send(p, b)
}

// Broadcast sends msg to every connected player. It returns ErrTooBig
// for a message over Config.MaxMessage (sent to nobody).
func (r *Room) Broadcast(msg []byte) error { return r.BroadcastExcept(nil, msg) }

// BroadcastExcept sends msg to every connected player but except.
func (r *Room) BroadcastExcept(except *Player, msg []byte) error {
	if len(msg) > r.srv.cfg.MaxMessage {
		r.srv.met.tooBig.Inc()
		return fmt.Errorf("broadcast: %d bytes: %w", len(msg), ErrTooBig)
	}
	for _, p := range r.players {
		if p != except && p.conn != nil {
			_ = r.Send(p, msg)
		}
	}
	return nil
}

// BroadcastJSON marshals v and sends it to every connected player.
func (r *Room) BroadcastJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("broadcast: %w", err)
	}
	return r.Broadcast(b)
}

// Error sends p {"type":"error","code":code,"message":msg}; the
// connection stays open.
func (r *Room) Error(p *Player, code, msg string) {
	r.srv.met.errors.WithLabelValues(code).Inc()
	_ = r.Send(p, errorMsg(code, msg))
}

// End ends the room with res once the current Handler call returns: the
// SDK completes and orders the ranking (see Result), records it with the
// Recorder (ratings), sends every connected player the result message,
// closes their connections and frees the room. Only the first End counts.
func (r *Room) End(res Result) {
	if r.ending == nil {
		r.ending = &res
	}
}

// Ended reports whether End was called.
func (r *Room) Ended() bool { return r.ending != nil }

// Timer is a function scheduled on the room's goroutine by After.
type Timer struct {
	t       *time.Timer
	stopped bool
}

// Stop cancels the timer; it reports whether the function was still to
// run. Call it from the room's goroutine.
func (t *Timer) Stop() bool {
	if t == nil || t.stopped {
		return false
	}
	t.stopped = true
	t.t.Stop()
	return true
}

// After runs fn on the room's goroutine d from now (like a Handler call:
// same deadline, same panic handling), unless the timer is stopped or the
// room has ended by then.
func (r *Room) After(d time.Duration, fn func()) *Timer {
	tm := &Timer{}
	res := r.inbox.Reserve()
	tm.t = time.AfterFunc(d, func() { _ = res.Post(item{kind: itTimer, timer: tm, fn: fn}) })
	return tm
}

// Save writes the Handler's snapshot (see Snapshotter) to the shared store
// under the room's id, so a process that takes the room over can Restore
// it. Snapshot runs now, on the room's goroutine; the server's one
// snapshot writer writes it in the background, batched with other rooms'
// (the newest snapshot wins; at most one write per room is in flight).
// It costs the room the Snapshot call, and the store one write of the
// snapshot's size (see docs/your-game.md).
func (r *Room) Save() error {
	s, ok := r.h.(Snapshotter)
	if !ok || r.srv.store == nil {
		return ErrNoSnapshot
	}
	b, err := s.Snapshot()
	if err != nil {
		return fmt.Errorf("save room %s: %w", r.id, err)
	}
	r.snapshot.save(r, b)
	return nil
}

// WantPlayers asks the dispatcher to backfill n open seats (a
// BackfillWanted event; see Backfiller). It is a hint: nothing happens
// on a fleet that does not backfill.
func (r *Room) WantPlayers(n int) {
	if n > 0 {
		r.srv.backfillWanted(r.id, n)
	}
}

// --- the room's mailbox ---

type itemKind uint8

const (
	itJoin itemKind = iota + 1
	itClosed
	itLeave
	itMsg
	itTimer
	itBackfill
)

type item struct {
	kind  itemKind
	conn  *wsconn.Conn
	p     *Player
	msg   Message
	timer *Timer
	fn    func()
	bf    *backfillReq
}

type backfillReq struct {
	players []*Player
	reply   chan error
}

// --- the room goroutine ---

func newRoom(s *Server, spec RoomSpec, now time.Time) *Room {
	r := &Room{
		id: spec.ID, mode: spec.Mode, options: spec.Options, srv: s,
		log:      s.log.With("room", spec.ID),
		started:  now,
		deadline: now.Add(s.cfg.RoomTimeout),
		byUUID:   make(map[string]*Player, len(spec.Players)),
		done:     make(chan struct{}),
		conns:    make(map[*wsconn.Conn]struct{}),
	}
	r.inbox = mailbox.New[item](s.cfg.Inbox, mailbox.Reject)
	if !spec.Expires.IsZero() && spec.Expires.Unix() > 0 && spec.Expires.Before(r.deadline) {
		r.deadline = spec.Expires
	}
	for _, ps := range spec.Players {
		p := r.newPlayer(ps)
		r.players = append(r.players, p)
		r.byUUID[p.UUID] = p
	}
	return r
}

func (r *Room) newPlayer(ps PlayerSpec) *Player {
	return &Player{UUID: ps.UUID, Username: ps.Username, Photo: ps.Photo, Rating: ps.Rating, Bot: ps.Bot,
		room: r, state: Pending, awaySince: r.started, limiter: rate.NewLimiter(rate.Limit(r.srv.cfg.EventRate), r.srv.cfg.EventBurst)}
}

// member returns the member with uuid for a goroutine other than the
// room's.
func (r *Room) member(uuid string) *Player {
	r.cmu.Lock()
	defer r.cmu.Unlock()
	return r.byUUID[uuid]
}

// admitConn records c as a connection of the room, or reports false when
// the room is over.
func (r *Room) admitConn(c *wsconn.Conn) bool {
	r.cmu.Lock()
	defer r.cmu.Unlock()
	if r.shut {
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *Room) dropConn(c *wsconn.Conn) {
	r.cmu.Lock()
	delete(r.conns, c)
	r.cmu.Unlock()
}

// takeConns marks the room shut and returns its connections.
func (r *Room) takeConns() []*wsconn.Conn {
	r.cmu.Lock()
	defer r.cmu.Unlock()
	r.shut = true
	out := make([]*wsconn.Conn, 0, len(r.conns))
	for c := range r.conns {
		out = append(out, c)
	}
	return out
}

// call runs one Handler call: timed for the watchdog, a panic ends the
// room with reason "error". It reports false when the room is over (or
// the call panicked): the caller makes no further calls.
func (r *Room) call(name string, fn func()) (ok bool) {
	if r.over.Load() {
		return false
	}
	r.callName.Store(name)
	r.callStart.Store(time.Now().UnixNano())
	defer func() {
		r.callStart.Store(0)
		if v := recover(); v != nil {
			ok = false
			r.srv.met.panics.Inc()
			r.log.Error("game panicked; the room ends with an error", "call", name, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			r.abort(ReasonError)
		}
	}()
	fn()
	return !r.over.Load()
}

func (r *Room) housekeepEvery() time.Duration {
	d := min(r.srv.cfg.RejoinGrace, r.srv.cfg.RoomTimeout) / 4
	return max(5*time.Millisecond, min(d, time.Second))
}

// start makes the Handler (NewRoom, then Restore when a snapshot waits).
func (r *Room) start(game Game, snapshot []byte) error {
	var err error
	ok := r.call("NewRoom", func() { r.h, err = game.NewRoom(r) })
	switch {
	case !ok:
		return errors.New("the game panicked in NewRoom")
	case err != nil:
		return err
	case r.h == nil:
		return errors.New("NewRoom returned no handler")
	}
	if _, isT := r.h.(Ticker); r.tick > 0 && !isT {
		return errors.New("SetTick in NewRoom, but the handler is not a Ticker")
	}
	if snapshot != nil {
		if rs, isR := r.h.(Restorer); isR {
			if !r.call("Restore", func() { err = rs.Restore(snapshot) }) {
				return errors.New("the game panicked in Restore")
			}
			if err != nil {
				return fmt.Errorf("restore: %w", err)
			}
			r.srv.met.restores.Inc()
			r.log.Info("room restored from its snapshot", "bytes", len(snapshot))
		}
	}
	return nil
}

// run owns the room until it ends or ctx (the server's) is done.
func (r *Room) run(ctx context.Context) {
	hk := time.NewTicker(r.housekeepEvery())
	defer hk.Stop()
	defer func() {
		if r.ticker != nil {
			r.ticker.Stop()
		}
	}()
	for {
		if r.over.Load() {
			return
		}
		if r.ending != nil {
			r.finish(*r.ending)
			return
		}
		r.checkGone()
		if r.over.Load() {
			return
		}
		var tickC <-chan time.Time
		if r.ticker != nil {
			tickC = r.ticker.C
		}
		select {
		case <-r.inbox.Ready():
			r.items = r.inbox.Take(r.items)
			for i := range r.items {
				if r.ending != nil || r.over.Load() {
					r.refuseLate(r.items[i:])
					break
				}
				r.handle(&r.items[i])
			}
		case now := <-hk.C:
			r.housekeep(now)
		case now := <-tickC:
			if t, ok := r.h.(Ticker); ok {
				r.call("Tick", func() { t.Tick(now) })
			}
			r.flush() // the tick's messages: one write per player
		case <-r.done:
			return
		case <-ctx.Done():
			r.shutdown()
			return
		}
	}
}

// refuseLate answers what arrived after the game ended the room.
func (r *Room) refuseLate(items []item) {
	for _, it := range items {
		if it.kind == itBackfill {
			it.bf.reply <- ErrUnknownRoom
		}
	}
}

func (r *Room) handle(it *item) {
	switch it.kind {
	case itJoin:
		r.join(it.p, it.conn)
	case itClosed:
		r.closed(it.p, it.conn)
	case itLeave:
		if it.p.conn == it.conn && it.conn != nil {
			r.quit(it.p)
		}
	case itMsg:
		if it.p.conn == it.conn && it.p.state == Connected {
			r.srv.met.messages.Inc()
			r.call("Message", func() { r.h.Message(it.p, it.msg) })
		}
	case itTimer:
		if !it.timer.stopped {
			it.timer.stopped = true
			r.call("After", it.fn)
		}
	case itBackfill:
		it.bf.reply <- r.backfill(it.bf.players)
	}
}

func (r *Room) join(p *Player, c *wsconn.Conn) {
	if p.state == Gone {
		r.srv.refuse(c, Errorf(CodeLeftRoom, "you have left room "+r.id))
		return
	}
	if c.Closed() {
		return
	}
	how := JoinFirst
	switch {
	case p.state == Away:
		how = JoinRejoin
	case p.joins > 0:
		how = JoinReplace
	}
	if old := p.conn; old != nil && old != c {
		r.flushPlayer(p)
		r.srv.refuse(old, Errorf(CodeReplaced, "a newer connection with your ticket took over"))
	}
	p.conn, p.state = c, Connected
	p.joins++
	r.srv.met.joins.Inc()
	if !r.anyJoined {
		r.anyJoined = true
		go r.srv.markPlaying(r.id)
	}
	r.call("Join", func() { r.h.Join(p, how) })
}

func (r *Room) closed(p *Player, c *wsconn.Conn) {
	if p.conn != c {
		return // a replaced connection, or one that never joined
	}
	p.conn = nil
	p.batch, p.batchEnd = p.batch[:0], p.batchEnd[:0]
	if p.state == Connected {
		p.state, p.awaySince = Away, time.Now()
		r.call("Leave", func() { r.h.Leave(p, LeaveAway) })
	}
}

func (r *Room) quit(p *Player) {
	c := p.conn
	r.flushPlayer(p)
	p.conn, p.state = nil, Gone
	c.Close(wsconn.CloseNormal, "left")
	r.call("Leave", func() { r.h.Leave(p, LeaveQuit) })
}

// housekeep applies the rejoin grace and the room timeout.
func (r *Room) housekeep(now time.Time) {
	if !now.Before(r.deadline) {
		res := Result{}
		if th, ok := r.h.(TimeoutHandler); ok {
			if !r.call("Timeout", func() { res = th.Timeout() }) {
				return
			}
		} else {
			var seated, gone []string
			for _, p := range r.players {
				if p.Seated() {
					seated = append(seated, p.UUID)
				} else {
					gone = append(gone, p.UUID)
				}
			}
			res = Ranking(ReasonTimeout, seated, gone)
		}
		if res.Reason == "" {
			res.Reason = ReasonTimeout
		}
		r.End(res)
		return
	}
	grace := r.srv.cfg.RejoinGrace
	for _, p := range r.players {
		if (p.state == Pending || p.state == Away) && now.Sub(p.awaySince) >= grace {
			p.state = Gone
			if !r.call("Leave", func() { r.h.Leave(p, LeaveGone) }) || r.ending != nil {
				return
			}
		}
	}
}

// checkGone ends a room whose players are all gone and which the game did
// not end: no_show when nobody ever connected, else abandoned; unrated.
func (r *Room) checkGone() {
	for _, p := range r.players {
		if p.state != Gone {
			return
		}
	}
	reason := ReasonAbandoned
	if !r.anyJoined {
		reason = ReasonNoShow
	}
	res := Ranking(reason, nil)
	res.Unrated = true
	r.finish(res)
}

// backfill adds players to the running room (the Handler decides).
func (r *Room) backfill(specs []*Player) error {
	bf, ok := r.h.(Backfiller)
	if !ok {
		return fmt.Errorf("backfill room %s: the game takes no players into a running room: %w", r.id, ErrRoomFull)
	}
	for _, p := range specs {
		if r.byUUID[p.UUID] != nil {
			return fmt.Errorf("backfill room %s: %s is already a member: %w", r.id, p.UUID, ErrBadRoom)
		}
	}
	now := time.Now()
	r.cmu.Lock()
	for _, p := range specs {
		p.room, p.state, p.awaySince = r, Pending, now
		r.players = append(r.players, p)
		r.byUUID[p.UUID] = p
	}
	r.cmu.Unlock()
	var err error
	if !r.call("Backfill", func() { err = bf.Backfill(specs) }) {
		return fmt.Errorf("backfill room %s: %w", r.id, ErrUnknownRoom)
	}
	if err != nil {
		r.cmu.Lock()
		r.players = r.players[:len(r.players)-len(specs)]
		for _, p := range specs {
			delete(r.byUUID, p.UUID)
		}
		r.cmu.Unlock()
		return fmt.Errorf("backfill room %s: %w: %w", r.id, ErrRoomFull, err)
	}
	return nil
}

// flush writes every player's batched messages (tick mode), one write each.
func (r *Room) flush() {
	for _, p := range r.dirty {
		r.flushPlayer(p)
	}
	r.dirty = r.dirty[:0]
}

func (r *Room) flushPlayer(p *Player) {
	if len(p.batchEnd) == 0 {
		return
	}
	if p.conn != nil {
		msgs := r.scratch[:0]
		start := 0
		for _, end := range p.batchEnd {
			msgs = append(msgs, p.batch[start:end])
			start = end
		}
		_ = p.conn.SendNow(msgs...) // copies
		clear(msgs)
		r.scratch = msgs[:0]
	}
	// Keep small buffers for the next tick; let a burst's go.
	if cap(p.batch) > 2<<10 {
		p.batch = nil
	}
	if cap(p.batchEnd) > 64 {
		p.batchEnd = nil
	}
	p.batch, p.batchEnd = p.batch[:0], p.batchEnd[:0]
}

// finish ends the room normally (its goroutine).
func (r *Room) finish(res Result) {
	if !r.over.CompareAndSwap(false, true) {
		return
	}
	r.flush()
	res = r.normalize(res)
	r.refuseLate(r.inbox.Close())
	r.conclude(res, wsconn.CloseNormal, "room over", nil)
}

// abort ends the room from any goroutine (a panic, a stuck callback):
// every member draws, unrated, with reason.
func (r *Room) abort(reason string) {
	if !r.over.CompareAndSwap(false, true) {
		return
	}
	r.cmu.Lock()
	res := Result{Reason: reason, Unrated: true}
	for _, p := range r.players {
		res.Players = append(res.Players, PlayerResult{UUID: p.UUID, Rank: 1})
	}
	r.cmu.Unlock()
	r.refuseLate(r.inbox.Close())
	r.conclude(res, wsconn.CloseInternal, reason, nil)
}

// shutdown ends the room because the process stops: players are told
// server_shutdown (naming the room), nothing is rated, the record is
// marked failed and no del is reported (the dispatcher sees the exit).
func (r *Room) shutdown() {
	if !r.over.CompareAndSwap(false, true) {
		return
	}
	r.refuseLate(r.inbox.Close())
	res := Result{Reason: ReasonShutdown, Unrated: true}
	for _, p := range r.players {
		res.Players = append(res.Players, PlayerResult{UUID: p.UUID, Rank: 1})
	}
	msg := errorMsg(CodeServerShutdown, "the game server is stopping; room "+r.id+" is over")
	r.conclude(res, wsconn.CloseGoingAway, CodeServerShutdown, msg)
}

// conclude records res, tells every connection (the result message, or
// instead when not nil), closes them and frees the room.
func (r *Room) conclude(res Result, code uint16, why string, instead []byte) {
	now := time.Now()
	res.Room, res.Game, res.Profile, res.Host = r.id, r.srv.cfg.Game, r.mode, r.srv.PublicAddr()
	res.Started, res.Ended = r.started, now
	r.cmu.Lock()
	names := make(map[string]*Player, len(r.players))
	for _, p := range r.players {
		names[p.UUID] = p
	}
	r.cmu.Unlock()
	timeout := 5 * time.Second
	if res.Reason == ReasonShutdown {
		timeout = time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var applied playerdb.Applied
	pending := false
	if !res.Unrated {
		pr := playerdb.Result{Room: res.Room, Game: res.Game, Profile: res.Profile, Host: res.Host, Started: res.Started, Ended: res.Ended, Reason: res.Reason}
		for _, p := range res.Players {
			line := playerdb.PlayerResult{UUID: p.UUID, Rank: p.Rank, Score: p.Score, Left: p.Left}
			if m := names[p.UUID]; m != nil {
				line.Name, line.Photo, line.Bot = m.Username, m.Photo, m.Bot
			}
			pr.Players = append(pr.Players, line)
		}
		var err error
		applied, err = r.srv.rec.Record(ctx, pr)
		switch {
		case errors.Is(err, results.ErrPending):
			pending = true
			r.log.Warn("result pending: the players are told so", "reason", res.Reason, "err", err)
		case err != nil:
			r.log.Error("record result", "reason", res.Reason, "err", err)
		}
	}
	msg := instead
	if msg == nil {
		msg = resultMessage(res, func(id string) (string, int) {
			if p := names[id]; p != nil {
				return p.Username, p.Rating
			}
			return "", 0
		}, applied, pending)
	}
	// The record is written before anyone is told, so what a player is
	// shown is in the store.
	state := records.RoomEnded
	if res.Reason == ReasonShutdown {
		state = records.RoomFailed
	}
	r.srv.saveRecord(ctx, r, state, res, applied, now)
	for _, c := range r.takeConns() {
		_ = c.Send(msg)
		c.Close(code, why)
	}
	close(r.done)
	r.srv.roomEnded(r, res, now)
}

func errorMsg(code, msg string) []byte {
	b, _ := json.Marshal(struct {
		Type    string `json:"type"`
		Code    string `json:"code"`
		Message string `json:"message"`
	}{"error", code, msg})
	return b
}
