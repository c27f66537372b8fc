package matcher

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
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

// TestSameRoomsAsSeed: a Pool forms exactly the rooms SeedTick forms, tick
// after tick, with arrivals, removals, parties and several room sizes, so it
// never forms fewer rooms nor a larger spread than the seed's rule.
func TestSameRoomsAsSeed(t *testing.T) {
	for it := range 300 {
		rng := rand.New(rand.NewPCG(uint64(it), 5))
		cfg := Config{RoomSize: 2 + rng.IntN(4), WindowBase: float64(rng.IntN(2) * 20), WindowPerSecond: float64(10 + rng.IntN(90))}
		parties := it%3 == 0
		p := NewPool(cfg)
		var waiting []Ticket // the seed's list, in its order
		id := 0
		for s := range 30 {
			for range rng.IntN(40) {
				m := 1
				if parties && rng.IntN(3) == 0 {
					m = 1 + rng.IntN(cfg.RoomSize)
				}
				tk := Ticket{ID: fmt.Sprint(id), Rating: normalRating(rng), Members: m, Enqueued: at(float64(s) - rng.Float64())}
				id++
				if err := p.Add(tk); err != nil {
					t.Fatal(err)
				}
				waiting = append(waiting, tk)
			}
			for range rng.IntN(4) {
				if len(waiting) == 0 {
					break
				}
				i := rng.IntN(len(waiting))
				if !p.Remove(waiting[i].ID) {
					t.Fatalf("Remove(%s) = false", waiting[i].ID)
				}
				waiting = append(waiting[:i], waiting[i+1:]...)
			}
			now := at(float64(s))
			var want []Room
			want, waiting = SeedTick(cfg, waiting, now)
			got := p.Tick(now)
			if roomIDs(got) != roomIDs(want) {
				t.Fatalf("case %d %+v tick %d:\n pool %s\n seed %s", it, cfg, s, roomIDs(got), roomIDs(want))
			}
			if p.Len() != len(waiting) {
				t.Fatalf("case %d tick %d: pool has %d waiting, seed %d", it, s, p.Len(), len(waiting))
			}
		}
	}
}

// TestTightenNeverWorsePerTick: with Config.Tighten, on the same pool at the
// same moment, Tick forms at least as many rooms as the seed's rule with no
// larger mean spread (by construction: the seed's rooms are the fallback).
func TestTightenNeverWorsePerTick(t *testing.T) {
	better, same := 0, 0
	for it := range 400 {
		rng := rand.New(rand.NewPCG(uint64(it), 3))
		cfg := Config{RoomSize: 2 + rng.IntN(4), WindowBase: float64(rng.IntN(2) * 20), WindowPerSecond: float64(10 + rng.IntN(90)), Tighten: true}
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
		if len(rooms) < len(seedRooms) || ps*max(len(seedRooms), 1) > ss*max(len(rooms), 1) {
			t.Fatalf("case %d %+v: %d rooms spread %d, seed %d rooms spread %d", it, cfg, len(rooms), ps, len(seedRooms), ss)
		}
		if p.LastTick().Tightened {
			better++
		} else {
			same++
		}
	}
	t.Logf("tightened on %d pools, the seed's rooms on %d", better, same)
}

// TestTightenSimulated runs whole simulations (the bench's batch and steady
// workloads, ten seeded runs each) through a tightened Pool and through
// the seed's rule, checks every room, and asserts what docs/matchmaking.md
// claims for tightening: averaged over the runs of every workload it lowers
// the mean rating spread; in steady play it lowers it by at least 3 % and
// forms no fewer rooms; in a batch it forms at most 0.1 % fewer (2 of
// 33,328 in the 10,000-ticket batches). A single run may still be worse
// than the seed's (that is measured and logged, not asserted: tightening
// is guarded per tick, not per run).
func TestTightenSimulated(t *testing.T) {
	type tc struct {
		name     string
		arrivals func(*rand.Rand) [][]Ticket
		ticks    int
		minGain  float64 // least relative drop of the mean spread
		roomLoss float64 // most rooms it may form fewer than the seed, relative
	}
	cfg := DefaultConfig()
	cfg.Tighten = true
	for _, c := range []tc{
		{"batch 100", func(r *rand.Rand) [][]Ticket { return batch(r, 100) }, 20, 0, 0.001},
		{"batch 10000", func(r *rand.Rand) [][]Ticket { return batch(r, 10000) }, 20, 0, 0.001},
		{"steady 20/s", func(r *rand.Rand) [][]Ticket { return steady(r, 20, 120) }, 120, 0.03, 0},
		{"steady 1000/s", func(r *rand.Rand) [][]Ticket { return steady(r, 1000, 30) }, 30, 0.03, 0},
	} {
		runs, worse := 10, 0
		var gotMean, seedMean float64
		var gotRooms, seedRooms int
		for seed := range uint64(runs) {
			arr := c.arrivals(rand.New(rand.NewPCG(seed, 11)))
			got := simulatePool(t, cfg, arr, c.ticks)
			ref := simulateSeed(t, cfg, arr, c.ticks)
			gotMean += got.mean() / float64(runs)
			seedMean += ref.mean() / float64(runs)
			gotRooms += got.rooms
			seedRooms += ref.rooms
			if got.rooms < ref.rooms || got.mean() > ref.mean() {
				worse++
			}
		}
		t.Logf("%s: mean spread %.3f, seed %.3f; rooms %d, seed %d; worse than the seed on %d of %d runs",
			c.name, gotMean, seedMean, gotRooms, seedRooms, worse, runs)
		if gotMean >= seedMean {
			t.Errorf("%s: tightened mean spread %.3f, not below the seed's %.3f", c.name, gotMean, seedMean)
		}
		if gain := 1 - gotMean/seedMean; gain < c.minGain {
			t.Errorf("%s: tightening lowered the mean spread by %.1f %%, want at least %.0f %%", c.name, 100*gain, 100*c.minGain)
		}
		if float64(gotRooms) < float64(seedRooms)*(1-c.roomLoss) {
			t.Errorf("%s: tightened pools formed %d rooms, the seed's rule %d", c.name, gotRooms, seedRooms)
		}
	}
}
