// Package sdk is arena's game SDK: a studio implements Game (the rules of
// a room), and the SDK does everything around them that the built-in
// fight needs too: room tickets, WebSocket connections, size and rate
// limits, rejoin grace, the room timeout, load reports, results and
// ratings through a Recorder, metrics, drain and shutdown. sdk.Serve runs
// a game as a fleet process the dispatcher spawns through go-plugin:
//
//	func main() {
//		if err := sdk.Serve(mygame.Game{}); err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			os.Exit(1)
//		}
//	}
//
// One goroutine owns each room: every Handler call, timer and tick runs on
// it, one at a time, so game code needs no locks. A Handler call that
// panics ends its room with reason "error"; one that runs past
// Config.CallbackDeadline ends it with reason "stuck"; either way the
// process and its other rooms go on. See docs/your-game.md.
package sdk
