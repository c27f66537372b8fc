package dispatcher

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arena-game/arena/matchmaking"
)

// Recording one matched player's assignment (OnMatch, after its room's
// match messages were pushed): the assignment record in the store, and
// for a backend ticket the journal record of the resumable stream, then
// the stream's subscribers. One player at a time, and from 64 goroutines
// at once (as a tick's hand-off goroutines do), on the test store (an
// embedded memcached, or ARENA_TEST_MEMCACHE's).
func BenchmarkRecordAssignment(b *testing.B) {
	td := newTestDispatcher(b, func(c *Config) { c.Match.Tick = time.Hour })
	var n atomic.Int64
	msg := func() matchmaking.MatchMsg {
		u := fmt.Sprintf("p%08d", n.Add(1))
		return matchmaking.MatchMsg{Type: "match", UUID: u, Room: "r1", Fight: "ws://127.0.0.1:1/ws", Ticket: "tok", Profile: "default",
			Players: []matchmaking.Player{{UUID: u, Username: "a", Score: 1500}, {UUID: "b", Username: "b"}, {UUID: "c", Username: "c"}}}
	}
	for _, backend := range []bool{false, true} {
		name := map[bool]string{false: "player", true: "backend"}[backend]
		b.Run(name+"/serial", func(b *testing.B) {
			for b.Loop() {
				td.recordAssignment(msg(), backend)
			}
		})
		b.Run(name+"/64-goroutines", func(b *testing.B) {
			b.SetParallelism(32) // x GOMAXPROCS 2
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					td.recordAssignment(msg(), backend)
				}
			})
		})
	}
}
