package matchmaking

import (
	"context"
	"errors"
	"time"

	"github.com/arena-game/arena/matchmaking/matcher"
)

// pendingTick is a tick whose plugin functions have not all answered:
// the built-in functions' proposals wait with it, and it is evaluated when
// the last answer arrives (each call has FunctionTimeout).
type pendingTick struct {
	now     time.Time
	props   []Ranked
	taken   []takenTicket // tickets seed pools' ticks took, to restore when they lose
	waiting int
}

// takenTicket is a ticket a seed pool's Tick took out of its matcher
// pool for a proposal.
type takenTicket struct {
	pool *poolState
	t    *ticket
}

// tick expires lapsed tickets, asks every profile's function for
// proposals, and evaluates them (now, or when the plugins have answered).
func (m *Matchmaker) tick(ctx context.Context, now time.Time) {
	for u, q := range m.players {
		if q.state == StateInRoom && now.After(q.until) {
			delete(m.players, u)
		}
	}
	m.expireDue(now)
	pt := &pendingTick{now: now}
	for _, ps := range m.order {
		for _, pl := range ps.pools {
			m.scratch = pl.gate(ps, now, m.scratch)
		}
		clear(m.scratch)
		if len(ps.tickets) == 0 {
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
		m.evaluate(ctx, pt)
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
		for i, pr := range seedProposals(ps.p, rooms) {
			pt.props = append(pt.props, Ranked{Proposal: pr, Profile: ps.index, Source: pl.index, Index: i})
		}
		for _, r := range rooms {
			for _, t := range r.Tickets {
				pt.taken = append(pt.taken, takenTicket{pool: pl, t: t.Payload.(*ticket)})
			}
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
				m.evaluate(ctx, pt)
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
		pt.props = append(pt.props, Ranked{Proposal: pr, Profile: ps.index, Source: 0, Index: i})
	}
}

// evaluate settles the tick's proposals (Evaluate), hands the kept ones
// off as rooms and puts the tickets of lost seed proposals back.
func (m *Matchmaker) evaluate(ctx context.Context, pt *pendingTick) {
	kept, lost := pt.props, []Ranked(nil)
	if !disjoint(pt.props) {
		kept, lost = Evaluate(pt.props, m.alive)
		m.stats.evaluated(len(lost))
	} else {
		// One source, or no ticket shared: every proposal whose tickets
		// are all still waiting stands.
		kept = kept[:0:0]
		for _, pr := range pt.props {
			if allAlive(pr, m.alive) {
				kept = append(kept, pr)
			} else {
				lost = append(lost, pr)
			}
		}
	}
	for _, pr := range kept {
		m.startHandoff(ctx, pr, pt.now)
	}
	for _, tt := range pt.taken {
		if m.tickets[tt.t.id] == tt.t {
			tt.pool.restore(tt.t)
		}
	}
	m.publishStats(pt.now, true)
}

// disjoint reports whether the proposals come from one source or share
// no ticket (then the evaluator has nothing to settle).
func disjoint(props []Ranked) bool {
	if len(props) < 2 {
		return true
	}
	one := true
	for _, pr := range props[1:] {
		if pr.Profile != props[0].Profile || pr.Source != props[0].Source {
			one = false
			break
		}
	}
	if one {
		return true
	}
	seen := map[string]bool{}
	for _, pr := range props {
		for _, ids := range pr.Rosters {
			for _, id := range ids {
				if seen[id] {
					return false
				}
				seen[id] = true
			}
		}
	}
	return true
}

func allAlive(pr Ranked, alive func(string) bool) bool {
	for _, ids := range pr.Rosters {
		for _, id := range ids {
			if !alive(id) {
				return false
			}
		}
	}
	return true
}

// startHandoff takes a kept proposal's tickets out of the pools and
// places the room off the matchmaker's goroutine.
func (m *Matchmaker) startHandoff(ctx context.Context, pr Ranked, now time.Time) {
	ps := m.order[pr.Profile]
	fr := FormedRoom{Profile: ps.p.Name, Function: ps.p.Function}
	var entries []Enqueue
	var tickets []*ticket
	lo, hi := matcher.MaxRating, -matcher.MaxRating
	for r, idsOf := range pr.Rosters {
		team := Team{Name: ps.p.Rosters[r].Name}
		for _, id := range idsOf {
			t := m.tickets[id]
			tickets = append(tickets, t)
			lo, hi = min(lo, t.rating), max(hi, t.rating)
			m.dropTicket(t)
			delete(m.parties, t.id)
			for _, u := range t.players {
				q := m.players[u]
				if q == nil {
					continue
				}
				q.state = StateMatching
				entries = append(entries, q.e)
				fr.Players = append(fr.Players, q.e.Player)
				team.Players = append(team.Players, u)
				m.stats.matched(now.Sub(q.since))
			}
		}
		fr.Teams = append(fr.Teams, team)
	}
	fr.Spread = hi - lo
	m.stats.room(fr.Spread, now)
	done := m.inbox.Reserve()
	m.handoffs.Add(1)
	go func() {
		defer m.handoffs.Done()
		m.sem <- struct{}{}
		hctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		msgs, err := m.handoff(hctx, fr)
		cancel()
		<-m.sem
		_ = done.Post(func() { m.handoffDone(fr, entries, tickets, msgs, err) })
		if err == nil {
			for _, e := range entries {
				msg := msgs[e.Player.UUID]
				msg.Channel, msg.UUID = e.Channel, e.Player.UUID
				msg.Profile, msg.Mode, msg.Teams = fr.Profile, fr.Profile, fr.Teams
				m.notify.Notify(e.Player.UUID, msg)
				if m.OnMatch != nil {
					m.OnMatch(e, msg)
				}
			}
		}
	}()
}

// handoffDone records a room in play, or puts its tickets back in the
// pools (keeping their waiting time) when no fight server could take it.
func (m *Matchmaker) handoffDone(fr FormedRoom, entries []Enqueue, tickets []*ticket, msgs map[string]MatchMsg, err error) {
	now := time.Now()
	if err != nil {
		m.log.Error("room handoff failed; players go back to the queue", "err", err, "players", len(entries))
		for _, t := range tickets {
			back := false
			for _, u := range t.players {
				if q := m.players[u]; q != nil && q.key == t.id {
					q.state = StateQueued
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
