package matcher

import (
	"errors"
	"fmt"
	"testing"
)

// FuzzPool decodes bytes into a config and a sequence of adds (solos,
// parties, old and new), bad and duplicate adds, removals and ticks, and
// checks every room against the rule and the pool against a model; without
// Tighten, every tick must also form exactly SeedTick's rooms.
//
//	go test -run '^$' -fuzz FuzzPool -fuzztime 60s ./matchmaking/matcher/
func FuzzPool(f *testing.F) {
	f.Add([]byte{1, 0, 50, 0, 0, 10, 1, 0, 0, 10, 1, 0, 0, 10, 1, 0, 5, 2})
	f.Add([]byte{3, 1, 20, 1, 0, 200, 3, 2, 1, 100, 1, 0, 4, 3, 5, 1, 2, 50, 2, 1, 5, 3, 6, 0, 7, 1})
	f.Add([]byte{0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 4, 1, 5, 7})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 4 {
			return
		}
		cfg := Config{RoomSize: 2 + int(data[0]%4), WindowBase: float64(data[1]%3) * 10, WindowPerSecond: float64(data[2] % 61), Tighten: data[3]&1 == 1}
		data = data[4:]
		next := func() byte {
			if len(data) == 0 {
				return 0
			}
			b := data[0]
			data = data[1:]
			return b
		}
		p := NewPool(cfg)
		c := newChecker(t, cfg)
		var seedList []Ticket // the seed's list, in its order
		now := 0.0
		id := 0
		for len(data) > 0 {
			switch op := next() % 8; op {
			case 0, 1, 2, 3:
				m := 1
				if op == 3 {
					m = 1 + int(next())%cfg.RoomSize
				}
				tk := Ticket{ID: fmt.Sprint(id), Rating: 1500 + int(int8(next())), Members: m, Enqueued: at(now - float64(next()%8)/2)}
				id++
				if err := p.Add(tk); err != nil {
					t.Fatalf("Add(%+v) = %v", tk, err)
				}
				c.waiting[tk.ID] = tk
				seedList = append(seedList, tk)
			case 4:
				victim := fmt.Sprint(int(next()) % (id + 1))
				_, waiting := c.waiting[victim]
				if p.Remove(victim) != waiting {
					t.Fatalf("Remove(%s) != %v", victim, waiting)
				}
				if waiting {
					delete(c.waiting, victim)
					for i, tk := range seedList {
						if tk.ID == victim {
							seedList = append(seedList[:i], seedList[i+1:]...)
							break
						}
					}
				}
			case 5:
				now += float64(next()%4) / 2
				var want []Room
				want, seedList = SeedTick(cfg, seedList, at(now))
				got := c.tick(p, at(now))
				if !cfg.Tighten && roomIDs(got) != roomIDs(want) {
					t.Fatalf("tick at %v: pool %q, seed %q", now, roomIDs(got), roomIDs(want))
				}
				if cfg.Tighten {
					// Keep the seed's list in step with the pool.
					seedList = seedList[:0]
					for _, tk := range sortedWaiting(p) {
						seedList = append(seedList, tk)
					}
				}
			case 6: // re-add an ID issued before: waiting, matched or removed
				if id == 0 {
					continue
				}
				dup := fmt.Sprint(int(next()) % id)
				_, waiting := c.waiting[dup]
				err := p.Add(Ticket{ID: dup, Rating: 1500, Members: 1, Enqueued: at(now)})
				if waiting != errors.Is(err, ErrDuplicate) || (!waiting && err != nil) {
					t.Fatalf("Add(%s) = %v; waiting %v", dup, err, waiting)
				}
				if !waiting {
					tk, _ := p.Get(dup)
					c.waiting[dup] = tk
					seedList = append(seedList, tk)
				}
			case 7:
				bad := []Ticket{
					{ID: "bad", Rating: 1500, Members: 0, Enqueued: at(now)},
					{ID: "bad", Rating: 1500, Members: cfg.RoomSize + 1, Enqueued: at(now)},
					{ID: "bad", Rating: MaxRating + 1, Members: 1, Enqueued: at(now)},
					{ID: "", Rating: 1500, Members: 1, Enqueued: at(now)},
				}[next()%4]
				if err := p.Add(bad); !errors.Is(err, ErrBadTicket) {
					t.Fatalf("Add(%+v) = %v, want ErrBadTicket", bad, err)
				}
			}
		}
		c.consistent(p)
	})
}

// sortedWaiting lists the pool's waiting tickets in its order (rating,
// then arrival), after folding in pending changes.
func sortedWaiting(p *Pool) []Ticket {
	p.merge()
	out := make([]Ticket, 0, len(p.sorted))
	for _, e := range p.sorted {
		out = append(out, p.slots[e.slot].t)
	}
	return out
}
