package matchmaking

import (
	"context"
	"fmt"
	"testing"
)

// benchTick times one tick (functions, evaluator, taking the matched
// tickets out, starting the hand-offs) over a fresh matchmaker each
// iteration, and reports the process's CPU time per tick.
func benchTick(b *testing.B, tb TickBench) {
	b.ReportAllocs()
	var rooms int
	var cpu, wall, push float64
	for b.Loop() {
		b.StopTimer()
		r, err := BenchTick(tb, false)
		if err != nil {
			b.Fatal(err)
		}
		rooms, cpu, wall, push = r.Rooms, cpu+r.CPUMS, wall+r.WallMS, max(push, r.PushP99MS)
		b.StartTimer()
	}
	b.ReportMetric(float64(rooms), "rooms/tick")
	// CPU time of the whole process (garbage collector included) per
	// tick: the fair figure on a shared machine.
	b.ReportMetric(cpu/float64(b.N), "cpu-ms/tick")
	b.ReportMetric(wall/float64(b.N), "wall-ms/tick")
	b.ReportMetric(push, "push-p99-ms")
}

// 100,000 tickets over 4 profiles with 3 overlapping pools each, created
// over 10 s: most match in this one tick (the worst case).
func BenchmarkTick100kFourProfilesThreePools(b *testing.B) {
	ps, err := ParseProfiles([]byte(BenchProfiles), nil)
	if err != nil {
		b.Fatal(err)
	}
	benchTick(b, TickBench{Tickets: 100_000, Profiles: ps, Names: []string{"p0", "p1", "p2", "p3"}, Seed: 1})
}

// The same in steady state: after a first tick, refilled to 100,000 with
// tickets made in the last second.
func BenchmarkTick100kFourProfilesThreePoolsWarm(b *testing.B) {
	ps, err := ParseProfiles([]byte(BenchProfiles), nil)
	if err != nil {
		b.Fatal(err)
	}
	benchTick(b, TickBench{Tickets: 100_000, Profiles: ps, Names: []string{"p0", "p1", "p2", "p3"}, Seed: 1, Warm: true})
}

// 1,000,000 tickets in the default profile (one pool).
func BenchmarkTick1MOneProfile(b *testing.B) {
	benchTick(b, TickBench{Tickets: 1_000_000, Profiles: DefaultProfiles(3, 0, 50, false), Names: []string{DefaultProfile}, Seed: 1})
}

// A queue operation (enqueue then cancel) on a matchmaker holding n
// tickets across 4 profiles: it must not grow with n nor the profiles.
func BenchmarkEnqueueCancel(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			ps, _ := ParseProfiles([]byte(BenchProfiles), nil)
			m, _, err := BenchNewMatchmaker(TickBench{Tickets: n, Profiles: ps, Names: []string{"p0", "p1", "p2", "p3"}, Seed: 1}, nopNotifier{},
				func(context.Context, FormedRoom) (map[string]MatchMsg, error) { return nil, nil })
			if err != nil {
				b.Fatal(err)
			}
			e := Enqueue{Player: Player{UUID: "x", Score: 1500}, Profile: "p1", Source: SourceBackend,
				Search: SearchFields{Strings: map[string]string{"region": "eu"}, Doubles: map[string]float64{"level": 7}, Tags: []string{"ranked"}}}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.enqueue(e, epoch); err != nil {
					b.Fatal(err)
				}
				if err := m.cancel("x", 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type nopNotifier struct{}

func (nopNotifier) Notify(string, any) {}
