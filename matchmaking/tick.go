package matchmaking

import (
	"context"
	"sync"
	"sync/atomic"

	"errors"
	"time"

	"github.com/arena-game/arena/matchmaking/matcher"
)

// pendingTick is a tick whose plugin functions have not all answered:
// the built-in functions' proposals wait with it, and it is evaluated when
// the last answer arrives (each call has FunctionTimeout).
type pendingTick struct {
	now     time.Time
	props   []*proposal
	waiting int
}

// tick expires lapsed tickets, asks every profile's function for
// proposals, and evaluates them (now, or when the plugins have answered).
func (m *Matchmaker) tick(ctx context.Context, now time.Time) {
	m.lapseRooms(now)
	m.sweepTickets(sweepBudget)
	m.expireDue(now)
	m.backfillTick(ctx, now)
	pt := &pendingTick{now: now}
	for _, ps := range m.order {
		for _, pl := range ps.pools {
			m.scratch = pl.gate(now, m.scratch)
		}
		clear(m.scratch)
		if ps.tickets == 0 {
			continue
		}
		start := time.Now()
		switch {
		case ps.fn == nil:
			m.seedTick(ps, pt)
		case m.cfg.Functions[ps.p.Function] != nil:
			m.callPlugin(ctx, ps, pt)
			continue
		default:
			m.callBuiltin(ps, pt)
		}
		m.stats.tickSeconds(ps.p.Name, time.Since(start))
	}
	if pt.waiting == 0 {
		m.settle(ctx, pt)
		return
	}
	m.pending = pt
}

// seedTick runs the seed's rule on each of ps's pools.
func (m *Matchmaker) seedTick(ps *profileState, pt *pendingTick) {
	for _, pl := range ps.pools {
		if pl.seed.Len() == 0 {
			continue
		}
		rooms := pl.seed.Tick(pt.now)
		if len(rooms) == 0 {
			continue
		}
		n := 0
		for _, r := range rooms {
			n += len(r.Tickets)
		}
		// One allocation each for the proposals, their tickets and ids.
		props := make([]proposal, len(rooms))
		ts := make([]*ticket, 0, n)
		ids := make([]string, 0, n)
		rosters := make([][]string, 0, len(rooms)*len(ps.p.Rosters))
		for i, r := range rooms {
			start := len(ts)
			for _, mt := range r.Tickets {
				t := mt.Payload.(*ticket)
				pl.took(t)
				ts = append(ts, t)
			}
			var rs [][]string
			rs, ids, rosters = fillRosters(ps.p, ts[start:], ids, rosters)
			props[i] = proposal{Proposal: Proposal{Rosters: rs, Score: -float64(r.Spread)},
				profile: ps.index, source: pl.index, index: i, tickets: ts[start:len(ts):len(ts)]}
			pt.props = append(pt.props, &props[i])
		}
	}
}

// request builds a function's request from ps's pools.
func (m *Matchmaker) request(ps *profileState, now time.Time) *MatchRequest {
	req := &MatchRequest{Profile: ps.p, Now: now, Pools: make([][]Candidate, len(ps.pools))}
	for i, pl := range ps.pools {
		req.Pools[i] = pl.candidates()
	}
	return req
}

// callBuiltin runs a built-in stateless function on the matchmaker's
// goroutine (they are pure and fast).
func (m *Matchmaker) callBuiltin(ps *profileState, pt *pendingTick) {
	req := m.request(ps, pt.now)
	props, err := ps.fn.Match(context.Background(), req)
	m.accept(ps, req, props, err, pt)
}

// callPlugin calls a plugin function off the matchmaker's goroutine with
// FunctionTimeout; its answer comes back through a reservation.
func (m *Matchmaker) callPlugin(ctx context.Context, ps *profileState, pt *pendingTick) {
	req := m.request(ps, pt.now)
	fn := ps.fn
	done := m.inbox.Reserve()
	pt.waiting++
	timeout := m.cfg.FunctionTimeout
	go func() {
		start := time.Now()
		cctx, cancel := context.WithTimeout(ctx, timeout)
		props, err := fn.Match(cctx, req)
		cancel()
		took := time.Since(start)
		_ = done.Post(func() {
			m.stats.tickSeconds(ps.p.Name, took)
			m.accept(ps, req, props, err, pt)
			pt.waiting--
			if pt.waiting == 0 && m.pending == pt {
				m.pending = nil
				m.settle(ctx, pt)
			}
		})
	}()
}

// accept validates one function call's answer and adds its proposals to
// the tick; an error or a bad answer loses the tick for that profile only
// (logged and counted).
func (m *Matchmaker) accept(ps *profileState, req *MatchRequest, props []Proposal, err error, pt *pendingTick) {
	if m.profiles[ps.p.Name] != ps {
		return // reloaded meanwhile: the answer is for profiles no longer in use
	}
	if err == nil {
		cands := map[string]int{}
		for _, pool := range req.Pools {
			for _, c := range pool {
				cands[c.ID] = c.Members
			}
		}
		err = ValidateProposals(ps.p, props, func(id string) (int, bool) { n, ok := cands[id]; return n, ok })
	}
	if err != nil {
		reason := RejectError
		if pe := (*ProposalError)(nil); errors.As(err, &pe) {
			reason = pe.Reason
		}
		m.stats.rejected(ps.p.Name, ps.p.Function, reason)
		m.log.Warn("match function answer rejected; the profile loses this tick", "profile", ps.p.Name, "function", ps.p.Function, "reason", reason, "err", err)
		return
	}
	for i, pr := range props {
		ts := make([]*ticket, 0, 8)
		for _, ids := range pr.Rosters {
			for _, id := range ids {
				t := m.ticket(id)
				if t == nil {
					t = &ticket{id: id} // gone since the call: the proposal loses
				}
				ts = append(ts, t)
			}
		}
		pt.props = append(pt.props, &proposal{Proposal: pr, profile: ps.index, index: i, tickets: ts})
	}
}

// settle settles the tick's proposals (evaluate), hands the kept ones
// off as rooms and puts the tickets of lost seed proposals back.
func (m *Matchmaker) settle(ctx context.Context, pt *pendingTick) {
	m.serial++
	var kept, lost []*proposal
	if oneSource(pt.props) {
		// One pool proposed everything: its proposals share no ticket.
		kept = pt.props[:0:0]
		for _, pr := range pt.props {
			if allWaiting(pr) {
				kept = append(kept, pr)
			} else {
				lost = append(lost, pr)
			}
		}
	} else {
		kept, lost = evaluate(pt.props, m.serial)
	}
	m.stats.evaluated(len(lost))
	m.startHandoffs(ctx, kept, pt.now)
	for _, pr := range lost {
		if ps := m.order[pr.profile]; ps.fn == nil {
			// A seed pool's Tick took these out of its matcher pool.
			for _, t := range pr.tickets {
				ps.pools[pr.source].restore(t)
			}
		}
	}
	m.publishStats(pt.now, true)
}

// member is what placing a room needs of one of its players.
type member struct {
	uuid, channel string
	backend       bool
}

// oneSource reports whether every proposal came from one pool (or one
// function call), which never proposes a ticket twice.
func oneSource(props []*proposal) bool {
	for _, pr := range props {
		if pr.profile != props[0].profile || pr.source != props[0].source {
			return false
		}
	}
	return true
}

func allWaiting(pr *proposal) bool {
	for _, t := range pr.tickets {
		if !t.waiting {
			return false
		}
	}
	return true
}

// formed is a kept proposal turned into a room to place; msgs and err
// are its placement's answer.
type formed struct {
	fr      FormedRoom
	entries []member
	tickets []*ticket
	msgs    map[string]MatchMsg
	err     error
}

// slab hands out sub-slices of a few large arrays, so forming a tick's
// rooms costs a handful of allocations, not several per room.
type slab struct {
	members []member
	players []Player
	teams   []Team
	uuids   []string
}

func take[T any](buf *[]T, n int) []T {
	out := (*buf)[:0:n]
	*buf = (*buf)[n:]
	return out
}

// startHandoffs takes the kept proposals' tickets out of the pools and
// places their rooms off the matchmaker's goroutine, on at most
// handoffWorkers goroutines. The results come back together, through one
// reservation taken here, when every room of the batch is placed.
func (m *Matchmaker) startHandoffs(ctx context.Context, kept []*proposal, now time.Time) {
	if len(kept) == 0 {
		return
	}
	players, teams := 0, 0
	for _, pr := range kept {
		for _, t := range pr.tickets {
			players += t.members
		}
		teams += len(pr.Rosters)
	}
	sl := &slab{members: make([]member, players), players: make([]Player, players), teams: make([]Team, teams), uuids: make([]string, players)}
	rooms := make([]formed, len(kept))
	for i, pr := range kept {
		rooms[i] = m.form(pr, now, sl)
	}
	done := m.inbox.Reserve()
	workers := min(len(rooms), handoffWorkers)
	var next atomic.Int64
	// One deadline for the tick's rooms (a context per room costs more
	// than placing it when the fleet answers fast).
	hctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	var wg sync.WaitGroup
	wg.Add(workers)
	m.handoffs.Add(workers + 1)
	for range workers {
		go func() {
			defer m.handoffs.Done()
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(rooms) {
					return
				}
				m.place(hctx, &rooms[i])
			}
		}()
	}
	go func() {
		defer m.handoffs.Done()
		wg.Wait()
		cancel()
		_ = done.Post(func() {
			for i := range rooms {
				r := &rooms[i]
				m.handoffDone(r.fr, r.entries, r.tickets, r.msgs, r.err)
			}
		})
	}()
}

// sweepBudget is how many dropped ids a tick deletes from the index.
const sweepBudget = 16384

// handoffWorkers bounds the goroutines placing one tick's rooms.
const handoffWorkers = 64

// form takes pr's tickets out of the pools and marks its players matching.
func (m *Matchmaker) form(pr *proposal, now time.Time, sl *slab) formed {
	ps := m.order[pr.profile]
	f := formed{fr: FormedRoom{Profile: ps.p.Name, Game: ps.p.Game, Function: ps.p.Function}, tickets: pr.tickets}
	n := 0
	for _, t := range pr.tickets {
		n += t.members
	}
	f.entries = take(&sl.members, n)
	f.fr.Players = take(&sl.players, n)
	f.fr.Teams = take(&sl.teams, len(pr.Rosters))
	uuids := take(&sl.uuids, n)
	lo, hi := matcher.MaxRating, -matcher.MaxRating
	k := 0
	for r, idsOf := range pr.Rosters {
		from := len(uuids)
		for range idsOf {
			t := pr.tickets[k]
			k++
			lo, hi = min(lo, t.rating), max(hi, t.rating)
			m.dropTicket(t)
			if t.members > 1 {
				delete(m.parties, t.id)
			}
			for _, q := range t.owners {
				m.setState(q, StateMatching)
				f.entries = append(f.entries, member{uuid: q.e.Player.UUID, channel: q.e.Channel, backend: q.e.Source == SourceBackend})
				f.fr.Players = append(f.fr.Players, q.e.Player)
				uuids = append(uuids, q.e.Player.UUID)
				m.stats.matched(now.Sub(q.since))
			}
		}
		f.fr.Teams = append(f.fr.Teams, Team{Name: ps.p.Rosters[r].Name, Players: uuids[from:len(uuids):len(uuids)]})
	}
	f.fr.Spread = hi - lo
	m.stats.room(f.fr.Spread, now)
	return f
}

// place hands one room off and delivers its match messages (a hand-off
// goroutine).
func (m *Matchmaker) place(hctx context.Context, f *formed) {
	msgs, err := m.handoff(hctx, f.fr)
	f.msgs, f.err = msgs, err
	fr, entries := f.fr, f.entries
	if err != nil {
		return
	}
	for _, e := range entries {
		msg := msgs[e.uuid]
		msg.Channel, msg.UUID = e.channel, e.uuid
		msg.Profile, msg.Mode, msg.Teams = fr.Profile, fr.Profile, fr.Teams
		m.notify.Notify(e.uuid, msg)
		if m.OnMatch != nil {
			m.OnMatch(msg, e.backend)
		}
	}
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
					m.setState(q, StateQueued)
					back = true
					m.notify.Notify(u, map[string]any{"type": "error", "code": "no_capacity", "message": "no fight server could take the room; still queued"})
				}
			}
			if back && m.profiles[t.prof.p.Name] == t.prof {
				m.addTicket(t, now)
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
			if q := m.players[e.uuid]; q != nil && q.state == StateMatching {
				m.dropPlayer(e.uuid)
			}
		}
		return
	}
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
	for _, e := range entries {
		q := m.players[e.uuid]
		if q == nil {
			continue
		}
		m.setState(q, StateInRoom)
		q.room = room
		q.until = now.Add(m.RoomLife)
		m.lapse = append(m.lapse, q)
		rs.members = append(rs.members, e.uuid)
	}
	m.rooms[room] = rs
}
