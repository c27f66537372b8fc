package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// mapCommand is a placeholder until its package lands.
func mapCommand() *cli.Command {
	return &cli.Command{
		Name:   "map",
		Usage:  "not built yet",
		Action: func(*cli.Context) error { return errors.New("not built yet") },
	}
}
