package matcher

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// simResult sums up a simulation.
type simResult struct {
	rooms, left int
	spread      int64
}

func (r simResult) mean() float64 {
	if r.rooms == 0 {
		return 0
	}
	return float64(r.spread) / float64(r.rooms)
}

// arrivals[s] join at their Enqueued times before the tick at second s.
func simulatePool(t *testing.T, cfg Config, arrivals [][]Ticket, ticks int) simResult {
	t.Helper()
	p := NewPool(cfg)
	var res simResult
	for s := range ticks {
		if s < len(arrivals) {
			for _, tk := range arrivals[s] {
				if err := p.Add(tk); err != nil {
					t.Fatal(err)
				}
			}
		}
		now := at(float64(s))
		for _, r := range p.Tick(now) {
			if err := cfg.CheckRoom(r.Tickets, now); err != nil {
				t.Fatal(err)
			}
			res.rooms++
			res.spread += int64(r.Spread)
		}
	}
	res.left = p.Len()
	return res
}

func simulateSeed(t *testing.T, cfg Config, arrivals [][]Ticket, ticks int) simResult {
	t.Helper()
	var waiting []Ticket
	var res simResult
	for s := range ticks {
		if s < len(arrivals) {
			waiting = append(waiting, arrivals[s]...)
		}
		now := at(float64(s))
		var rooms []Room
		rooms, waiting = SeedTick(cfg, waiting, now)
		for _, r := range rooms {
			if err := cfg.CheckRoom(r.Tickets, now); err != nil {
				t.Fatal(err)
			}
			res.rooms++
			res.spread += int64(r.Spread)
		}
	}
	res.left = len(waiting)
	return res
}

func normalRating(rng *rand.Rand) int {
	return clip(int(math.Round(rng.NormFloat64()*300 + 1500)))
}

// batch is the bench's workload: n solos joining at t=0.
func batch(rng *rand.Rand, n int) [][]Ticket {
	ts := make([]Ticket, n)
	for i := range ts {
		ts[i] = solo(fmt.Sprint(i), normalRating(rng), at(0))
	}
	return [][]Ticket{ts}
}

// steady is rate solos a second, arriving at random moments of each second.
func steady(rng *rand.Rand, rate, seconds int) [][]Ticket {
	out := make([][]Ticket, seconds)
	id := 0
	for s := 1; s < seconds; s++ {
		for range rate {
			out[s] = append(out[s], solo(fmt.Sprint(id), normalRating(rng), at(float64(s)-rng.Float64())))
			id++
		}
	}
	return out
}

// TestNeverWorseThanSeedPerTick: on the same pool at the same moment, Tick
// forms at least as many rooms as the seed's rule, and with as many rooms no
// more total spread. This holds by construction (the seed's greedy is
// Tick's floor); the test covers mixed waits, parties and room sizes.
func TestNeverWorseThanSeedPerTick(t *testing.T) {
	better, same := 0, 0
	for it := range 400 {
		rng := rand.New(rand.NewPCG(uint64(it), 3))
		cfg := Config{RoomSize: 2 + rng.IntN(4), WindowBase: float64(rng.IntN(2) * 20), WindowPerSecond: float64(10 + rng.IntN(90))}
		n := 1 + rng.IntN(300)
		parties := rng.IntN(2) == 0
		var ts []Ticket
		for i := range n {
			m := 1
			if parties && rng.IntN(3) == 0 {
				m = 1 + rng.IntN(cfg.RoomSize)
			}
			ts = append(ts, Ticket{ID: fmt.Sprint(i), Rating: normalRating(rng), Members: m, Enqueued: at(-rng.Float64() * 10)})
		}
		now := at(0)
		seedRooms, _ := SeedTick(cfg, ts, now)
		p := NewPool(cfg)
		for _, tk := range ts {
			p.Add(tk)
		}
		rooms := p.Tick(now)
		var ss, ps int
		for _, r := range seedRooms {
			ss += r.Spread
		}
		for _, r := range rooms {
			ps += r.Spread
		}
		if len(rooms) < len(seedRooms) || (len(rooms) == len(seedRooms) && ps > ss) {
			t.Fatalf("case %d %+v: %d rooms spread %d, seed %d rooms spread %d", it, cfg, len(rooms), ps, len(seedRooms), ss)
		}
		if len(rooms) > len(seedRooms) || ps < ss {
			better++
		} else {
			same++
		}
	}
	t.Logf("better than the seed on %d pools, as good on %d", better, same)
}

// TestNeverWorseThanSeedSimulated runs whole simulations (the bench's
// batch and steady workloads, many sizes and seeds) through Pool and
// through the seed's rule, and checks that Pool forms at least as many rooms
// and no larger mean spread.
func TestNeverWorseThanSeedSimulated(t *testing.T) {
	type tc struct {
		name     string
		cfg      Config
		arrivals [][]Ticket
		ticks    int
	}
	var cases []tc
	for seed := range uint64(60) {
		rng := rand.New(rand.NewPCG(seed, 11))
		for _, n := range []int{3, 4, 5, 7, 10, 20, 50, 100, 1000} {
			cases = append(cases, tc{fmt.Sprintf("batch n=%d seed=%d", n, seed), DefaultConfig(), batch(rng, n), 20})
		}
		if seed < 20 {
			cases = append(cases,
				tc{fmt.Sprintf("batch n=10000 seed=%d", seed), DefaultConfig(), batch(rng, 10000), 20},
				tc{fmt.Sprintf("steady 5/s seed=%d", seed), DefaultConfig(), steady(rng, 5, 60), 60},
				tc{fmt.Sprintf("steady 100/s seed=%d", seed), DefaultConfig(), steady(rng, 100, 60), 60},
				tc{fmt.Sprintf("steady 100/s rooms of 5 seed=%d", seed), Config{RoomSize: 5, WindowPerSecond: 50}, steady(rng, 100, 60), 60},
				tc{fmt.Sprintf("batch rooms of 2 seed=%d", seed), Config{RoomSize: 2, WindowBase: 10, WindowPerSecond: 20}, batch(rng, 500), 20},
			)
		}
	}
	wins := 0
	for _, c := range cases {
		got := simulatePool(t, c.cfg, c.arrivals, c.ticks)
		seed := simulateSeed(t, c.cfg, c.arrivals, c.ticks)
		if got.rooms < seed.rooms || got.mean() > seed.mean()+1e-9 {
			t.Errorf("%s: %d rooms mean spread %.3f; seed %d rooms mean spread %.3f", c.name, got.rooms, got.mean(), seed.rooms, seed.mean())
		}
		if got.rooms > seed.rooms || got.mean() < seed.mean()-1e-9 {
			wins++
		}
	}
	t.Logf("%d simulations, better than the seed in %d", len(cases), wins)
}

var _ = time.Second
