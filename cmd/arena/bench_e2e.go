package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/arena-game/arena/dispatcher/e2ebench"
)

func benchE2ECommand() *cli.Command {
	return &cli.Command{
		Name:  "e2e",
		Usage: "players log in, queue, get matched, join the fight and see every create_player; queue-to-room latency",
		Description: "Without --http it starts its own `arena dispatcher` (embedded memcached) on free ports.\n" +
			"See docs/BENCHMARKS.md.",
		Flags: []cli.Flag{
			stringFlag("http", "", "base URL of a running dispatcher (default: start one)"),
			secretFlag("operator-token", "operator token of that dispatcher (lets the generator log in without the login rate limit)"),
			intFlag("players", 3000, "players"),
			memcacheFlag(),
			intFlag("connect", 256, "players connecting at once"),
			&cli.DurationFlag{Name: "tick", Value: time.Second, Usage: "matchmaking tick of the dispatcher it starts", EnvVars: env("bench-tick")},
			&cli.DurationFlag{Name: "timeout", Value: 3 * time.Minute, Usage: "bound on the run", EnvVars: env("bench-timeout")},
			boolFlag("json", "print one JSON object"),
		},
		Action: func(c *cli.Context) error {
			base, op := c.String("http"), c.String("operator-token")
			if base == "" {
				bd, err := startBenchDispatcher(c.Context, c.String("memcache"), "--tick", c.Duration("tick").String(), "--maxnum", "1000")
				if err != nil {
					return err
				}
				defer bd.Stop()
				base, op = bd.HTTP, bd.Operator
			}
			res, err := e2ebench.Run(c.Context, e2ebench.Config{HTTP: base, OperatorToken: op, Players: c.Int("players"),
				Connect: c.Int("connect"), Timeout: c.Duration("timeout")})
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return json.NewEncoder(os.Stdout).Encode(res)
			}
			fmt.Printf("%d of %d players in a room (%d rooms) in %.1fs, %d errors\n", res.InRoom, res.Players, res.Rooms, res.Seconds, res.Errors)
			fmt.Printf("queue -> match    p50 %7.1f ms  p99 %7.1f ms\n", res.QueueToMatP50, res.QueueToMatP99)
			fmt.Printf("queue -> in room  p50 %7.1f ms  p99 %7.1f ms  max %7.1f ms\n", res.P50ms, res.P99ms, res.MaxMs)
			if res.FirstError != "" {
				fmt.Println("first error:", res.FirstError)
			}
			return nil
		},
	}
}
