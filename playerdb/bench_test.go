package playerdb_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arena-game/arena/playerdb"
	"github.com/arena-game/arena/playerdb/dbtest"
	"github.com/arena-game/arena/results"
)

// benchWriters is how many goroutines write at once in the result
// benchmarks: rooms ending together on the fight processes of a host.
const benchWriters = 16

// BenchmarkResults measures room results recorded per second, in one run
// per backend, beside that database's raw insert rate:
//
//   - raw: one single-row INSERT per transaction into a plain two-column
//     table, with the same durability (SQLite synchronous=FULL, PostgreSQL
//     with fsync) and the same writers: the baseline;
//   - apply: playerdb.Apply of a three-player result (the match, three
//     rating upserts, the histogram, three history lines, Elo read under
//     the players' locks), over a pool of 10,000 players;
//   - record: the fight server's whole path, results.Recorder.Record: the
//     result appended to the Recorder's outbox segment, Apply, the entry
//     marked done.
//
// Compare results/s between the lines of one backend (docs/BENCHMARKS.md).
func BenchmarkResults(b *testing.B) {
	for _, backend := range dbtest.Backends {
		b.Run(string(backend), func(b *testing.B) {
			b.Run("raw", func(b *testing.B) {
				db := dbtest.Open(b, backend)
				if err := db.CreateRawTable(ctx); err != nil {
					b.Fatal(err)
				}
				var k atomic.Int64
				runWriters(b, func() error { return db.RawInsert(ctx, k.Add(1)) })
			})
			b.Run("apply", func(b *testing.B) {
				db := dbtest.Open(b, backend)
				var n atomic.Int64
				runWriters(b, func() error {
					_, err := db.Apply(ctx, benchResult(n.Add(1)))
					return err
				})
			})
			b.Run("record", func(b *testing.B) {
				db := dbtest.Open(b, backend)
				rec, err := results.New(db, nil, results.Config{Dir: b.TempDir()})
				if err != nil {
					b.Fatal(err)
				}
				var n atomic.Int64
				runWriters(b, func() error {
					_, err := rec.Record(ctx, benchResult(n.Add(1)))
					return err
				})
			})
		})
	}
}

// runWriters runs op b.N times on benchWriters goroutines and reports
// results/s.
func runWriters(b *testing.B, op func() error) {
	b.SetParallelism(max(1, writers()/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := op(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "results/s")
}

// benchResult is room i's result: three players of a pool of 10,000.
func benchResult(i int64) playerdb.Result {
	r := rand.New(rand.NewPCG(uint64(i), 7))
	ids := map[string]bool{}
	res := playerdb.Result{Room: fmt.Sprintf("bench-%d", i), Game: "fight", Host: "127.0.0.1:7000", Reason: "last_standing",
		Started: time.Now().Add(-time.Minute), Ended: time.Now()}
	for len(res.Players) < 3 {
		id := fmt.Sprintf("p%d", r.IntN(10000))
		if ids[id] {
			continue
		}
		ids[id] = true
		res.Players = append(res.Players, playerdb.PlayerResult{UUID: id, Name: id, Rank: len(res.Players) + 1, Score: 40})
	}
	return res
}

// BenchmarkLeaderboard measures one leaderboard page over 1,000,000 rated
// players: the top 10 and the caller's own place (a random player), as
// GET /v1/leaderboard answers with a player token. The seeding is not
// timed.
func BenchmarkLeaderboard(b *testing.B) {
	const players = 1_000_000
	for _, backend := range dbtest.Backends {
		b.Run(string(backend), func(b *testing.B) {
			db := dbtest.Open(b, backend)
			sctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
			defer cancel()
			if err := db.SeedForBench(sctx, playerdb.DefaultProfile, players); err != nil {
				b.Fatal(err)
			}
			r := rand.New(rand.NewPCG(1, 2))
			b.ResetTimer()
			for b.Loop() {
				top, total, err := db.Leaderboard(ctx, "", 0, 10)
				if err != nil || len(top) != 10 || total != players {
					b.Fatalf("%d entries of %d, %v", len(top), total, err)
				}
				if _, err := db.Place(ctx, "", fmt.Sprintf("bench%d", r.IntN(players))); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// writers is benchWriters, or ARENA_BENCH_WRITERS when set.
func writers() int {
	if n, err := strconv.Atoi(os.Getenv("ARENA_BENCH_WRITERS")); err == nil && n > 0 {
		return n
	}
	return benchWriters
}
