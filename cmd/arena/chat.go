package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// chatCommand is a placeholder until its package lands.
func chatCommand() *cli.Command {
	return &cli.Command{
		Name:   "chat",
		Usage:  "not built yet",
		Action: func(*cli.Context) error { return errors.New("not built yet") },
	}
}
