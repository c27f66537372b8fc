package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/arena-game/arena/chatserver/chatbench"
	"github.com/arena-game/arena/internal/store"
)

// benchChatCommand is `arena bench chat`: the world fan-out benchmark
// against a child `arena chat` and a bare gws baseline (docs/benchmarks/chat.md).
func benchChatCommand() *cli.Command {
	return &cli.Command{
		Name:  "chat",
		Usage: "fan one world message out to N chat clients: time to the last client, memory per connection, vs a bare gws baseline",
		Flags: []cli.Flag{
			intFlag("clients", 20000, "receiving clients"),
			intFlag("repeats", 20, "measured fan-outs (after one warm-up)"),
			stringFlag("source-addrs", "127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4", "loopback addresses the clients dial from, round robin"),
			intFlag("concurrency", 256, "handshakes in flight while connecting"),
			&cli.DurationFlag{Name: "timeout", Value: 5 * time.Minute, Usage: "bound on the whole run", EnvVars: env("timeout")},
			boolFlag("no-baseline", "skip the bare gws baseline"),
			boolFlag("json", "print one JSON object"),
			boolFlag("verbose", "show progress and the servers' logs on stderr"),
			&cli.StringFlag{Name: "serve-baseline", Hidden: true, Usage: "internal: run the baseline server on this address"},
			&cli.BoolFlag{Name: "worker", Hidden: true, Usage: "internal: hold a share of the clients, driven over stdin/stdout"},
			logLevelFlag(),
		},
		Action: func(c *cli.Context) error {
			if addr := c.String("serve-baseline"); addr != "" {
				return chatbench.ServeBaseline(c.Context, addr)
			}
			if c.Bool("worker") {
				return chatbench.RunWorker(c.Context, os.Stdin, os.Stdout)
			}
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("bench chat: %w", err)
			}
			cfg := chatbench.Config{
				Clients:     c.Int("clients"),
				Repeats:     c.Int("repeats"),
				Exe:         exe,
				Sources:     store.ParseAddrs(c.String("source-addrs")),
				Concurrency: c.Int("concurrency"),
				Timeout:     c.Duration("timeout"),
				NoBaseline:  c.Bool("no-baseline"),
			}
			if c.Bool("verbose") {
				log, err := newLogger(c)
				if err != nil {
					return err
				}
				cfg.Log, cfg.ServerLog = log, os.Stderr
			}
			res, err := chatbench.Run(c.Context, cfg)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				enc := json.NewEncoder(os.Stdout)
				return enc.Encode(res)
			}
			printChatBench(res)
			return nil
		},
	}
}

func printChatBench(r chatbench.Result) {
	fmt.Printf("world fan-out to %d clients, %d repeats, %d CPUs\n", r.Clients, r.Repeats, r.CPUs)
	if r.Note != "" {
		fmt.Println("note:", r.Note)
	}
	sides := []chatbench.Side{r.Chat}
	if r.Baseline != nil {
		sides = append(sides, *r.Baseline)
	}
	fmt.Printf("%-20s %10s %10s %10s %12s %14s %12s %12s %10s\n", "server", "last p50", "last p99", "last max", "median p50", "rss/conn", "server cpu", "client cpu", "connect")
	for _, s := range sides {
		fmt.Printf("%-20s %8.1fms %8.1fms %8.1fms %10.1fms %12.0f B %10.1fms %10.1fms %9.1fs\n",
			s.Server, s.LastP50Ms, s.LastP99Ms, s.LastMaxMs, s.MedianP50Ms, s.RSSPerConn, s.ServerCPUMs, s.ClientCPUMs, s.ConnectS)
	}
	if r.Ratio != nil {
		fmt.Printf("chat / baseline: last p50 %.2fx, last p99 %.2fx, rss/conn %.2fx\n", r.Ratio.LastP50, r.Ratio.LastP99, r.Ratio.RSSPerConn)
	}
	verdict := "PASS"
	if !r.Pass {
		verdict = "FAIL"
	}
	fmt.Printf("targets: last p99 < %.0f ms, rss/conn < %.0f B: %s\n", r.Targets.LastP99Ms, r.Targets.RSSPerConn, strings.ToLower(verdict))
}
