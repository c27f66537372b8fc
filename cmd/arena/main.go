// Command arena is the one binary of the arena game backend: the
// dispatcher, the fight, map and chat servers it runs, the operator CLI and
// the load generators. main is wiring only: flags to Config structs,
// constructors, run(ctx).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go stopOnSignal(sigs, cancel, processLogger)
	if err := newApp().RunContext(ctx, os.Args); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "arena:", err)
		os.Exit(1)
	}
}

// stopOnSignal cancels the run when the first SIGINT or SIGTERM arrives,
// logging which one in the process's own log format (log returns the
// logger the command built); later ones are logged and otherwise ignored
// while the process stops.
func stopOnSignal(sigs <-chan os.Signal, cancel context.CancelFunc, log func() *slog.Logger) {
	sig := <-sigs
	log().Info("stop signal received; stopping", "signal", sig.String())
	cancel()
	for sig := range sigs {
		log().Info("stop signal received again; already stopping", "signal", sig.String())
	}
}

func newApp() *cli.App {
	return &cli.App{
		Name:  "arena",
		Usage: "a game backend: matchmaking dispatcher, fight, map and chat servers",
		Description: "Every flag also reads an ARENA_... environment variable (shown in each command's help).\n" +
			"Run `arena up` to start everything on one machine.",
		Commands: []*cli.Command{
			upCommand(),
			dispatcherCommand(),
			hostCommand(),
			fightCommand(),
			mapCommand(),
			chatCommand(),
			statusCommand(),
			lineCommand(),
			dbCommand(),
			benchCommand(),
		},
	}
}

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "load generators (see docs/BENCHMARKS.md)",
		Subcommands: []*cli.Command{
			benchDispatchCommand(),
			benchFleetCommand(),
			benchMatchCommand(),
			benchFightCommand(),
			benchMapCommand(),
			benchChatCommand(),
			benchE2ECommand(),
		},
	}
}
