package matcher

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestSortPending(t *testing.T) {
	for _, tc := range []struct {
		n      int
		lo, hi int
	}{
		{10, 0, 3000}, {radixMin, 1500, 1500}, {5000, 0, 3000}, {5000, -40000, 40000},
		{20000, -MaxRating, MaxRating}, {20000, 0, 1 << 16}, {20000, 0, 1<<16 - 1}, {3000, -5, 5},
	} {
		t.Run(fmt.Sprintf("n=%d[%d,%d]", tc.n, tc.lo, tc.hi), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(tc.n), uint64(tc.hi)))
			p := NewPool(DefaultConfig())
			for i := range tc.n {
				r := tc.lo + rng.IntN(tc.hi-tc.lo+1)
				if i == 0 {
					r = tc.lo
				}
				p.pending = append(p.pending, entry{rating: r, seq: uint64(i + 1)})
			}
			want := slices.Clone(p.pending)
			slices.SortFunc(want, cmpEntry)
			p.sortPending()
			if !slices.Equal(p.pending, want) {
				t.Fatal("sortPending differs from a comparison sort")
			}
		})
	}
}

// TestSameRoomsAsSeedLargeBatch covers the radix-sorted first tick and the
// bench's workload: 20,000 tickets at t=0, 20 ticks.
func TestSameRoomsAsSeedLargeBatch(t *testing.T) {
	arr := batch(rand.New(rand.NewPCG(9, 9)), 20000)[0]
	cfg := DefaultConfig()
	p := NewPool(cfg)
	for _, tk := range arr {
		p.Add(tk)
	}
	waiting := arr
	for s := range 20 {
		var want []Room
		want, waiting = SeedTick(cfg, waiting, at(float64(s)))
		if got := p.Tick(at(float64(s))); roomIDs(got) != roomIDs(want) {
			t.Fatalf("tick %d: pool and seed differ (%d and %d rooms)", s, len(got), len(want))
		}
	}
}
