package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/arena-game/arena/dispatcher"
	"github.com/arena-game/arena/dispatcher/dispatchbench"
	"github.com/arena-game/arena/internal/benchdisp"
)

func benchDispatchCommand() *cli.Command {
	return &cli.Command{
		Name:  "dispatch",
		Usage: "drive a dispatcher's line protocol (seed and pipelined modes) against bare baselines",
		Description: "Without --addr it starts its own `arena dispatcher` (embedded memcached, one fight\n" +
			"server) on free ports, measures, and stops it. See docs/BENCHMARKS.md.",
		Flags: []cli.Flag{
			stringFlag("addr", "", "line protocol address of a running dispatcher (default: start one)"),
			memcacheFlag(),
			&cli.DurationFlag{Name: "duration", Value: 3 * time.Second, Usage: "per mode and target", EnvVars: env("bench-duration")},
			intFlag("seed-workers", 32, "concurrent seed-style clients (a connection per get)"),
			intFlag("conns", 4, "pipelined connections"),
			intFlag("window", 128, "requests in flight per pipelined connection"),
			stringFlag("modes", "seed,pipelined,spawn", "modes to run (spawn sets MAXNUM to 1: only on a dispatcher the bench started, or with --token on a scratch one)"),
			secretFlag("token", "fleet token of the target (spawn mode; the bench knows its own dispatcher's)"),
			intFlag("spawns", 10, "spawns timed in spawn mode"),
			boolFlag("json", "print one JSON object"),
			&cli.DurationFlag{Name: "line-seed-wait", Value: dispatcher.DefaultSeedWait, Usage: "the started dispatcher's --line-seed-wait (0: the first read decides)", EnvVars: env("bench-line-seed-wait")},
		},
		Action: func(c *cli.Context) error {
			addr, token := c.String("addr"), c.String("token")
			modes := strings.Split(c.String("modes"), ",")
			if addr == "" {
				bd, err := startBenchDispatcher(c.Context, c.String("memcache"), "--line-seed-wait", c.Duration("line-seed-wait").String())
				if err != nil {
					return err
				}
				defer bd.Stop()
				addr, token = bd.Line, bd.Fleet
			} else if token == "" && !c.IsSet("modes") {
				modes = []string{"seed", "pipelined"}
			}
			res, err := dispatchbench.Run(c.Context, dispatchbench.Config{
				Addr: addr, Duration: c.Duration("duration"), SeedWorkers: c.Int("seed-workers"),
				PipeConns: c.Int("conns"), Window: c.Int("window"), Modes: modes, Token: token, Spawns: c.Int("spawns"),
			})
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return json.NewEncoder(os.Stdout).Encode(res)
			}
			for _, m := range res.Modes {
				if m.Mode == "spawn" {
					fmt.Printf("%-10s %d spawns: spawn-to-answer p50 %.1f ms  p99 %.1f ms\n", m.Mode, m.Arena.Requests, m.Arena.P50us/1000, m.Arena.P99us/1000)
					continue
				}
				fmt.Printf("%-10s arena    %10.0f req/s  p50 %7.1f µs  p99 %8.1f µs  (errors %d)\n", m.Mode, m.Arena.RequestsPerS, m.Arena.P50us, m.Arena.P99us, m.Arena.Errors)
				fmt.Printf("%-10s baseline %10.0f req/s  p50 %7.1f µs  p99 %8.1f µs\n", "", m.Baseline.RequestsPerS, m.Baseline.P50us, m.Baseline.P99us)
				fmt.Printf("%-10s ratio    %10.2fx\n", "", m.Ratio)
			}
			return nil
		},
	}
}

// startBenchDispatcher runs `arena dispatcher` with its own host on free
// ports with an embedded memcached (plus extra flags) and waits until its
// get answers.
func startBenchDispatcher(ctx context.Context, memcache string, extra ...string) (*benchdisp.Dispatcher, error) {
	d, err := benchdisp.Start(benchdisp.Options{Memcache: memcache, LocalHost: true, Extra: extra})
	if err != nil {
		return nil, err
	}
	if err := d.Up(ctx, true); err != nil {
		d.Stop()
		return nil, err
	}
	return d, nil
}
