package matcher

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

type tickFn func(cfg Config, waiting []Ticket, now time.Time) ([]Room, []Ticket)

func build(cfg Config, waiting []Ticket, now time.Time) ([]entry, []float64) {
	es := make([]entry, len(waiting))
	for i, t := range waiting {
		es[i] = entry{rating: t.Rating, seq: uint64(i), slot: int32(i), members: int32(t.Members), enq: -int64(now.Sub(t.Enqueued))}
	}
	slices.SortFunc(es, cmpEntry)
	w := make([]float64, len(es))
	for i, e := range es {
		w[i] = cfg.Window(now.Sub(waiting[e.slot].Enqueued))
	}
	return es, w
}

func emit(waiting []Ticket, es []entry, g *groups) ([]Room, []Ticket) {
	matched := make([]bool, len(es))
	var rooms []Room
	start := 0
	for _, end := range g.ends {
		var r Room
		for k := start; k < int(end); k++ {
			r.Tickets = append(r.Tickets, waiting[es[g.idx[k]].slot])
			matched[g.idx[k]] = true
		}
		r.Spread = r.Tickets[len(r.Tickets)-1].Rating - r.Tickets[0].Rating
		rooms = append(rooms, r)
		start = int(end)
	}
	var left []Ticket
	for i, e := range es {
		if !matched[i] {
			left = append(left, waiting[e.slot])
		}
	}
	return rooms, left
}

func tickD(cfg Config, waiting []Ticket, now time.Time) ([]Room, []Ticket) {
	es, _ := build(cfg, waiting, now)
	var sc scratch
	g, _ := sc.plan(cfg, es, 0)
	return emit(waiting, es, g)
}

// fill-stack greedy
func fillStack(es []entry, w []float64, k int32, out *groups) {
	var stack []int32
	for i := range es {
		stack = append(stack, int32(i))
		hi := es[i].rating
		need := k - es[i].members
		pick := []int32{int32(i)}
		pos := []int{len(stack) - 1}
		floor := float64(hi) - w[i]
		for q := len(stack) - 2; need > 0 && q >= 0 && q >= len(stack)-1-lookback(k); q-- {
			x := stack[q]
			r := es[x].rating
			if float64(r) < floor { break }
			if es[x].members <= need && within(hi-r, w[x]) {
				pick = append(pick, x); pos = append(pos, q); need -= es[x].members
				floor = max(floor, float64(r)-w[x])
			}
		}
		if need != 0 { continue }
		slices.Reverse(pick)
		if !valid(es, w, pick) { continue }
		out.add(es, pick)
		// remove pos from stack
		rm := map[int]bool{}
		for _, p := range pos { rm[p] = true }
		ns := stack[:0]
		for j, x := range stack { if !rm[j] { ns = append(ns, x) } }
		stack = ns
	}
}

func tickG(cfg Config, waiting []Ticket, now time.Time) ([]Room, []Ticket) {
	es, w := build(cfg, waiting, now)
	var f, g groups
	greedy(es, w, int32(cfg.RoomSize), nil, &f)
	fillStack(es, w, int32(cfg.RoomSize), &g)
	if f.rooms() > g.rooms() || (f.rooms() == g.rooms() && f.spread < g.spread) {
		return emit(waiting, es, &f)
	}
	return emit(waiting, es, &g)
}

// C: seed selection, extras from leftovers via fillStack (regroup skipped for now)
func tickC(cfg Config, waiting []Ticket, now time.Time) ([]Room, []Ticket) {
	rooms, left := SeedTick(cfg, waiting, now)
	es, w := build(cfg, left, now)
	var g groups
	fillStack(es, w, int32(cfg.RoomSize), &g)
	r2, left2 := emit(left, es, &g)
	return append(rooms, r2...), left2
}

type res struct{ rooms int; spread int64; waits []float64 }

func sim(cfg Config, arr [][]Ticket, ticks int, f tickFn) res {
	var w []Ticket
	var r res
	for s := range ticks {
		if s < len(arr) { w = append(w, arr[s]...) }
		now := at(float64(s))
		var rooms []Room
		rooms, w = f(cfg, w, now)
		for _, rm := range rooms {
			if err := cfg.CheckRoom(rm.Tickets, now); err != nil { panic(err) }
			r.rooms++; r.spread += int64(rm.Spread)
			for _, t := range rm.Tickets { r.waits = append(r.waits, now.Sub(t.Enqueued).Seconds()) }
		}
	}
	return r
}

func pct(x []float64, p float64) float64 { if len(x)==0 {return 0}; slices.Sort(x); return x[int(p*float64(len(x)-1))] }

func TestDebugStrategies(t *testing.T) {
	cfg := DefaultConfig()
	fns := map[string]tickFn{"S": SeedTick, "D": tickD, "G": tickG, "C": tickC}
	for _, wl := range []string{"batch20", "batch100", "batch1000", "steady5", "steady20", "steady100", "steady1000"} {
		agg := map[string][3]float64{}
		worse := map[string]int{}
		for seed := range uint64(20) {
			rng := rand.New(rand.NewPCG(seed, 11))
			var arr [][]Ticket; ticks := 20
			switch wl {
			case "batch20": arr = batch(rng, 20)
			case "batch100": arr = batch(rng, 100)
			case "batch1000": arr = batch(rng, 1000)
			case "steady5": arr = steady(rng, 5, 120); ticks = 120
			case "steady20": arr = steady(rng, 20, 120); ticks = 120
			case "steady100": arr = steady(rng, 100, 60); ticks = 60
			case "steady1000": arr = steady(rng, 1000, 30); ticks = 30
			}
			var base res
			for _, name := range []string{"S", "D", "G", "C"} {
				r := sim(cfg, arr, ticks, fns[name])
				if name == "S" { base = r }
				m := float64(r.spread)/float64(max(r.rooms,1))
				if r.rooms < base.rooms || m > float64(base.spread)/float64(max(base.rooms,1))+1e-9 { worse[name]++ }
				a := agg[name]; a[0] += float64(r.rooms); a[1] += m; a[2] += pct(r.waits, 0.99)
				agg[name] = a
			}
		}
		for _, name := range []string{"S", "D", "G", "C"} {
			a := agg[name]
			fmt.Printf("%-10s %s rooms %.1f mean spread %.2f p99 wait %.2f worse-than-seed %d/20\n", wl, name, a[0]/20, a[1]/20, a[2]/20, worse[name])
		}
	}
}

// C0: seed selection, regrouped by min-spread contiguous cover over the matched set.
func tickC0(cfg Config, waiting []Ticket, now time.Time) ([]Room, []Ticket) {
	es, w := build(cfg, waiting, now)
	var f groups
	greedy(es, w, int32(cfg.RoomSize), nil, &f)
	M := slices.Clone(f.idx)
	slices.Sort(M)
	k := int32(cfg.RoomSize)
	type c struct{ ok bool; sp int64; from int }
	dp := make([]c, len(M)+1)
	dp[0].ok = true
	for p := 1; p <= len(M); p++ {
		q, sum := p-1, int32(0)
		for { sum += es[M[q]].members; if sum >= k || q == 0 { break }; q-- }
		if sum == k && dp[q].ok && valid(es, w, M[q:p]) {
			dp[p] = c{true, dp[q].sp + int64(es[M[p-1]].rating-es[M[q]].rating), q}
		}
	}
	if dp[len(M)].ok && dp[len(M)].sp <= f.spread {
		var g groups
		for p := len(M); p > 0; p = dp[p].from { g.add(es, M[dp[p].from:p]) }
		return emit(waiting, es, &g)
	}
	return emit(waiting, es, &f)
}

func TestDebugC0(t *testing.T) {
	cfg := DefaultConfig()
	for _, wl := range []string{"batch100", "steady5", "steady20", "steady100", "steady1000"} {
		var s0, s1 float64
		for seed := range uint64(20) {
			rng := rand.New(rand.NewPCG(seed, 11))
			var arr [][]Ticket; ticks := 20
			switch wl {
			case "batch100": arr = batch(rng, 100)
			case "steady5": arr = steady(rng, 5, 120); ticks = 120
			case "steady20": arr = steady(rng, 20, 120); ticks = 120
			case "steady100": arr = steady(rng, 100, 60); ticks = 60
			case "steady1000": arr = steady(rng, 1000, 30); ticks = 30
			}
			a := sim(cfg, arr, ticks, SeedTick)
			b := sim(cfg, arr, ticks, tickC0)
			if a.rooms != b.rooms || b.spread > a.spread { t.Fatalf("C0 broke guarantee") }
			s0 += float64(a.spread)/float64(a.rooms); s1 += float64(b.spread)/float64(b.rooms)
		}
		fmt.Printf("%s seed %.3f C0 %.3f\n", wl, s0/20, s1/20)
	}
}

func tickDv(mode int) tickFn {
	return func(cfg Config, waiting []Ticket, now time.Time) ([]Room, []Ticket) {
		es, w := build(cfg, waiting, now)
		var sc scratch
		sc.w = w
		var f groups
		greedy(es, w, int32(cfg.RoomSize), nil, &f)
		sc.optimise(es, int32(cfg.RoomSize), 0)
		b := &sc.best
		ok := false
		switch mode {
		case 1: ok = b.rooms() >= f.rooms() && b.spread <= f.spread
		case 2: ok = b.rooms() >= f.rooms() && b.spread*int64(max(f.rooms(),1)) <= f.spread*int64(max(b.rooms(),1))
		}
		if ok { return emit(waiting, es, b) }
		return emit(waiting, es, &f)
	}
}

func TestDebugDv(t *testing.T) {
	cfg := DefaultConfig()
	fns := map[string]tickFn{"S": SeedTick, "D": tickD, "D1": tickDv(1), "D2": tickDv(2)}
	names := []string{"S", "D", "D1", "D2"}
	for _, wl := range []string{"batch20", "batch100", "batch1000", "batch10000", "steady5", "steady20", "steady100", "steady1000"} {
		agg := map[string][3]float64{}
		worse := map[string]int{}
		N := 30
		for seed := range uint64(N) {
			rng := rand.New(rand.NewPCG(seed, 11))
			var arr [][]Ticket; ticks := 20
			switch wl {
			case "batch20": arr = batch(rng, 20)
			case "batch100": arr = batch(rng, 100)
			case "batch1000": arr = batch(rng, 1000)
			case "batch10000": arr = batch(rng, 10000)
			case "steady5": arr = steady(rng, 5, 120); ticks = 120
			case "steady20": arr = steady(rng, 20, 120); ticks = 120
			case "steady100": arr = steady(rng, 100, 60); ticks = 60
			case "steady1000": arr = steady(rng, 1000, 30); ticks = 30
			}
			var base res
			for _, name := range names {
				r := sim(cfg, arr, ticks, fns[name])
				if name == "S" { base = r }
				m := float64(r.spread)/float64(max(r.rooms,1))
				if r.rooms < base.rooms || m > float64(base.spread)/float64(max(base.rooms,1))+1e-9 { worse[name]++ }
				a := agg[name]; a[0] += float64(r.rooms); a[1] += m; a[2] += pct(r.waits, 0.99)
				agg[name] = a
			}
		}
		for _, name := range names {
			a := agg[name]
			fmt.Printf("%-10s %-2s rooms %.1f mean spread %.3f p99 wait %.2f worse %d/%d\n", wl, name, a[0]/float64(N), a[1]/float64(N), a[2]/float64(N), worse[name], N)
		}
	}
}
