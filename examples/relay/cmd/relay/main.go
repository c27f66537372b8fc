// Command relay is the relay game as its own binary (the benchmark
// workload of `arena bench fight --game relay=PATH`).
package main

import (
	"fmt"
	"os"

	"github.com/arena-game/arena/examples/relay"
	"github.com/arena-game/arena/sdk"
)

func main() {
	if err := sdk.Serve(&relay.Game{}); err != nil {
		fmt.Fprintln(os.Stderr, "relay:", err)
		os.Exit(1)
	}
}
