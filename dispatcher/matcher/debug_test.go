package matcher

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func TestDebugSmall(t *testing.T) {
	var ts []Ticket
	for seed := range uint64(60) {
		rng := rand.New(rand.NewPCG(seed, 11))
		for _, n := range []int{3, 4, 5, 7} {
			a := batch(rng, n)
			if seed == 54 && n == 7 {
				ts = a[0]
			}
		}
	}
	for _, x := range ts { fmt.Print(x.ID, ":", x.Rating, " ") }
	fmt.Println()
	p := NewPool(DefaultConfig())
	for _, x := range ts { p.Add(x) }
	w := ts
	for s := range 20 {
		for _, r := range p.Tick(at(float64(s))) { fmt.Println("pool t", s, roomIDs([]Room{r}), r.Spread, p.LastTick().SeedFloor) }
		var rooms []Room
		rooms, w = SeedTick(DefaultConfig(), w, at(float64(s)))
		for _, r := range rooms { fmt.Println("seed t", s, roomIDs([]Room{r}), r.Spread) }
	}
}
