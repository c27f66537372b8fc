package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/arena-game/arena/matchmaking"
	"github.com/arena-game/arena/matchmaking/matcher"
	"github.com/arena-game/arena/matchmaking/matcher/matchbench"
)

// benchMatchCommand is `arena bench match`: the matcher in simulated time,
// beside the seed's rule (see docs/benchmarks/matchmaking.md).
func benchMatchCommand() *cli.Command {
	return &cli.Command{
		Name:  "match",
		Usage: "matchmaking in simulated time: tick speed and room quality beside the seed's rule",
		Description: "Batch (default): --tickets players with ratings Normal(1500, 300) join at t=0; ticks\n" +
			"1 s apart until fewer than a room are left or --ticks ran.\n" +
			"Steady (--arrivals R): R players arrive per simulated second for --duration; a tick\n" +
			"every second; waits from arrival to room.\n" +
			"No sleeping: simulated time. The seed's rule runs on the same players for comparison.",
		Flags: []cli.Flag{
			intFlag("tickets", 100_000, "batch: players in the pool at t=0"),
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "random seed for ratings and arrival times", EnvVars: env("seed")},
			intFlag("ticks", 20, "batch: at most this many ticks"),
			intFlag("arrivals", 0, "steady: arrivals per simulated second (0: run the batch workload)"),
			&cli.DurationFlag{Name: "duration", Value: 60 * time.Second, Usage: "steady: simulated time, whole seconds", EnvVars: env("match-duration")},
			intFlag("room-size", 3, "players per room"),
			&cli.Float64Flag{Name: "window-base", Value: 0, Usage: "rating window of a player who just joined", EnvVars: env("window-base")},
			&cli.Float64Flag{Name: "window-per-second", Value: 50, Usage: "rating points the window grows per second waited", EnvVars: env("window-per-second")},
			boolFlag("tighten", "use the matcher's spread optimiser (Config.Tighten)"),
			intFlag("seed-max", 1_000_000, "run the seed's rule for comparison up to this many players (above: skipped)"),
			intFlag("literal-max", 20_000, "batch: time the seed's own quadratic loop up to this many players (above: skipped)"),
			boolFlag("json", "print one JSON object"),
			stringFlag("scenario", "", "the matchmaker instead of the matcher: profiles (--tickets over 4 profiles x 3 overlapping pools, window 0 + 50/s) or one-profile (--tickets in the default profile, with --room-size and the window flags); one tick, beside the pure matcher on the same tickets"),
			boolFlag("warm", "scenario: time the second tick (the pool refilled with tickets of the last second) instead of the first"),
		},
		Action: func(c *cli.Context) error {
			if sc := c.String("scenario"); sc != "" {
				return benchScenario(c, sc)
			}
			cfg := matcher.Config{
				RoomSize:        c.Int("room-size"),
				WindowBase:      c.Float64("window-base"),
				WindowPerSecond: c.Float64("window-per-second"),
				Tighten:         c.Bool("tighten"),
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			var res any
			var err error
			if c.Int("arrivals") > 0 {
				res, err = matchbench.Steady(matchbench.SteadyOptions{
					ArrivalsPerSecond: c.Int("arrivals"), Seconds: int(c.Duration("duration") / time.Second),
					Seed: c.Uint64("seed"), Config: cfg, SeedMax: c.Int("seed-max"),
				})
			} else {
				res, err = matchbench.Batch(matchbench.BatchOptions{
					Tickets: c.Int("tickets"), Seed: c.Uint64("seed"), Config: cfg, MaxTicks: c.Int("ticks"),
					SeedMax: c.Int("seed-max"), LiteralMax: c.Int("literal-max"),
				})
			}
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return json.NewEncoder(os.Stdout).Encode(res)
			}
			switch r := res.(type) {
			case matchbench.BatchResult:
				printBatch(r)
			case matchbench.SteadyResult:
				printSteady(r)
			}
			return nil
		},
	}
}

func printBatch(r matchbench.BatchResult) {
	fmt.Printf("batch: %d players at t=0, rooms of %d, window %g + %g/s, tighten %v, seed %d (%d CPUs, load %.1f)\n",
		r.Tickets, r.RoomSize, r.WindowBase, r.WindowPerSecond, r.Tighten, r.Seed, r.CPUs, r.LoadAverage)
	fmt.Printf("arena   %8d rooms  %7d left  mean spread %8.3f  max %5d\n", r.Rooms, r.Left, r.MeanSpread, r.MaxSpread)
	fmt.Printf("        %2d ticks: slowest %.2f ms (%.2f ms CPU; the first, sorting everyone: %.2f ms), mean %.2f ms (%.2f ms CPU); run %.3f s\n",
		r.Ticks, r.SlowestTickS*1e3, r.SlowestTickCPUS*1e3, r.FirstTickS*1e3, r.MeanTickS*1e3, r.MeanTickCPUS*1e3, r.Seconds)
	if r.SeedRooms != nil {
		fmt.Printf("seed    %8d rooms  %7d left  mean spread %8.3f  max %5d  same rooms as arena: %v\n",
			*r.SeedRooms, *r.SeedLeft, *r.SeedMeanSpread, *r.SeedMaxSpread, *r.SameRoomsAsSeed)
	} else {
		fmt.Println("seed    skipped (more players than --seed-max)")
	}
	if r.SeedLiteralSeconds != nil {
		fmt.Printf("seed's own loop: slowest tick %.2f ms, run %.3f s: arena's slowest tick is %.1fx faster\n",
			*r.SeedLiteralSlowestTickS*1e3, *r.SeedLiteralSeconds, *r.SlowestTickSpeedup)
	} else {
		fmt.Println("seed's own loop: skipped (more players than --literal-max)")
	}
}

func printSteady(r matchbench.SteadyResult) {
	fmt.Printf("steady: %d arrivals/s for %d s (%d players), rooms of %d, window %g + %g/s, tighten %v, seed %d (%d CPUs, load %.1f)\n",
		r.ArrivalsPerSecond, r.DurationS, r.Tickets, r.RoomSize, r.WindowBase, r.WindowPerSecond, r.Tighten, r.Seed, r.CPUs, r.LoadAverage)
	fmt.Printf("arena  %8d rooms  %6d left  wait p50 %5.2f s  p95 %5.2f s  p99 %5.2f s  max %5.2f s  mean spread %7.3f  max %5d\n",
		r.Rooms, r.Left, r.P50, r.P95, r.P99, r.Max, r.MeanSpread, r.MaxSpread)
	if r.SeedRooms != nil {
		w := r.SeedWaits
		fmt.Printf("seed   %8d rooms  %6d left  wait p50 %5.2f s  p95 %5.2f s  p99 %5.2f s  max %5.2f s  mean spread %7.3f  max %5d\n",
			*r.SeedRooms, *r.SeedLeft, w.P50, w.P95, w.P99, w.Max, *r.SeedMeanSpread, *r.SeedMaxSpread)
	} else {
		fmt.Println("seed   skipped (more players than --seed-max)")
	}
	fmt.Printf("ticks: mean %.2f ms (%.2f ms CPU), slowest %.2f ms (%.2f ms CPU), with up to %d waiting; run %.3f s\n",
		r.MeanTickS*1e3, r.MeanTickCPUS*1e3, r.SlowestTickS*1e3, r.SlowestTickCPUS*1e3, r.MaxWaiting, r.Seconds)
}

// benchScenario runs `arena bench match --scenario`: one matchmaker tick
// (profiles, pools, functions, evaluator, hand-off start) beside the pure
// matcher on the same tickets in one pool.
func benchScenario(c *cli.Context, scenario string) error {
	tb := matchmaking.TickBench{Tickets: c.Int("tickets"), Seed: c.Uint64("seed"), Warm: c.Bool("warm")}
	switch scenario {
	case "profiles":
		ps, err := matchmaking.ParseProfiles([]byte(matchmaking.BenchProfiles), nil)
		if err != nil {
			return err
		}
		tb.Profiles, tb.Names = ps, []string{"p0", "p1", "p2", "p3"}
	case "one-profile":
		tb.Profiles = matchmaking.DefaultProfiles(c.Int("room-size"), c.Float64("window-base"), c.Float64("window-per-second"), false)
		tb.Names = []string{matchmaking.DefaultProfile}
	default:
		return fmt.Errorf("--scenario %q: want profiles or one-profile", scenario)
	}
	r, err := matchmaking.BenchTick(tb, true)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return json.NewEncoder(os.Stdout).Encode(struct {
			Scenario string  `json:"scenario"`
			Load     float64 `json:"load_average"`
			matchmaking.TickBenchResult
		}{scenario, matchbench.LoadAverage(), r})
	}
	fmt.Printf("%s: %d tickets, warm %v, seed %d (load %.1f)\n", scenario, r.Tickets, r.Warm, tb.Seed, matchbench.LoadAverage())
	fmt.Printf("matchmaker tick  %8.1f ms wall  %8.1f ms CPU  %6d rooms\n", r.WallMS, r.CPUMS, r.Rooms)
	fmt.Printf("match pushed     p50 %.1f ms  p99 %.1f ms after the tick began (p99 %.1f ms after it ended)\n", r.PushP50MS, r.PushP99MS, r.AfterTickP99MS)
	fmt.Printf("baseline         %8.1f ms wall: the pure matcher, one pool of the same tickets (matchmaker %.1fx)\n", r.MatcherMS, r.WallMS/max(r.MatcherMS, 0.001))
	return nil
}
