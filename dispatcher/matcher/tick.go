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

// add appends a room made of es[members...].
func (g *groups) add(es []entry, members []int32) {
	g.idx = append(g.idx, members...)
	g.ends = append(g.ends, int32(len(g.idx)))
	g.spread += int64(es[members[len(members)-1]].rating - es[members[0]].rating)
}

// cell is the dynamic programme's best plan for a prefix of the candidates.
type cell struct {
	rooms  int32
	from   int32 // -1: the last candidate stays; q: candidates q.. form the last room
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

// scratch holds a tick's working memory, reused across ticks.
type scratch struct {
	w     []float64 // each entry's window
	cand  []int32   // entries that can be in a room this tick
	dp    []cell
	stack []int32
	pick  []int32 // fill's room
	floor groups // the seed's greedy rooms
	best  groups // the optimiser's rooms
}

// plan picks the rooms to form among es (sorted by rating, then arrival)
// at now (nanoseconds since the epoch es[i].enq counts from). It returns
// the chosen rooms and whether they are the seed's greedy ones.
func (sc *scratch) plan(cfg Config, es []entry, now int64) (*groups, bool) {
	n := len(es)
	sc.w = resize(sc.w, n)
	for i := range es {
		sc.w[i] = cfg.Window(time.Duration(now - es[i].enq))
	}
	sc.floor.reset()
	sc.stack = greedy(es, sc.w, int32(cfg.RoomSize), sc.stack[:0], &sc.floor)
	sc.optimise(es, int32(cfg.RoomSize), now)
	f, b := &sc.floor, &sc.best
	if f.rooms() > b.rooms() || (f.rooms() == b.rooms() && f.spread < b.spread) {
		return f, true
	}
	return b, false
}

// valid reports whether es[members...] (in rating order) is a room: every
// member's window covers its distance to the lowest and the highest.
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

// greedy is the seed's rule in one pass. The seed sorts the pool, takes
// the first run of RoomSize consecutive players that satisfies the rule,
// removes it and starts again from the lowest rating. Runs entirely below
// the removed one are unchanged and were already rejected, so restarting
// only needs to look at runs that end at or after the removal point: a
// stack of the tickets not yet matched, where each ticket pushed is
// checked as the top of a run, does exactly that. Tickets are stacked in
// rating order, so a run is a room in rating order. With parties a run is
// the fewest top tickets whose members reach RoomSize, kept only if they
// make it exactly.
func greedy(es []entry, w []float64, k int32, stack []int32, out *groups) []int32 {
	for i := range es {
		stack = append(stack, int32(i))
		j, sum := len(stack)-1, int32(0)
		for {
			sum += es[stack[j]].members
			if sum >= k || j == 0 {
				break
			}
			j--
		}
		if sum == k && valid(es, w, stack[j:]) {
			out.add(es, stack[j:])
			stack = stack[:j]
		}
	}
	return stack
}

// optimise fills sc.best with the rooms of the best plan (see better) it
// can find by dynamic programming over the candidates in rating order.
// Candidates are the tickets that could be in some room now: a full party,
// or one whose window reaches its nearest neighbour's rating. For each
// candidate, taken as the highest rated ticket of a room, fill builds one
// room below it; the programme chooses, from the lowest candidate up,
// between leaving a candidate out and closing the room fill built for it
// (leaving out the candidates that room skipped). O(N * lookback).
//
// With solos and equal windows (all tickets waited as long), fill's room is
// the run of RoomSize consecutive tickets ending at the candidate, and the
// best plan of consecutive runs is the best plan overall: a room that skips
// a ticket between its lowest and highest can take that ticket instead of
// its lowest, with no more spread, so the programme is exact there.
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
		if room, low := sc.fill(es, k, p-1); room != nil {
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
	// Walk the plan back, then put the rooms in rating order.
	b := &sc.best
	b.reset()
	for p := m; p > 0; {
		if dp[p].from < 0 {
			p--
			continue
		}
		room, low := sc.fill(es, k, p-1)
		b.add(es, room)
		p = low
	}
	reverseGroups(b)
}

// fill builds a room whose highest rated ticket is candidate top: walking
// down from top (at most lookback candidates), it takes each candidate
// whose members still fit and whose window reaches top, while the rating
// stays within every taken ticket's window, until the members add up to
// RoomSize. It returns the room (entry indices in rating order, in sc.pick)
// and the candidate position of its lowest ticket, or nil when no room
// forms. The room is checked with valid, so it always satisfies the rule.
func (sc *scratch) fill(es []entry, k int32, top int) ([]int32, int) {
	cand := sc.cand
	t := cand[top]
	hi := es[t].rating
	need := k - es[t].members
	pick := append(sc.pick[:0], t)
	floor := float64(hi) - sc.w[t] // lowest rating every taken window reaches
	low := top
	limit := max(top-lookback(k), 0)
	for q := top - 1; need > 0 && q >= limit; q-- {
		x := cand[q]
		r := es[x].rating
		if float64(r) < floor {
			break // lower ratings are even further
		}
		if es[x].members <= need && within(hi-r, sc.w[x]) {
			pick = append(pick, x)
			need -= es[x].members
			floor = max(floor, float64(r)-sc.w[x])
			low = q
		}
	}
	sc.pick = pick
	if need != 0 {
		return nil, 0
	}
	slices.Reverse(pick)
	if !valid(es, sc.w, pick) {
		return nil, 0
	}
	return pick, low
}

// lookback bounds how far below a room's highest ticket fill looks, so a
// tick stays linear when many tickets in a row cannot join.
func lookback(k int32) int { return 8*int(k) + 8 }

// reverseGroups reverses the order of the rooms in g (each room's own
// order is kept).
func reverseGroups(g *groups) {
	slices.Reverse(g.idx)
	// After reversing idx, room sizes come in reverse order too: rebuild
	// ends from the sizes, then reverse each room back into rating order.
	sizes := g.ends
	prev := int32(0)
	for i, e := range sizes {
		sizes[i], prev = e-prev, e
	}
	slices.Reverse(sizes)
	start := int32(0)
	for i, s := range sizes {
		slices.Reverse(g.idx[start : start+s])
		start += s
		sizes[i] = start
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
	limit := 4*n + 1024
	if cap(sc.w) > limit {
		*sc = scratch{}
	}
}
