// Package matchmaking is arena's matchmaker: tickets with search fields,
// the profiles that say who may meet whom (pools of filters, rosters, a
// match function and its parameters), the evaluator that settles
// proposals sharing a ticket, and the hand-off of formed rooms to whoever
// places them. One goroutine (Matchmaker.Run) owns all of its state;
// callers talk to it through its mailbox. It knows nothing of sockets or
// HTTP: the dispatcher delivers its messages (Notifier) and places its
// rooms (Handoff). The pure grouping algorithm is package matcher.
package matchmaking

import (
	"container/heap"
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
	"github.com/arena-game/arena/playerdb"
)

// Queue errors, mapped to error codes at the edge.
var (
	ErrAlreadyQueued = errors.New("already queued")
	ErrInRoom        = errors.New("already in a room")
	ErrNotQueued     = errors.New("not queued")
	ErrBadParty      = errors.New("bad party")
	ErrPartyTooLarge = errors.New("party larger than a room")
	ErrQueueStopped  = errors.New("matchmaking stopped")
	// ErrBusy: the matchmaker's mailbox is full; the request was refused
	// (try again).
	ErrBusy = errors.New("matchmaking busy")
	// ErrFieldNotAllowed: a player set a search field its profile keeps
	// for backends.
	ErrFieldNotAllowed = errors.New("search field not allowed")
)

// Sources of a queue entry.
const (
	SourcePlay    = "play"    // the player queued on /v1/play
	SourceBackend = "backend" // a trusted backend enqueued it (POST /v1/tickets, gRPC, Thrift)
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
	// Player, Source and Channel come first: what a formed room's
	// hand-off reads of each player, in two adjacent cache lines.
	Player  Player
	Source  string
	Channel string // backend routing tag (the seed's channel_name)
	// Profile names the profile ("" = the default profile).
	Profile string
	// Party lists member uuids, including the player; empty: solo.
	Party []string
	// Search are the ticket's search fields (a party's ticket takes its
	// members' union, the first member's value winning a clash).
	Search SearchFields
	// Session identifies the /v1/play socket that owns the entry (0:
	// none); its close leaves the queue (see Takeover).
	Session uint64
	// Created is when the ticket was made (zero: now); a ticket restored
	// after a restart keeps its own. Expires is when it lapses (zero:
	// Created plus the profile's TTL).
	Created time.Time
	Expires time.Time
}

// QueueStatus is a player's state as the matchmaker sees it.
type QueueStatus struct {
	State   string    `json:"state"` // none, party_pending, queued, matching, in_room
	Profile string    `json:"profile,omitempty"`
	Mode    string    `json:"mode,omitempty"` // the profile, under its old name
	Room    string    `json:"room,omitempty"`
	Since   time.Time `json:"since,omitzero"`
	Expires time.Time `json:"expires,omitzero"`
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

// qstate is a queue entry's state (stateNames: its name in QueueStatus).
type qstate uint8

const (
	qNone qstate = iota
	qPartyPending
	qQueued
	qMatching
	qInRoom
	nStates
)

var stateNames = [nStates]string{StateNone, StatePartyPending, StateQueued, StateMatching, StateInRoom}

// Notifier delivers matchmaking messages to players.
type Notifier interface {
	// Notify sends msg to the player's /v1/play socket, if any. A match
	// message is a *MatchMsg, the player's own (it may be kept, not
	// modified); the others are JSON objects as maps. It is called from
	// several goroutines at once.
	Notify(uuid string, msg any)
}

// Handoff places one formed room on a fight server and returns the match
// message for each member (by uuid).
type Handoff func(ctx context.Context, room FormedRoom) (map[string]MatchMsg, error)

// FormedRoom is a room the matchmaker formed.
type FormedRoom struct {
	ID       string
	Profile  string
	Game     string // the profile's game ("" = fight)
	Function string
	Players  []Player
	Teams    []Team
	Spread   int
}

// Team is one roster of a formed room.
type Team struct {
	Name    string   `json:"name"`
	Players []string `json:"players"` // uuids
}

// MatchMsg is the "match" message pushed to one player.
type MatchMsg struct {
	Type    string   `json:"type"` // "match"
	Room    string   `json:"room"`
	Fight   string   `json:"fight"`
	Ticket  string   `json:"ticket"`
	Players []Player `json:"players"`
	Teams   []Team   `json:"teams,omitempty"`
	Profile string   `json:"profile,omitempty"`
	Mode    string   `json:"mode,omitempty"` // the profile, under its old name
	Channel string   `json:"channel_name,omitempty"`
	UUID    string   `json:"uuid,omitempty"`
	// Connection is where a director's game server takes the players
	// (director mode; Fight holds the same).
	Connection string `json:"connection,omitempty"`
}

// Expired is told to a ticket's owner when it lapses unmatched.
type Expired struct {
	Type    string `json:"type"` // "expired"
	Profile string `json:"profile"`
	UUID    string `json:"uuid"`
	Channel string `json:"channel_name,omitempty"`
}

// Config configures matchmaking (docs/matchmaking.md).
type Config struct {
	// Profiles are the profiles tickets may name (validated). None: one
	// default profile from RoomSize, WindowBase, WindowPerSecond, Tighten.
	Profiles        Profiles
	RoomSize        int
	WindowPerSecond float64
	WindowBase      float64
	Tighten         bool
	// TicketTTL is how long a ticket waits (a profile may say otherwise;
	// default 10m).
	TicketTTL time.Duration
	Tick      time.Duration
	// Functions are match functions besides the built-in ones (plugins),
	// by name. They are called off the matchmaker's goroutine, each with
	// FunctionTimeout (default: the tick).
	Functions       map[string]Function
	FunctionTimeout time.Duration
	// Backfill adds players to running rooms (nil: no backfill).
	Backfill Backfill
	// LookupRoom describes a running room this matchmaker did not form
	// (an earlier dispatcher did, before a restart) when the room asks
	// for backfill: its profile and players. nil: such rooms are not
	// backfilled. See WantBackfill.
	LookupRoom func(ctx context.Context, room string) (FormedRoom, error)
}

// Mailbox capacities and the policy of each when full.
const (
	// requestCap bounds callers' requests waiting for the matchmaker
	// (Enqueue, Cancel, Status, ...). Full: the request fails with ErrBusy.
	// A room's hand-off result and a plugin function's answer are posted
	// through reservations taken when the room was formed or the call
	// made, so they always fit: the inbox holds at most requestCap plus
	// the rooms being placed plus the profiles.
	requestCap = 4096
	// eventCap bounds fleet events (room ended, process gone) waiting.
	// Full: the event is dropped and counted; RoomLife frees the players.
	eventCap = 1 << 16
)

// Matchmaker owns the queue: profiles and their pools, every player's
// state, parties being assembled and rooms in play. One goroutine (Run)
// owns all of it; everyone else posts to its mailboxes (internal/mailbox),
// which never block a poster: a request that finds the inbox full is
// refused with ErrBusy, a fleet event that finds its mailbox full is
// dropped and counted, and a room's hand-off result always fits (a
// reservation).
// Matched is one matched player's match message, and whether its ticket
// came from a backend (its assignment is journaled for the backend-wide
// stream).
type Matched struct {
	Msg     MatchMsg
	Backend bool
}

type Matchmaker struct {
	cfg      Config
	log      *slog.Logger
	notify   Notifier
	handoff  Handoff
	backfill Backfill
	// OnMatch is called (off the matchmaker goroutine, from several
	// goroutines at once) with players matched, each with its match
	// message, after every one of them was told: a hand-off goroutine's
	// placed rooms (up to about recordChunk players, room after room),
	// or a backfill's players. The dispatcher records their assignments.
	OnMatch func(batch []Matched)
	// OnExpire is called (off the matchmaker goroutine) for every player
	// whose ticket expired or was dropped by a profile reload.
	OnExpire func(e Enqueue, m Expired)
	// RoomLife bounds how long a player counts as in a room without hearing
	// the room end (a safety net: the fight server normally reports it).
	RoomLife time.Duration

	inbox  *mailbox.Mailbox[func()]
	events *mailbox.Mailbox[func()]

	// Owned by the Run goroutine:
	profiles map[string]*profileState
	order    []*profileState    // file order
	tickets  map[string]*ticket // by id; may hold dropped tickets until swept
	retired  []*ticket          // dropped, their ids not yet swept from tickets
	waiting  int                // tickets waiting
	expiry   expiryHeap
	serial   uint64                          // evaluations so far (marks tickets taken)
	view     atomic.Pointer[[]*profileState] // the profiles, for Stats
	players  map[string]*qentry
	states   [nStates]int      // players by state (for Stats, without a scan)
	lapse    []*qentry         // players put in a room, in order: RoomLife's safety net
	parties  map[string]*party // by party key
	rooms    map[string]*roomState
	// endedEarly holds rooms whose end arrived before their hand-off was
	// recorded (the events lane overtook the inbox): handoffDone frees
	// their players at once instead of keeping them in_room.
	endedEarly map[string]time.Time
	// lookedUp holds unknown rooms that asked for backfill and were
	// looked up (LookupRoom) in the last minute: one lookup per room a
	// minute, whatever a process sends.
	lookedUp map[string]time.Time
	pending  *pendingTick // a tick waiting for plugin functions
	stats    *statsRecorder
	scratch  []*ticket
	// seedTick's buffers, reused from tick to tick: the pools' rooms and
	// their tickets, and the most tickets a profile's pools matched in
	// this tick.
	seedRooms []poolRooms
	roomBuf   []matcher.Room
	ticketBuf []matcher.Ticket
	bufUsed   int
	// fields gives tickets with equal search fields one set.
	fields interner

	snapshot atomic.Pointer[QueueStats]
	handoffs sync.WaitGroup
	sem      chan struct{}
}

type qentry struct {
	since time.Time // (since and e's first fields: what a hand-off reads)
	e     Enqueue
	key   string  // the ticket's id: the uuid, or the party key
	t     *ticket // the ticket, once it is in the pools
	room  string
	until time.Time // in_room: when the state lapses
	// state is the entry's own state; a queued entry whose ticket a tick
	// matched is matching (stateOf) until its room's hand-off is recorded.
	// (Last, where it costs no padding.)
	state qstate
}

type party struct {
	key     string
	members []string
	joined  map[string]bool
	profile string
}

type roomState struct {
	id      string
	members []string
	// For backfill: the room's profile, players and mean rating, the most
	// players it may hold, the seats it wants filled, whether a backfill
	// is under way, and when it was formed.
	profile    string
	players    []Player
	mean       float64
	maxPlayers int
	open       int
	filling    bool
	since      time.Time
}

// NewMatchmaker returns a matchmaker; call Run.
func NewMatchmaker(cfg Config, notify Notifier, handoff Handoff, log *slog.Logger) (*Matchmaker, error) {
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	if cfg.TicketTTL <= 0 {
		cfg.TicketTTL = DefaultTicketTTL
	}
	if cfg.FunctionTimeout <= 0 {
		cfg.FunctionTimeout = cfg.Tick
	}
	if len(cfg.Profiles.Profiles) == 0 {
		cfg.Profiles = DefaultProfiles(cfg.RoomSize, cfg.WindowBase, cfg.WindowPerSecond, cfg.Tighten)
	}
	m := &Matchmaker{
		cfg: cfg, log: log, notify: notify, handoff: handoff, backfill: cfg.Backfill,
		RoomLife: 15 * time.Minute,
		inbox:    mailbox.New[func()](requestCap, mailbox.Reject),
		events:   mailbox.New[func()](eventCap, mailbox.Reject),
		tickets:  map[string]*ticket{}, players: map[string]*qentry{},
		parties: map[string]*party{}, rooms: map[string]*roomState{}, endedEarly: map[string]time.Time{}, lookedUp: map[string]time.Time{},
		stats: newStatsRecorder(), sem: make(chan struct{}, 64),
	}
	if err := m.install(cfg.Profiles, time.Now()); err != nil {
		return nil, fmt.Errorf("new matchmaker: %w", err)
	}
	return m, nil
}

// FunctionNames lists the plugin functions a profile file may name.
func (c *Config) FunctionNames() []string {
	out := make([]string, 0, len(c.Functions))
	for n := range c.Functions {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// install validates ps and makes it the matchmaker's profiles, moving
// every waiting ticket to its profile's new pools; tickets of a profile
// that is gone expire. Owned by Run (or called before it).
func (m *Matchmaker) install(ps Profiles, now time.Time) error {
	if err := ps.Validate(m.cfg.FunctionNames()); err != nil {
		return err
	}
	old := m.order
	m.profiles = make(map[string]*profileState, len(ps.Profiles))
	m.order = m.order[:0:0]
	for i := range ps.Profiles {
		p := &ps.Profiles[i]
		var fn Function
		if p.Function != FunctionSeed {
			if fn = builtinFunctions[p.Function]; fn == nil {
				fn = m.cfg.Functions[p.Function]
			}
		}
		st := newProfileState(p, i, fn)
		m.profiles[p.Name] = st
		m.order = append(m.order, st)
	}
	if len(old) > 0 {
		moving := make([]*ticket, 0, m.waiting)
		for _, t := range m.tickets {
			if t.waiting {
				moving = append(moving, t)
			}
		}
		sort.Slice(moving, func(i, j int) bool { return moving[i].created.Before(moving[j].created) })
		for _, t := range moving {
			if np := m.profiles[t.prof.p.Name]; np != nil {
				np.add(t, now)
				continue
			}
			m.expire(t, "profile_removed")
		}
	}
	m.cfg.Profiles = ps
	view := make([]*profileState, len(m.order))
	copy(view, m.order)
	m.view.Store(&view)
	return nil
}

// Reload makes ps the profiles (see install). A profile file that does
// not validate leaves the old profiles in place and returns the error.
func (m *Matchmaker) Reload(ctx context.Context, ps Profiles) error {
	var rerr error
	if err := m.do(ctx, func() { rerr = m.install(ps, time.Now()) }); err != nil {
		return err
	}
	if rerr == nil {
		m.log.Info("profiles loaded", "profiles", len(ps.Profiles))
	}
	return rerr
}

// ReloadFile reads the profile file at path and installs it (Reload). A
// file that does not parse or validate keeps the profiles in use; the
// error is logged, counted (arena_mm_profile_reloads_total{result}) and
// returned. It returns the number of profiles installed.
func (m *Matchmaker) ReloadFile(ctx context.Context, path string) (int, error) {
	ps, err := LoadProfiles(path, m.cfg.FunctionNames())
	if err == nil {
		err = m.Reload(ctx, ps)
	}
	m.stats.reloaded(err)
	if err != nil {
		m.log.Error("profiles not reloaded; the old ones stay", "file", path, "err", err)
		return 0, err
	}
	return len(ps.Profiles), nil
}

// Profiles returns the profiles in use.
func (m *Matchmaker) Profiles(ctx context.Context) (Profiles, error) {
	var ps Profiles
	err := m.do(ctx, func() { ps = m.cfg.Profiles })
	return ps, err
}

// Profile returns the named profile ("" = default), or ErrUnknownProfile.
func (m *Matchmaker) Profile(ctx context.Context, name string) (Profile, error) {
	var p Profile
	var perr error
	if name == "" {
		name = DefaultProfile
	}
	if err := m.do(ctx, func() {
		st := m.profiles[name]
		if st == nil {
			perr = fmt.Errorf("profile %q: %w", name, ErrUnknownProfile)
			return
		}
		p = *st.p
	}); err != nil {
		return Profile{}, err
	}
	return p, perr
}

// RegisterMetrics exports the matchmaker's Prometheus metrics on reg.
func (m *Matchmaker) RegisterMetrics(reg prometheus.Registerer) { m.stats.register(reg) }

// Run owns the matchmaker's state until ctx is done.
func (m *Matchmaker) Run(ctx context.Context) {
	t := time.NewTicker(m.cfg.Tick)
	defer t.Stop()
	m.publishStats(time.Now(), true)
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
			if m.pending == nil {
				m.tick(ctx, now)
			}
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

// Enqueue queues a player (or, for a party, registers its consent; the
// party's ticket enters the pools once every member has queued with the
// same member list). It returns the player's status. A player already
// queued or in a room gets ErrAlreadyQueued or ErrInRoom and its state is
// unchanged; an unknown profile gets ErrUnknownProfile, bad search fields
// ErrBadSearchFields, and a player setting a field its profile keeps for
// backends ErrFieldNotAllowed.
func (m *Matchmaker) Enqueue(ctx context.Context, e Enqueue) (QueueStatus, error) {
	if e.Profile == "" {
		e.Profile = DefaultProfile
	}
	if !playerdb.ValidProfile(e.Profile) {
		return QueueStatus{}, fmt.Errorf("enqueue: profile %q: %w", e.Profile, ErrUnknownProfile)
	}
	if err := e.Search.Validate(); err != nil {
		return QueueStatus{}, fmt.Errorf("enqueue: %w", err)
	}
	var st QueueStatus
	var qerr error
	err := m.do(ctx, func() { st, qerr = m.enqueue(e, time.Now()) })
	if err != nil {
		return QueueStatus{}, err
	}
	return st, qerr
}

func normaliseParty(self string, party []string, roomSize int) ([]string, error) {
	if len(party) == 0 {
		return nil, nil
	}
	if len(party) > 2*matcher.MaxRoomSize {
		return nil, ErrPartyTooLarge
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
	ps := m.profiles[e.Profile]
	if ps == nil {
		return QueueStatus{}, fmt.Errorf("enqueue: profile %q: %w", e.Profile, ErrUnknownProfile)
	}
	if e.Source == SourcePlay {
		if f := e.Search.Allowed(ps.p.PlayerFields); f != "" {
			return QueueStatus{}, fmt.Errorf("enqueue: %s: %w (profile %q lets players set %v)", f, ErrFieldNotAllowed, ps.p.Name, ps.p.PlayerFields)
		}
	}
	members, err := normaliseParty(e.Player.UUID, e.Party, ps.p.RoomSize())
	if err != nil {
		return QueueStatus{}, fmt.Errorf("enqueue: %w", err)
	}
	e.Party = members
	id := e.Player.UUID
	if q := m.players[id]; q != nil {
		switch m.stateOf(q) {
		case qInRoom:
			if now.Before(q.until) {
				return m.status(q), fmt.Errorf("enqueue: %w (room %s)", ErrInRoom, q.room)
			}
		case qMatching:
			// Its match message may already be out (the hand-off is
			// recorded after the players are told): as for cancel.
			return m.status(q), fmt.Errorf("enqueue: %w: a room is being formed", ErrInRoom)
		default:
			return m.status(q), fmt.Errorf("enqueue: %w", ErrAlreadyQueued)
		}
	}
	if e.Created.IsZero() || e.Created.After(now) {
		e.Created = now
	}
	if len(e.Party) == 0 {
		// A solo's entry and ticket are one allocation: a tick and the
		// hand-off that follows it find the one from the other without
		// another trip to memory.
		s := &solo{q: qentry{e: e, since: e.Created, key: id}}
		q, t := &s.q, &s.t
		s.owner[0], s.id[0] = q, id
		m.initTicket(t, ps, id, e.Player.Score, 1, e, s.id[:], m.fields.intern(&q.e.Search))
		t.owners, t.solo = s.owner[:], q
		if !t.expires.After(now) {
			return QueueStatus{}, fmt.Errorf("enqueue: ticket expired at %v: %w", t.expires, ErrNotQueued)
		}
		m.dropPlayer(id) // a lapsed in-room entry
		m.players[id] = q
		m.setState(q, qQueued)
		q.t = t
		m.addTicket(t, now)
		m.publishStats(now, false)
		return m.status(q), nil
	}
	key := strings.Join(e.Party, ",")
	p := m.parties[key]
	if p == nil {
		p = &party{key: key, members: e.Party, joined: map[string]bool{}, profile: e.Profile}
		m.parties[key] = p
	}
	if p.profile != e.Profile {
		return QueueStatus{}, fmt.Errorf("enqueue: %w: party members chose different profiles", ErrBadParty)
	}
	q := &qentry{e: e, since: e.Created}
	m.dropPlayer(id) // a lapsed in-room entry
	m.players[id] = q
	p.joined[id] = true
	q.key = key
	m.setState(q, qPartyPending)
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
	// Every member consented: the party enters the pools as one ticket.
	ratings := make([]int, 0, len(p.members))
	first := q
	search := &SearchFields{}
	for _, u := range p.members {
		pq := m.players[u]
		ratings = append(ratings, pq.e.Player.Score)
		if pq.since.Before(first.since) {
			first = pq
		}
		search = mergeSearch(search, &pq.e.Search)
	}
	t := &ticket{}
	m.initTicket(t, ps, key, matcher.PartyRating(ratings...), len(p.members), first.e, p.members, m.fields.intern(search))
	for _, u := range p.members {
		t.owners = append(t.owners, m.players[u])
	}
	m.addTicket(t, now)
	for _, u := range p.members {
		m.setState(m.players[u], qQueued)
		m.players[u].t = t
		if u != id {
			m.notify.Notify(u, map[string]any{"type": "queued", "profile": e.Profile, "mode": e.Profile, "party": p.members})
		}
	}
	m.publishStats(now, false)
	return m.status(q), nil
}

// mergeSearch adds b's fields absent from a (a copy is made when a is
// changed).
func mergeSearch(a, b *SearchFields) *SearchFields {
	out := &SearchFields{Doubles: map[string]float64{}, Strings: map[string]string{}}
	for _, s := range []*SearchFields{a, b} {
		for k, v := range s.Doubles {
			if _, ok := out.Doubles[k]; !ok && len(out.Doubles) < MaxSearchFields {
				out.Doubles[k] = v
			}
		}
		for k, v := range s.Strings {
			if _, ok := out.Strings[k]; !ok && len(out.Strings) < MaxSearchFields {
				out.Strings[k] = v
			}
		}
		for _, tag := range s.Tags {
			if len(out.Tags) < MaxSearchFields && !containsString(out.Tags, tag) {
				out.Tags = append(out.Tags, tag)
			}
		}
	}
	return out
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// solo is a solo player's queue entry and ticket, allocated together
// (512 bytes, in a 512-byte size class): what a tick reads and writes of
// the ticket is in the sixth cache line, what a hand-off reads of the
// entry in the first two.
type solo struct {
	q     qentry
	t     ticket
	owner [1]*qentry
	id    [1]string
}

// initTicket makes t the ticket of e (a player or a whole party) in ps.
func (m *Matchmaker) initTicket(t *ticket, ps *profileState, id string, rating, members int, e Enqueue, players []string, search *SearchFields) {
	*t = ticket{id: id, prof: ps, rating: rating, members: members, created: e.Created, expires: e.Expires,
		search: search, players: players, backend: e.Source == SourceBackend}
	if t.expires.IsZero() {
		ttl := m.cfg.TicketTTL
		if ps.p.TicketTTL > 0 {
			ttl = time.Duration(ps.p.TicketTTL)
		}
		t.expires = t.created.Add(ttl)
	}
}

func (m *Matchmaker) addTicket(t *ticket, now time.Time) {
	m.sweepTickets(2)
	m.tickets[t.id] = t
	t.waiting, t.matched = true, false
	m.waiting++
	t.prof.add(t, now)
	heap.Push(&m.expiry, t)
}

// dropTicket takes t out of the pools (matched, cancelled or expired).
// Its id leaves the index later (sweepTickets), a few at a time, so a
// tick that matches a million tickets does not delete a million map
// entries.
func (m *Matchmaker) dropTicket(t *ticket) {
	if !t.waiting {
		return
	}
	t.waiting = false
	m.waiting--
	m.retired = append(m.retired, t)
	t.prof.remove(t)
}

// ticket returns the waiting ticket id (nil if none waits).
func (m *Matchmaker) ticket(id string) *ticket {
	if t := m.tickets[id]; t != nil && t.waiting {
		return t
	}
	return nil
}

// sweepTickets deletes up to n ids of dropped tickets from the index
// (unless the id queued again since).
func (m *Matchmaker) sweepTickets(n int) {
	for ; n > 0 && len(m.retired) > 0; n-- {
		t := m.retired[len(m.retired)-1]
		m.retired[len(m.retired)-1] = nil
		m.retired = m.retired[:len(m.retired)-1]
		if m.tickets[t.id] == t {
			delete(m.tickets, t.id)
		}
	}
}

func (m *Matchmaker) status(q *qentry) QueueStatus {
	st := QueueStatus{State: stateNames[m.stateOf(q)], Profile: q.e.Profile, Mode: q.e.Profile, Room: q.room, Since: q.since}
	if t := m.ticket(q.key); t != nil {
		st.Expires = t.expires
	}
	return st
}

// stateOf is q's state: a queued entry whose ticket a tick matched is
// matching (the tick counts it so without touching the entry).
func (m *Matchmaker) stateOf(q *qentry) qstate {
	if q.state == qQueued && q.t != nil && q.t.matched {
		return qMatching
	}
	return q.state
}

// setState moves q to state s, keeping the counts by state.
func (m *Matchmaker) setState(q *qentry, s qstate) {
	if old := m.stateOf(q); old != qNone {
		m.states[old]--
	}
	q.state = s
	m.states[s]++
}

// dropPlayer forgets uuid's queue entry.
func (m *Matchmaker) dropPlayer(uuid string) {
	if q := m.players[uuid]; q != nil {
		m.states[m.stateOf(q)]--
		delete(m.players, uuid)
	}
}

// lapseRooms frees the players whose in-room state lapsed (RoomLife
// passed without their room's end being heard): O(lapsed), in the order
// they went in.
func (m *Matchmaker) lapseRooms(now time.Time) {
	i := 0
	for ; i < len(m.lapse); i++ {
		q := m.lapse[i]
		if !now.After(q.until) {
			break
		}
		if q.state == qInRoom && m.players[q.e.Player.UUID] == q {
			m.dropPlayer(q.e.Player.UUID)
		}
	}
	if i > 0 {
		clear(m.lapse[:i])
		m.lapse = m.lapse[i:]
	}
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
	switch m.stateOf(q) {
	case qInRoom:
		return fmt.Errorf("cancel: %w (room %s)", ErrInRoom, q.room)
	case qMatching:
		return fmt.Errorf("cancel: %w: a room is being formed", ErrInRoom)
	}
	m.dropPlayer(uuid)
	t := m.ticket(q.key)
	if len(q.e.Party) == 0 {
		if t != nil {
			m.dropTicket(t)
		}
	} else if p := m.parties[q.key]; p != nil {
		delete(p.joined, uuid)
		if t != nil {
			m.dropTicket(t)
			// The ticket was in the pools: the others wait for the party again.
			for u := range p.joined {
				if pq := m.players[u]; pq != nil {
					m.setState(pq, qPartyPending)
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
	m.publishStats(time.Now(), false)
	return nil
}

// Status returns uuid's queue state (state none also when the matchmaker
// could not answer in time).
func (m *Matchmaker) Status(ctx context.Context, uuid string) QueueStatus {
	st := QueueStatus{State: StateNone}
	_ = m.do(ctx, func() {
		if q := m.players[uuid]; q != nil {
			if q.state == qInRoom && time.Now().After(q.until) {
				return
			}
			st = m.status(q)
		}
	})
	return st
}

// RoomEnded clears the in-room state of a room's members (the fight server
// reported the room's end).
func (m *Matchmaker) RoomEnded(room string) {
	m.event(func() {
		rs := m.rooms[room]
		if rs == nil {
			now := time.Now()
			for r, at := range m.endedEarly {
				if now.Sub(at) > time.Minute {
					delete(m.endedEarly, r)
				}
			}
			m.endedEarly[room] = now
			return
		}
		delete(m.rooms, room)
		for _, u := range rs.members {
			if q := m.players[u]; q != nil && q.room == room {
				m.dropPlayer(u)
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
					m.dropPlayer(u)
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

// expire takes an unmatched ticket out and tells its players why.
func (m *Matchmaker) expire(t *ticket, reason string) {
	m.dropTicket(t)
	delete(m.parties, t.id)
	m.stats.expired(t.prof.p.Name)
	for _, u := range t.players {
		q := m.players[u]
		if q == nil || q.key != t.id {
			continue
		}
		m.dropPlayer(u)
		msg := Expired{Type: "expired", Profile: t.prof.p.Name, UUID: u, Channel: q.e.Channel}
		m.notify.Notify(u, map[string]any{"type": "expired", "profile": msg.Profile, "reason": reason,
			"message": "the ticket lapsed unmatched; queue again"})
		if m.OnExpire != nil {
			e := q.e
			go m.OnExpire(e, msg)
		}
	}
}

// expireDue expires every ticket whose time has come.
func (m *Matchmaker) expireDue(now time.Time) {
	for len(m.expiry) > 0 && !m.expiry[0].expires.After(now) {
		if t := heap.Pop(&m.expiry).(*ticket); t.waiting {
			m.expire(t, "ttl")
		}
	}
	// Matched and cancelled tickets leave the heap lazily; rebuild it when
	// they outnumber the waiting ones.
	if len(m.expiry) > 1024 && len(m.expiry) > 2*m.waiting {
		live := m.expiry[:0]
		for _, t := range m.expiry {
			if t.waiting {
				live = append(live, t)
			}
		}
		clear(m.expiry[len(live):])
		m.expiry = live
		heap.Init(&m.expiry)
	}
}

// expiryHeap orders tickets by expiry.
type expiryHeap []*ticket

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(*ticket)) }
func (h *expiryHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return t
}

// Stats returns the latest queue statistics: the queue lengths as they
// are now, the rest as of the last tick.
func (m *Matchmaker) Stats() QueueStats {
	var qs QueueStats
	if s := m.snapshot.Load(); s != nil {
		qs = *s
	}
	if v := m.view.Load(); v != nil {
		qs.Queues = make(map[string]int, len(*v))
		for _, ps := range *v {
			qs.Queues[ps.p.Name] = int(ps.players.Load())
		}
	}
	return qs
}

// publishStats makes a new snapshot (distributions, counts by state); the
// queue operations leave it to the next tick.
func (m *Matchmaker) publishStats(now time.Time, full bool) {
	if !full {
		return
	}
	qs := QueueStats{InRoom: m.states[qInRoom] + m.states[qMatching], PartyPending: m.states[qPartyPending]}
	qs.Rooms = len(m.rooms)
	qs.Queues = make(map[string]int, len(m.order))
	for _, ps := range m.order {
		qs.Queues[ps.p.Name] = int(ps.players.Load())
	}
	m.stats.fill(&qs, now)
	m.snapshot.Store(&qs)
}
