package matchmaking

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// benchProfiles is 4 profiles with 3 overlapping pools each (by region,
// level and tag), the seed's rule, rooms of 3.
const benchProfiles = `
profiles:
  - {name: p0, pools: [{name: eu, string_equals: [{field: region, value: eu}]}, {name: lvl, double_range: [{field: level, min: 5}]}, {name: ranked, tag_present: [ranked]}]}
  - {name: p1, pools: [{name: eu, string_equals: [{field: region, value: eu}]}, {name: lvl, double_range: [{field: level, min: 5}]}, {name: ranked, tag_present: [ranked]}]}
  - {name: p2, pools: [{name: eu, string_equals: [{field: region, value: eu}]}, {name: lvl, double_range: [{field: level, min: 5}]}, {name: ranked, tag_present: [ranked]}]}
  - {name: p3, pools: [{name: eu, string_equals: [{field: region, value: eu}]}, {name: lvl, double_range: [{field: level, min: 5}]}, {name: ranked, tag_present: [ranked]}]}
`

// benchMatchmaker fills a matchmaker (not running) with n tickets spread
// over profiles, ratings Normal(1500, 300), created over the 10 s before
// the tick, with random search fields.
func benchMatchmaker(tb testing.TB, n int, profiles []string, ps Profiles) *Matchmaker {
	tb.Helper()
	noop := func(_ context.Context, fr FormedRoom) (map[string]MatchMsg, error) { return nil, nil }
	m, err := NewMatchmaker(Config{Profiles: ps, RoomSize: 3, WindowPerSecond: 50, TicketTTL: time.Hour}, &recorder{}, noop, quietLog())
	if err != nil {
		tb.Fatal(err)
	}
	m.notify = nopNotifier{}
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	regions := []string{"eu", "us", "asia"}
	fields := make([]SearchFields, 64)
	for i := range fields {
		fields[i] = SearchFields{Strings: map[string]string{"region": regions[i%3]}, Doubles: map[string]float64{"level": float64(i % 10)}}
		if i%2 == 0 {
			fields[i].Tags = []string{"ranked"}
		}
	}
	for i := range n {
		e := Enqueue{Player: Player{UUID: fmt.Sprintf("t%07d", i), Score: max(0, min(3000, 1500+int(rng.NormFloat64()*300)))},
			Profile: profiles[i%len(profiles)], Search: fields[rng.IntN(len(fields))], Source: SourceBackend,
			Created: epoch.Add(time.Duration(rng.IntN(10_000)) * time.Millisecond)}
		if _, err := m.enqueue(e, e.Created); err != nil {
			tb.Fatal(err)
		}
	}
	return m
}

type nopNotifier struct{}

func (nopNotifier) Notify(string, any) {}

// benchTick times one tick (functions, evaluator, taking the matched
// tickets out) over a fresh matchmaker each iteration; hand-offs are
// started but not timed.
func benchTick(b *testing.B, n int, profiles []string, ps Profiles) {
	b.ReportAllocs()
	rooms := 0
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		m := benchMatchmaker(b, n, profiles, ps)
		runtime.GC()
		c0 := cpuTime()
		b.StartTimer()
		m.tick(context.Background(), epoch.Add(10*time.Second))
		b.StopTimer()
		cpu += cpuTime() - c0
		m.handoffs.Wait()
		rooms = int(m.stats.total)
		b.StartTimer()
	}
	b.ReportMetric(float64(rooms), "rooms/tick")
	// CPU time of the whole process (garbage collector included) per
	// tick: the fair figure on a shared machine, where wall time is
	// inflated by others' work.
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/tick")
}

// 100,000 tickets over 4 profiles with 3 overlapping pools each.
func BenchmarkTick100kFourProfilesThreePools(b *testing.B) {
	ps, err := ParseProfiles([]byte(benchProfiles), nil)
	if err != nil {
		b.Fatal(err)
	}
	benchTick(b, 100_000, []string{"p0", "p1", "p2", "p3"}, ps)
}

// 1,000,000 tickets in the default profile (one pool).
func BenchmarkTick1MOneProfile(b *testing.B) {
	benchTick(b, 1_000_000, []string{DefaultProfile}, DefaultProfiles(3, 0, 50, false))
}

// A queue operation (enqueue then cancel) on a matchmaker holding n
// tickets across 4 profiles: it must not grow with n nor the profiles.
func BenchmarkEnqueueCancel(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			ps, _ := ParseProfiles([]byte(benchProfiles), nil)
			m := benchMatchmaker(b, n, []string{"p0", "p1", "p2", "p3"}, ps)
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

// cpuTime is the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
