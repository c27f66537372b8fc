package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// benchE2ECommand is a placeholder until its package lands.
func benchE2ECommand() *cli.Command {
	return &cli.Command{
		Name:   "e2e",
		Usage:  "not built yet",
		Action: func(*cli.Context) error { return errors.New("not built yet") },
	}
}
