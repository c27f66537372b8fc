package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/arena-game/arena/fightserver/fightbench"
	"github.com/arena-game/arena/proc"
)

// benchFightCommand runs the fight load generator (docs/benchmarks/fight.md).
func benchFightCommand() *cli.Command {
	return &cli.Command{
		Name:  "fight",
		Usage: "rooms of WebSocket players on one fight process: relay latency, delivered/s, memory per connection, vs a gws echo baseline",
		Flags: []cli.Flag{
			intFlag("rooms", 1000, "rooms on the one fight process"),
			intFlag("players", 3, "players per room"),
			&cli.Float64Flag{Name: "rate", Value: 20, Usage: "events per second per player", EnvVars: env("rate")},
			&cli.DurationFlag{Name: "duration", Value: 10 * time.Second, Usage: "measured time per phase", EnvVars: env("duration")},
			&cli.DurationFlag{Name: "warmup", Value: 2 * time.Second, Usage: "unmeasured load before each phase", EnvVars: env("warmup")},
			boolFlag("skip-baseline", "skip the bare gws echo baseline"),
			stringFlag("client", "", "how players connect: epoll (raw sockets on epoll loops, the default on Linux) or gws (a gws client and goroutine per player)"),
			&cli.StringSliceFlag{Name: "fight-option", Usage: "KEY=VALUE fight option on top of the bench's (docs/fight.md lists them, e.g. snapshot-every=0s); repeatable", EnvVars: env("fight-option")},
			&cli.StringSliceFlag{Name: "game", Usage: "NAME=PATH: also measure this game binary (e.g. examples/relay) with the same load, after the fight; repeatable", EnvVars: env("game")},
			&cli.StringSliceFlag{Name: "game-option", Usage: "NAME.KEY=VALUE in game NAME's configuration (e.g. relaytick.tick=50ms); repeatable", EnvVars: env("game-option")},
			boolFlag("json", "print one JSON object"),
			logLevelFlag(),
			&cli.StringFlag{Name: "serve-echo", Hidden: true, Usage: "internal: run the echo baseline server on this address"},
		},
		Action: func(c *cli.Context) error {
			if addr := c.String("serve-echo"); addr != "" {
				return fightbench.ServeEcho(c.Context, addr)
			}
			log, err := newLogger(c)
			if err != nil {
				return err
			}
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("bench fight: %w", err)
			}
			warmup := c.Duration("warmup")
			if warmup == 0 {
				warmup = time.Nanosecond
			}
			games, err := benchGames(c)
			if err != nil {
				return err
			}
			res, err := fightbench.Run(c.Context, fightbench.Config{
				Games: games, FightOptions: c.StringSlice("fight-option"),
				Exe: exe, Rooms: c.Int("rooms"), Players: c.Int("players"), Rate: c.Float64("rate"),
				Duration: c.Duration("duration"), Warmup: warmup, SkipBaseline: c.Bool("skip-baseline"),
				Client: c.String("client"),
				Log:    log.With("bench", proc.KindFight),
			})
			if err != nil {
				return err
			}
			if c.Bool("json") {
				enc := json.NewEncoder(os.Stdout)
				return enc.Encode(res)
			}
			fmt.Print(fightbench.Format(res))
			return nil
		},
	}
}

// benchGames reads --game NAME=PATH and --game-option NAME.KEY=VALUE.
func benchGames(c *cli.Context) ([]fightbench.Game, error) {
	paths := map[string]string{}
	if err := options(paths, c.StringSlice("game")); err != nil {
		return nil, fmt.Errorf("--game: %w", err)
	}
	opts := map[string]map[string]string{}
	for _, kv := range c.StringSlice("game-option") {
		k, v, ok := strings.Cut(kv, "=")
		name, key, dotted := strings.Cut(k, ".")
		if !ok || !dotted || paths[name] == "" || key == "" {
			return nil, fmt.Errorf("--game-option %q: want NAME.KEY=VALUE for a --game NAME", kv)
		}
		if opts[name] == nil {
			opts[name] = map[string]string{}
		}
		opts[name][key] = v
	}
	var out []fightbench.Game
	for _, name := range slices.Sorted(maps.Keys(paths)) {
		config, _ := json.Marshal(opts[name])
		out = append(out, fightbench.Game{Name: name, Path: paths[name], Config: config})
	}
	return out, nil
}
