package matcher

import (
	"slices"
	"time"
)

// SeedTick is the reference: one tick of the seed's rule, generalised only
// as far as Config goes. The seed sorted its players by rating (a stable
// sort, so ties keep their order), took the first RoomSize consecutive
// players in which every pair is within both windows, removed them and
// started again, until no run matched. SeedTick returns the rooms it forms
// from waiting at now, and the tickets left, in the seed's order (by
// rating, ties in their order in waiting); feed them back, followed by new
// arrivals, to the next SeedTick to simulate the seed over several ticks.
//
// It gives exactly the seed's rooms in O(N log N) instead of the seed's
// O(N²) per tick (see greedy). Pool.Tick forms the same rooms from the same
// tickets (tests check it); SeedTick is the reference the benchmarks and
// Config.Tighten are measured against. Parties are handled as Pool.Tick
// does. cfg must be valid; waiting is not modified.
func SeedTick(cfg Config, waiting []Ticket, now time.Time) (rooms []Room, left []Ticket) {
	es := make([]entry, len(waiting))
	w := make([]float64, len(waiting))
	for i, t := range waiting {
		es[i] = entry{rating: t.Rating, seq: uint64(i), slot: int32(i), members: int32(t.Members)}
	}
	slices.SortFunc(es, cmpEntry) // by rating, ties by position: a stable sort
	for i, e := range es {
		w[i] = cfg.Window(now.Sub(waiting[e.slot].Enqueued))
	}
	var g groups
	sc := scratch{w: w}
	sc.greedy(es, int32(cfg.RoomSize), &g)
	matched := make([]bool, len(es))
	tickets := make([]Ticket, len(g.idx))
	rooms = make([]Room, 0, g.rooms())
	start := 0
	for _, end := range g.ends {
		for k := start; k < int(end); k++ {
			e := es[g.idx[k]]
			tickets[k] = waiting[e.slot]
			matched[g.idx[k]] = true
		}
		rt := tickets[start:end:end]
		rooms = append(rooms, Room{Tickets: rt, Spread: rt[len(rt)-1].Rating - rt[0].Rating})
		start = int(end)
	}
	left = make([]Ticket, 0, len(es)-len(g.idx))
	for i, e := range es {
		if !matched[i] {
			left = append(left, waiting[e.slot])
		}
	}
	return rooms, left
}
