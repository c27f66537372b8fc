package matcher

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// checker is a model of a pool: which IDs wait, were matched or removed.
type checker struct {
	t        *testing.T
	cfg      Config
	waiting  map[string]Ticket
	matched  map[string]bool
	removed  int
	added    int
	rooms    int
	maxRooms int
}

func newChecker(t *testing.T, cfg Config) *checker {
	return &checker{t: t, cfg: cfg, waiting: map[string]Ticket{}, matched: map[string]bool{}}
}

// tick checks one Tick's rooms against the rule and the model.
func (c *checker) tick(p *Pool, now time.Time) []Room {
	c.t.Helper()
	rooms := p.Tick(now)
	for _, r := range rooms {
		if err := c.cfg.CheckRoom(r.Tickets, now); err != nil {
			c.t.Fatalf("invalid room at %v: %v (%+v)", now.Sub(t0), err, r.Tickets)
		}
		if r.Spread != r.Tickets[len(r.Tickets)-1].Rating-r.Tickets[0].Rating || r.Spread < 0 {
			c.t.Fatalf("bad spread %d for %+v", r.Spread, r.Tickets)
		}
		for _, tk := range r.Tickets {
			w, ok := c.waiting[tk.ID]
			if !ok {
				c.t.Fatalf("ticket %s matched but not waiting (matched before: %v)", tk.ID, c.matched[tk.ID])
			}
			if w.Rating != tk.Rating || w.Members != tk.Members || !w.Enqueued.Equal(tk.Enqueued) || w.Payload != tk.Payload {
				c.t.Fatalf("ticket %s came back as %+v, was %+v", tk.ID, tk, w)
			}
			delete(c.waiting, tk.ID)
			c.matched[tk.ID] = true
		}
	}
	c.rooms += len(rooms)
	c.consistent(p)
	return rooms
}

func (c *checker) consistent(p *Pool) {
	c.t.Helper()
	players := 0
	for id, w := range c.waiting {
		players += w.Members
		if got, ok := p.Get(id); !ok || got.Rating != w.Rating {
			c.t.Fatalf("Get(%s) = %+v, %v; want %+v", id, got, ok, w)
		}
	}
	if p.Len() != len(c.waiting) || p.Players() != players {
		c.t.Fatalf("Len %d Players %d, model %d %d", p.Len(), p.Players(), len(c.waiting), players)
	}
}

// TestPropertyRandomOps drives pools with random adds (solos and parties,
// old and new), duplicate adds, removals and ticks, and checks after every
// tick that each room satisfies the rule, that no ticket is in two rooms or
// matched after its removal, and at the end that no ticket was lost.
func TestPropertyRandomOps(t *testing.T) {
	iterations := 300
	if testing.Short() {
		iterations = 50
	}
	for it := range iterations {
		rng := rand.New(rand.NewPCG(uint64(it), 42))
		cfg := Config{
			RoomSize:        2 + rng.IntN(4),
			WindowBase:      float64(rng.IntN(3) * 10),
			WindowPerSecond: float64(rng.IntN(100)),
			Tighten:         rng.IntN(2) == 0,
		}
		t.Run(fmt.Sprintf("%d-%+v", it, cfg), func(t *testing.T) {
			p := NewPool(cfg)
			c := newChecker(t, cfg)
			now := 0.0
			next := 0
			spreadRating := 50 + rng.IntN(1000)
			for range 400 {
				switch op := rng.IntN(20); {
				case op < 10: // add
					members := 1
					if rng.IntN(4) == 0 {
						members = 1 + rng.IntN(cfg.RoomSize)
					}
					tk := Ticket{
						ID:       fmt.Sprintf("t%d", next),
						Rating:   1500 + rng.IntN(spreadRating) - spreadRating/2,
						Members:  members,
						Enqueued: at(now - rng.Float64()*5),
						Payload:  next,
					}
					next++
					if err := p.Add(tk); err != nil {
						t.Fatalf("Add(%+v) = %v", tk, err)
					}
					c.waiting[tk.ID] = tk
					c.added++
				case op < 11 && len(c.waiting) > 0: // duplicate add
					for id, w := range c.waiting {
						if err := p.Add(Ticket{ID: id, Rating: w.Rating + 1, Members: 1, Enqueued: at(now)}); err == nil {
							t.Fatalf("duplicate Add(%s) accepted", id)
						}
						break
					}
				case op < 14: // remove a waiting, a matched or an unknown ID
					id := fmt.Sprintf("t%d", rng.IntN(next+1))
					_, waiting := c.waiting[id]
					if got := p.Remove(id); got != waiting {
						t.Fatalf("Remove(%s) = %v, want %v", id, got, waiting)
					}
					if waiting {
						delete(c.waiting, id)
						c.removed++
					}
				default: // tick
					now += rng.Float64() * 2
					c.tick(p, at(now))
				}
			}
			// Tick until nothing more matches, then account for everyone.
			for range 3 {
				now += 1000
				c.tick(p, at(now))
			}
			if c.added != len(c.matched)+c.removed+len(c.waiting) {
				t.Fatalf("added %d != matched %d + removed %d + waiting %d", c.added, len(c.matched), c.removed, len(c.waiting))
			}
			// With windows that large, only tickets whose members cannot
			// add up to a room may be left over.
			if cfg.WindowPerSecond > 0 && len(c.waiting) > 0 {
				players := 0
				solos := 0
				for _, w := range c.waiting {
					players += w.Members
					if w.Members == 1 {
						solos++
					}
				}
				if solos >= cfg.RoomSize {
					t.Fatalf("%d solos left waiting in a room of %d with huge windows", solos, cfg.RoomSize)
				}
			}
		})
	}
}

// TestPropertyRoomsValidOverRandomPools checks the rule on every room of
// large random pools with mixed waits and parties, and that a second tick
// finds rooms (the pools are dense enough that it must).
func TestPropertyRoomsValidOverRandomPools(t *testing.T) {
	for it := range 40 {
		rng := rand.New(rand.NewPCG(uint64(it), 7))
		cfg := Config{RoomSize: 2 + rng.IntN(5), WindowBase: float64(rng.IntN(20)), WindowPerSecond: 1 + float64(rng.IntN(80)), Tighten: it%2 == 0}
		p := NewPool(cfg)
		c := newChecker(t, cfg)
		n := 200 + rng.IntN(3000)
		for i := range n {
			members := 1
			if rng.IntN(3) == 0 {
				members = 1 + rng.IntN(cfg.RoomSize)
			}
			tk := Ticket{ID: fmt.Sprint(i), Rating: clip(int(math.Round(rng.NormFloat64()*300 + 1500))), Members: members, Enqueued: at(-rng.Float64() * 20)}
			if err := p.Add(tk); err != nil {
				t.Fatal(err)
			}
			c.waiting[tk.ID] = tk
		}
		for tick := range 20 {
			c.tick(p, at(float64(tick)))
		}
		if c.rooms == 0 {
			t.Fatalf("case %d %+v: no rooms from %d tickets", it, cfg, n)
		}
	}
}

func clip(r int) int { return min(max(r, 0), 3000) }

// TestChurnKeepsIndexConsistent runs a pool whose tickets turn over every
// few seconds (thousands of arrivals, removals and re-queues per tick), so
// that retired slots are swept, the index is rebuilt and the pool shrinks
// and grows again, and checks the pool against the model all along.
func TestChurnKeepsIndexConsistent(t *testing.T) {
	cfg := DefaultConfig()
	p := NewPool(cfg)
	c := newChecker(t, cfg)
	rng := rand.New(rand.NewPCG(4, 4))
	id := 0
	rebuilt := 0
	for s := range 80 {
		rate := 3000
		if s >= 40 && s < 60 {
			rate = 10 // the pool nearly empties: shrink
		}
		for range rate {
			tk := solo(fmt.Sprint(id), normalRating(rng), at(float64(s)+rng.Float64()))
			id++
			if rng.IntN(50) == 0 && id > 100 {
				// Re-queue a ticket matched or removed earlier.
				old := fmt.Sprint(rng.IntN(id - 1))
				if _, waiting := c.waiting[old]; !waiting {
					tk.ID = old
				}
			}
			if err := p.Add(tk); err != nil {
				t.Fatalf("Add(%s): %v", tk.ID, err)
			}
			c.waiting[tk.ID] = tk
			delete(c.matched, tk.ID)
		}
		for range rate / 20 {
			victim := fmt.Sprint(rng.IntN(id))
			_, waiting := c.waiting[victim]
			if p.Remove(victim) != waiting {
				t.Fatalf("Remove(%s) != %v", victim, waiting)
			}
			delete(c.waiting, victim)
		}
		before := p.dels
		c.tick(p, at(float64(s+1)))
		if p.dels < before {
			rebuilt++
		}
		if len(p.ids) > 4*max(p.Len(), p.peak)+8*sweepBudget {
			t.Fatalf("tick %d: index holds %d entries for %d waiting", s, len(p.ids), p.Len())
		}
	}
	if rebuilt == 0 {
		t.Fatal("the index was never rebuilt")
	}
}
