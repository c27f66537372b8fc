package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// benchFightCommand is a placeholder until its package lands.
func benchFightCommand() *cli.Command {
	return &cli.Command{
		Name:   "fight",
		Usage:  "not built yet",
		Action: func(*cli.Context) error { return errors.New("not built yet") },
	}
}
