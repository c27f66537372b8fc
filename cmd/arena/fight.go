package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/arena-game/arena/fightserver"
	"github.com/arena-game/arena/proc"
)

// fightCommand runs one fight server as a fleet process. Its configuration
// (ports, memcached, secret, room options) arrives from its host over the
// plugin channel; started by hand it refuses with proc.ErrManualStart.
func fightCommand() *cli.Command {
	return &cli.Command{
		Name:  "fight",
		Usage: "run one fight server (spawned by an arena host; refuses to start by hand)",
		Description: "A fight server hosts fight rooms (docs/fight.md). An arena host starts it as a\n" +
			"go-plugin process and sends its configuration over the plugin channel.",
		Flags: []cli.Flag{logLevelFlag()},
		Action: func(c *cli.Context) error {
			if !proc.StartedByHost() {
				return proc.ErrManualStart
			}
			var lv slog.Level
			if err := lv.UnmarshalText([]byte(c.String("log-level"))); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			p := fightserver.NewProcess(proc.NewLogger(os.Stderr, lv).With("kind", proc.KindFight))
			err := proc.Serve(p.ProcServer())
			p.Shutdown()
			return err
		},
	}
}
