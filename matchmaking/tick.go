package matchmaking

import (
	"context"
	"errors"
	"time"

	"github.com/arena-game/arena/matchmaking/matcher"
)

// pendingTick is a tick whose plugin functions have not all answered;
// the next tick waits for them (each call has FunctionTimeout).
type pendingTick struct {
	now     time.Time
	waiting int
}

// tick expires lapsed tickets, fills open seats, asks every profile's
// function for proposals and settles them profile by profile: a ticket
// belongs to one profile, so proposals of different profiles never share
// one, and each profile's rooms leave for their hand-off (handoffs) as
// soon as they are settled, while later profiles are still matching. A
// plugin's profile is settled when its answer arrives.
//
// What a tick does on the matchmaker's goroutine is what the next
// request must see: the matched tickets out of every pool and index, and
// their players matching. Forming each room's players and teams, placing
// it and delivering its match messages happen on hand-off goroutines,
// batch by batch, while the tick goes on.
func (m *Matchmaker) tick(ctx context.Context, now time.Time) {
	m.lapseRooms(now)
	m.sweepTickets(sweepBudget)
	m.expireDue(now)
	m.backfillTick(ctx, now)
	out := m.newHandoffs(now)
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
			m.seedTick(ps, now, out)
		case m.cfg.Functions[ps.p.Function] != nil:
			m.callPlugin(ctx, ps, pt)
			continue
		default:
			// Built-in functions are pure and fast: called here.
			req := m.request(ps, now)
			props, err := ps.fn.Match(context.Background(), req)
			m.accept(ps, req, props, err, out)
		}
		m.stats.tickSeconds(ps.p.Name, time.Since(start))
	}
	out.flush()
	if pt.waiting > 0 {
		m.pending = pt
	}
	if cap(m.ticketBuf) > 4*m.bufUsed+4096 {
		m.roomBuf, m.ticketBuf = nil, nil // far larger than ticks need now
	}
	m.bufUsed = 0
	m.publishStats(now, true)
}

// poolRooms is the rooms one seed pool's Tick formed.
type poolRooms struct {
	pl    *poolState
	rooms []matcher.Room
}

// seedTick runs the seed's rule on each of ps's pools and settles their
// rooms: when one pool formed rooms they are all kept (a pool never
// proposes a ticket twice); when several did, the evaluator settles them.
func (m *Matchmaker) seedTick(ps *profileState, now time.Time, out *handoffs) {
	srcs := m.seedRooms[:0]
	rooms, tickets := m.roomBuf[:0], m.ticketBuf[:0]
	for _, pl := range ps.pools {
		if pl.seed.Len() == 0 {
			continue
		}
		start := len(rooms)
		if rooms, tickets = pl.seed.TickAppend(now, rooms, tickets); len(rooms) > start {
			srcs = append(srcs, poolRooms{pl, rooms[start:]})
		}
	}
	defer func() {
		// The buffers are the next profile's (without this one's tickets).
		clear(rooms)
		clear(tickets)
		m.roomBuf, m.ticketBuf = rooms[:0], tickets[:0]
		m.bufUsed = max(m.bufUsed, len(tickets))
	}()
	switch len(srcs) {
	case 0:
	case 1:
		pl, rooms := srcs[0].pl, srcs[0].rooms
		for len(rooms) > 0 {
			chunk := rooms[:min(len(rooms), touchRooms)]
			rooms = rooms[len(chunk):]
			out.touched += touch(chunk)
			for _, r := range chunk {
				for _, mt := range r.Tickets {
					t := mt.Payload.(*ticket)
					pl.took(t)
					out.add(t)
				}
				out.room(ps, nil)
			}
		}
	default:
		m.settleSeed(ps, srcs, out)
	}
	clear(srcs)
	m.seedRooms = srcs[:0]
}

// settleSeed evaluates the rooms several seed pools of ps formed (their
// tickets may overlap), keeps the best and puts the others' tickets back
// in the pools that took them.
func (m *Matchmaker) settleSeed(ps *profileState, srcs []poolRooms, out *handoffs) {
	n, k := 0, 0
	for _, s := range srcs {
		n += len(s.rooms)
		for _, r := range s.rooms {
			k += len(r.Tickets)
		}
	}
	props := make([]proposal, n)
	ptrs := make([]*proposal, n)
	ts := make([]*ticket, 0, k)
	i := 0
	for _, s := range srcs {
		for j, r := range s.rooms {
			if j%touchRooms == 0 {
				out.touched += touch(s.rooms[j:min(len(s.rooms), j+touchRooms)])
			}
			start := len(ts)
			for _, mt := range r.Tickets {
				t := mt.Payload.(*ticket)
				s.pl.took(t)
				ts = append(ts, t)
			}
			props[i] = proposal{Proposal: Proposal{Score: -float64(r.Spread)}, profile: ps.index, source: s.pl.index, index: j,
				tickets: ts[start:len(ts):len(ts)]}
			ptrs[i] = &props[i]
			i++
		}
	}
	m.serial++
	kept, lost := evaluate(ptrs, m.serial)
	for _, pr := range kept {
		for _, t := range pr.tickets {
			out.add(t)
		}
		out.room(ps, nil)
	}
	for _, pr := range lost {
		// A seed pool's Tick took these out of its matcher pool.
		for j, t := range pr.tickets {
			ps.pools[pr.source].restore(t, pr.index, j)
		}
	}
	m.stats.evaluated(len(lost))
}

// touchRooms is how many rooms' tickets touch loads at once.
const touchRooms = 32

// touch reads one word of each of rooms' tickets, in a loop whose loads
// do not depend on each other, so that the processor fetches their cache
// lines in parallel rather than one miss after another when the tick
// reaches each ticket (a million matched tickets are a million misses:
// one at a time they cost a tick about 0.15 s). Its result only keeps
// the loads from being optimised away.
func touch(rooms []matcher.Room) int {
	n := 0
	for _, r := range rooms {
		for _, mt := range r.Tickets {
			n += int(mt.Payload.(*ticket).in)
		}
	}
	return n
}

// request builds a function's request from ps's pools.
func (m *Matchmaker) request(ps *profileState, now time.Time) *MatchRequest {
	req := &MatchRequest{Profile: ps.p, Now: now, Pools: make([][]Candidate, len(ps.pools))}
	for i, pl := range ps.pools {
		req.Pools[i] = pl.candidates()
	}
	return req
}

// callPlugin calls a plugin function off the matchmaker's goroutine with
// FunctionTimeout; its answer comes back through a reservation and is
// settled then.
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
			out := m.newHandoffs(pt.now)
			m.accept(ps, req, props, err, out)
			out.flush()
			pt.waiting--
			if pt.waiting == 0 && m.pending == pt {
				m.pending = nil
			}
			m.publishStats(pt.now, true)
		})
	}()
}

// accept validates one function call's answer and keeps its proposals
// whose tickets all still wait (a player may cancel while a plugin
// answers); an error or a bad answer loses the tick for that profile
// only (logged and counted). One call's proposals share no ticket (that
// is validated), and no other profile's proposal has one of its tickets,
// so there is nothing else to settle.
func (m *Matchmaker) accept(ps *profileState, req *MatchRequest, props []Proposal, err error, out *handoffs) {
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
	lost := 0
	for _, pr := range props {
		ok := true
		for _, ids := range pr.Rosters {
			for _, id := range ids {
				if t := m.ticket(id); t == nil || t.prof != ps {
					ok = false // gone since the call (or queued again elsewhere)
				}
			}
		}
		if !ok {
			lost++
			continue
		}
		for _, ids := range pr.Rosters {
			for _, id := range ids {
				out.add(m.ticket(id))
			}
		}
		out.room(ps, pr.Rosters)
	}
	m.stats.evaluated(lost)
}

// member is what placing a room needs of one of its players.
type member struct {
	uuid, channel string
	backend       bool
}

// sweepBudget is how many dropped ids a tick deletes from the index.
const sweepBudget = 16384
