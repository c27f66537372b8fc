package matchbench

import (
	"slices"
	"time"

	"github.com/arena-game/arena/matchmaking/matcher"
)

// seedLiteral is one tick of the seed's matchmaking loop, transcribed as it
// was written (generalised from 3 to cfg.RoomSize, solos only):
//
//	while len(players) >= 3:
//	    players = sorted(players, key=score)
//	    for i in range(len(players) - 2):
//	        a, b, c = players[i:i+3]
//	        if ok(a,b) and ok(a,c) and ok(b,c): match(a,b,c); remove them; restart the while
//	    else: break
//	ok(a,b): d = |a.score-b.score|; return d <= a.waiting*50 and d <= b.waiting*50
//
// ok is cfg.Compatible: the seed's waiting*50 is the window of a player who
// joined `waiting` ticks ago, which is what Compatible computes from the
// enqueue time when ticks are a second apart. Python's sort costs one pass
// on a list that is already sorted; so does this one (the result is the
// same). O(N²) per tick: every room costs a rescan from the lowest rating
// and a removal. It is the speed baseline of `arena bench match` and the
// oracle matcher.SeedTick is tested against.
func seedLiteral(cfg matcher.Config, players []matcher.Ticket, now time.Time) (rooms []matcher.Room, left []matcher.Ticket) {
	k := cfg.RoomSize
	byScore := func(a, b matcher.Ticket) int { return a.Rating - b.Rating }
	players = slices.Clone(players)
	for len(players) >= k {
		if !slices.IsSortedFunc(players, byScore) {
			slices.SortStableFunc(players, byScore)
		}
		found := false
		for i := 0; i+k <= len(players); i++ {
			group := players[i : i+k]
			if allOK(cfg, group, now) {
				room := matcher.Room{Tickets: slices.Clone(group), Spread: group[k-1].Rating - group[0].Rating}
				rooms = append(rooms, room)
				players = slices.Delete(players, i, i+k)
				found = true
				break
			}
		}
		if !found {
			break
		}
	}
	return rooms, players
}

func allOK(cfg matcher.Config, group []matcher.Ticket, now time.Time) bool {
	for i, a := range group {
		for _, b := range group[i+1:] {
			if !cfg.Compatible(a, b, now) {
				return false
			}
		}
	}
	return true
}
