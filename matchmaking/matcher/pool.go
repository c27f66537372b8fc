package matcher

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Pool is the tickets of one mode waiting for a room. It is not safe for
// concurrent use: one goroutine (the dispatcher's matchmaker) owns it.
//
// Add and Remove cost O(1) amortised (plus a map operation): additions wait
// in a side list and removals are recorded, and both are folded into the
// sorted pool at the next Tick, which sorts only the additions. Tick does
// not touch the ID index: the slots of matched tickets are retired and
// their IDs forgotten a few at a time by later calls (see sweep).
type Pool struct {
	cfg Config

	// ids maps a waiting ticket's ID to its slot. It may also hold IDs of
	// tickets matched since, whose slots are retired: an entry counts only
	// if its slot is live and holds that ID (see lookup).
	ids     map[string]int32
	slots   []slot
	retired []int32 // slots of matched tickets, not yet swept
	// held are the slots the last Tick matched: not swept before the next
	// Tick or Add, so that Unmatch can put their tickets back in place;
	// lastRooms are that Tick's rooms as positions in sorted, where its
	// matched entries stay (members 0) until the next merge (holes).
	held      []int32
	lastRooms *groups
	holes     bool
	free      []int32
	seq       uint64
	n         int // tickets waiting
	peak      int // recent pool size at tick start, decaying: shrink's hysteresis
	dels      int // index deletes since it was last rebuilt

	// Enqueue times are kept as offsets from epoch, the first Enqueued
	// seen, so windows are integer arithmetic on a compact entry.
	epoch    time.Time
	hasEpoch bool
	players  int

	sorted  []entry // the pool at the last tick, by (rating, seq); may hold entries listed in removed, and holes
	spare   []entry // the other merge buffer
	pending []entry // added since the last tick, unsorted
	removed []entry // removed since the last tick (rating and seq set)
	count   []int   // sortPending's digit counts

	sc   scratch
	last TickStats
}

// slot holds a waiting ticket; seq is 0 in a free or retired slot (a
// retired slot still holds its matched ticket until swept). listed is
// true while the slot is in retired or held: sweep frees it then, not
// Remove (a ticket put back by Restore or Unmatch and removed again).
type slot struct {
	t      Ticket
	seq    uint64
	listed bool
}

// entry is a ticket's place in the sorted pool.
type entry struct {
	rating  int
	enq     int64 // nanoseconds since the pool's epoch
	seq     uint64
	slot    int32
	members int32 // 0 marks an entry matched during this tick
}

func cmpEntry(a, b entry) int {
	if c := cmp.Compare(a.rating, b.rating); c != 0 {
		return c
	}
	return cmp.Compare(a.seq, b.seq)
}

func lessEntry(a, b entry) bool {
	return a.rating < b.rating || (a.rating == b.rating && a.seq < b.seq)
}

// TickStats describes the last Tick.
type TickStats struct {
	// Tickets and Players waited in the pool when the tick began.
	Tickets, Players int
	// Rooms is the number of rooms formed; Spread is their total spread.
	Rooms  int
	Spread int64
	// Tightened is true when Config.Tighten's optimiser formed the rooms
	// instead of the seed's rule.
	Tightened bool
}

// NewPool returns an empty pool for one mode. It panics if cfg is invalid:
// check it with cfg.Validate when reading configuration.
func NewPool(cfg Config) *Pool {
	if err := cfg.Validate(); err != nil {
		panic("matcher.NewPool: " + err.Error())
	}
	return &Pool{cfg: cfg, ids: make(map[string]int32)}
}

// Config is the pool's rule.
func (p *Pool) Config() Config { return p.cfg }

// Len is the number of tickets waiting.
func (p *Pool) Len() int { return p.n }

// Players is the number of players waiting (the sum of Members).
func (p *Pool) Players() int { return p.players }

// LastTick describes the last Tick (zero before the first).
func (p *Pool) LastTick() TickStats { return p.last }

// Add puts t in the pool; it takes part from the next Tick on. It returns
// an error wrapping ErrDuplicate if a ticket with t.ID is waiting already
// (the waiting ticket is kept unchanged), or ErrBadTicket for an empty ID,
// Members outside 1..RoomSize, a rating outside [-MaxRating, MaxRating] or a
// zero Enqueued.
func (p *Pool) Add(t Ticket) error {
	switch {
	case t.ID == "":
		return fmt.Errorf("add ticket: empty id: %w", ErrBadTicket)
	case t.Members < 1 || t.Members > p.cfg.RoomSize:
		return fmt.Errorf("add ticket %q: %d members, want 1..%d: %w", t.ID, t.Members, p.cfg.RoomSize, ErrBadTicket)
	case t.Rating < -MaxRating || t.Rating > MaxRating:
		return fmt.Errorf("add ticket %q: rating %d out of range: %w", t.ID, t.Rating, ErrBadTicket)
	case t.Enqueued.IsZero():
		return fmt.Errorf("add ticket %q: no enqueue time: %w", t.ID, ErrBadTicket)
	}
	if _, ok := p.lookup(t.ID); ok {
		return fmt.Errorf("add ticket %q: %w", t.ID, ErrDuplicate)
	}
	p.endHold()
	p.sweep(2)
	if !p.hasEpoch {
		p.epoch, p.hasEpoch = t.Enqueued, true
	}
	p.seq++
	var s int32
	if n := len(p.free); n > 0 {
		s = p.free[n-1]
		p.free = p.free[:n-1]
	} else {
		s = int32(len(p.slots))
		p.slots = append(p.slots, slot{})
	}
	p.slots[s] = slot{t: t, seq: p.seq}
	p.ids[t.ID] = s
	p.n++
	p.players += t.Members
	p.pending = append(p.pending, entry{
		rating:  t.Rating,
		enq:     int64(t.Enqueued.Sub(p.epoch)),
		seq:     p.seq,
		slot:    s,
		members: int32(t.Members),
	})
	return nil
}

// Restore puts back a ticket the pool's last Tick matched, for a room the
// caller did not keep (the matchmaker's evaluator gave its tickets to
// another pool's room). It is Add, cheaper: the ticket's slot and index
// entry are revived when they have not been swept yet. The ticket takes
// part from the next Tick on, keeping its Enqueued time.
func (p *Pool) Restore(t Ticket) error {
	s, ok := p.ids[t.ID]
	if !ok || int(s) >= len(p.slots) || p.slots[s].seq != 0 || p.slots[s].t.ID != t.ID {
		return p.Add(t)
	}
	// A retired slot still holding the ticket: live again. Its entry in
	// p.retired is skipped by sweep.
	p.seq++
	p.slots[s] = slot{t: t, seq: p.seq, listed: p.slots[s].listed}
	p.n++
	p.players += t.Members
	p.pending = append(p.pending, entry{rating: t.Rating, enq: int64(t.Enqueued.Sub(p.epoch)), seq: p.seq, slot: s, members: int32(t.Members)})
	return nil
}

// Unmatch puts back, in its place, ticket j of room i of the rooms the
// last Tick returned (Room.Tickets[j]), for a room the caller did not
// keep: cheaper than Restore (no index lookup, no sorting), and the
// ticket keeps its arrival order among equal ratings, as if it had never
// been taken. It is valid until the next Tick or Add (Remove and Restore
// may come between) and returns false when the ticket cannot be put back
// so (out of range, already back, or an Add or Tick came since): Restore
// it then.
func (p *Pool) Unmatch(i, j int) bool {
	g := p.lastRooms
	if g == nil || i < 0 || i >= g.rooms() {
		return false
	}
	start := int32(0)
	if i > 0 {
		start = g.ends[i-1]
	}
	if j < 0 || start+int32(j) >= g.ends[i] {
		return false
	}
	e := &p.sorted[g.idx[start+int32(j)]]
	sl := &p.slots[e.slot]
	if e.members != 0 || sl.seq != 0 {
		return false
	}
	e.members = int32(sl.t.Members)
	sl.seq = e.seq
	p.n++
	p.players += sl.t.Members
	return true
}

// endHold ends what Unmatch may put back: the last Tick's matched slots
// join the retired ones, to be swept.
func (p *Pool) endHold() {
	if len(p.held) > 0 {
		p.retired = append(p.retired, p.held...)
		p.held = p.held[:0]
	}
	p.lastRooms = nil
}

// Get returns the waiting ticket with id, and false if none waits.
func (p *Pool) Get(id string) (Ticket, bool) {
	s, ok := p.lookup(id)
	if !ok {
		return Ticket{}, false
	}
	return p.slots[s].t, true
}

// Remove takes the ticket with id out of the pool. It returns false if no
// such ticket is waiting (never added, removed already, or matched).
func (p *Pool) Remove(id string) bool {
	p.sweep(2)
	s, ok := p.lookup(id)
	if !ok {
		return false
	}
	sl := p.slots[s]
	p.removed = append(p.removed, entry{rating: sl.t.Rating, seq: sl.seq})
	p.players -= sl.t.Members
	p.n--
	delete(p.ids, id)
	p.dels++
	if p.slots[s].listed {
		// Put back since a Tick matched it: sweep frees the slot.
		p.slots[s] = slot{listed: true}
	} else {
		p.slots[s] = slot{}
		p.free = append(p.free, s)
	}
	p.reindex()
	return true
}

// lookup returns the slot of the waiting ticket with id.
func (p *Pool) lookup(id string) (int32, bool) {
	s, ok := p.ids[id]
	if !ok || int(s) >= len(p.slots) || p.slots[s].seq == 0 || p.slots[s].t.ID != id {
		return 0, false
	}
	return s, true
}

// sweep frees up to max retired slots, forgetting their tickets' IDs
// (unless the ID has queued again since, in another slot). Add and Remove
// sweep two each and Tick sweepBudget, so retired slots are freed about as
// fast as new tickets need them.
func (p *Pool) sweep(max int) {
	for ; max > 0 && len(p.retired) > 0; max-- {
		s := p.retired[len(p.retired)-1]
		p.retired = p.retired[:len(p.retired)-1]
		p.slots[s].listed = false
		if p.slots[s].seq != 0 {
			continue // put back since it was retired: live again
		}
		id := p.slots[s].t.ID
		if cur, ok := p.ids[id]; ok && cur == s {
			delete(p.ids, id)
			p.dels++
		}
		p.slots[s] = slot{}
		p.free = append(p.free, s)
	}
	p.reindex()
}

// sweepBudget is how many retired slots a Tick frees (about a millisecond).
const sweepBudget = 8192

// Tick forms every room it can among the waiting tickets at now, removes
// their tickets from the pool and returns the rooms (none when nothing
// matches). Every room satisfies the rule at now (see the package doc).
// Calling Tick with a time earlier than a ticket's Enqueued treats that
// ticket as having waited zero.
func (p *Pool) Tick(now time.Time) []Room {
	rooms, _ := p.TickAppend(now, nil, nil)
	return rooms
}

// TickAppend is Tick, appending the rooms to rooms and their tickets to
// tickets, and returning both: a caller that ticks often reuses its
// buffers instead of allocating the rooms' tickets every tick. The rooms
// returned (rooms[len(rooms):] of the ones given) point into tickets.
func (p *Pool) TickAppend(now time.Time, rooms []Room, tickets []Ticket) ([]Room, []Ticket) {
	p.endHold()
	p.sweep(sweepBudget)
	p.merge()
	p.peak = max(p.n, p.peak-p.peak/8)
	p.shrink()
	p.last = TickStats{Tickets: len(p.sorted), Players: p.players}
	if len(p.sorted) == 0 {
		return rooms, tickets
	}
	g, tightened := p.sc.plan(p.cfg, p.sorted, int64(now.Sub(p.epoch)))
	p.last.Rooms, p.last.Spread, p.last.Tightened = g.rooms(), g.spread, tightened
	if g.rooms() == 0 {
		return rooms, tickets
	}
	base := len(tickets)
	tickets = slices.Grow(tickets, len(g.idx))[:base+len(g.idx)]
	rooms = slices.Grow(rooms, g.rooms())
	start := 0
	for _, end := range g.ends {
		for k := start; k < int(end); k++ {
			e := &p.sorted[g.idx[k]]
			sl := &p.slots[e.slot]
			tickets[base+k] = sl.t
			sl.seq = 0
			sl.listed = true
			p.held = append(p.held, e.slot)
			p.players -= sl.t.Members
			e.members = 0
		}
		rt := tickets[base+start : base+int(end) : base+int(end)]
		rooms = append(rooms, Room{Tickets: rt, Spread: rt[len(rt)-1].Rating - rt[0].Rating})
		start = int(end)
	}
	p.n -= len(g.idx)
	// The matched entries stay in sorted, as holes, until the next merge
	// (Unmatch may fill them again).
	p.holes, p.lastRooms = true, g
	return rooms, tickets
}

// merge folds the tickets added and removed since the last tick into the
// sorted pool: O(N + K log K + R log R).
func (p *Pool) merge() {
	holes := p.holes
	p.holes = false
	if len(p.pending) == 0 && len(p.removed) == 0 {
		if holes {
			p.sorted = slices.DeleteFunc(p.sorted, func(e entry) bool { return e.members == 0 })
		}
		return
	}
	p.sortPending()
	if len(p.sorted) == 0 && len(p.removed) == 0 {
		// Nothing to merge with: the sorted additions are the pool.
		p.sorted, p.pending = p.pending, p.sorted[:0]
		return
	}
	slices.SortFunc(p.removed, cmpEntry)
	out := p.spare[:0]
	if need := len(p.sorted) + len(p.pending); cap(out) < need {
		out = make([]entry, 0, need+need/4)
	}
	old, add, rm := p.sorted, p.pending, p.removed
	i, j, r := 0, 0, 0
	for i < len(old) || j < len(add) {
		var e entry
		if j == len(add) || (i < len(old) && lessEntry(old[i], add[j])) {
			e = old[i]
			i++
			if e.members == 0 {
				continue // matched by the last tick
			}
		} else {
			e = add[j]
			j++
		}
		for r < len(rm) && lessEntry(rm[r], e) {
			r++
		}
		if r < len(rm) && rm[r].seq == e.seq {
			r++
			continue
		}
		out = append(out, e)
	}
	p.spare, p.sorted = p.sorted[:0], out
	p.pending, p.removed = p.pending[:0], p.removed[:0]
}

// reindex rebuilds the ID index, keeping only waiting tickets, once it has
// seen more than twice its size in deletes (O(N), amortised over those
// deletes). Go's maps keep a tombstone per delete until they grow, and a
// pool whose tickets all turn over every few seconds would otherwise probe
// ever longer chains. Entries of retired slots go too (sweep only deletes
// an entry that still points at the slot it frees).
func (p *Pool) reindex() {
	if p.dels <= 2*len(p.ids)+1024 || len(p.held) > 0 {
		return // (held slots' tickets may be put back: keep their ids)
	}
	ids := make(map[string]int32, p.n)
	for id, s := range p.ids {
		if _, live := p.lookup(id); live {
			ids[id] = s
		}
	}
	p.ids, p.dels = ids, 0
}

// shrink gives memory back after the pool has stayed much smaller than it
// was: buffers over four times both the need and the recent peak (which
// decays by 1/8 a tick) are reallocated, and slots and the ID index are
// rebuilt from the waiting tickets (O(N) for the N left; retired slots and
// their IDs go at once). A pool that empties at every tick and refills
// before the next keeps its memory. It runs at the start of a tick, after
// the merge, when every waiting ticket is in p.sorted and none is held.
func (p *Pool) shrink() {
	n := max(len(p.sorted), p.peak)
	if cap(p.spare) > 4*n+1024 {
		p.spare = nil
	}
	if cap(p.pending) > 4*n+1024 {
		p.pending = nil
	}
	if cap(p.sorted) > 4*n+1024 {
		p.sorted = slices.Clone(p.sorted)
	}
	p.sc.shrink(n)
	if len(p.slots) <= 4*n+1024 {
		return
	}
	slots := make([]slot, len(p.sorted), n+n/4)
	ids := make(map[string]int32, n)
	for i := range p.sorted {
		e := &p.sorted[i]
		slots[i] = p.slots[e.slot]
		slots[i].listed = false // retired is emptied
		ids[slots[i].t.ID] = int32(i)
		e.slot = int32(i)
	}
	p.slots, p.free, p.ids, p.retired, p.dels = slots, nil, ids, nil, 0
}
