package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// benchMapCommand is a placeholder until its package lands.
func benchMapCommand() *cli.Command {
	return &cli.Command{
		Name:   "map",
		Usage:  "not built yet",
		Action: func(*cli.Context) error { return errors.New("not built yet") },
	}
}
