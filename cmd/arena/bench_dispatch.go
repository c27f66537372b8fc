package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// benchDispatchCommand is a placeholder until its package lands.
func benchDispatchCommand() *cli.Command {
	return &cli.Command{
		Name:   "dispatch",
		Usage:  "not built yet",
		Action: func(*cli.Context) error { return errors.New("not built yet") },
	}
}
