// Command turns is the turns game as its own binary: an arena host spawns
// it (`arena up --game turns=PATH`) and sends it rooms.
package main

import (
	"fmt"
	"os"

	"github.com/arena-game/arena/examples/turns"
	"github.com/arena-game/arena/sdk"
)

func main() {
	if err := sdk.Serve(&turns.Game{}); err != nil {
		fmt.Fprintln(os.Stderr, "turns:", err)
		os.Exit(1)
	}
}
