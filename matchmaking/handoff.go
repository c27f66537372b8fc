package matchmaking

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/arena-game/arena/internal/mailbox"
	"github.com/arena-game/arena/matchmaking/matcher"
)

// Batches of a tick's rooms: the first leaves after firstBatch rooms, so
// a tick's first rooms are placed at once; each next one is twice as
// large, up to maxBatch, so a tick forming 300,000 rooms hands them off
// in about a hundred batches.
const (
	firstBatch = 64
	maxBatch   = 4096
	// handoffWorkers bounds the goroutines placing one batch's rooms.
	handoffWorkers = 64
	// recordChunk is how many players' assignments a hand-off goroutine
	// gathers (after their rooms' pushes) before it records them in one
	// OnMatch call: large enough that the writes go pipelined, small
	// enough that a slow placement holds back few others' records.
	recordChunk = 512
)

// handoffs is a tick's stream of settled rooms on their way to their
// hand-off. The tick adds each room's tickets (add) and closes the room
// (room), which commits the tickets on the matchmaker's goroutine: out of
// every pool and index, their players matching. Rooms gather in a batch
// that leaves for the hand-off goroutines when full (or at flush), where
// its rooms' players and teams are formed, the rooms placed and their
// match messages delivered, while the tick goes on.
type handoffs struct {
	m       *Matchmaker
	now     time.Time
	b       *batch
	size    int // rooms the current batch holds before it leaves
	touched int // (touch's sink)
}

func (m *Matchmaker) newHandoffs(now time.Time) *handoffs {
	return &handoffs{m: m, now: now, size: firstBatch}
}

// batch is rooms handed off together: one reservation for their results,
// one deadline, and slabs for their players and teams (a handful of
// allocations per batch, not several per room).
type batch struct {
	now     time.Time
	rooms   []handRoom
	tickets []*ticket // every room's tickets, room after room
	solos   []*qentry // each of those tickets' solo entry (nil: a party)
	players int       // the rooms' players
	teams   int       // the rooms' teams
}

// touchEntries reads what forming a room reads of each solo entry (two
// cache lines), with independent loads, so that the processor fetches
// them in parallel (see touch) before the hand-off goroutines need them.
func touchEntries(qs []*qentry) int {
	n := 0
	for _, q := range qs {
		if q != nil {
			n += len(q.e.Player.UUID) + q.e.Player.Score
		}
	}
	return n
}

// handRoom is one settled room of a batch.
type handRoom struct {
	ps      *profileState
	rosters [][]string // a function's rosters (ticket ids); nil: the seed's rule's room, in rating order
	// Set by the hand-off goroutine that places it:
	msgs map[string]MatchMsg
	err  error
	// Its tickets: batch.tickets[from:to] (roster after roster for a
	// function's room); its players and teams: the batch's slab from off
	// and teamOff (n players, set when formed).
	from, to, off, n, teamOff int32
	spread                    int32 // ratings are within ±MaxRating
}

// slab is a batch's players, entries, team member lists, teams, waits
// and match messages: each hand-off goroutine writes its rooms' parts.
type slab struct {
	members []member
	players []Player
	uuids   []string
	waits   []float64 // seconds each player waited
	teams   []Team
	msgs    []MatchMsg
}

// formed is r's room as placing it needs it.
func (sl *slab) formed(r *handRoom) FormedRoom {
	p := r.ps.p
	end, tend := r.off+r.n, r.teamOff+int32(len(p.Rosters))
	return FormedRoom{Profile: p.Name, Game: p.Game, Function: p.Function, Players: sl.players[r.off:end:end],
		Teams: sl.teams[r.teamOff:tend:tend], Spread: int(r.spread)}
}

// add puts t in the room being built.
func (h *handoffs) add(t *ticket) {
	if h.b == nil {
		h.b = &batch{now: h.now, rooms: make([]handRoom, 0, h.size), tickets: make([]*ticket, 0, 4*h.size), solos: make([]*qentry, 0, 4*h.size)}
	}
	h.b.tickets = append(h.b.tickets, t)
	h.b.solos = append(h.b.solos, t.solo)
}

// room closes the room of the tickets added since the last one: it
// commits them and records the room; a full batch leaves.
func (h *handoffs) room(ps *profileState, rosters [][]string) {
	b := h.b
	from := 0
	if n := len(b.rooms); n > 0 {
		from = int(b.rooms[n-1].to)
	}
	lo, hi := matcher.MaxRating, -matcher.MaxRating
	players := 0
	for _, t := range b.tickets[from:] {
		h.m.commit(t)
		lo, hi = min(lo, t.rating), max(hi, t.rating)
		players += t.members
	}
	b.rooms = append(b.rooms, handRoom{ps: ps, rosters: rosters, from: int32(from), to: int32(len(b.tickets)), off: int32(b.players),
		teamOff: int32(b.teams), spread: int32(hi - lo)})
	b.players += players
	b.teams += len(ps.p.Rosters)
	h.m.stats.room(hi-lo, h.now)
	if len(b.rooms) >= h.size {
		h.flush()
		h.size = min(2*h.size, maxBatch)
	}
}

// flush sends the batch being built to its hand-off.
func (h *handoffs) flush() {
	if h.b != nil && len(h.b.rooms) > 0 {
		h.m.dispatch(h.b)
	}
	h.b = nil
}

// commit takes a settled room's ticket out of the pools and the index
// (matched): its players are matching from now on (stateOf), counted so
// here without touching their entries.
func (m *Matchmaker) commit(t *ticket) {
	m.dropTicket(t)
	t.matched = true
	if t.members > 1 {
		delete(m.parties, t.id)
	}
	m.states[qQueued] -= t.members
	m.states[qMatching] += t.members
}

// dispatch places a batch's rooms off the matchmaker's goroutine, on at
// most handoffWorkers goroutines; the results come back together, through
// one reservation taken here, when every room of the batch is placed.
func (m *Matchmaker) dispatch(b *batch) {
	done := m.inbox.Reserve()
	m.handoffs.Add(1)
	go m.placeBatch(b, done)
}

// placeBatch forms and places b's rooms and posts their results (a
// hand-off goroutine, with as many helpers as the batch has rooms, up to
// handoffWorkers).
func (m *Matchmaker) placeBatch(b *batch, done *mailbox.Reservation[func()]) {
	defer m.handoffs.Done()
	sl := &slab{members: make([]member, b.players), players: make([]Player, b.players), uuids: make([]string, b.players),
		waits: make([]float64, b.players), teams: make([]Team, b.teams), msgs: make([]MatchMsg, b.players)}
	rooms := b.rooms
	// Each goroutine takes a few rooms at a time (one when the batch is
	// small, so that slow placements still run side by side) and touches
	// their entries first.
	chunk := max(1, min(8, len(rooms)/handoffWorkers))
	var touched atomic.Int64
	var next atomic.Int64
	// One deadline for the batch's rooms (a context per room costs more
	// than placing it when the fleet answers fast).
	hctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	work := func() {
		var rec []Matched // placed, told, not yet recorded
		defer func() { m.record(rec) }()
		for {
			end := int(next.Add(int64(chunk)))
			i := end - chunk
			if i >= len(rooms) {
				return
			}
			end = min(end, len(rooms))
			if chunk > 1 {
				touched.Add(int64(touchEntries(b.solos[rooms[i].from:rooms[end-1].to])))
			}
			for ; i < end; i++ {
				m.form(b, &rooms[i], sl)
				m.place(hctx, &rooms[i], sl)
				rec = m.recordable(rec, &rooms[i], sl)
			}
			if len(rec) >= recordChunk {
				m.record(rec)
				rec = nil
			}
		}
	}
	helpers := min(len(rooms), handoffWorkers) - 1
	var wg sync.WaitGroup
	wg.Add(helpers)
	m.handoffs.Add(helpers)
	for range helpers {
		go func() {
			defer m.handoffs.Done()
			defer wg.Done()
			work()
		}()
	}
	work()
	wg.Wait()
	cancel()
	_ = done.Post(func() {
		m.stats.waited(sl.waits)
		for i := range rooms {
			r := &rooms[i]
			m.handoffDone(sl.formed(r), sl.members[r.off:r.off+r.n], b.tickets[r.from:r.to], r.msgs, r.err)
		}
		m.publishStats(b.now, true) // the waits and rooms in play
	})
}

// form builds a room's players and teams from its tickets (a hand-off
// goroutine). It reads only what does not change once a ticket is
// queued: its owners, their players, channels, sources and queue times.
func (m *Matchmaker) form(b *batch, r *handRoom, sl *slab) {
	p := r.ps.p
	ts := b.tickets[r.from:r.to]
	var buf [matcher.MaxRoomSize]int8
	roster := buf[:0]
	if len(ts) > len(buf) {
		roster = make([]int8, 0, len(ts))
	}
	switch {
	case len(p.Rosters) == 1:
		roster = roster[:len(ts)] // all in the one roster
	case r.rosters == nil:
		roster = fillRosters(p, ts, roster)
	default:
		for i, ids := range r.rosters {
			for range ids {
				roster = append(roster, int8(i))
			}
		}
	}
	solos := b.solos[r.from:r.to]
	k := r.off
	add := func(q *qentry) {
		pl := &q.e.Player
		sl.players[k] = *pl
		sl.members[k] = member{uuid: pl.UUID, channel: q.e.Channel, backend: q.e.Source == SourceBackend}
		sl.uuids[k] = pl.UUID
		sl.waits[k] = b.now.Sub(q.since).Seconds()
		k++
	}
	for ri := range p.Rosters {
		from := k
		for j, t := range ts {
			switch {
			case int(roster[j]) != ri:
			case solos[j] != nil:
				add(solos[j]) // (without reading the ticket)
			default:
				for _, q := range t.owners {
					add(q)
				}
			}
		}
		sl.teams[int(r.teamOff)+ri] = Team{Name: p.Rosters[ri].Name, Players: sl.uuids[from:k:k]}
	}
	r.n = k - r.off
	m.stats.observeRoom(int(r.spread), sl.waits[r.off:k])
}

// place hands one room off and delivers its match messages (a hand-off
// goroutine).
func (m *Matchmaker) place(hctx context.Context, r *handRoom, sl *slab) {
	fr := sl.formed(r)
	msgs, err := m.handoff(hctx, fr)
	r.msgs, r.err = msgs, err
	if err != nil {
		return
	}
	for k := r.off; k < r.off+r.n; k++ {
		e := &sl.members[k]
		msg := &sl.msgs[k]
		*msg = msgs[e.uuid]
		msg.Channel, msg.UUID = e.channel, e.uuid
		msg.Profile, msg.Mode, msg.Teams = fr.Profile, fr.Profile, fr.Teams
		m.notify.Notify(e.uuid, msg)
	}
}

// recordable appends the assignments of room r, placed and its players
// told, to rec (nothing when it was not placed).
func (m *Matchmaker) recordable(rec []Matched, r *handRoom, sl *slab) []Matched {
	if r.err != nil || m.OnMatch == nil {
		return rec
	}
	for k := r.off; k < r.off+r.n; k++ {
		rec = append(rec, Matched{Msg: sl.msgs[k], Backend: sl.members[k].backend})
	}
	return rec
}

// record hands assignments to OnMatch in one call.
func (m *Matchmaker) record(rec []Matched) {
	if len(rec) > 0 && m.OnMatch != nil {
		m.OnMatch(rec)
	}
}

// requeue puts back a ticket whose room was not placed, keeping its
// waiting time: in its profile, or in the profile of that name a reload
// installed meanwhile (as the reload moved the waiting tickets); a
// ticket whose profile a reload removed expires (before, it was left out
// of every pool, its players queued for nothing).
func (m *Matchmaker) requeue(t *ticket, now time.Time) {
	ps := m.profiles[t.prof.p.Name]
	if ps == nil {
		m.expire(t, "profile_removed")
		return
	}
	t.prof = ps
	m.addTicket(t, now)
}

// handoffDone records a room in play, or puts its tickets back in the
// pools (keeping their waiting time) when no fight server could take it.
func (m *Matchmaker) handoffDone(fr FormedRoom, entries []member, tickets []*ticket, msgs map[string]MatchMsg, err error) {
	now := time.Now()
	if err != nil {
		m.log.Error("room handoff failed; players go back to the queue", "err", err, "players", len(entries))
		for _, t := range tickets {
			back := false
			for _, u := range t.players {
				if q := m.players[u]; q != nil && q.key == t.id {
					m.setState(q, qQueued)
					back = true
					m.notify.Notify(u, map[string]any{"type": "error", "code": "no_capacity", "message": "no fight server could take the room; still queued"})
				}
			}
			t.matched = false
			if back {
				m.requeue(t, now)
			}
		}
		return
	}
	var room string
	directed := false
	for _, msg := range msgs {
		room, directed = msg.Room, msg.Connection != ""
		break
	}
	_, ended := m.endedEarly[room]
	delete(m.endedEarly, room)
	if directed || ended {
		// A director's game server hosts it: arena hears nothing of its
		// end, so the players are free to queue again at once. (So are
		// the players of a room that ended before this was recorded.)
		for _, e := range entries {
			if q := m.players[e.uuid]; q != nil && m.stateOf(q) == qMatching {
				m.dropPlayer(e.uuid)
			}
		}
		return
	}
	rs := m.newRoomState(room, fr, now)
	rs.members = make([]string, 0, len(entries))
	for _, e := range entries {
		q := m.players[e.uuid]
		if q == nil {
			continue
		}
		m.setState(q, qInRoom)
		q.room = room
		q.until = now.Add(m.RoomLife)
		m.lapse = append(m.lapse, q)
		rs.members = append(rs.members, e.uuid)
	}
	m.rooms[room] = rs
}

// newRoomState is the backfill state of a running room with fr's
// profile and players, formed at now.
func (m *Matchmaker) newRoomState(room string, fr FormedRoom, now time.Time) *roomState {
	rs := &roomState{id: room, profile: fr.Profile, players: fr.Players, since: now, maxPlayers: len(fr.Players)}
	sum := 0
	for _, p := range fr.Players {
		sum += p.Score
	}
	rs.mean = float64(sum) / float64(max(1, len(fr.Players)))
	if ps := m.profiles[fr.Profile]; ps != nil {
		rs.maxPlayers = ps.p.MaxPlayers
		// A profile whose rooms hold more than they start with fills
		// them from the queue.
		rs.open = max(0, ps.p.MaxPlayers-len(fr.Players))
	}
	return rs
}
