package matchmaking

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/arena-game/arena/matchmaking/matcher"
)

// BenchProfiles is the benchmark's 4 profiles with 3 overlapping pools
// each (by region, level and tag), the seed's rule, rooms of 3.
const BenchProfiles = `
profiles:
  - {name: p0, pools: [{name: eu, string_equals: [{field: region, value: eu}]}, {name: lvl, double_range: [{field: level, min: 5}]}, {name: ranked, tag_present: [ranked]}]}
  - {name: p1, pools: [{name: eu, string_equals: [{field: region, value: eu}]}, {name: lvl, double_range: [{field: level, min: 5}]}, {name: ranked, tag_present: [ranked]}]}
  - {name: p2, pools: [{name: eu, string_equals: [{field: region, value: eu}]}, {name: lvl, double_range: [{field: level, min: 5}]}, {name: ranked, tag_present: [ranked]}]}
  - {name: p3, pools: [{name: eu, string_equals: [{field: region, value: eu}]}, {name: lvl, double_range: [{field: level, min: 5}]}, {name: ranked, tag_present: [ranked]}]}
`

// TickBench describes one tick to measure: Tickets spread over the
// profiles named, ratings Normal(1500, 300), created over the Spread
// before the tick, random search fields (region eu/us/asia, level 0-9,
// half "ranked").
type TickBench struct {
	Tickets  int
	Profiles Profiles
	Names    []string
	Spread   time.Duration
	Seed     uint64
	// Warm: tick once first (untimed), refill to Tickets with tickets
	// made in the second after, and time the next tick: a pool in steady
	// state rather than everyone at once.
	Warm bool
}

// TickBenchResult is one measured tick.
type TickBenchResult struct {
	Tickets int     `json:"tickets"`
	Rooms   int     `json:"rooms"`
	Warm    bool    `json:"warm"`
	WallMS  float64 `json:"tick_wall_ms"`
	CPUMS   float64 `json:"tick_cpu_ms"` // the whole process's CPU (GC included) during the tick
	// PushP50MS and PushP99MS: from the tick's start to each matched
	// player's match message reaching the Notifier (the /v1/play socket's
	// send queue), with an instant placement; AfterTickP99MS from the
	// tick's end.
	PushP50MS      float64 `json:"push_p50_ms"`
	PushP99MS      float64 `json:"push_p99_ms"`
	AfterTickP99MS float64 `json:"push_after_tick_p99_ms"`
	// MatcherMS is the baseline: the pure matcher (one matcher.Pool) on
	// the same tickets, wall time (0 when not measured).
	MatcherMS float64 `json:"matcher_baseline_ms,omitempty"`
}

// BenchNewMatchmaker fills a matchmaker (not running) as b describes;
// the tick to measure is at epoch + b.Spread.
func BenchNewMatchmaker(b TickBench, notify Notifier, handoff Handoff) (*Matchmaker, time.Time, error) {
	epoch := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if b.Spread <= 0 {
		b.Spread = 10 * time.Second
	}
	m, err := NewMatchmaker(Config{Profiles: b.Profiles, RoomSize: 3, WindowPerSecond: 50, TicketTTL: time.Hour}, notify, handoff,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return nil, time.Time{}, err
	}
	for i, t := range benchTickets(b, epoch) {
		e := Enqueue{Player: Player{UUID: t.ID, Score: t.Rating}, Profile: b.Names[i%len(b.Names)], Search: *t.Payload.(*SearchFields),
			Source: SourceBackend, Created: t.Enqueued}
		if _, err := m.enqueue(e, e.Created); err != nil {
			return nil, time.Time{}, err
		}
	}
	return m, epoch.Add(b.Spread), nil
}

// benchTickets makes b's tickets (Payload: their search fields).
func benchTickets(b TickBench, epoch time.Time) []matcher.Ticket {
	rng := rand.New(rand.NewPCG(b.Seed, uint64(b.Tickets)))
	regions := []string{"eu", "us", "asia"}
	fields := make([]SearchFields, 64)
	for i := range fields {
		fields[i] = SearchFields{Strings: map[string]string{"region": regions[i%3]}, Doubles: map[string]float64{"level": float64(i % 10)}}
		if i%2 == 0 {
			fields[i].Tags = []string{"ranked"}
		}
	}
	out := make([]matcher.Ticket, b.Tickets)
	for i := range out {
		out[i] = matcher.Ticket{ID: fmt.Sprintf("t%07d", i), Rating: max(0, min(3000, 1500+int(rng.NormFloat64()*300))), Members: 1,
			Enqueued: epoch.Add(time.Duration(rng.Int64N(int64(b.Spread)))), Payload: &fields[rng.IntN(len(fields))]}
	}
	return out
}

// pushClock is a Notifier that records when match messages arrive (from
// many goroutines, without a lock: the bench times the matchmaker, not a
// Notifier's).
type pushClock struct {
	start time.Time
	n     atomic.Int64
	lat   []time.Duration
}

func (p *pushClock) reset(n int) {
	p.n.Store(0)
	p.lat = make([]time.Duration, n)
	p.start = time.Now()
}

func (p *pushClock) Notify(_ string, msg any) {
	if _, ok := msg.(*MatchMsg); !ok {
		return
	}
	d := time.Since(p.start)
	if i := p.n.Add(1) - 1; i < int64(len(p.lat)) {
		p.lat[i] = d
	}
}

// pushed is the latencies recorded since reset.
func (p *pushClock) pushed() []time.Duration { return p.lat[:min(int(p.n.Load()), len(p.lat))] }

// BenchTick measures one tick as b describes (a fresh matchmaker, after
// a garbage collection), and with baseline the pure matcher on the same
// tickets in one pool.
func BenchTick(b TickBench, baseline bool) (TickBenchResult, error) {
	if b.Spread <= 0 {
		b.Spread = 10 * time.Second
	}
	pc := &pushClock{}
	// An instant placement: every player gets the zero match message (the
	// fleet's work is the fleet benchmarks').
	place := func(context.Context, FormedRoom) (map[string]MatchMsg, error) { return nil, nil }
	m, now, err := BenchNewMatchmaker(b, pc, place)
	if err != nil {
		return TickBenchResult{}, err
	}
	if b.Warm {
		pc.reset(b.Tickets)
		m.tick(context.Background(), now)
		m.handoffs.Wait()
		m.drainForBench()
		rng := rand.New(rand.NewPCG(b.Seed+1, 7))
		fresh := benchTickets(TickBench{Tickets: b.Tickets - m.waiting, Spread: time.Second, Seed: b.Seed + 1}, now)
		for i, t := range fresh {
			e := Enqueue{Player: Player{UUID: "w" + t.ID, Score: t.Rating}, Profile: b.Names[rng.IntN(len(b.Names))],
				Search: *t.Payload.(*SearchFields), Source: SourceBackend, Created: t.Enqueued}
			if _, err := m.enqueue(e, e.Created); err != nil {
				return TickBenchResult{}, fmt.Errorf("bench refill %d: %w", i, err)
			}
		}
		now = now.Add(time.Second)
		m.stats.total = 0
	}
	pc.reset(b.Tickets)
	runtime.GC()
	c0 := cpuTime()
	pc.start = time.Now()
	m.tick(context.Background(), now)
	wall := time.Since(pc.start)
	cpu := cpuTime() - c0
	m.handoffs.Wait()
	res := TickBenchResult{Tickets: b.Tickets, Warm: b.Warm, Rooms: int(m.stats.total), WallMS: ms(wall), CPUMS: ms(cpu)}
	lat := pc.pushed()
	slices.Sort(lat)
	if n := len(lat); n > 0 {
		// From the tick's end: max(0, latency - tick), the same order.
		res.PushP50MS, res.PushP99MS = ms(lat[n/2]), ms(lat[n*99/100])
		res.AfterTickP99MS = ms(max(0, lat[n*99/100]-wall))
	}
	if baseline {
		epoch := now.Add(-b.Spread)
		cfg := matcher.DefaultConfig()
		if len(b.Profiles.Profiles) == 1 {
			if err := b.Profiles.Validate(nil); err != nil {
				return res, err
			}
			cfg = b.Profiles.Profiles[0].matcherConfig()
		}
		p := matcher.NewPool(cfg)
		for _, t := range benchTickets(b, epoch) {
			_ = p.Add(t)
		}
		runtime.GC()
		start := time.Now()
		p.Tick(now)
		res.MatcherMS = ms(time.Since(start))
	}
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// cpuTime is the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// drainForBench runs what the hand-offs posted (the matchmaker is not
// running in a benchmark).
func (m *Matchmaker) drainForBench() {
	var buf []func()
	for m.inbox.Len() > 0 || m.events.Len() > 0 {
		buf = append(m.events.Take(buf[:0]), m.inbox.Take(nil)...)
		for _, f := range buf {
			f()
		}
	}
}
