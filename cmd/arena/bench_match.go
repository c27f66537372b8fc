package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// benchMatchCommand is a placeholder until its package lands.
func benchMatchCommand() *cli.Command {
	return &cli.Command{
		Name:   "match",
		Usage:  "not built yet",
		Action: func(*cli.Context) error { return errors.New("not built yet") },
	}
}
