package matchmaking

import (
	"cmp"
	"context"
	"math"
	"slices"
	"time"

	"github.com/arena-game/arena/matchmaking/matcher"
)

// Candidate is a waiting ticket as a match function sees it.
type Candidate struct {
	// ID is the ticket's id (a player's uuid, or a party's key).
	ID string
	// Rating is the player's rating, or the party's mean.
	Rating int
	// Members is the number of players on the ticket.
	Members int
	// Created is when the ticket was made; its wait counts from then.
	Created time.Time
	// Search are the ticket's search fields (shared: do not modify).
	Search *SearchFields
}

// Proposal is a room a match function proposes.
type Proposal struct {
	// Rosters holds the ticket ids of each of the profile's rosters, in the
	// profile's roster order.
	Rosters [][]string
	// Score is the proposal's quality: where proposals share a ticket, the
	// higher score wins (see Evaluate).
	Score float64
}

// MatchRequest is what a match function is given each tick.
type MatchRequest struct {
	// Profile is the profile being matched (do not modify).
	Profile *Profile
	// Pools holds each of the profile's pools' candidates, in the
	// profile's pool order; each pool's candidates in creation order. A
	// ticket may be in several pools.
	Pools [][]Candidate
	// Now is the tick's time.
	Now time.Time
}

// Function is a match function: a profile and its pools' candidates in,
// proposed rooms out. It must not keep the request's slices past the call.
// Proposals that name a ticket twice, a ticket not among the candidates, or
// a room whose players do not fit the profile's rosters are rejected with
// the whole answer of that call (see ValidateProposals).
type Function interface {
	Match(ctx context.Context, req *MatchRequest) ([]Proposal, error)
}

// FunctionFunc adapts a plain function to Function.
type FunctionFunc func(ctx context.Context, req *MatchRequest) ([]Proposal, error)

// Match calls f.
func (f FunctionFunc) Match(ctx context.Context, req *MatchRequest) ([]Proposal, error) {
	return f(ctx, req)
}

// builtinFunctions are the stateless built-in functions. The seed's rule is
// not among them: it keeps an incrementally sorted matcher.Pool per pool
// (see seedProposals).
var builtinFunctions = map[string]Function{
	FunctionTeamBalance: FunctionFunc(TeamBalance),
	FunctionFirstCome:   FunctionFunc(FirstCome),
}

// fillRosters assigns tickets (in the order given, the room's rating
// order for the seed's rule) to p's rosters, each to the roster with the
// most room left that it fits (ties: the first; one that fits nowhere
// whole: the first). It appends each ticket's roster to out.
func fillRosters(p *Profile, tickets []*ticket, out []int8) []int8 {
	var left [MaxRosters]int
	for i, r := range p.Rosters {
		left[i] = r.Size
	}
	for _, t := range tickets {
		best := -1
		for i := range p.Rosters {
			if left[i] >= t.members && (best < 0 || left[i] > left[best]) {
				best = i
			}
		}
		if best < 0 {
			best = 0
		}
		left[best] -= t.members
		out = append(out, int8(best))
	}
	return out
}

// candidateRosters is room's ticket ids in p's rosters (fillRosters).
func candidateRosters(p *Profile, room []Candidate) [][]string {
	ts := make([]*ticket, len(room))
	for i, c := range room {
		ts[i] = &ticket{id: c.ID, members: c.Members}
	}
	assign := fillRosters(p, ts, nil)
	rs := make([][]string, len(p.Rosters))
	for i := range rs {
		for j, t := range ts {
			if int(assign[j]) == i {
				rs[i] = append(rs[i], t.id)
			}
		}
	}
	return rs
}

// FirstCome proposes rooms in arrival order, ignoring ratings: the oldest
// tickets of each pool fill a room of the profile's size (a party that
// does not fit what is left waits for the next room). Score: the seconds
// the room's oldest ticket waited.
func FirstCome(_ context.Context, req *MatchRequest) ([]Proposal, error) {
	size := req.Profile.RoomSize()
	var out []Proposal
	used := map[string]bool{}
	for _, pool := range req.Pools {
		var room []Candidate
		n := 0
		for _, c := range pool {
			if used[c.ID] || n+c.Members > size {
				continue
			}
			room = append(room, c)
			n += c.Members
			if n == size {
				for _, t := range room {
					used[t.ID] = true
				}
				out = append(out, Proposal{Rosters: candidateRosters(req.Profile, room), Score: req.Now.Sub(room[0].Created).Seconds()})
				room, n = room[:0:0], 0
			}
		}
	}
	return out, nil
}

// TeamBalance proposes rooms of players whose ratings the seed's window
// allows together (the profile's window parameters), and splits each into
// the profile's rosters so that the teams' mean ratings are as close as
// possible (exhaustively for rooms of up to 12 tickets, greedily above).
// Score: minus the gap between the strongest and weakest team's mean.
func TeamBalance(_ context.Context, req *MatchRequest) ([]Proposal, error) {
	p := req.Profile
	cfg := p.matcherConfig()
	cfg.Tighten = false
	var out []Proposal
	used := map[string]bool{}
	for _, pool := range req.Pools {
		waiting := make([]matcher.Ticket, 0, len(pool))
		byID := make(map[string]Candidate, len(pool))
		for _, c := range pool {
			if used[c.ID] {
				continue
			}
			waiting = append(waiting, matcher.Ticket{ID: c.ID, Rating: c.Rating, Members: c.Members, Enqueued: c.Created})
			byID[c.ID] = c
		}
		if len(waiting) < 2 {
			continue
		}
		rooms, _ := matcher.SeedTick(cfg, waiting, req.Now)
		for _, r := range rooms {
			cands := make([]Candidate, len(r.Tickets))
			for i, t := range r.Tickets {
				cands[i] = byID[t.ID]
				used[t.ID] = true
			}
			if rosters, gap, ok := balance(p, cands); ok {
				out = append(out, Proposal{Rosters: rosters, Score: -gap})
			}
		}
	}
	return out, nil
}

// balance splits tickets into p's rosters (each roster exactly its size)
// minimising the gap between the highest and lowest team mean rating. It
// returns the rosters and that gap, and false when the tickets (parties)
// cannot fill the rosters exactly.
func balance(p *Profile, tickets []Candidate) ([][]string, float64, bool) {
	k := len(p.Rosters)
	assign := make([]int, len(tickets))
	best := make([]int, len(tickets))
	bestGap := math.Inf(1)
	fill := make([]int, k)
	sum := make([]float64, k)
	gap := func() float64 {
		lo, hi := math.Inf(1), math.Inf(-1)
		for i, r := range p.Rosters {
			m := sum[i] / float64(r.Size)
			lo, hi = min(lo, m), max(hi, m)
		}
		return hi - lo
	}
	if len(tickets) <= 12 {
		var search func(i int)
		search = func(i int) {
			if i == len(tickets) {
				if g := gap(); g < bestGap {
					bestGap = g
					copy(best, assign)
				}
				return
			}
			t := tickets[i]
			for r := range k {
				if fill[r]+t.Members > p.Rosters[r].Size {
					continue
				}
				fill[r] += t.Members
				sum[r] += float64(t.Rating * t.Members)
				assign[i] = r
				search(i + 1)
				fill[r] -= t.Members
				sum[r] -= float64(t.Rating * t.Members)
			}
		}
		search(0)
	}
	if math.IsInf(bestGap, 1) {
		// Greedy: strongest first, each to the fitting team with the
		// lowest rating sum per seat filled.
		order := make([]int, len(tickets))
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(tickets[b].Rating, tickets[a].Rating) })
		for _, i := range order {
			t := tickets[i]
			pick := -1
			for r := range k {
				if fill[r]+t.Members > p.Rosters[r].Size {
					continue
				}
				if pick < 0 || sum[r]/float64(p.Rosters[r].Size) < sum[pick]/float64(p.Rosters[pick].Size) {
					pick = r
				}
			}
			if pick < 0 {
				return nil, 0, false
			}
			fill[pick] += t.Members
			sum[pick] += float64(t.Rating * t.Members)
			best[i] = pick
		}
		bestGap = gap()
	}
	rosters := make([][]string, k)
	for i, r := range best {
		rosters[r] = append(rosters[r], tickets[i].ID)
	}
	return rosters, bestGap, true
}
