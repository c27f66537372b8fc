// Command badfn is a match function plugin for tests: its profile's
// params.plugin {"mode": ...} makes it pair candidates ("ok"), exit in the
// middle of a call ("crash"), never answer ("hang"), or propose a ticket
// twice ("twice").
package main

import (
	"context"
	"encoding/json"
	"os"
	"time"

	"github.com/arena-game/arena/matchmaking"
	"github.com/arena-game/arena/matchmaking/matchfn"
)

func main() {
	_ = matchfn.Serve(matchmaking.FunctionFunc(func(ctx context.Context, req *matchmaking.MatchRequest) ([]matchmaking.Proposal, error) {
		var prm struct{ Mode string }
		_ = json.Unmarshal(req.Profile.Params.Plugin, &prm)
		var ids []string
		for _, c := range req.Pools[0] {
			ids = append(ids, c.ID)
		}
		switch prm.Mode {
		case "crash":
			os.Exit(7)
		case "hang":
			time.Sleep(time.Hour)
		case "twice":
			if len(ids) > 0 {
				return []matchmaking.Proposal{{Rosters: [][]string{{ids[0]}, {ids[0]}}}}, nil
			}
		}
		var out []matchmaking.Proposal
		for i := 0; i+2 <= len(ids); i += 2 {
			out = append(out, matchmaking.Proposal{Rosters: [][]string{{ids[i]}, {ids[i+1]}}, Score: 1})
		}
		return out, nil
	}))
}
