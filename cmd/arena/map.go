package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/arena-game/arena/mapserver"
	"github.com/arena-game/arena/proc"
)

// mapCommand runs a map server as a fleet process. The dispatcher spawns
// it (go-plugin) and configures it over the plugin channel (Start: port,
// memcached, secret, options; see docs/maps.md); started by hand it refuses
// and exits non-zero.
func mapCommand() *cli.Command {
	return &cli.Command{
		Name:  "map",
		Usage: "run a map server (spawned by an arena host; refuses to start by hand; see docs/maps.md)",
		Description: "Map servers are started by `arena dispatcher` / `arena up` on ports from --map-port-base\n" +
			"and configured over the plugin channel; their options (world, save-interval, max-speed,\n" +
			"view-radius, ...) come from the dispatcher.",
		Flags: []cli.Flag{logLevelFlag()},
		Action: func(c *cli.Context) error {
			var lv slog.Level
			if err := lv.UnmarshalText([]byte(c.String("log-level"))); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			// After the dispatcher dies, a write to its old stderr pipe must
			// fail rather than kill the process before the final saves.
			signal.Ignore(syscall.SIGPIPE)
			p := mapserver.NewProcess(proc.NewLogger(os.Stderr, lv))
			return proc.Serve(proc.Server{Lifecycle: p, Maps: p, OnOrphan: p.Orphaned})
		},
	}
}
