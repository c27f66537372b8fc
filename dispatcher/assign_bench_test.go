package dispatcher

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arena-game/arena/matchmaking"
)

// benchBatch is the batch BenchmarkRecordAssignment records per
// iteration: the players of a large hand-off batch.
const benchBatch = 10000

// Recording a hand-off batch's assignments (OnMatch, after its rooms'
// match messages were pushed): per player the assignment record in the
// store, and for a backend ticket the journal record of the resumable
// stream, then the stream's subscribers. Each iteration records
// benchBatch players, three ways: one at a time on one goroutine (a round
// trip per record, as before batches were recorded together), one at a
// time on each of 64 goroutines (as the hand-off goroutines recorded
// their rooms' players before), as one batch (recordAssignments:
// pipelined writes), and in chunks of 512 from 8 goroutines (as the
// hand-off goroutines record, recordChunk). ns/rec is the time per player. On the test store (an
// embedded memcached, or ARENA_TEST_MEMCACHE's).
func BenchmarkRecordAssignment(b *testing.B) {
	td := newTestDispatcher(b, func(c *Config) { c.Match.Tick = time.Hour })
	var n atomic.Int64
	batch := func(backend bool) []matchmaking.Matched {
		out := make([]matchmaking.Matched, benchBatch)
		for i := range out {
			u := fmt.Sprintf("p%08d", n.Add(1))
			out[i] = matchmaking.Matched{Backend: backend, Msg: matchmaking.MatchMsg{Type: "match", UUID: u, Room: "r1", Fight: "ws://127.0.0.1:1/ws", Ticket: "tok", Profile: "default",
				Players: []matchmaking.Player{{UUID: u, Username: "a", Score: 1500}, {UUID: "b", Username: "b"}, {UUID: "c", Username: "c"}}}}
		}
		return out
	}
	ways := []struct {
		name   string
		record func(ms []matchmaking.Matched)
	}{
		{"one-at-a-time", func(ms []matchmaking.Matched) {
			for i := range ms {
				td.recordAssignments(ms[i : i+1])
			}
		}},
		{"64-goroutines-one-at-a-time", func(ms []matchmaking.Matched) {
			var next atomic.Int64
			var wg sync.WaitGroup
			for range 64 {
				wg.Go(func() {
					for i := int(next.Add(1)) - 1; i < len(ms); i = int(next.Add(1)) - 1 {
						td.recordAssignments(ms[i : i+1])
					}
				})
			}
			wg.Wait()
		}},
		{"batch", func(ms []matchmaking.Matched) { td.recordAssignments(ms) }},
		{"chunks-of-512-on-8-goroutines", func(ms []matchmaking.Matched) {
			var next atomic.Int64
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					for i := int(next.Add(512)) - 512; i < len(ms); i = int(next.Add(512)) - 512 {
						td.recordAssignments(ms[i:min(i+512, len(ms))])
					}
				})
			}
			wg.Wait()
		}},
	}
	for _, backend := range []bool{false, true} {
		kind := map[bool]string{false: "player", true: "backend"}[backend]
		for _, w := range ways {
			b.Run(fmt.Sprintf("%s/%s-%d", kind, w.name, benchBatch), func(b *testing.B) {
				for b.Loop() {
					b.StopTimer()
					ms := batch(backend)
					b.StartTimer()
					w.record(ms)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/rec")
			})
		}
	}
}
