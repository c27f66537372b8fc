// Command matchfn is an example match function plugin: 2-vs-2 rooms of
// players of one region with close ratings, teams balanced. Build it and
// give it to the dispatcher:
//
//	go build -o matchfn ./examples/matchfn
//	arena dispatcher --match-function duo=./matchfn --profiles profiles.yaml ...
//
// with a profile such as examples/matchfn/profiles.yaml. See
// docs/matchmaking.md, "Writing a match function".
package main

import (
	"fmt"
	"os"

	"github.com/arena-game/arena/examples/matchfn/duo"
	"github.com/arena-game/arena/matchmaking"
	"github.com/arena-game/arena/matchmaking/matchfn"
)

func main() {
	if err := matchfn.Serve(matchmaking.FunctionFunc(duo.TwoVsTwo)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
