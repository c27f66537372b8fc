package fightserver

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/arena-game/arena/internal/fleet"
	"github.com/arena-game/arena/internal/records"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/internal/wsconn"
)

// End reasons (the "reason" of a result).
const (
	ReasonLastStanding = "last_standing" // one member left alive: the winner
	ReasonAbandoned    = "abandoned"     // every member left (no winner)
	ReasonTimeout      = "timeout"       // room-timeout passed; the alive member with the most hp wins, a tie has no winner
	ReasonNoShow       = "no_show"       // nobody ever joined; ratings unchanged
	ReasonShutdown     = "shutdown"      // the fight server stopped; ratings unchanged
)

// Member states, as the "status" of a player in the state message.
type memberState uint8

const (
	stPending memberState = iota // assigned, not joined yet
	stPlaying                    // connected
	stAway                       // dropped; may rejoin within the grace
	stOut                        // hp reached 0
	stLeft                       // left, or did not (re)join within the grace
)

var stateNames = [...]string{"pending", "playing", "away", "out", "left"}

type member struct {
	uuid, name, photo string
	score             int
	bot               bool
	hp                int
	x, y              float64
	conn              *wsconn.Conn
	state             memberState
	joined            bool
	awaySince         time.Time
	outSeq            int
	lastAttack        time.Time
	createMsg         []byte
	limit             *limiter // shared with the member's connection goroutines
}

func (m *member) alive() bool { return m.state <= stAway }

type rmKind uint8

const (
	rmJoin rmKind = iota + 1
	rmEvent
	rmLeave
	rmClosed
)

// inboxSize is a room's inbox capacity. A full inbox makes the senders'
// read loops wait (backpressure on those sockets); it is kept small because
// every room has one (16 messages are about 2.3 KiB).
const inboxSize = 16

// roomMsg is what connection goroutines send a room.
type roomMsg struct {
	kind rmKind
	conn *wsconn.Conn
	uuid string
	ev   event
}

// room is one fight. Its fields below mu are owned by the run goroutine;
// byUUID and members' identities are immutable after newRoom.
type room struct {
	id, mode string
	srv      *Server
	members  []*member
	byUUID   map[string]*member
	inbox    chan roomMsg
	done     chan struct{}
	created  time.Time
	deadline time.Time

	// mu guards conns and shut: every connection admitted to the room, so
	// the room's end closes also those whose join is still queued.
	mu    sync.Mutex
	conns map[*wsconn.Conn]struct{}
	shut  bool

	outSeq    int
	anyJoined bool
	reason    string
	winner    *member
}

func newRoom(s *Server, fr fleet.Room, now time.Time) *room {
	r := &room{
		id: fr.ID, mode: fr.Mode, srv: s,
		byUUID:   make(map[string]*member, len(fr.Players)),
		inbox:    make(chan roomMsg, inboxSize),
		done:     make(chan struct{}),
		created:  now,
		deadline: now.Add(s.cfg.RoomTimeout),
		conns:    make(map[*wsconn.Conn]struct{}),
	}
	if !fr.Expires.IsZero() && fr.Expires.Unix() > 0 && fr.Expires.Before(r.deadline) {
		r.deadline = fr.Expires
	}
	for _, p := range fr.Players {
		m := &member{uuid: p.UUID, name: p.Username, photo: p.Photo, score: p.Score, bot: p.Bot, hp: StartHP,
			limit: &limiter{b: newBucket(s.cfg.EventRate, s.cfg.EventBurst)}}
		m.createMsg, _ = json.Marshal(struct {
			Type     string `json:"type"`
			UUID     string `json:"uuid"`
			Username string `json:"username"`
			Photo    string `json:"photo"`
		}{"create_player", m.uuid, m.name, m.photo})
		r.members = append(r.members, m)
		r.byUUID[m.uuid] = m
	}
	return r
}

// post hands m to the room goroutine; it gives up once the room is done.
func (r *room) post(m roomMsg) {
	select {
	case r.inbox <- m:
	case <-r.done:
	}
}

// admitConn records c as a connection of the room, or reports false when
// the room is ending.
func (r *room) admitConn(c *wsconn.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.shut {
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *room) dropConn(c *wsconn.Conn) {
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
}

// takeConns marks the room shut and returns its connections.
func (r *room) takeConns() []*wsconn.Conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.shut = true
	out := make([]*wsconn.Conn, 0, len(r.conns))
	for c := range r.conns {
		out = append(out, c)
	}
	return out
}

func (r *room) tickEvery() time.Duration {
	d := min(r.srv.cfg.RejoinGrace, r.srv.cfg.RoomTimeout) / 4
	return max(5*time.Millisecond, min(d, time.Second))
}

// run owns the room until it ends or ctx (the server's) is done.
func (r *room) run(ctx context.Context) {
	defer close(r.done)
	tick := time.NewTicker(r.tickEvery())
	defer tick.Stop()
	for {
		select {
		case m := <-r.inbox:
			r.handle(m, time.Now())
		case now := <-tick.C:
			r.tick(now)
		case <-ctx.Done():
			r.shutdown()
			return
		}
		if r.reason != "" {
			r.finish(time.Now())
			return
		}
	}
}

func (r *room) handle(m roomMsg, now time.Time) {
	mem := r.byUUID[m.uuid]
	if mem == nil {
		return
	}
	switch m.kind {
	case rmJoin:
		r.join(mem, m.conn, now)
	case rmClosed:
		r.closed(mem, m.conn, now)
	case rmLeave:
		if mem.conn == m.conn {
			r.leave(mem, now)
		}
	case rmEvent:
		if mem.conn == m.conn {
			r.event(mem, &m.ev, now)
		}
	}
}

func (r *room) join(m *member, c *wsconn.Conn, now time.Time) {
	if m.state == stLeft {
		r.srv.refuse(c, perr(CodeLeftRoom, "you have left room "+r.id))
		return
	}
	if c.Closed() {
		return
	}
	if old := m.conn; old != nil && old != c {
		r.srv.refuse(old, perr(CodeReplaced, "a newer connection with your ticket took over"))
	}
	rejoin, wasAway := m.joined, m.state == stAway
	m.conn, m.joined = c, true
	if m.state == stPending || m.state == stAway {
		m.state = stPlaying
	}
	_ = c.Send(r.stateMsg(m, rejoin, now))
	for _, o := range r.members {
		if o.joined && o.state != stLeft {
			_ = c.Send(o.createMsg)
		}
	}
	var notice []byte
	switch {
	case !rejoin:
		notice = m.createMsg
	case wasAway:
		notice = r.playerMsg("player_back", m.uuid)
	}
	if notice != nil {
		r.broadcast(notice, m)
	}
	r.srv.met.joins.Inc()
	if !r.anyJoined {
		r.anyJoined = true
		go r.markPlaying()
	}
}

func (r *room) closed(m *member, c *wsconn.Conn, now time.Time) {
	if m.conn != c {
		return // a replaced connection, or one that never joined
	}
	m.conn = nil
	if m.state == stPlaying {
		m.state, m.awaySince = stAway, now
		b, _ := json.Marshal(struct {
			Type    string `json:"type"`
			UUID    string `json:"uuid"`
			GraceMS int64  `json:"grace_ms"`
		}{"player_away", m.uuid, r.srv.cfg.RejoinGrace.Milliseconds()})
		r.broadcast(b, nil)
	}
}

func (r *room) leave(m *member, now time.Time) {
	c := m.conn
	m.conn = nil
	if m.alive() {
		r.outSeq++
		r.markOut(m, stLeft, "left", "", r.outSeq)
	} else {
		m.state = stLeft
	}
	c.Close(wsconn.CloseNormal, "left")
	r.evaluate()
}

func (r *room) event(m *member, ev *event, now time.Time) {
	if !m.alive() && ev.kind != evMessage {
		r.srv.sendError(m.conn, perr(CodePlayerOut, "you are out; only message events are relayed"))
		return
	}
	r.srv.met.events[ev.kind].Inc()
	switch ev.kind {
	case evMoveTo, evBlink:
		m.x, m.y = ev.tx, ev.ty
		r.relay(m, ev)
	case evShoot, evMessage:
		r.relay(m, ev)
	case evAttack:
		r.attack(m, ev, now)
	}
}

func (r *room) attack(m *member, ev *event, now time.Time) {
	t := r.byUUID[ev.target]
	var e *protoError
	switch {
	case t == nil:
		e = perr(CodeBadTarget, "target is not a member of this room")
	case t == m:
		e = perr(CodeBadTarget, "cannot attack yourself")
	case !t.joined:
		e = perr(CodeBadTarget, "target has not joined")
	case !t.alive():
		e = perr(CodeBadTarget, "target is out")
	case r.srv.cfg.AttackCooldown > 0 && !m.lastAttack.IsZero() && now.Sub(m.lastAttack) < r.srv.cfg.AttackCooldown:
		e = perr(CodeCooldown, "attack cooldown is "+r.srv.cfg.AttackCooldown.String())
	}
	if e != nil {
		r.srv.sendError(m.conn, e)
		return
	}
	m.lastAttack = now
	r.relay(m, ev)
	dmg := min(r.srv.cfg.AttackDamage, t.hp)
	t.hp -= dmg
	b, _ := json.Marshal(struct {
		Type   string `json:"type"`
		UUID   string `json:"uuid"`
		HP     int    `json:"hp"`
		By     string `json:"by"`
		Damage int    `json:"damage"`
	}{"hp", t.uuid, t.hp, m.uuid, dmg})
	r.broadcast(b, nil)
	if t.hp == 0 {
		r.outSeq++
		r.markOut(t, stOut, "killed", m.uuid, r.outSeq)
		r.evaluate()
	}
}

// relay sends ev, from m, to every other connected member.
func (r *room) relay(m *member, ev *event) {
	b := appendRelay(make([]byte, 0, 160), ev, m.uuid, m.name)
	r.srv.met.relayed.Add(float64(r.broadcast(b, m)))
}

// broadcast sends b to every connected member but except; it returns how
// many it was sent to.
func (r *room) broadcast(b []byte, except *member) int {
	n := 0
	for _, o := range r.members {
		if o != except && o.conn != nil {
			if o.conn.Send(b) == nil {
				n++
			}
		}
	}
	return n
}

func (r *room) playerMsg(typ, uuid string) []byte {
	b, _ := json.Marshal(struct {
		Type string `json:"type"`
		UUID string `json:"uuid"`
	}{typ, uuid})
	return b
}

func (r *room) markOut(m *member, st memberState, reason, by string, seq int) {
	m.state, m.outSeq = st, seq
	b, _ := json.Marshal(struct {
		Type   string `json:"type"`
		UUID   string `json:"uuid"`
		Reason string `json:"reason"`
		By     string `json:"by,omitempty"`
	}{"out", m.uuid, reason, by})
	r.broadcast(b, nil)
}

// evaluate ends the room when at most one member is alive.
func (r *room) evaluate() {
	alive := 0
	var last *member
	for _, m := range r.members {
		if m.alive() {
			alive++
			last = m
		}
	}
	switch {
	case alive > 1:
	case !r.anyJoined:
		r.reason = ReasonNoShow
	case alive == 1:
		r.reason, r.winner = ReasonLastStanding, last
	default:
		r.reason = ReasonAbandoned
	}
}

func (r *room) tick(now time.Time) {
	if !now.Before(r.deadline) {
		r.reason = ReasonTimeout
		var best *member
		tie := false
		for _, m := range r.members {
			switch {
			case !m.alive():
			case best == nil || m.hp > best.hp:
				best, tie = m, false
			case m.hp == best.hp:
				tie = true
			}
		}
		if !tie {
			r.winner = best
		}
		return
	}
	grace := r.srv.cfg.RejoinGrace
	seq := 0
	for _, m := range r.members {
		if m.state == stPending && now.Sub(r.created) >= grace || m.state == stAway && now.Sub(m.awaySince) >= grace {
			if seq == 0 {
				r.outSeq++
				seq = r.outSeq
			}
			r.markOut(m, stLeft, "left", "", seq)
		}
	}
	if seq != 0 {
		r.evaluate()
	}
}

type statePlayer struct {
	UUID     string  `json:"uuid"`
	Username string  `json:"username"`
	Photo    string  `json:"photo"`
	HP       int     `json:"hp"`
	X        float64 `json:"x"`
	Y        float64 `json:"y"`
	Status   string  `json:"status"`
}

// stateMsg is the room's current state, as sent to m on (re)join.
func (r *room) stateMsg(m *member, rejoin bool, now time.Time) []byte {
	msg := struct {
		Type          string        `json:"type"`
		Room          string        `json:"room"`
		You           string        `json:"you"`
		Rejoin        bool          `json:"rejoin"`
		EndsAt        int64         `json:"ends_at"`
		RejoinGraceMS int64         `json:"rejoin_grace_ms"`
		Damage        int           `json:"attack_damage"`
		CooldownMS    int64         `json:"attack_cooldown_ms"`
		Players       []statePlayer `json:"players"`
	}{
		Type: "state", Room: r.id, You: m.uuid, Rejoin: rejoin, EndsAt: r.deadline.UnixMilli(),
		RejoinGraceMS: r.srv.cfg.RejoinGrace.Milliseconds(), Damage: r.srv.cfg.AttackDamage,
		CooldownMS: max(0, r.srv.cfg.AttackCooldown.Milliseconds()),
	}
	for _, o := range r.members {
		msg.Players = append(msg.Players, statePlayer{o.uuid, o.name, o.photo, o.hp, o.x, o.y, stateNames[o.state]})
	}
	b, _ := json.Marshal(msg)
	return b
}

// markPlaying moves the room record from assigned to playing (best effort).
func (r *room) markPlaying() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	errSkip := errors.New("skip")
	_, err := records.UpdateRoom(ctx, r.srv.store, r.id, func(rr *records.Room) error {
		if rr.State != records.RoomAssigned && rr.State != "" {
			return errSkip
		}
		rr.State = records.RoomPlaying
		return nil
	})
	if err != nil && !errors.Is(err, errSkip) && !errors.Is(err, store.ErrNotFound) {
		r.srv.log.Warn("room record: mark playing", "room", r.id, "err", err)
	}
}

// ResultPlayer is one member's line in a result, best placed first.
type ResultPlayer struct {
	UUID     string `json:"uuid"`
	Username string `json:"username"`
	OldScore int    `json:"old_score"`
	NewScore int    `json:"new_score"`
	HP       int    `json:"hp"`
	Place    int    `json:"place"` // 1 is best; equal places drew
}

// Result is the {"type":"result"} message sent when a room ends.
type Result struct {
	Type    string         `json:"type"` // "result"
	Room    string         `json:"room"`
	Winner  string         `json:"winner"` // uuid, or "" when none
	Reason  string         `json:"reason"`
	Players []ResultPlayer `json:"players"`
}

// placement orders members best first and returns their ranks (0 best;
// equal ranks drew): alive before out, among alive more hp first (a
// timeout), among the out the later out first.
func (r *room) placement() ([]*member, []int) {
	order := append([]*member(nil), r.members...)
	better := func(a, b *member) bool {
		if a.alive() != b.alive() {
			return a.alive()
		}
		if a.alive() {
			return a.hp > b.hp
		}
		return a.outSeq > b.outSeq
	}
	sort.SliceStable(order, func(i, j int) bool { return better(order[i], order[j]) })
	ranks := make([]int, len(order))
	for i := 1; i < len(order); i++ {
		if better(order[i-1], order[i]) {
			ranks[i] = i
		} else {
			ranks[i] = ranks[i-1]
		}
	}
	return order, ranks
}

func (m *member) baseScore() int {
	if m.score > 0 {
		return m.score
	}
	return records.DefaultRating
}

// finish rates the players, records the result, tells everyone, closes the
// sockets and reports del.
func (r *room) finish(now time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st := r.srv.store
	order, ranks := r.placement()
	res := Result{Type: "result", Room: r.id, Reason: r.reason}
	if r.winner != nil {
		res.Winner = r.winner.uuid
	}
	olds := make([]int, len(order))
	for i, m := range order {
		olds[i] = m.baseScore()
		if r.reason == ReasonNoShow {
			continue
		}
		p, _, err := records.GetPlayer(ctx, st, m.uuid)
		switch {
		case err == nil:
			olds[i] = p.Rating
		case !errors.Is(err, store.ErrNotFound):
			r.srv.log.Warn("result: read rating", "room", r.id, "player", m.uuid, "err", err)
		}
	}
	deltas := make([]int, len(order))
	if r.reason != ReasonNoShow {
		deltas = EloDeltas(olds, ranks, EloK)
	}
	for i, m := range order {
		rp := ResultPlayer{UUID: m.uuid, Username: m.name, OldScore: olds[i], NewScore: olds[i] + deltas[i], HP: m.hp, Place: ranks[i] + 1}
		if r.reason != ReasonNoShow {
			won := r.winner == m
			p, err := records.UpdatePlayer(ctx, st, m.uuid, func(p *records.Player) {
				if p.Updated == 0 { // a fresh record: start from the score the room was formed with
					p.Rating, p.Bot = olds[i], m.bot
				}
				if p.Username == "" {
					p.Username, p.Photo = m.name, m.photo
				}
				p.Rating = max(0, p.Rating+deltas[i])
				p.Games++
				if won {
					p.Wins++
				}
			})
			if err != nil {
				r.srv.log.Error("result: update rating", "room", r.id, "player", m.uuid, "err", err)
			} else {
				rp.NewScore, rp.OldScore = p.Rating, p.Rating-deltas[i]
			}
		}
		res.Players = append(res.Players, rp)
	}
	r.saveRecord(ctx, records.RoomEnded, res, now)

	b, _ := json.Marshal(res)
	for _, c := range r.takeConns() {
		_ = c.Send(b)
		c.Close(wsconn.CloseNormal, "room over")
	}
	r.srv.roomEnded(r, now)
	r.srv.met.ended.WithLabelValues(r.reason).Inc()
	if err := r.srv.rep.Del(ctx, r.id); err != nil {
		r.srv.log.Warn("report del", "room", r.id, "err", err)
	}
	r.srv.log.Info("room ended", "room", r.id, "reason", r.reason, "winner", res.Winner)
}

// shutdown ends the room because the server is stopping: members are told
// (server_shutdown, naming the room), ratings stay, the record is failed.
func (r *room) shutdown() {
	now := time.Now()
	msg := errorMsg(CodeServerShutdown, "the fight server is stopping; room "+r.id+" is over")
	for _, c := range r.takeConns() {
		_ = c.Send(msg)
		c.Close(wsconn.CloseGoingAway, CodeServerShutdown)
	}
	r.reason = ReasonShutdown
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	order, ranks := r.placement()
	res := Result{Type: "result", Room: r.id, Reason: r.reason}
	for i, m := range order {
		res.Players = append(res.Players, ResultPlayer{UUID: m.uuid, Username: m.name, OldScore: m.baseScore(), NewScore: m.baseScore(), HP: m.hp, Place: ranks[i] + 1})
	}
	r.saveRecord(ctx, records.RoomFailed, res, now)
	r.srv.roomEnded(r, now)
	r.srv.met.ended.WithLabelValues(r.reason).Inc()
}

// saveRecord writes the room record's end (creating the record if the
// dispatcher's is gone).
func (r *room) saveRecord(ctx context.Context, state string, res Result, now time.Time) {
	scores := make(map[string]int, len(res.Players))
	for _, p := range res.Players {
		scores[p.UUID] = p.NewScore
	}
	apply := func(rr *records.Room) error {
		rr.State, rr.Ended, rr.Winner, rr.Reason = state, now.Unix(), res.Winner, res.Reason
		have := make(map[string]bool, len(rr.Players))
		for i := range rr.Players {
			p := &rr.Players[i]
			have[p.UUID] = true
			if m := r.byUUID[p.UUID]; m != nil {
				p.HP, p.X, p.Y, p.Score = m.hp, m.x, m.y, scores[p.UUID]
			}
		}
		for _, m := range r.members {
			if !have[m.uuid] {
				rr.Players = append(rr.Players, records.RoomPlayer{UUID: m.uuid, Username: m.name, Photo: m.photo, Score: scores[m.uuid], HP: m.hp, X: m.x, Y: m.y, Bot: m.bot})
			}
		}
		return nil
	}
	_, err := records.UpdateRoom(ctx, r.srv.store, r.id, apply)
	if errors.Is(err, store.ErrNotFound) {
		rr := records.Room{ID: r.id, Mode: r.mode, Created: r.created.Unix()}
		_ = apply(&rr)
		err = records.PutRoom(ctx, r.srv.store, rr)
	}
	if err != nil {
		r.srv.log.Warn("room record: save end", "room", r.id, "err", err)
	}
}
