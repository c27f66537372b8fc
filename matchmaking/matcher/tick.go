package matcher

import (
	"slices"
	"time"
)

// groups is a set of rooms as indices into a sorted []entry: room r is
// idx[ends[r-1]:ends[r]] (from 0 for the first), each in rating order.
type groups struct {
	idx    []int32
	ends   []int32
	spread int64
}

func (g *groups) reset()     { g.idx, g.ends, g.spread = g.idx[:0], g.ends[:0], 0 }
func (g *groups) rooms() int { return len(g.ends) }

// add appends a room made of es[members...] (in rating order).
func (g *groups) add(es []entry, members []int32) {
	g.idx = append(g.idx, members...)
	g.ends = append(g.ends, int32(len(g.idx)))
	g.spread += int64(es[members[len(members)-1]].rating - es[members[0]].rating)
}

// scratch holds a tick's working memory, reused across ticks.
type scratch struct {
	w     []float64 // each entry's window
	stack []int32   // greedy's unmatched tickets
	pick  []int32   // fill's room, as positions in its sequence
	room  []int32   // fill's room, as entry indices in rating order
	floor groups    // the seed's rooms
	cand  []int32   // the optimiser's candidates
	dp    []cell
	best  groups // the optimiser's rooms
}

// plan picks the rooms to form among es (sorted by rating, then arrival)
// at now (nanoseconds since the epoch es[i].enq counts from): the seed's
// rooms, or with cfg.Tighten the optimiser's when they are at least as many
// with no larger mean spread. It reports whether the optimiser's were kept.
func (sc *scratch) plan(cfg Config, es []entry, now int64) (*groups, bool) {
	n := len(es)
	sc.w = resize(sc.w, n)
	for i := range es {
		sc.w[i] = cfg.Window(time.Duration(now - es[i].enq))
	}
	k := int32(cfg.RoomSize)
	sc.floor.reset()
	sc.greedy(es, k, &sc.floor)
	if !cfg.Tighten {
		return &sc.floor, false
	}
	sc.optimise(es, k, now)
	f, b := &sc.floor, &sc.best
	// b.spread/b.rooms <= f.spread/f.rooms, without dividing.
	if b.rooms() > 0 && b.rooms() >= f.rooms() && b.spread*int64(max(f.rooms(), 1)) <= f.spread*int64(b.rooms()) {
		return b, true
	}
	return f, false
}

// valid reports whether es[members...] (in rating order) is a room by the
// rule: every member's window covers its distance to the lowest and to the
// highest rated member. (Member counts are the caller's business.)
func valid(es []entry, w []float64, members []int32) bool {
	lo, hi := es[members[0]].rating, es[members[len(members)-1]].rating
	for _, m := range members {
		r := es[m].rating
		if !within(r-lo, w[m]) || !within(hi-r, w[m]) {
			return false
		}
	}
	return true
}

// greedy is the seed's rule in one pass over es. The seed sorts the pool,
// takes the first run of RoomSize consecutive players that satisfies the
// rule, removes it and starts again from the lowest rating. Runs entirely
// below the removed one are unchanged and were already rejected, so the
// restart only needs to look at runs that end at or after the removal
// point. A stack of the tickets not matched yet, in rating order, where each
// ticket pushed is checked as the top of a run, does exactly that: with
// solos, greedy forms the seed's rooms, in the seed's order (SeedTick's
// tests check this against a literal transcription of the seed).
//
// Parties generalise the run to the fewest top tickets whose members reach
// RoomSize, kept if they make it exactly and satisfy the rule. When that run
// holds a party and fails, fill also tries the tickets below, skipping those
// that do not fit (so that solos are not stranded between parties).
func (sc *scratch) greedy(es []entry, k int32, out *groups) {
	stack := sc.stack[:0]
	for i := range es {
		stack = append(stack, int32(i))
		j, sum, party := len(stack)-1, int32(0), false
		for {
			sum += es[stack[j]].members
			party = party || es[stack[j]].members > 1
			if sum >= k || j == 0 {
				break
			}
			j--
		}
		if sum == k && valid(es, sc.w, stack[j:]) {
			out.add(es, stack[j:])
			stack = stack[:j]
			continue
		}
		if !party {
			continue
		}
		room, pos := sc.fill(es, k, stack, len(stack)-1)
		if room == nil {
			continue
		}
		out.add(es, room)
		// Take the room's tickets (at positions pos, descending) off the
		// stack, keeping the others in order.
		w, next := int(pos[len(pos)-1]), len(pos)-1
		for r := w; r < len(stack); r++ {
			if next >= 0 && r == int(pos[next]) {
				next--
				continue
			}
			stack[w] = stack[r]
			w++
		}
		stack = stack[:w]
	}
	sc.stack = stack
}

// fill builds a room whose highest rated ticket is seq[top], from the
// tickets below it in seq (entry indices in rating order): walking down at
// most lookback places, it takes each ticket whose members still fit and
// whose window reaches the top's rating, while its rating stays within every
// taken ticket's window, until the members add up to RoomSize. It returns
// the room (entry indices in rating order) and the positions in seq of its
// tickets (descending), or nil when no room forms. The room is checked with
// valid, so it always satisfies the rule. Both slices are reused by the
// next call.
func (sc *scratch) fill(es []entry, k int32, seq []int32, top int) (room []int32, pos []int32) {
	t := seq[top]
	hi := es[t].rating
	need := k - es[t].members
	pos = append(sc.pick[:0], int32(top))
	floor := float64(hi) - sc.w[t] // lowest rating every taken ticket's window reaches
	limit := max(top-lookback(k), 0)
	for q := top - 1; need > 0 && q >= limit; q-- {
		x := seq[q]
		r := es[x].rating
		if float64(r) < floor {
			break // lower ratings are further still
		}
		if es[x].members <= need && within(hi-r, sc.w[x]) {
			pos = append(pos, int32(q))
			need -= es[x].members
			floor = max(floor, float64(r)-sc.w[x])
		}
	}
	sc.pick = pos
	if need != 0 {
		return nil, nil
	}
	room = sc.room[:0]
	for i := len(pos) - 1; i >= 0; i-- {
		room = append(room, seq[pos[i]])
	}
	sc.room = room
	if !valid(es, sc.w, room) {
		return nil, nil
	}
	return room, pos
}

// lookback bounds how far below a room's highest ticket fill looks, so a
// tick stays linear when many tickets in a row cannot join.
func lookback(k int32) int { return 8*int(k) + 8 }

// cell is the optimiser's best plan for a prefix of the candidates.
type cell struct {
	rooms  int32
	from   int32 // -1: the last candidate stays; q: the last room's lowest candidate
	spread int64
	wait   float64 // total nanoseconds waited by the matched tickets
}

// better orders plans: more rooms, then less total spread, then more total
// waiting time matched (the longest waiters first).
func better(a, b cell) bool {
	if a.rooms != b.rooms {
		return a.rooms > b.rooms
	}
	if a.spread != b.spread {
		return a.spread < b.spread
	}
	return a.wait > b.wait
}

// optimise fills sc.best with the rooms of the best plan (see better) it
// finds by dynamic programming over the candidates in rating order.
// Candidates are the tickets that could be in some room now: a full party,
// or one whose window reaches its nearest neighbour's rating. For each
// candidate, taken as the highest rated ticket of a room, fill builds one
// room below it; the programme chooses, from the lowest candidate up,
// between leaving a candidate out and closing the room fill built for it
// (leaving out the candidates that room skipped). O(N * lookback), and
// O(N * RoomSize) when rooms form from neighbours.
//
// With solos and equal windows (all tickets waited as long), fill's room is
// the run of RoomSize consecutive tickets ending at the candidate, and the
// best plan of consecutive runs is the best plan of this tick: a room that
// skips a ticket between its lowest and highest can take that ticket
// instead of its lowest, with no more spread.
func (sc *scratch) optimise(es []entry, k int32, now int64) {
	n := len(es)
	sc.cand = sc.cand[:0]
	for i := range es {
		if es[i].members == k {
			sc.cand = append(sc.cand, int32(i))
			continue
		}
		gap := -1
		if i > 0 {
			gap = es[i].rating - es[i-1].rating
		}
		if i+1 < n {
			if g := es[i+1].rating - es[i].rating; gap < 0 || g < gap {
				gap = g
			}
		}
		if gap >= 0 && within(gap, sc.w[i]) {
			sc.cand = append(sc.cand, int32(i))
		}
	}
	m := len(sc.cand)
	sc.dp = resize(sc.dp, m+1)
	dp := sc.dp
	dp[0] = cell{from: -1}
	for p := 1; p <= m; p++ {
		best := dp[p-1]
		best.from = -1
		if room, pos := sc.fill(es, k, sc.cand, p-1); room != nil {
			low := int(pos[len(pos)-1])
			c := dp[low]
			c.from = int32(low)
			c.rooms++
			c.spread += int64(es[room[len(room)-1]].rating - es[room[0]].rating)
			for _, x := range room {
				c.wait += float64(now - es[x].enq)
			}
			if better(c, best) {
				best = c
			}
		}
		dp[p] = best
	}
	// Walk the plan back (rooms come out highest first), then put the
	// rooms in rating order.
	b := &sc.best
	b.reset()
	for p := m; p > 0; {
		if dp[p].from < 0 {
			p--
			continue
		}
		room, _ := sc.fill(es, k, sc.cand, p-1)
		b.add(es, room)
		p = int(dp[p].from)
	}
	reverseRooms(b)
}

// reverseRooms reverses the order of the rooms in g, keeping each room's
// own order.
func reverseRooms(g *groups) {
	slices.Reverse(g.idx)
	// The rooms' sizes now come in reverse order: rebuild ends from them,
	// and put each room's members back in rating order.
	prev := int32(0)
	for i, e := range g.ends {
		g.ends[i], prev = e-prev, e
	}
	slices.Reverse(g.ends)
	start := int32(0)
	for i, size := range g.ends {
		slices.Reverse(g.idx[start : start+size])
		start += size
		g.ends[i] = start
	}
}

// resize returns s with length n, reallocating if it is too small.
func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n, n+n/4)
	}
	return s[:n]
}

// shrink drops buffers far larger than a pool of n tickets needs.
func (sc *scratch) shrink(n int) {
	if cap(sc.w) > 4*n+1024 {
		*sc = scratch{}
	}
}
