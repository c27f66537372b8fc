package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/arena-game/arena/fightserver"
	"github.com/arena-game/arena/internal/fleet"
)

// fightCommand runs one fight server as a fleet process. Its configuration
// (ports, memcached, secret, room options) arrives from the dispatcher over
// the plugin channel; started by hand it refuses with fleet.ErrManualStart.
func fightCommand() *cli.Command {
	return &cli.Command{
		Name:  "fight",
		Usage: "run one fight server (spawned by the dispatcher; refuses to start by hand)",
		Description: "A fight server hosts fight rooms (docs/fight.md). The dispatcher starts it as a\n" +
			"go-plugin process and sends its configuration over the plugin channel.",
		Flags: []cli.Flag{logLevelFlag()},
		Action: func(c *cli.Context) error {
			if !fleet.StartedByDispatcher() {
				return fleet.ErrManualStart
			}
			var lv slog.Level
			if err := lv.UnmarshalText([]byte(c.String("log-level"))); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			p := fightserver.NewProcess(fleet.NewProcessLogger(os.Stderr, lv).With("kind", fleet.KindFight))
			err := fleet.Serve(p, p.Shutdown)
			p.Shutdown()
			return err
		},
	}
}
