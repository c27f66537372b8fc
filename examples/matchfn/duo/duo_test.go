package duo

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/arena-game/arena/matchmaking"
)

func TestTwoVsTwo(t *testing.T) {
	ps, err := matchmaking.LoadProfiles("../profiles.yaml", []string{"duo"})
	if err != nil {
		t.Fatal(err)
	}
	p := &ps.Profiles[0]
	cand := func(id string, rating int, region string) matchmaking.Candidate {
		return matchmaking.Candidate{ID: id, Rating: rating, Members: 1, Created: time.Unix(0, 0),
			Search: &matchmaking.SearchFields{Strings: map[string]string{"region": region}}}
	}
	pool := []matchmaking.Candidate{
		cand("e1", 1000, "eu"), cand("u1", 1000, "us"), cand("e2", 1100, "eu"), cand("e3", 1150, "eu"),
		cand("u2", 1010, "us"), cand("e4", 1190, "eu"), cand("u3", 1500, "us"), cand("u4", 1020, "us"),
		cand("x", 1000, ""), {ID: "party", Rating: 1000, Members: 2, Search: &matchmaking.SearchFields{}},
	}
	props, err := TwoVsTwo(context.Background(), &matchmaking.MatchRequest{Profile: p, Pools: [][]matchmaking.Candidate{pool}})
	if err != nil {
		t.Fatal(err)
	}
	// eu: e1 1000, e2 1100, e3 1150, e4 1190 (spread 190): e1+e4 vs e2+e3.
	// us: u1, u2, u4, u3: 1000..1500 is too wide; nothing else.
	if len(props) != 1 || fmt.Sprint(props[0].Rosters) != "[[e1 e4] [e2 e3]]" || props[0].Score != -60 {
		t.Fatalf("proposals %+v", props)
	}
	if err := matchmaking.ValidateProposals(p, props, func(id string) (int, bool) { return 1, true }); err != nil {
		t.Fatal(err)
	}
}
