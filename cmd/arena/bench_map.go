package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/mapserver"
	"github.com/arena-game/arena/mapserver/mapbench"
)

// benchMapCommand is `arena bench map`: players walking and switching maps
// against real map server processes (see docs/benchmarks/maps.md).
func benchMapCommand() *cli.Command {
	return &cli.Command{
		Name:  "map",
		Usage: "players walking on maps with switches: move-to-seen and handoff latency vs a memcached get+set baseline",
		Flags: []cli.Flag{
			intFlag("players", 5000, "simulated players"),
			intFlag("servers", 3, "map server processes to start (one bench map each)"),
			&cli.DurationFlag{Name: "duration", Value: 20e9, Usage: "measured walking time after every player joined", EnvVars: env("bench-duration")},
			&cli.Float64Flag{Name: "move-rate", Value: 2, Usage: "moves per second per player", EnvVars: env("move-rate")},
			&cli.Float64Flag{Name: "observers", Value: 0.25, Usage: "share of players that decode positions to measure move-to-seen", EnvVars: env("observers")},
			&cli.Float64Flag{Name: "map-size", Value: 6000, Usage: "side of each bench map, in world units (view radius 150)", EnvVars: env("map-size")},
			&cli.DurationFlag{Name: "tick", Usage: "map server tick (0: the server default, 100ms)", EnvVars: env("map-tick")},
			intFlag("concurrency", 64, "concurrent joins while connecting"),
			stringFlag("client", "", "how players connect: epoll (raw sockets on epoll loops, the default on Linux) or gws (a gws client and goroutine per player)"),
			boolFlag("json", "print one JSON object"),
			stringFlag("dispatcher", "", "benchmark a running arena: its line protocol host:port (then --memcache, --store-prefix, --secret are the arena's)"),
			memcacheFlag(),
			storePrefixFlag(),
			secretFlag("secret", "the running arena's cluster secret (with --dispatcher)"),
			stringFlag("world", "", "the running arena's world file (with --dispatcher; empty: the built-in world)"),
			stringFlag("memcached-bin", "", "run this memcached binary instead of the embedded memcached (without --dispatcher or --memcache)"),
			&cli.BoolFlag{Name: "infra", Hidden: true, Usage: "internal: serve the bench's memcached and dispatcher stand-in"},
			logLevelFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.Bool("infra") {
				return mapbench.ServeInfra(os.Stdin, os.Stdout, c.String("memcached-bin"))
			}
			log, err := newLogger(c)
			if err != nil {
				return err
			}
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("bench map: %w", err)
			}
			cfg := mapbench.Config{
				Players: c.Int("players"), Servers: c.Int("servers"), Duration: c.Duration("duration"),
				MoveRate: c.Float64("move-rate"), Observers: c.Float64("observers"), Tick: c.Duration("tick"),
				MapSize:     c.Float64("map-size"),
				Concurrency: c.Int("concurrency"), Client: c.String("client"), Command: []string{exe, "map"},
				InfraCommand: []string{exe, "bench", "map", "--infra", "--memcached-bin", c.String("memcached-bin")},
				Dispatcher:   c.String("dispatcher"), Memcache: store.ParseAddrs(c.String("memcache")),
				StorePrefix: c.String("store-prefix"), Secret: c.String("secret"), Log: log,
			}
			if cfg.Dispatcher != "" {
				if cfg.World, err = mapserver.LoadWorld(c.String("world")); err != nil {
					return err
				}
			}
			if !c.Bool("json") {
				cfg.Progress = os.Stderr
			}
			log.Debug("bench map", "players", cfg.Players)
			r, err := mapbench.Run(c.Context, cfg)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return json.NewEncoder(os.Stdout).Encode(r)
			}
			fmt.Print(r.Text())
			return nil
		},
	}
}
