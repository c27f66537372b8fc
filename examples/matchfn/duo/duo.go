// Package duo is the example match function: 2-vs-2 rooms of one region
// with close ratings (see examples/matchfn).
package duo

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/arena-game/arena/matchmaking"
)

// Params are the function's parameters (the profile's params.plugin).
type Params struct {
	// MaxSpread is the largest rating gap inside a room (default 200).
	MaxSpread int `json:"max_spread"`
	// RegionField is the string search field that must match (default
	// "region"); tickets without it are not matched.
	RegionField string `json:"region_field"`
}

// TwoVsTwo proposes rooms of four solo players of one region whose
// ratings are within MaxSpread, split strongest and weakest against the
// two middle ones. Score: minus the gap between the teams' rating sums.
// It expects a profile with two rosters of 2.
func TwoVsTwo(_ context.Context, req *matchmaking.MatchRequest) ([]matchmaking.Proposal, error) {
	prm := Params{MaxSpread: 200, RegionField: "region"}
	if len(req.Profile.Params.Plugin) > 0 {
		if err := json.Unmarshal(req.Profile.Params.Plugin, &prm); err != nil {
			return nil, fmt.Errorf("two vs two: params: %w", err)
		}
	}
	if len(req.Profile.Rosters) != 2 || req.Profile.Rosters[0].Size != 2 || req.Profile.Rosters[1].Size != 2 {
		return nil, fmt.Errorf("two vs two: the profile needs two rosters of 2")
	}
	used := map[string]bool{}
	var out []matchmaking.Proposal
	for _, pool := range req.Pools {
		byRegion := map[string][]matchmaking.Candidate{}
		for _, c := range pool {
			if c.Members != 1 || used[c.ID] || c.Search == nil {
				continue
			}
			if r, ok := c.Search.Strings[prm.RegionField]; ok {
				byRegion[r] = append(byRegion[r], c)
			}
		}
		regions := make([]string, 0, len(byRegion))
		for r := range byRegion {
			regions = append(regions, r)
		}
		slices.Sort(regions) // a deterministic answer
		for _, r := range regions {
			cs := byRegion[r]
			slices.SortStableFunc(cs, func(a, b matchmaking.Candidate) int { return cmp.Compare(a.Rating, b.Rating) })
			for i := 0; i+4 <= len(cs); {
				q := cs[i : i+4]
				if q[3].Rating-q[0].Rating > prm.MaxSpread {
					i++
					continue
				}
				gap := (q[0].Rating + q[3].Rating) - (q[1].Rating + q[2].Rating)
				out = append(out, matchmaking.Proposal{
					Rosters: [][]string{{q[0].ID, q[3].ID}, {q[1].ID, q[2].ID}},
					Score:   -float64(max(gap, -gap)),
				})
				for _, c := range q {
					used[c.ID] = true
				}
				i += 4
			}
		}
	}
	return out, nil
}
