package matchbench

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/arena-game/arena/matchmaking/matcher"
)

func ids(rooms []matcher.Room) string {
	var out []string
	for _, r := range rooms {
		var s []string
		for _, t := range r.Tickets {
			s = append(s, t.ID)
		}
		out = append(out, strings.Join(s, ","))
	}
	return strings.Join(out, "|")
}

func tids(ts []matcher.Ticket) string {
	var s []string
	for _, t := range ts {
		s = append(s, t.ID)
	}
	return strings.Join(s, ",")
}

// TestSeedTickIsTheSeed: matcher.SeedTick forms exactly the rooms of the
// seed's literal loop, in the same order, and leaves the same players in
// the same order, tick after tick, with arrivals and mixed waits.
func TestSeedTickIsTheSeed(t *testing.T) {
	for it := range 200 {
		rng := rand.New(rand.NewPCG(uint64(it), 77))
		cfg := matcher.Config{RoomSize: 2 + rng.IntN(3), WindowBase: float64(rng.IntN(2) * 15), WindowPerSecond: float64(5 + rng.IntN(95))}
		var lit, fast []matcher.Ticket
		id := 0
		spread := 20 + rng.IntN(600)
		for s := range 25 {
			for range rng.IntN(30) {
				tk := matcher.Ticket{ID: fmt.Sprint(id), Rating: 1500 + rng.IntN(spread), Members: 1, Enqueued: at(float64(s) - rng.Float64()*3)}
				id++
				lit, fast = append(lit, tk), append(fast, tk)
			}
			now := at(float64(s))
			var lr, fr []matcher.Room
			lr, lit = seedLiteral(cfg, lit, now)
			fr, fast = matcher.SeedTick(cfg, fast, now)
			if ids(lr) != ids(fr) {
				t.Fatalf("case %d %+v tick %d rooms:\n literal %s\n fast    %s", it, cfg, s, ids(lr), ids(fr))
			}
			// The seed leaves its list unsorted when it holds fewer than a
			// room (its loop never runs); its next sort is stable, so
			// only the order by rating, ties in list order, matters.
			if tids(byRating(lit)) != tids(fast) {
				t.Fatalf("case %d tick %d left:\n literal %s\n fast    %s", it, s, tids(lit), tids(fast))
			}
			for _, r := range fr {
				if err := cfg.CheckRoom(r.Tickets, now); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

func byRating(ts []matcher.Ticket) []matcher.Ticket {
	ts = slices.Clone(ts)
	slices.SortStableFunc(ts, func(a, b matcher.Ticket) int { return a.Rating - b.Rating })
	return ts
}

func TestRating(t *testing.T) {
	rng := newRand(1)
	sum := 0
	for range 100000 {
		r := Rating(rng)
		if r < 0 || r > 3000 {
			t.Fatalf("rating %d out of [0, 3000]", r)
		}
		sum += r
	}
	if mean := sum / 100000; mean < 1490 || mean > 1510 {
		t.Fatalf("mean rating %d, want about 1500", mean)
	}
	if a, b := BatchTickets(50, 7), BatchTickets(50, 7); !slices.Equal(a, b) {
		t.Fatal("BatchTickets is not deterministic")
	}
}

func TestBatch(t *testing.T) {
	res, err := Batch(BatchOptions{Tickets: 3000, Seed: 1, Config: matcher.DefaultConfig(), SeedMax: 1 << 30, LiteralMax: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	if res.Rooms == 0 || res.Rooms*3+res.Left != 3000 || res.Ticks == 0 || res.Ticks > 20 {
		t.Fatalf("implausible result %+v", res)
	}
	if res.SeedRooms == nil || *res.SeedRooms != res.Rooms || *res.SeedMeanSpread != res.MeanSpread || !*res.SameRoomsAsSeed {
		t.Fatalf("not the seed's rooms: %+v", res)
	}
	if res.SeedLiteralSeconds == nil || res.SlowestTickSpeedup == nil {
		t.Fatalf("literal seed not timed: %+v", res)
	}
	b, _ := json.Marshal(res)
	for _, f := range []string{`"tickets":3000`, `"rooms":`, `"left":`, `"seconds":`, `"slowest_tick_s":`, `"mean_spread":`, `"max_spread":`, `"seed_rooms":`, `"seed_mean_spread":`} {
		if !strings.Contains(string(b), f) {
			t.Errorf("JSON lacks %s: %s", f, b)
		}
	}

	skipped, err := Batch(BatchOptions{Tickets: 30, Seed: 1, Config: matcher.DefaultConfig()})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal(skipped)
	if !strings.Contains(string(b), `"seed_rooms":null`) || !strings.Contains(string(b), `"seed_mean_spread":null`) {
		t.Fatalf("skipped seed figures not null: %s", b)
	}
}

func TestBatchTighten(t *testing.T) {
	cfg := matcher.DefaultConfig()
	cfg.Tighten = true
	res, err := Batch(BatchOptions{Tickets: 3000, Seed: 2, Config: cfg, SeedMax: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	if res.Rooms == 0 || !res.Tighten || res.SeedRooms == nil {
		t.Fatalf("implausible result %+v", res)
	}
}

func TestSteady(t *testing.T) {
	for _, tighten := range []bool{false, true} {
		cfg := matcher.DefaultConfig()
		cfg.Tighten = tighten
		res, err := Steady(SteadyOptions{ArrivalsPerSecond: 200, Seconds: 30, Seed: 3, Config: cfg, SeedMax: 1 << 30})
		if err != nil {
			t.Fatal(err)
		}
		if res.Tickets != 6000 || res.Rooms*3+res.Left != 6000 || res.P50 <= 0 || res.P50 > res.P95 || res.P95 > res.P99 || res.P99 > res.Max {
			t.Fatalf("implausible result %+v", res)
		}
		if res.SeedRooms == nil || res.SeedWaits == nil {
			t.Fatalf("no seed figures: %+v", res)
		}
		if !tighten && (*res.SeedRooms != res.Rooms || *res.SeedMeanSpread != res.MeanSpread || *res.SeedWaits != res.Waits) {
			t.Fatalf("default pool differs from the seed: %+v", res)
		}
	}
}

func TestBadOptions(t *testing.T) {
	if _, err := Batch(BatchOptions{Tickets: 10, Config: matcher.Config{RoomSize: 1}}); err == nil {
		t.Error("Batch accepted room size 1")
	}
	if _, err := Batch(BatchOptions{Tickets: -1, Config: matcher.DefaultConfig()}); err == nil {
		t.Error("Batch accepted negative tickets")
	}
	if _, err := Steady(SteadyOptions{ArrivalsPerSecond: 10, Seconds: 0, Config: matcher.DefaultConfig()}); err == nil {
		t.Error("Steady accepted a zero duration")
	}
	if _, err := Steady(SteadyOptions{ArrivalsPerSecond: 10, Seconds: 5, Config: matcher.Config{RoomSize: 3, WindowPerSecond: -1}}); err == nil {
		t.Error("Steady accepted a negative window")
	}
}

func TestWaitsOf(t *testing.T) {
	w := waitsOf([]float64{5, 1, 2, 3, 4, 6, 7, 8, 9, 10})
	if w.P50 != 5 || w.P95 != 10 || w.P99 != 10 || w.Max != 10 || w.Mean != 5.5 {
		t.Fatalf("waitsOf = %+v", w)
	}
	if (waitsOf(nil) != Waits{}) {
		t.Fatal("waitsOf(nil) not zero")
	}
}
