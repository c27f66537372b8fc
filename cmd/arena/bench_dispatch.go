package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/arena-game/arena/dispatcher"
	"github.com/arena-game/arena/dispatcher/dispatchbench"
	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/store"
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
				defer bd.stop()
				addr, token = bd.line, bd.fleet
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

// benchDispatcher is a dispatcher a load generator started for itself.
type benchDispatcher struct {
	line, http, operator, fleet string
	stop                        func()
}

// startBenchDispatcher runs `arena dispatcher` on free ports with an
// embedded memcached (plus extra flags) and waits until it answers.
func startBenchDispatcher(ctx context.Context, memcache string, extra ...string) (*benchDispatcher, error) {
	mcAddr, closeMC := memcache, func() {}
	if mcAddr == "" {
		mc, err := store.StartEmbedded(0)
		if err != nil {
			return nil, err
		}
		mcAddr, closeMC = mc.Addr(), mc.Close
	}
	free := func() int {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0
		}
		defer ln.Close()
		return ln.Addr().(*net.TCPAddr).Port
	}
	line := "127.0.0.1:" + strconv.Itoa(free())
	bd := &benchDispatcher{line: line, http: "http://127.0.0.1:" + strconv.Itoa(free()), operator: auth.RandomID(16), fleet: auth.RandomID(16)}
	exe, err := os.Executable()
	if err != nil {
		closeMC()
		return nil, err
	}
	dir, err := os.MkdirTemp("", "arena-bench-")
	if err != nil {
		closeMC()
		return nil, err
	}
	closeStore := closeMC
	closeMC = func() { closeStore(); os.RemoveAll(dir) }
	args := []string{"dispatcher", "--db", "sqlite:" + filepath.Join(dir, "arena.db"), "--outbox", filepath.Join(dir, "outbox"), "--listen", line, "--http", strings.TrimPrefix(bd.http, "http://"), "--grpc", "",
		"--memcache", mcAddr, "--store-prefix", "bench" + auth.RandomID(4) + ":", "--fleet-token", bd.fleet, "--secret", auth.RandomID(16), "--operator-token", bd.operator,
		"--fight-port-base", strconv.Itoa(30000 + free()%20000), "--map-port-base", strconv.Itoa(25000 + free()%5000),
		"--max-conns", "20000", "--log-level", "warn", "--local-host", "--host-listen", "127.0.0.1:0"}
	cmd := exec.CommandContext(ctx, exe, append(args, extra...)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		closeMC()
		return nil, err
	}
	bd.stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		closeMC()
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", line); err == nil {
			_, _ = c.Write([]byte("get"))
			b := make([]byte, 16)
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			n, _ := c.Read(b)
			c.Close()
			if _, err := strconv.Atoi(string(b[:n])); err == nil {
				return bd, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	bd.stop()
	return nil, fmt.Errorf("bench: the dispatcher did not come up")
}
