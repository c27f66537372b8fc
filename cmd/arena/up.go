package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// upCommand is a placeholder until its package lands.
func upCommand() *cli.Command {
	return &cli.Command{
		Name:   "up",
		Usage:  "not built yet",
		Action: func(*cli.Context) error { return errors.New("not built yet") },
	}
}
