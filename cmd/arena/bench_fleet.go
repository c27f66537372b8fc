package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/arena-game/arena/fleet/fleetbench"
)

func benchFleetCommand() *cli.Command {
	return &cli.Command{
		Name:  "fleet",
		Usage: "measure the fleet across hosts: a dispatcher's restart (kill -9), a get that spawns on a remote host, get throughput on a big fleet",
		Description: "Starts its own `arena dispatcher` processes (embedded memcached), hosts in this process with\n" +
			"in-memory processes (restart, seed) and a real `arena host` advertised on 127.0.0.2 (spawn).\n" +
			"See docs/BENCHMARKS.md.",
		Flags: []cli.Flag{
			memcacheFlag(),
			stringFlag("scenarios", "restart,spawn,seed", "scenarios to run"),
			intFlag("hosts", 3, "hosts (restart, seed)"),
			intFlag("per-host", 20, "processes per host (restart)"),
			intFlag("seed-per-host", 100, "processes per host (seed)"),
			intFlag("rounds", 5, "restarts timed"),
			&cli.DurationFlag{Name: "fleet-lease", Value: 3 * time.Second, Usage: "the dispatcher's --fleet-lease (a restart after kill -9 waits this long)", EnvVars: env("bench-fleet-lease")},
			intFlag("spawns", 10, "remote spawns timed"),
			&cli.DurationFlag{Name: "duration", Value: 4 * time.Second, Usage: "seed mode, per dispatcher", EnvVars: env("bench-duration")},
			boolFlag("json", "print one JSON object"),
		},
		Action: func(c *cli.Context) error {
			cfg := fleetbench.Config{Memcache: c.String("memcache"), Scenarios: strings.Split(c.String("scenarios"), ","),
				Hosts: c.Int("hosts"), PerHost: c.Int("per-host"), SeedPerHost: c.Int("seed-per-host"), Rounds: c.Int("rounds"),
				FleetLease: c.Duration("fleet-lease"), Spawns: c.Int("spawns"), SeedDuration: c.Duration("duration")}
			if !c.Bool("json") {
				cfg.Progress = os.Stderr
			}
			res, err := fleetbench.Run(c.Context, cfg)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return json.NewEncoder(os.Stdout).Encode(res)
			}
			if r := res.Restart; r != nil {
				fmt.Printf("restart  %d hosts x %d processes, %d rounds, exact %v\n", r.Hosts, r.Processes/max(1, r.Hosts), r.Rounds, r.Exact)
				for _, q := range []struct {
					name string
					q    fleetbench.Quantiles
				}{{"kill -9 -> listening", r.KillToListen}, {"listening -> complete table", r.ListenToComplete},
					{"first host back -> complete", r.ReconnectToComplete}, {"kill -9 -> complete table", r.KillToComplete}} {
					fmt.Printf("         %-28s p50 %7.1f ms  max %7.1f ms\n", q.name, q.q.P50, q.q.Max)
				}
			}
			if s := res.Spawn; s != nil {
				fmt.Printf("spawn    get spawning on %s: %d spawns  p50 %.1f ms  p99 %.1f ms  (answer %s)\n", s.Host, s.Spawns, s.P50ms, s.P99ms, s.Answer)
			}
			if s := res.Seed; s != nil {
				for _, m := range s.Modes {
					fmt.Printf("%-9sfleet of %d processes %8.0f req/s  p50 %7.1f µs\n", m.Mode, s.Processes, m.Fleet.RequestsPerS, m.Fleet.P50us)
					fmt.Printf("         single host            %8.0f req/s  p50 %7.1f µs\n", m.Single.RequestsPerS, m.Single.P50us)
					fmt.Printf("         ratio                  %8.2fx\n", m.Ratio)
				}
			}
			return nil
		},
	}
}
