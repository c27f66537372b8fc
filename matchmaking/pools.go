package matchmaking

import (
	"sync/atomic"
	"time"

	"github.com/arena-game/arena/matchmaking/matcher"
)

// ticket is one waiting unit in the pools: a player, or a whole party.
// What a tick reads and writes of it comes first, in one cache line of
// a solo (its first 56 bytes).
type ticket struct {
	prof    *profileState
	rating  int
	members int
	// in has bit i set while the ticket is in pool i of its profile (in
	// its seed matcher pool, or in its order list); young has bit i set
	// while it waits to be old enough for pool i.
	in, young uint16
	// waiting is true from addTicket until the ticket is matched,
	// cancelled or expires; matched from a tick's commit until its room's
	// hand-off failed (its owners are matching meanwhile: stateOf).
	waiting, matched bool
	backend          bool // made by a backend (kept in the store)
	// solo is a solo ticket's entry (nil for a party): a tick hands it
	// to the hand-off with the ticket, which then reads only the entry.
	solo   *qentry
	owners []*qentry // the members' queue entries, as players
	// mark is the evaluator's: the tick that took the ticket.
	mark    uint64
	id      string
	created time.Time
	expires time.Time
	search  *SearchFields
	players []string // member uuids
}

func (t *ticket) candidate() Candidate {
	return Candidate{ID: t.id, Rating: t.rating, Members: t.members, Created: t.created, Search: t.search}
}

// profileState is a profile's pools and function in the matchmaker.
type profileState struct {
	p       *Profile
	index   int      // place in the file
	fn      Function // nil: the seed's rule, per pool
	pools   []*poolState
	tickets int
	players atomic.Int64 // read by Stats from any goroutine
}

// poolState is one pool of a profile: the tickets admitted to it (static
// filters passed, time bounds met), kept in a seed matcher.Pool for the
// seed's rule or in arrival order for other functions. Time bounds are
// applied by two FIFOs in creation order: tickets too young wait in
// young until they are old enough, admitted tickets leave through old
// once they are too old.
type poolState struct {
	spec    *Pool
	index   int
	bit     uint16
	seed    *matcher.Pool // seed's rule
	n       int           // tickets in the pool
	order   []*ticket     // admission order (non-seed functions); may hold removed tickets
	removed int
	young   fifo // created_before: not yet admitted
	old     fifo // created_after: admitted, leave when too old
}

// fifo is a queue of tickets in creation order; entries whose ticket left
// since are skipped when reached.
type fifo struct {
	q    []*ticket
	head int
}

func (f *fifo) push(t *ticket) { f.q = append(f.q, t) }

// popWhile pops and returns tickets while ok holds for the head.
func (f *fifo) popWhile(ok func(*ticket) bool, out []*ticket) []*ticket {
	for f.head < len(f.q) && ok(f.q[f.head]) {
		out = append(out, f.q[f.head])
		f.q[f.head] = nil
		f.head++
	}
	if f.head > 1024 && f.head*2 > len(f.q) {
		f.q = append(f.q[:0], f.q[f.head:]...)
		f.head = 0
	}
	return out
}

func newProfileState(p *Profile, index int, fn Function) *profileState {
	ps := &profileState{p: p, index: index, fn: fn}
	for i := range p.Pools {
		pl := &poolState{spec: &p.Pools[i], index: i, bit: 1 << i}
		if fn == nil {
			pl.seed = matcher.NewPool(p.matcherConfig())
		}
		ps.pools = append(ps.pools, pl)
	}
	return ps
}

// add puts t in every pool of the profile whose filters it passes.
func (ps *profileState) add(t *ticket, now time.Time) {
	t.prof = ps
	t.in, t.young = 0, 0
	ps.tickets++
	ps.players.Add(int64(t.members))
	for _, pl := range ps.pools {
		if !pl.spec.admits(t.search) {
			continue
		}
		if pl.spec.CreatedBefore > 0 && now.Sub(t.created) < time.Duration(pl.spec.CreatedBefore) {
			t.young |= pl.bit
			pl.young.push(t)
			continue
		}
		pl.admit(t, now)
	}
}

// remove takes t out of every pool.
func (ps *profileState) remove(t *ticket) {
	ps.tickets--
	ps.players.Add(-int64(t.members))
	for _, pl := range ps.pools {
		pl.drop(t)
	}
	t.young = 0
}

// admit puts t in the pool (unless it is too old for created_after).
func (pl *poolState) admit(t *ticket, now time.Time) {
	if pl.spec.CreatedAfter > 0 {
		if now.Sub(t.created) > time.Duration(pl.spec.CreatedAfter) {
			return
		}
		pl.old.push(t)
	}
	t.in |= pl.bit
	pl.n++
	if pl.seed != nil {
		_ = pl.seed.Add(matcher.Ticket{ID: t.id, Rating: t.rating, Members: t.members, Enqueued: t.created, Payload: t})
		return
	}
	pl.order = append(pl.order, t)
}

// drop takes t out of the pool if it is in it.
func (pl *poolState) drop(t *ticket) {
	if t.in&pl.bit == 0 {
		return
	}
	t.in &^= pl.bit
	pl.n--
	if pl.seed != nil {
		pl.seed.Remove(t.id)
		return
	}
	pl.removed++
	if pl.removed > 64 && pl.removed*2 > len(pl.order) {
		kept := pl.order[:0]
		for _, o := range pl.order {
			if o.in&pl.bit != 0 {
				kept = append(kept, o)
			}
		}
		clear(pl.order[len(kept):])
		pl.order, pl.removed = kept, 0
	}
}

// gate applies the pool's time bounds at now: tickets old enough enter,
// tickets too old leave.
func (pl *poolState) gate(now time.Time, buf []*ticket) []*ticket {
	if d := time.Duration(pl.spec.CreatedBefore); d > 0 {
		buf = pl.young.popWhile(func(t *ticket) bool { return now.Sub(t.created) >= d }, buf[:0])
		for _, t := range buf {
			if t.waiting && t.young&pl.bit != 0 {
				t.young &^= pl.bit
				pl.admit(t, now)
			}
		}
	}
	if d := time.Duration(pl.spec.CreatedAfter); d > 0 {
		buf = pl.old.popWhile(func(t *ticket) bool { return now.Sub(t.created) > d }, buf[:0])
		for _, t := range buf {
			pl.drop(t)
		}
	}
	return buf
}

// candidates lists the pool's tickets in admission order.
func (pl *poolState) candidates() []Candidate {
	out := make([]Candidate, 0, pl.n)
	for _, t := range pl.order {
		if t.in&pl.bit != 0 {
			out = append(out, t.candidate())
		}
	}
	return out
}

// took records that the seed pool's Tick took t out of its matcher pool.
func (pl *poolState) took(t *ticket) {
	t.in &^= pl.bit
	pl.n--
}

// restore puts back a ticket the seed pool's Tick took for a proposal the
// evaluator rejected: ticket j of room i of that Tick's rooms.
func (pl *poolState) restore(t *ticket, i, j int) {
	if t.waiting && t.in&pl.bit == 0 {
		t.in |= pl.bit
		pl.n++
		if !pl.seed.Unmatch(i, j) {
			_ = pl.seed.Restore(matcher.Ticket{ID: t.id, Rating: t.rating, Members: t.members, Enqueued: t.created, Payload: t})
		}
	}
}
