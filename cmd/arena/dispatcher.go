package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// dispatcherCommand is a placeholder until its package lands.
func dispatcherCommand() *cli.Command {
	return &cli.Command{
		Name:   "dispatcher",
		Usage:  "not built yet",
		Action: func(*cli.Context) error { return errors.New("not built yet") },
	}
}
