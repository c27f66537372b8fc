package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// statusCommand is a placeholder until its package lands.
func statusCommand() *cli.Command {
	return &cli.Command{
		Name:   "status",
		Usage:  "not built yet",
		Action: func(*cli.Context) error { return errors.New("not built yet") },
	}
}
