package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/arena-game/arena/internal/lineproto"
)

// lineCommand sends line-protocol requests to a dispatcher and prints the
// answers: netcat without netcat.
func lineCommand() *cli.Command {
	return &cli.Command{
		Name:      "line",
		Usage:     "send line-protocol requests (get, get|map|MAPID, stat, ...) to a dispatcher and print each answer",
		ArgsUsage: "REQUEST...",
		Flags: []cli.Flag{
			stringFlag("addr", "127.0.0.1:6000", "the dispatcher's line protocol address (--listen)"),
			&cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "bound on each request (a get may wait for a spawn)", EnvVars: env("timeout")},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return errors.New("arena line: give at least one request, e.g. arena line get 'get|map|town' stat")
			}
			timeout := c.Duration("timeout")
			conn, err := net.DialTimeout("tcp", c.String("addr"), timeout)
			if err != nil {
				return fmt.Errorf("arena line: %w", err)
			}
			defer conn.Close()
			r := bufio.NewReader(conn)
			failed := false
			for _, req := range c.Args().Slice() {
				if strings.ContainsAny(req, "\r\n") || len(req) > lineproto.MaxLine {
					return fmt.Errorf("arena line %q: one request per argument, at most %d bytes", req, lineproto.MaxLine)
				}
				_ = conn.SetDeadline(time.Now().Add(timeout))
				if _, err := conn.Write([]byte(req + "\n")); err != nil {
					return fmt.Errorf("arena line %q: %w", req, err)
				}
				ans, err := r.ReadString('\n')
				if err != nil {
					return fmt.Errorf("arena line %q: %w", req, err)
				}
				ans = strings.TrimSuffix(ans, "\n")
				failed = failed || strings.HasPrefix(ans, "err|")
				fmt.Println(ans)
			}
			if failed {
				return cli.Exit("", 1)
			}
			return nil
		},
	}
}
