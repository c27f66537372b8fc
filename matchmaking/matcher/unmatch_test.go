package matcher

import (
	"fmt"
	"slices"
	"testing"
)

// Unmatch puts a ticket back where it was: the next tick sees the pool
// as if the room had never formed (arrival order among equal ratings
// kept), which Restore, an Add in disguise, does not.
func TestUnmatchPutsBackInPlace(t *testing.T) {
	cfg := Config{RoomSize: 2, WindowPerSecond: 50}
	p := NewPool(cfg)
	for _, id := range []string{"x", "y", "z"} {
		if err := p.Add(solo(id, 100, at(0))); err != nil {
			t.Fatal(err)
		}
	}
	rooms := p.Tick(at(0))
	if roomIDs(rooms) != "x,y" || p.Len() != 1 {
		t.Fatalf("first tick %v, %d left", roomIDs(rooms), p.Len())
	}
	for j := range rooms[0].Tickets {
		if !p.Unmatch(0, j) {
			t.Fatalf("Unmatch(0, %d) refused", j)
		}
	}
	if p.Unmatch(0, 0) || p.Unmatch(1, 0) || p.Unmatch(0, 2) || p.Unmatch(-1, 0) {
		t.Fatal("Unmatch of a ticket already back, or out of range, accepted")
	}
	if p.Len() != 3 || p.Players() != 3 {
		t.Fatalf("Len %d Players %d after Unmatch, want 3 3", p.Len(), p.Players())
	}
	for _, id := range []string{"x", "y", "z"} {
		if _, ok := p.Get(id); !ok {
			t.Fatalf("Get(%s) after Unmatch: not waiting", id)
		}
	}
	if rooms := p.Tick(at(0)); roomIDs(rooms) != "x,y" {
		t.Fatalf("tick after Unmatch formed %v, want x,y (x and y arrived before z)", roomIDs(rooms))
	}

	// The same with Restore: x and y queue behind z.
	q := NewPool(cfg)
	for _, id := range []string{"x", "y", "z"} {
		_ = q.Add(solo(id, 100, at(0)))
	}
	rooms = q.Tick(at(0))
	for _, tk := range rooms[0].Tickets {
		if err := q.Restore(tk); err != nil {
			t.Fatal(err)
		}
	}
	if rooms := q.Tick(at(0)); roomIDs(rooms) != "z,x" {
		t.Fatalf("tick after Restore formed %v, want z,x", roomIDs(rooms))
	}
}

// Unmatch works only on the last Tick's rooms, until an Add or a Tick.
func TestUnmatchEndsAtAddOrTick(t *testing.T) {
	cfg := Config{RoomSize: 2, WindowPerSecond: 50}
	p := NewPool(cfg)
	_ = p.Add(solo("a", 100, at(0)))
	_ = p.Add(solo("b", 100, at(0)))
	if rooms := p.Tick(at(0)); len(rooms) != 1 {
		t.Fatalf("rooms %v", roomIDs(rooms))
	}
	_ = p.Add(solo("c", 500, at(0)))
	if p.Unmatch(0, 0) {
		t.Fatal("Unmatch accepted after an Add")
	}
	_ = p.Add(solo("d", 100, at(0)))
	_ = p.Add(solo("e", 100, at(0)))
	if rooms := p.Tick(at(0)); len(rooms) != 1 {
		t.Fatalf("rooms %v", roomIDs(rooms))
	}
	p.Tick(at(0))
	if p.Unmatch(0, 0) {
		t.Fatal("Unmatch accepted after another Tick")
	}
	if p.Len() != 1 {
		t.Fatalf("Len %d, want 1 (c)", p.Len())
	}
}

// A ticket put back after a Tick matched it (Unmatch or Restore) and then
// removed frees its slot once: before, Remove freed it and the sweep of
// the Tick's retired slots freed it again, so two later tickets shared
// one slot and one of them was lost.
func TestPutBackThenRemoveFreesOnce(t *testing.T) {
	for _, how := range []string{"restore", "unmatch"} {
		t.Run(how, func(t *testing.T) {
			cfg := Config{RoomSize: 2, WindowPerSecond: 50}
			p := NewPool(cfg)
			c := newChecker(t, cfg)
			// a and b first, so that their slots are the last a sweep
			// reaches; 20 more rooms.
			for i := range 42 {
				id := fmt.Sprint("m", i)
				if i < 2 {
					id = []string{"a", "b"}[i]
				}
				tk := solo(id, 100+1000*(i/2), at(0))
				_ = p.Add(tk)
				c.waiting[id] = tk
			}
			rooms := c.tick(p, at(0))
			if len(rooms) != 21 || rooms[0].Tickets[0].ID != "a" {
				t.Fatalf("rooms %v", roomIDs(rooms))
			}
			switch how {
			case "restore":
				if err := p.Restore(rooms[0].Tickets[0]); err != nil {
					t.Fatal(err)
				}
				c.waiting["a"] = rooms[0].Tickets[0]
			case "unmatch":
				if !p.Unmatch(0, 0) {
					t.Fatal("Unmatch refused")
				}
				c.waiting["a"] = rooms[0].Tickets[0]
			}
			c.consistent(p)
			if !p.Remove("a") {
				t.Fatal("Remove(a) after putting it back: not waiting")
			}
			delete(c.waiting, "a")
			c.tick(p, at(1)) // sweeps the first tick's slots
			var ids []string
			for i := range 60 { // more than the free slots
				id := fmt.Sprintf("n%02d", i)
				tk := solo(id, 1000*i, at(1))
				if err := p.Add(tk); err != nil {
					t.Fatal(err)
				}
				c.waiting[id] = tk
				ids = append(ids, id)
			}
			c.consistent(p)
			got := sortedWaiting(p)
			var gotIDs []string
			for _, tk := range got {
				gotIDs = append(gotIDs, tk.ID)
			}
			if !slices.Equal(gotIDs, ids) {
				t.Fatalf("waiting %v, want %v", gotIDs, ids)
			}
		})
	}
}
