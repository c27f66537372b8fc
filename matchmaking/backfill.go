package matchmaking

import (
	"context"
	"math"
	"slices"
	"time"
)

// BackfillRoom asks the fleet to add players to a running room.
type BackfillRoom struct {
	ID      string
	Profile string
	// Joining are the players to add; Members, those already in it.
	Joining, Members []Player
}

// Backfill adds players to a running room (the fleet's Backfill: the
// room's game accepts them and tells its players who joined) and returns
// the match message for each joining player.
type Backfill func(ctx context.Context, room BackfillRoom) (map[string]MatchMsg, error)

// WantBackfill records that a running room has slots open seats (the
// room asked: a player left for good, or its game wants more). Queued
// tickets of the room's profile that pass one of its pools fill them,
// before the tick forms new rooms, up to the profile's max_players.
//
// A room this matchmaker did not form (an earlier dispatcher did, before
// a restart) is looked up with Config.LookupRoom, at most once a minute
// per room, off the matchmaker's goroutine; once found it is backfilled
// like the rooms formed here, and its end (RoomEnded) forgets it.
func (m *Matchmaker) WantBackfill(room string, slots int) {
	m.event(func() {
		if slots <= 0 {
			return
		}
		if rs := m.rooms[room]; rs != nil {
			rs.open = min(slots, rs.maxPlayers)
			return
		}
		m.lookUpRoom(room, slots)
	})
}

// lookUpRoomTimeout bounds one LookupRoom call.
const lookUpRoomTimeout = 5 * time.Second

// lookUpRoom (on the matchmaker's goroutine) looks an unknown room up and
// adopts it with slots open seats.
func (m *Matchmaker) lookUpRoom(room string, slots int) {
	if m.cfg.LookupRoom == nil || m.backfill == nil {
		return
	}
	now := time.Now()
	if at, ok := m.lookedUp[room]; ok && now.Sub(at) < time.Minute {
		return
	}
	for r, at := range m.lookedUp {
		if now.Sub(at) >= time.Minute {
			delete(m.lookedUp, r)
		}
	}
	m.lookedUp[room] = now
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), lookUpRoomTimeout)
		defer cancel()
		fr, err := m.cfg.LookupRoom(ctx, room)
		if err != nil {
			m.log.Debug("backfill: room unknown here and not found", "room", room, "err", err)
			return
		}
		m.event(func() {
			if _, ended := m.endedEarly[room]; ended || m.rooms[room] != nil {
				return
			}
			rs := m.newRoomState(room, fr, now)
			rs.open = max(rs.open, min(slots, rs.maxPlayers))
			m.rooms[room] = rs
			m.log.Info("backfill: adopted a room formed before this dispatcher started", "room", room, "profile", fr.Profile, "players", len(fr.Players), "open", rs.open)
		})
	}()
}

// backfillTick fills the open seats of running rooms from the queue:
// for each room (oldest request first), the oldest tickets of its profile
// that are in one of its pools, fit the seats left, and whose window (the
// profile's) covers their distance to the room's mean rating. Tickets
// taken here are not matched by this tick's functions.
func (m *Matchmaker) backfillTick(ctx context.Context, now time.Time) {
	if m.backfill == nil {
		return
	}
	var rooms []*roomState
	for _, rs := range m.rooms {
		if rs.open > 0 && !rs.filling {
			rooms = append(rooms, rs)
		}
	}
	if len(rooms) == 0 {
		return
	}
	slices.SortFunc(rooms, func(a, b *roomState) int { return a.since.Compare(b.since) })
	byProfile := map[*profileState][]*ticket{}
	for _, rs := range rooms {
		ps := m.profiles[rs.profile]
		if ps == nil {
			continue
		}
		cands, ok := byProfile[ps]
		if !ok {
			for _, t := range m.tickets {
				if t.waiting && t.prof == ps && t.in != 0 {
					cands = append(cands, t)
				}
			}
			slices.SortFunc(cands, func(a, b *ticket) int { return a.created.Compare(b.created) })
			byProfile[ps] = cands
		}
		cfg := ps.p.matcherConfig()
		var take []*ticket
		open := rs.open
		for _, t := range cands {
			if !t.waiting || t.members > open {
				continue
			}
			if math.Abs(float64(t.rating)-rs.mean) > cfg.Window(now.Sub(t.created)) {
				continue
			}
			take = append(take, t)
			open -= t.members
			if open == 0 {
				break
			}
		}
		if len(take) > 0 {
			m.startBackfill(ps, rs, take, now)
		}
	}
}

// startBackfill takes the tickets out of the queue and asks the fleet to
// add them to rs, off the matchmaker's goroutine.
func (m *Matchmaker) startBackfill(ps *profileState, rs *roomState, take []*ticket, now time.Time) {
	br := BackfillRoom{ID: rs.id, Profile: ps.p.Name, Members: rs.players}
	var entries []member
	for _, t := range take {
		m.dropTicket(t)
		if t.members > 1 {
			delete(m.parties, t.id)
		}
		for _, q := range t.owners {
			m.setState(q, qMatching)
			entries = append(entries, member{uuid: q.e.Player.UUID, channel: q.e.Channel, backend: q.e.Source == SourceBackend})
			br.Joining = append(br.Joining, q.e.Player)
			m.stats.matched(now.Sub(q.since))
		}
	}
	rs.filling = true
	done := m.inbox.Reserve()
	m.handoffs.Add(1)
	go func() {
		defer m.handoffs.Done()
		hctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		msgs, err := m.backfill(hctx, br)
		cancel()
		_ = done.Post(func() { m.backfillDone(rs, br, entries, take, err) })
		if err != nil {
			return
		}
		batch := make([]Matched, 0, len(entries))
		for _, e := range entries {
			msg := msgs[e.uuid]
			msg.Channel, msg.UUID, msg.Profile, msg.Mode = e.channel, e.uuid, br.Profile, br.Profile
			m.notify.Notify(e.uuid, &msg)
			batch = append(batch, Matched{Msg: msg, Backend: e.backend})
		}
		if m.OnMatch != nil {
			m.OnMatch(batch)
		}
	}()
}

// backfillDone records the joined players in the room, or puts the
// tickets back (keeping their waiting time) and stops filling a room
// that refused them.
func (m *Matchmaker) backfillDone(rs *roomState, br BackfillRoom, entries []member, take []*ticket, err error) {
	now := time.Now()
	rs.filling = false
	m.stats.backfilled(len(br.Joining), err)
	if err != nil {
		m.log.Warn("backfill refused; the players stay queued", "room", rs.id, "err", err)
		rs.open = 0
		for _, t := range take {
			back := false
			for _, q := range t.owners {
				if m.players[q.e.Player.UUID] == q {
					m.setState(q, qQueued)
					back = true
				}
			}
			if back {
				m.requeue(t, now)
			}
		}
		return
	}
	for _, e := range entries {
		if q := m.players[e.uuid]; q != nil {
			m.setState(q, qInRoom)
			q.room, q.until = rs.id, now.Add(m.RoomLife)
			m.lapse = append(m.lapse, q)
		}
		rs.members = append(rs.members, e.uuid)
	}
	rs.players = append(rs.players, br.Joining...)
	rs.open = max(0, rs.open-len(br.Joining))
}
