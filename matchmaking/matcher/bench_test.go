package matcher

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
)

// Run with a fixed count, since each iteration rebuilds a large pool
// outside the timer:
//
//	go test -run '^$' -bench Tick -benchtime 5x ./matchmaking/matcher/

// clone copies a pool deeply enough that ticking the copy leaves p as it was.
func (p *Pool) clone() *Pool {
	q := *p
	q.ids = maps.Clone(p.ids)
	q.slots = slices.Clone(p.slots)
	q.free = slices.Clone(p.free)
	q.retired = slices.Clone(p.retired)
	q.held = slices.Clone(p.held)
	q.sorted = slices.Clone(p.sorted)
	q.pending = slices.Clone(p.pending)
	q.removed = slices.Clone(p.removed)
	q.spare = nil
	q.sc = scratch{}
	return &q
}

// benchPool is n solos, ratings Normal(1500, 300) clipped to [0, 3000],
// enqueued up to maxAge seconds before t=0, sorted (merged) unless fresh.
func benchPool(cfg Config, n int, maxAge float64, fresh bool) *Pool {
	rng := rand.New(rand.NewPCG(uint64(n), 1))
	p := NewPool(cfg)
	for i := range n {
		p.Add(solo(fmt.Sprint(i), normalRating(rng), at(-rng.Float64()*maxAge)))
	}
	if !fresh {
		p.merge()
	}
	return p
}

// BenchmarkTick times one Tick over a pool of N waiting tickets:
//
//   - first: N tickets just added at t=0 (the bench's first tick: sorting
//     all N, then every equal-rating room forms);
//   - steady: N tickets enqueued over the last 20 s, sorted by earlier
//     ticks, plus 1% new arrivals; many rooms form;
//   - idle: N tickets, all 1 rating point apart, windows 0: nothing forms
//     (the cost of looking).
func BenchmarkTick(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		for _, tighten := range []bool{false, true} {
			cfg := DefaultConfig()
			cfg.Tighten = tighten
			name := "seed"
			if tighten {
				name = "tighten"
			}
			b.Run(fmt.Sprintf("first/%s/N=%d", name, n), func(b *testing.B) {
				base := benchPool(cfg, n, 0, true)
				b.ResetTimer()
				for range b.N {
					b.StopTimer()
					p := base.clone()
					runtime.GC() // not the clone's garbage
					b.StartTimer()
					p.Tick(at(0))
				}
			})
			b.Run(fmt.Sprintf("steady/%s/N=%d", name, n), func(b *testing.B) {
				base := benchPool(cfg, n, 20, false)
				rng := rand.New(rand.NewPCG(2, 2))
				for i := range n / 100 {
					base.Add(solo(fmt.Sprint("new", i), normalRating(rng), at(-rng.Float64())))
				}
				b.ResetTimer()
				rooms := 0
				for range b.N {
					b.StopTimer()
					p := base.clone()
					runtime.GC()
					b.StartTimer()
					rooms += len(p.Tick(at(0)))
				}
				b.ReportMetric(float64(rooms)/float64(b.N), "rooms/op")
			})
			b.Run(fmt.Sprintf("idle/%s/N=%d", name, n), func(b *testing.B) {
				p := NewPool(cfg)
				for i := range n {
					p.Add(solo(fmt.Sprint(i), i, at(0)))
				}
				p.Tick(at(0))
				b.ResetTimer()
				for range b.N {
					if len(p.Tick(at(0))) != 0 {
						b.Fatal("rooms formed")
					}
				}
			})
		}
	}
}

// BenchmarkAddRemove times Add and Remove on a pool of 100,000 waiting
// tickets (amortised: the merge cost is paid at the next Tick).
func BenchmarkAddRemove(b *testing.B) {
	p := benchPool(DefaultConfig(), 100_000, 20, false)
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprint("x", i)
		if err := p.Add(solo(id, 1500, at(0))); err != nil {
			b.Fatal(err)
		}
		if !p.Remove(id) {
			b.Fatal("not removed")
		}
	}
}

// BenchmarkSteady times one simulated second of the steady workload: R
// arrivals (Add) and the Tick that ends the second, on a pool warmed up to
// its steady size. ns/op is the matchmaker's work per second of play.
func BenchmarkSteady(b *testing.B) {
	for _, rate := range []int{1_000, 10_000, 100_000} {
		for _, tighten := range []bool{false, true} {
			cfg := DefaultConfig()
			cfg.Tighten = tighten
			name := "seed"
			if tighten {
				name = "tighten"
			}
			b.Run(fmt.Sprintf("%s/arrivals=%d", name, rate), func(b *testing.B) {
				rng := rand.New(rand.NewPCG(uint64(rate), 3))
				p := NewPool(cfg)
				id := 0
				second := func(s int) {
					for range rate {
						p.Add(solo(fmt.Sprint(id), normalRating(rng), at(float64(s)+rng.Float64())))
						id++
					}
					p.Tick(at(float64(s + 1)))
				}
				for s := range 30 { // warm up to the steady pool size
					second(s)
				}
				b.ResetTimer()
				for i := range b.N {
					second(30 + i)
				}
				b.ReportMetric(float64(p.Len()), "waiting")
			})
		}
	}
}
