package mapserver

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestSelectNearest(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 500; trial++ {
		n := 1 + rng.IntN(200)
		k := 1 + rng.IntN(n)
		cs := make([]cand, n)
		for i := range cs {
			cs[i].d2 = float64(rng.IntN(50)) // many ties
		}
		want := make([]float64, n)
		for i := range cs {
			want[i] = cs[i].d2
		}
		slices.Sort(want)
		selectNearest(cs, k)
		got := make([]float64, k)
		for i := range got {
			got[i] = cs[i].d2
		}
		slices.Sort(got)
		if !slices.Equal(got, want[:k]) {
			t.Fatalf("n=%d k=%d: got %v, want %v", n, k, got, want[:k])
		}
	}
}
