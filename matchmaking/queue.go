// Package matchmaking is arena's matchmaker: players' queue entries and
// parties, the pools the pure matcher (package matcher) forms rooms from,
// and the hand-off of formed rooms to whoever places them. One goroutine
// (Matchmaker.Run) owns all of its state; callers talk to it through its
// mailbox. It knows nothing of sockets or HTTP: the dispatcher delivers its
// messages (Notifier) and places its rooms (Handoff).
package matchmaking

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/arena-game/arena/internal/ids"
	"github.com/arena-game/arena/internal/mailbox"
	"github.com/arena-game/arena/matchmaking/matcher"
)

// Queue errors, mapped to error codes at the edge (see errorCode).
var (
	ErrAlreadyQueued = errors.New("already queued")
	ErrInRoom        = errors.New("already in a room")
	ErrNotQueued     = errors.New("not queued")
	ErrBadParty      = errors.New("bad party")
	ErrPartyTooLarge = errors.New("party larger than a room")
	ErrBadMode       = errors.New("bad mode")
	ErrQueueStopped  = errors.New("matchmaking stopped")
	// ErrBusy: the matchmaker's mailbox is full; the request was refused
	// (try again).
	ErrBusy = errors.New("matchmaking busy")
)

// Sources of a queue entry.
const (
	SourcePlay    = "play"    // the player queued on /v1/play
	SourceBackend = "backend" // a trusted backend enqueued it (POST /v1/tickets, gRPC AddPlayer)
)

// Player is what the room needs to know of a player.
type Player struct {
	UUID     string `json:"uuid"`
	Username string `json:"username"`
	Photo    string `json:"photo"`
	Score    int    `json:"score"`
	Bot      bool   `json:"bot,omitempty"`
}

// Enqueue asks the matchmaker to queue one player.
type Enqueue struct {
	Player  Player
	Mode    string
	Party   []string // member uuids, including the player; empty: solo
	Source  string
	Channel string // backend routing tag (the seed's channel_name)
	// Session identifies the /v1/play socket that queued (0: none); closing
	// that socket leaves the queue.
	Session uint64
}

// QueueStatus is a player's state as the matchmaker sees it.
type QueueStatus struct {
	State   string    `json:"state"` // none, party_pending, queued, matching, in_room
	Mode    string    `json:"mode,omitempty"`
	Room    string    `json:"room,omitempty"`
	Since   time.Time `json:"since,omitempty"`
	Pending []string  `json:"party_pending,omitempty"`
}

// Queue states.
const (
	StateNone         = "none"
	StatePartyPending = "party_pending"
	StateQueued       = "queued"
	StateMatching     = "matching"
	StateInRoom       = "in_room"
)

// Notifier delivers matchmaking messages to players.
type Notifier interface {
	// Notify sends msg to the player's /v1/play socket, if any.
	Notify(uuid string, msg any)
}

// Handoff places one formed room on a fight server and returns the match
// message for each member (by uuid).
type Handoff func(ctx context.Context, room FormedRoom) (map[string]MatchMsg, error)

// FormedRoom is a room the matcher formed.
type FormedRoom struct {
	ID      string
	Mode    string
	Players []Player
	Spread  int
}

// MatchMsg is the "match" message pushed to one player.
type MatchMsg struct {
	Type    string   `json:"type"` // "match"
	Room    string   `json:"room"`
	Fight   string   `json:"fight"`
	Ticket  string   `json:"ticket"`
	Players []Player `json:"players"`
	Mode    string   `json:"mode,omitempty"`
	Channel string   `json:"channel_name,omitempty"`
	UUID    string   `json:"uuid,omitempty"`
}

// Config configures matchmaking (docs/matchmaking.md).
type Config struct {
	RoomSize        int
	WindowPerSecond float64
	WindowBase      float64
	Tick            time.Duration
	// Tighten enables the matcher's opt-in optimiser (docs/matchmaking.md).
	Tighten bool
}

// Mailbox capacities and the policy of each when full.
const (
	// requestCap bounds callers' requests waiting for the matchmaker
	// (Enqueue, Cancel, Status, ...). Full: the request fails with ErrBusy.
	// A room's hand-off result is posted through a reservation taken when
	// the room was formed, so it always fits: the inbox holds at most
	// requestCap plus the rooms being placed.
	requestCap = 4096
	// eventCap bounds fleet events (room ended, process gone) waiting.
	// Full: the event is dropped and counted; RoomLife frees the players.
	eventCap = 1 << 16
)

// Matchmaker owns the queue: pools per mode, every player's state, parties
// being assembled and rooms in play. One goroutine (Run) owns all of it;
// everyone else posts to its mailboxes (internal/mailbox), which never
// block a poster: a request that finds the inbox full is refused with
// ErrBusy, a fleet event that finds its mailbox full is dropped and
// counted, and a room's hand-off result always fits (a reservation).
type Matchmaker struct {
	cfg     Config
	mcfg    matcher.Config
	log     *slog.Logger
	notify  Notifier
	handoff Handoff
	// OnMatch is called (off the matchmaker goroutine) for every player
	// matched, with its match message; the dispatcher records assignments.
	OnMatch func(e Enqueue, m MatchMsg)
	// RoomLife bounds how long a player counts as in a room without hearing
	// the room end (a safety net: the fight server normally reports it).
	RoomLife time.Duration

	inbox  *mailbox.Mailbox[func()]
	events *mailbox.Mailbox[func()]

	// Owned by the Run goroutine:
	pools    map[string]*matcher.Pool
	players  map[string]*qentry
	parties  map[string]*party // by party key
	rooms    map[string]*roomState
	stats    *statsRecorder

	snapshot atomic.Pointer[QueueStats]
	handoffs sync.WaitGroup
	sem      chan struct{}
}

type qentry struct {
	e        Enqueue
	state    string
	since    time.Time
	ticketID string // matcher ticket id (the uuid, or the party key)
	room     string
	until    time.Time // in_room: when the state lapses
}

type party struct {
	key     string
	members []string
	joined  map[string]bool
	mode    string
}

type roomState struct {
	id      string
	members []string
}

// NewMatchmaker returns a matchmaker; call Run.
func NewMatchmaker(cfg Config, notify Notifier, handoff Handoff, log *slog.Logger) (*Matchmaker, error) {
	if cfg.RoomSize == 0 {
		cfg.RoomSize = 3
	}
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	mcfg := matcher.Config{RoomSize: cfg.RoomSize, WindowBase: cfg.WindowBase, WindowPerSecond: cfg.WindowPerSecond, Tighten: cfg.Tighten}
	if err := mcfg.Validate(); err != nil {
		return nil, fmt.Errorf("new matchmaker: %w", err)
	}
	return &Matchmaker{
		cfg: cfg, mcfg: mcfg, log: log, notify: notify, handoff: handoff,
		RoomLife: 15 * time.Minute,
		inbox:    mailbox.New[func()](requestCap, mailbox.Reject),
		events:   mailbox.New[func()](eventCap, mailbox.Reject),
		pools:    map[string]*matcher.Pool{}, players: map[string]*qentry{},
		parties: map[string]*party{}, rooms: map[string]*roomState{},
		stats: newStatsRecorder(), sem: make(chan struct{}, 64),
	}, nil
}

// RegisterMetrics exports the matchmaker's Prometheus metrics on reg.
func (m *Matchmaker) RegisterMetrics(reg prometheus.Registerer) { m.stats.register(reg) }

// Run owns the matchmaker's state until ctx is done.
func (m *Matchmaker) Run(ctx context.Context) {
	t := time.NewTicker(m.cfg.Tick)
	defer t.Stop()
	m.publishStats(time.Now())
	var buf []func()
	drain := func(mb *mailbox.Mailbox[func()]) {
		buf = mb.Take(buf)
		for _, f := range buf {
			f()
		}
		clear(buf)
	}
	for {
		select {
		case <-ctx.Done():
			m.inbox.Close()
			m.events.Close()
			m.handoffs.Wait()
			return
		case <-m.events.Ready():
			drain(m.events)
		case <-m.inbox.Ready():
			drain(m.inbox)
		case now := <-t.C:
			m.tick(ctx, now)
		}
	}
}

// do runs f on the matchmaker goroutine and waits for it. A full mailbox
// refuses it with ErrBusy.
func (m *Matchmaker) do(ctx context.Context, f func()) error {
	done := make(chan struct{})
	switch err := m.inbox.Post(func() { f(); close(done) }); {
	case errors.Is(err, mailbox.ErrClosed):
		return ErrQueueStopped
	case err != nil:
		m.stats.refused()
		return fmt.Errorf("matchmaker: %w", ErrBusy)
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// event runs f on the matchmaker goroutine without waiting; a full events
// lane drops it (counted in arena_mm_events_dropped_total).
func (m *Matchmaker) event(f func()) {
	if errors.Is(m.events.Post(f), mailbox.ErrFull) {
		m.stats.dropped()
		m.log.Warn("matchmaker event dropped: events lane full")
	}
}

// ValidMode reports whether mode is a legal mode name ("" means "default").
func ValidMode(mode string) bool {
	if len(mode) > 32 {
		return false
	}
	for i := 0; i < len(mode); i++ {
		c := mode[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Enqueue queues a player (or, for a party, registers its consent; the
// party's ticket enters the pool once every member has queued with the
// same member list). It returns the player's status. A player already
// queued or in a room gets ErrAlreadyQueued or ErrInRoom and its state is
// unchanged.
func (m *Matchmaker) Enqueue(ctx context.Context, e Enqueue) (QueueStatus, error) {
	if e.Mode == "" {
		e.Mode = "default"
	}
	if !ValidMode(e.Mode) {
		return QueueStatus{}, fmt.Errorf("enqueue: %w", ErrBadMode)
	}
	members, err := normaliseParty(e.Player.UUID, e.Party, m.cfg.RoomSize)
	if err != nil {
		return QueueStatus{}, fmt.Errorf("enqueue: %w", err)
	}
	e.Party = members
	var st QueueStatus
	var qerr error
	err = m.do(ctx, func() { st, qerr = m.enqueue(e, time.Now()) })
	if err != nil {
		return QueueStatus{}, err
	}
	return st, qerr
}

func normaliseParty(self string, party []string, roomSize int) ([]string, error) {
	if len(party) == 0 {
		return nil, nil
	}
	seen := map[string]bool{self: true}
	out := []string{self}
	for _, u := range party {
		if !ids.Valid(u) {
			return nil, fmt.Errorf("%w: member %q is not a uuid", ErrBadParty, u)
		}
		if !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	if len(out) > roomSize {
		return nil, ErrPartyTooLarge
	}
	if len(out) == 1 {
		return nil, nil
	}
	sort.Strings(out)
	return out, nil
}

func (m *Matchmaker) enqueue(e Enqueue, now time.Time) (QueueStatus, error) {
	id := e.Player.UUID
	if q := m.players[id]; q != nil {
		switch q.state {
		case StateInRoom:
			if now.Before(q.until) {
				return m.status(q), fmt.Errorf("enqueue: %w (room %s)", ErrInRoom, q.room)
			}
		default:
			return m.status(q), fmt.Errorf("enqueue: %w", ErrAlreadyQueued)
		}
	}
	q := &qentry{e: e, since: now}
	m.players[id] = q
	if len(e.Party) == 0 {
		q.ticketID = id
		if err := m.pool(e.Mode).Add(matcher.Ticket{ID: id, Rating: e.Player.Score, Members: 1, Enqueued: now, Payload: []string{id}}); err != nil {
			delete(m.players, id)
			return QueueStatus{}, fmt.Errorf("enqueue: %w", err)
		}
		q.state = StateQueued
		m.publishStats(now)
		return m.status(q), nil
	}
	key := strings.Join(e.Party, ",")
	p := m.parties[key]
	if p == nil {
		p = &party{key: key, members: e.Party, joined: map[string]bool{}, mode: e.Mode}
		m.parties[key] = p
	}
	if p.mode != e.Mode {
		delete(m.players, id)
		return QueueStatus{}, fmt.Errorf("enqueue: %w: party members chose different modes", ErrBadParty)
	}
	p.joined[id] = true
	q.ticketID = key
	q.state = StatePartyPending
	var pending []string
	for _, u := range p.members {
		if !p.joined[u] {
			pending = append(pending, u)
		}
	}
	if len(pending) > 0 {
		st := m.status(q)
		st.Pending = pending
		for u := range p.joined {
			if u != id {
				m.notify.Notify(u, map[string]any{"type": "party", "party": p.members, "party_pending": pending})
			}
		}
		return st, nil
	}
	// Every member consented: the party enters the pool as one ticket.
	ratings := make([]int, 0, len(p.members))
	earliest := now
	for _, u := range p.members {
		pq := m.players[u]
		ratings = append(ratings, pq.e.Player.Score)
		if pq.since.Before(earliest) {
			earliest = pq.since
		}
	}
	if err := m.pool(e.Mode).Add(matcher.Ticket{ID: key, Rating: matcher.PartyRating(ratings...), Members: len(p.members), Enqueued: earliest, Payload: p.members}); err != nil {
		return QueueStatus{}, fmt.Errorf("enqueue party: %w", err)
	}
	for _, u := range p.members {
		m.players[u].state = StateQueued
		if u != id {
			m.notify.Notify(u, map[string]any{"type": "queued", "mode": e.Mode, "party": p.members})
		}
	}
	m.publishStats(now)
	return m.status(q), nil
}

func (m *Matchmaker) pool(mode string) *matcher.Pool {
	p := m.pools[mode]
	if p == nil {
		p = matcher.NewPool(m.mcfg)
		m.pools[mode] = p
	}
	return p
}

func (m *Matchmaker) status(q *qentry) QueueStatus {
	return QueueStatus{State: q.state, Mode: q.e.Mode, Room: q.room, Since: q.since}
}

// Takeover makes session the owner of uuid's queue entry if the player
// queued it on /v1/play: a player's entry belongs to the player, and the
// socket that replaced the one that queued carries it from then on (its
// close cancels the entry; the replaced socket's close does not). An entry
// a backend made is not touched.
func (m *Matchmaker) Takeover(ctx context.Context, uuid string, session uint64) error {
	return m.do(ctx, func() {
		if q := m.players[uuid]; q != nil && q.e.Source == SourcePlay {
			q.e.Session = session
		}
	})
}

// Cancel takes uuid out of the queue (a party ticket is dissolved; the
// other members go back to waiting for the party). session, when not 0,
// cancels only an entry owned by that /v1/play socket (see Takeover; a
// closed socket does not cancel a backend's ticket). ErrNotQueued if there
// is nothing to cancel.
func (m *Matchmaker) Cancel(ctx context.Context, uuid string, session uint64) error {
	var cerr error
	if err := m.do(ctx, func() { cerr = m.cancel(uuid, session) }); err != nil {
		return err
	}
	return cerr
}

func (m *Matchmaker) cancel(uuid string, session uint64) error {
	q := m.players[uuid]
	if q == nil || (session != 0 && q.e.Session != session) {
		return fmt.Errorf("cancel: %w", ErrNotQueued)
	}
	switch q.state {
	case StateInRoom:
		return fmt.Errorf("cancel: %w (room %s)", ErrInRoom, q.room)
	case StateMatching:
		return fmt.Errorf("cancel: %w: a room is being formed", ErrInRoom)
	}
	delete(m.players, uuid)
	if len(q.e.Party) == 0 {
		m.pool(q.e.Mode).Remove(uuid)
	} else if p := m.parties[q.ticketID]; p != nil {
		delete(p.joined, uuid)
		if m.pool(q.e.Mode).Remove(p.key) {
			// The ticket was in the pool: the others wait for the party again.
			for u := range p.joined {
				if pq := m.players[u]; pq != nil {
					pq.state = StatePartyPending
				}
			}
		}
		for u := range p.joined {
			m.notify.Notify(u, map[string]any{"type": "party", "party": p.members, "party_pending": []string{uuid}, "message": "a member left the queue"})
		}
		if len(p.joined) == 0 {
			delete(m.parties, p.key)
		}
	}
	m.publishStats(time.Now())
	return nil
}

// Status returns uuid's queue state.
func (m *Matchmaker) Status(ctx context.Context, uuid string) QueueStatus {
	st := QueueStatus{State: StateNone}
	_ = m.do(ctx, func() {
		if q := m.players[uuid]; q != nil {
			if q.state == StateInRoom && time.Now().After(q.until) {
				return
			}
			st = m.status(q)
		}
	})
	return st
}

// RoomEnded clears the in-room state of a room's members (the fight server
// reported the room's end with del).
func (m *Matchmaker) RoomEnded(room string) {
	m.event(func() {
		rs := m.rooms[room]
		if rs == nil {
			return
		}
		delete(m.rooms, room)
		for _, u := range rs.members {
			if q := m.players[u]; q != nil && q.room == room {
				delete(m.players, u)
			}
		}
	})
}

// ProcessGone fails every room hosted by a fight process that died: its
// members are told (an error naming the room) and may queue again.
func (m *Matchmaker) ProcessGone(port int, units []string, onFailed func(room string, members []string)) {
	m.event(func() {
		for _, room := range units {
			rs := m.rooms[room]
			if rs == nil {
				continue
			}
			delete(m.rooms, room)
			for _, u := range rs.members {
				if q := m.players[u]; q != nil && q.room == room {
					delete(m.players, u)
				}
				m.notify.Notify(u, map[string]any{
					"type": "error", "code": "room_failed", "room": room,
					"message": fmt.Sprintf("the fight server of room %s stopped; queue again", room),
				})
			}
			if onFailed != nil {
				go onFailed(room, rs.members)
			}
		}
	})
}

// tick forms rooms in every pool and starts their handoffs.
func (m *Matchmaker) tick(ctx context.Context, now time.Time) {
	for u, q := range m.players {
		if q.state == StateInRoom && now.After(q.until) {
			delete(m.players, u)
		}
	}
	for mode, pool := range m.pools {
		if pool.Len() == 0 {
			continue
		}
		start := time.Now()
		rooms := pool.Tick(now)
		m.stats.tickSeconds(time.Since(start))
		for _, r := range rooms {
			m.startHandoff(ctx, mode, r, now)
		}
	}
	m.publishStats(now)
}

func (m *Matchmaker) startHandoff(ctx context.Context, mode string, r matcher.Room, now time.Time) {
	fr := FormedRoom{Mode: mode, Spread: r.Spread}
	var entries []Enqueue
	for _, t := range r.Tickets {
		for _, u := range t.Payload.([]string) {
			q := m.players[u]
			if q == nil {
				continue
			}
			q.state = StateMatching
			entries = append(entries, q.e)
			fr.Players = append(fr.Players, q.e.Player)
			m.stats.matched(now.Sub(q.since))
		}
		if p := m.parties[t.ID]; p != nil {
			delete(m.parties, t.ID)
		}
	}
	m.stats.room(r.Spread, now)
	done := m.inbox.Reserve()
	m.handoffs.Add(1)
	go func() {
		defer m.handoffs.Done()
		m.sem <- struct{}{}
		hctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		msgs, err := m.handoff(hctx, fr)
		cancel()
		<-m.sem
		_ = done.Post(func() { m.handoffDone(fr, entries, msgs, err, r) })
		if err == nil {
			for _, e := range entries {
				msg := msgs[e.Player.UUID]
				msg.Channel, msg.UUID = e.Channel, e.Player.UUID
				m.notify.Notify(e.Player.UUID, msg)
				if m.OnMatch != nil {
					m.OnMatch(e, msg)
				}
			}
		}
	}()
}

// handoffDone records a room in play, or puts its tickets back in the
// pool (keeping their waiting time) when no fight server could take it.
func (m *Matchmaker) handoffDone(fr FormedRoom, entries []Enqueue, msgs map[string]MatchMsg, err error, r matcher.Room) {
	now := time.Now()
	if err != nil {
		m.log.Error("room handoff failed; players go back to the queue", "err", err, "players", len(entries))
		for _, t := range r.Tickets {
			for _, u := range t.Payload.([]string) {
				if q := m.players[u]; q != nil {
					q.state = StateQueued
					m.notify.Notify(u, map[string]any{"type": "error", "code": "no_capacity", "message": "no fight server could take the room; still queued"})
				}
			}
			_ = m.pool(fr.Mode).Add(t)
		}
		return
	}
	var room string
	for _, msg := range msgs {
		room = msg.Room
		break
	}
	rs := &roomState{id: room}
	for _, e := range entries {
		q := m.players[e.Player.UUID]
		if q == nil {
			continue
		}
		q.state = StateInRoom
		q.room = room
		q.until = now.Add(m.RoomLife)
		rs.members = append(rs.members, e.Player.UUID)
	}
	m.rooms[room] = rs
}

// Stats returns the latest queue statistics.
func (m *Matchmaker) Stats() QueueStats {
	if s := m.snapshot.Load(); s != nil {
		return *s
	}
	return QueueStats{}
}

func (m *Matchmaker) publishStats(now time.Time) {
	qs := QueueStats{Queues: map[string]int{}, InRoom: 0}
	for mode, p := range m.pools {
		qs.Queues[mode] = p.Players()
	}
	for _, q := range m.players {
		switch q.state {
		case StateInRoom, StateMatching:
			qs.InRoom++
		case StatePartyPending:
			qs.PartyPending++
		}
	}
	qs.Rooms = len(m.rooms)
	m.stats.fill(&qs, now)
	m.snapshot.Store(&qs)
}
