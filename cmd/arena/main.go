// Command arena is the one binary of the arena game backend: the
// dispatcher, the fight, map and chat servers it runs, the operator CLI and
// the load generators. main is wiring only: flags to Config structs,
// constructors, run(ctx).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newApp().RunContext(ctx, os.Args); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "arena:", err)
		stop()
		os.Exit(1)
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
			fightCommand(),
			mapCommand(),
			chatCommand(),
			statusCommand(),
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
			benchMatchCommand(),
			benchFightCommand(),
			benchMapCommand(),
			benchChatCommand(),
			benchE2ECommand(),
		},
	}
}
