// Package tutorial checks docs/your-game.md: its test builds the Go files
// the tutorial shows, in a module of their own as a reader would, and runs
// their test, so the tutorial cannot go stale.
package tutorial
