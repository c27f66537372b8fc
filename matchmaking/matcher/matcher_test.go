package matcher

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

func solo(id string, rating int, enq time.Time) Ticket {
	return Ticket{ID: id, Rating: rating, Members: 1, Enqueued: enq}
}

func party(id string, rating, members int, enq time.Time) Ticket {
	return Ticket{ID: id, Rating: rating, Members: members, Enqueued: enq}
}

// roomIDs renders rooms as "a,b,c|d,e,f" (tickets by rating, rooms in
// Tick's order) for table comparisons.
func roomIDs(rooms []Room) string {
	var out []string
	for _, r := range rooms {
		var ids []string
		for _, t := range r.Tickets {
			ids = append(ids, t.ID)
		}
		out = append(out, strings.Join(ids, ","))
	}
	return strings.Join(out, "|")
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"default", DefaultConfig(), true},
		{"pairs", Config{RoomSize: 2, WindowPerSecond: 10}, true},
		{"largest room", Config{RoomSize: MaxRoomSize}, true},
		{"fixed window", Config{RoomSize: 3, WindowBase: 100}, true},
		{"zero", Config{}, false},
		{"room of one", Config{RoomSize: 1, WindowPerSecond: 50}, false},
		{"room too big", Config{RoomSize: MaxRoomSize + 1, WindowPerSecond: 50}, false},
		{"negative room", Config{RoomSize: -3, WindowPerSecond: 50}, false},
		{"negative base", Config{RoomSize: 3, WindowBase: -1, WindowPerSecond: 50}, false},
		{"negative rate", Config{RoomSize: 3, WindowPerSecond: -50}, false},
		{"nan base", Config{RoomSize: 3, WindowBase: math.NaN(), WindowPerSecond: 50}, false},
		{"nan rate", Config{RoomSize: 3, WindowPerSecond: math.NaN()}, false},
		{"infinite rate", Config{RoomSize: 3, WindowPerSecond: math.Inf(1)}, false},
		{"infinite base", Config{RoomSize: 3, WindowBase: math.Inf(1)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrBadConfig) {
				t.Fatalf("Validate() = %v, want ErrBadConfig", err)
			}
		})
	}
}

func TestNewPoolPanicsOnBadConfig(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("NewPool(Config{}) did not panic")
		}
	}()
	NewPool(Config{})
}

func TestWindow(t *testing.T) {
	c := Config{RoomSize: 3, WindowBase: 10, WindowPerSecond: 50}
	for _, tc := range []struct {
		waited time.Duration
		want   float64
	}{
		{0, 10}, {-time.Second, 10}, {time.Second, 60}, {1500 * time.Millisecond, 85}, {20 * time.Second, 1010},
	} {
		if got := c.Window(tc.waited); got != tc.want {
			t.Errorf("Window(%v) = %v, want %v", tc.waited, got, tc.want)
		}
	}
}

// TestTickRule is the rule's table: each case adds tickets, ticks at the
// given times and expects the rooms of each tick.
func TestTickRule(t *testing.T) {
	type tick struct {
		at    float64
		rooms string
	}
	for _, tc := range []struct {
		name    string
		cfg     Config
		tickets []Ticket
		ticks   []tick
	}{
		{
			name:    "window 0 at t=0 matches equal ratings",
			tickets: []Ticket{solo("a", 1500, at(0)), solo("b", 1500, at(0)), solo("c", 1500, at(0))},
			ticks:   []tick{{0, "a,b,c"}},
		},
		{
			name:    "window 0 at t=0 refuses a gap of 1",
			tickets: []Ticket{solo("a", 1500, at(0)), solo("b", 1500, at(0)), solo("c", 1501, at(0))},
			ticks:   []tick{{0, ""}, {0.01, ""}, {1, "a,b,c"}},
		},
		{
			name:    "gap equal to the window matches",
			tickets: []Ticket{solo("a", 1000, at(0)), solo("b", 1025, at(0)), solo("c", 1050, at(0))},
			ticks:   []tick{{0, ""}, {0.999, ""}, {1, "a,b,c"}},
		},
		{
			name:    "gap one over the window waits a tick",
			tickets: []Ticket{solo("a", 1000, at(0)), solo("b", 1025, at(0)), solo("c", 1051, at(0))},
			ticks:   []tick{{1, ""}, {2, "a,b,c"}},
		},
		{
			name:    "fixed window: the edge matches, one more never does",
			cfg:     Config{RoomSize: 3, WindowBase: 10},
			tickets: []Ticket{solo("a", 100, at(0)), solo("b", 105, at(0)), solo("c", 110, at(0)), solo("x", 200, at(0)), solo("y", 205, at(0)), solo("z", 211, at(0))},
			ticks:   []tick{{0, "a,b,c"}, {1000, ""}},
		},
		{
			name: "both windows must cover the gap",
			// a and b waited 10 s (window 500); c just came (window 0).
			tickets: []Ticket{solo("a", 1400, at(-10)), solo("b", 1450, at(-10)), solo("c", 1500, at(0))},
			ticks:   []tick{{0, ""}, {0.5, ""}, {1, ""}, {2, "a,b,c"}},
		},
		{
			name: "the middle ticket needs only its distance to both ends",
			// b's window (50 at t=1) covers 50 to each end; a and c need 100.
			tickets: []Ticket{solo("a", 1400, at(-1)), solo("b", 1450, at(0)), solo("c", 1500, at(-1))},
			ticks:   []tick{{1, "a,b,c"}},
		},
		{
			name:    "two rooms in one tick, in rating order",
			tickets: []Ticket{solo("d", 2000, at(0)), solo("a", 1000, at(0)), solo("e", 2000, at(0)), solo("b", 1000, at(0)), solo("f", 2000, at(0)), solo("c", 1000, at(0))},
			ticks:   []tick{{0, "a,b,c|d,e,f"}},
		},
		{
			name:    "fewer than a room never matches",
			tickets: []Ticket{solo("a", 1500, at(0)), solo("b", 1500, at(0))},
			ticks:   []tick{{0, ""}, {1000, ""}},
		},
		{
			name:    "pairs",
			cfg:     Config{RoomSize: 2, WindowPerSecond: 50},
			tickets: []Ticket{solo("a", 1500, at(0)), solo("b", 1550, at(0)), solo("c", 1700, at(0))},
			ticks:   []tick{{0, ""}, {1, "a,b"}, {3, ""}},
		},
		{
			name:    "a full party is a room by itself",
			tickets: []Ticket{party("p", 2900, 3, at(0)), solo("a", 1500, at(0))},
			ticks:   []tick{{0, "p"}},
		},
		{
			name:    "a party of two and a solo",
			tickets: []Ticket{party("p", 1500, 2, at(0)), solo("a", 1500, at(0)), solo("b", 1500, at(0))},
			ticks:   []tick{{0, "p,a"}},
		},
		{
			name:    "two parties of two never make a room of three",
			tickets: []Ticket{party("p", 1500, 2, at(0)), party("q", 1500, 2, at(0))},
			ticks:   []tick{{0, ""}, {100, ""}},
		},
		{
			name:    "two parties of two make a room of four",
			cfg:     Config{RoomSize: 4, WindowPerSecond: 50},
			tickets: []Ticket{party("p", 1500, 2, at(0)), party("q", 1540, 2, at(0))},
			ticks:   []tick{{0, ""}, {1, "p,q"}},
		},
		{
			name:    "party rating is checked against the solos' windows",
			tickets: []Ticket{party("p", 1600, 2, at(0)), solo("a", 1500, at(0))},
			ticks:   []tick{{1, ""}, {2, "a,p"}},
		},
		{
			name:    "a tick before a ticket's arrival counts no wait",
			tickets: []Ticket{solo("a", 1500, at(5)), solo("b", 1500, at(5)), solo("c", 1510, at(5))},
			ticks:   []tick{{0, ""}, {5, ""}, {5.2, "a,b,c"}},
		},
		{
			name: "fewest rooms lost: a lone ticket does not block its neighbours",
			// x is alone far away; the other six form two rooms.
			tickets: []Ticket{solo("a", 1000, at(0)), solo("b", 1000, at(0)), solo("c", 1000, at(0)), solo("x", 1300, at(0)), solo("d", 1600, at(0)), solo("e", 1600, at(0)), solo("f", 1600, at(0))},
			ticks:   []tick{{0, "a,b,c|d,e,f"}},
		},
		{
			name: "the seed's first run by default",
			// The seed takes a,b,c (spread 40) though b,c,d is tighter.
			tickets: []Ticket{solo("a", 1000, at(0)), solo("b", 1030, at(0)), solo("c", 1035, at(0)), solo("d", 1040, at(0))},
			ticks:   []tick{{1, "a,b,c"}},
		},
		{
			name: "tighten: a smaller spread than the seed's first run",
			cfg:  Config{RoomSize: 3, WindowPerSecond: 50, Tighten: true},
			// b,c,d (spread 10) instead of the seed's a,b,c (spread 40).
			tickets: []Ticket{solo("a", 1000, at(0)), solo("b", 1030, at(0)), solo("c", 1035, at(0)), solo("d", 1040, at(0))},
			ticks:   []tick{{1, "b,c,d"}},
		},
		{
			name: "tighten never trades a room for spread",
			cfg:  Config{RoomSize: 3, WindowPerSecond: 50, Tighten: true},
			// Tightest is b,c,d (10) leaving a,e,f unmatched; two rooms win.
			tickets: []Ticket{solo("a", 1000, at(0)), solo("b", 1040, at(0)), solo("c", 1045, at(0)), solo("d", 1050, at(0)), solo("e", 1090, at(0)), solo("f", 1095, at(0))},
			ticks:   []tick{{1, "a,b,c|d,e,f"}},
		},
		{
			name: "solos are not stranded between parties",
			cfg:  Config{RoomSize: 5, WindowPerSecond: 50},
			tickets: []Ticket{solo("a", 1000, at(0)), party("p", 1001, 3, at(0)), party("q", 1002, 3, at(0)), solo("b", 1003, at(0)),
				party("r", 1004, 3, at(0)), party("s", 1005, 3, at(0)), solo("c", 1006, at(0))},
			ticks: []tick{{1, "a,q,b"}},
		},
		{
			name:    "a solo joins the nearest party of two",
			tickets: []Ticket{party("p", 1000, 2, at(0)), party("q", 1001, 2, at(0)), solo("a", 1002, at(0))},
			ticks:   []tick{{1, "q,a"}, {100, ""}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			if cfg.RoomSize == 0 {
				cfg = DefaultConfig()
			}
			p := NewPool(cfg)
			for _, tk := range tc.tickets {
				if err := p.Add(tk); err != nil {
					t.Fatalf("Add(%s): %v", tk.ID, err)
				}
			}
			for _, tk := range tc.ticks {
				now := at(tk.at)
				rooms := p.Tick(now)
				if got := roomIDs(rooms); got != tk.rooms {
					t.Fatalf("Tick(t=%v) = %q, want %q", tk.at, got, tk.rooms)
				}
				for _, r := range rooms {
					if err := cfg.CheckRoom(r.Tickets, now); err != nil {
						t.Fatalf("Tick(t=%v): %v", tk.at, err)
					}
					if want := r.Tickets[len(r.Tickets)-1].Rating - r.Tickets[0].Rating; r.Spread != want {
						t.Fatalf("room spread %d, want %d", r.Spread, want)
					}
					if r.Players() != cfg.RoomSize {
						t.Fatalf("room of %d players, want %d", r.Players(), cfg.RoomSize)
					}
				}
			}
		})
	}
}

func TestAddBadTickets(t *testing.T) {
	p := NewPool(DefaultConfig())
	for _, tc := range []struct {
		name string
		t    Ticket
	}{
		{"empty id", Ticket{Rating: 1500, Members: 1, Enqueued: t0}},
		{"no members", Ticket{ID: "a", Rating: 1500, Members: 0, Enqueued: t0}},
		{"negative members", Ticket{ID: "a", Rating: 1500, Members: -1, Enqueued: t0}},
		{"party over room size", Ticket{ID: "a", Rating: 1500, Members: 4, Enqueued: t0}},
		{"rating too high", Ticket{ID: "a", Rating: MaxRating + 1, Members: 1, Enqueued: t0}},
		{"rating too low", Ticket{ID: "a", Rating: -MaxRating - 1, Members: 1, Enqueued: t0}},
		{"no enqueue time", Ticket{ID: "a", Rating: 1500, Members: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := p.Add(tc.t); !errors.Is(err, ErrBadTicket) {
				t.Fatalf("Add = %v, want ErrBadTicket", err)
			}
		})
	}
	if p.Len() != 0 || p.Players() != 0 {
		t.Fatalf("Len %d Players %d after bad adds, want 0 0", p.Len(), p.Players())
	}
	for _, r := range []int{MaxRating, -MaxRating} {
		if err := p.Add(solo("edge", r, t0)); err != nil {
			t.Fatalf("Add(rating %d) = %v", r, err)
		}
		p.Remove("edge")
	}
}

func TestAddDuplicate(t *testing.T) {
	p := NewPool(DefaultConfig())
	if err := p.Add(solo("a", 1500, at(0))); err != nil {
		t.Fatal(err)
	}
	err := p.Add(solo("a", 1700, at(1)))
	if !errors.Is(err, ErrDuplicate) {
		t.Fatalf("second Add = %v, want ErrDuplicate", err)
	}
	if got, _ := p.Get("a"); got.Rating != 1500 {
		t.Fatalf("waiting ticket changed to %+v by a refused Add", got)
	}
	// Still a duplicate after a tick merged it into the sorted pool.
	p.Tick(at(1))
	if err := p.Add(solo("a", 1500, at(2))); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("Add after tick = %v, want ErrDuplicate", err)
	}
	if p.Len() != 1 || p.Players() != 1 {
		t.Fatalf("Len %d Players %d, want 1 1", p.Len(), p.Players())
	}
	// Once matched, the ID may queue again.
	p.Add(solo("b", 1500, at(0)))
	p.Add(solo("c", 1500, at(0)))
	if rooms := p.Tick(at(2)); roomIDs(rooms) != "a,b,c" {
		t.Fatalf("rooms %q", roomIDs(rooms))
	}
	if err := p.Add(solo("a", 1500, at(3))); err != nil {
		t.Fatalf("Add after match = %v", err)
	}
}

func TestRemove(t *testing.T) {
	p := NewPool(DefaultConfig())
	if p.Remove("nobody") {
		t.Fatal("Remove of an unknown ID returned true")
	}
	for _, tk := range []Ticket{solo("a", 1500, at(0)), solo("b", 1500, at(0)), party("p", 1500, 2, at(0)), solo("c", 1500, at(0))} {
		if err := p.Add(tk); err != nil {
			t.Fatal(err)
		}
	}
	if p.Len() != 4 || p.Players() != 5 {
		t.Fatalf("Len %d Players %d, want 4 5", p.Len(), p.Players())
	}
	// Removed before any tick (still pending).
	if !p.Remove("p") || p.Remove("p") {
		t.Fatal("Remove(p) twice: want true then false")
	}
	if _, ok := p.Get("p"); ok {
		t.Fatal("Get found a removed ticket")
	}
	if p.Len() != 3 || p.Players() != 3 {
		t.Fatalf("Len %d Players %d, want 3 3", p.Len(), p.Players())
	}
	// Removed after a tick merged it; its place must not be matched.
	p.Remove("c")
	p.Add(solo("d", 1500, at(0)))
	p.Tick(at(0)) // a, b, d match
	if p.Len() != 0 || p.Players() != 0 {
		t.Fatalf("Len %d Players %d after the match, want 0 0", p.Len(), p.Players())
	}

	// Remove a ticket that the previous tick sorted, then re-add the same
	// ID with another rating before the next tick: it must be there once,
	// with the new rating.
	q := NewPool(DefaultConfig())
	q.Add(solo("a", 1000, at(0)))
	q.Add(solo("b", 2000, at(0)))
	q.Add(solo("c", 2000, at(0)))
	if rooms := q.Tick(at(0)); len(rooms) != 0 {
		t.Fatalf("unexpected rooms %q", roomIDs(rooms))
	}
	q.Remove("a")
	if err := q.Add(solo("a", 2000, at(0))); err != nil {
		t.Fatal(err)
	}
	if rooms := q.Tick(at(0)); roomIDs(rooms) != "b,c,a" {
		t.Fatalf("rooms %q, want b,c,a", roomIDs(rooms))
	}
	if q.Len() != 0 {
		t.Fatalf("Len %d, want 0 (the old a must be gone)", q.Len())
	}
	if q.Remove("a") {
		t.Fatal("Remove of a matched ticket returned true")
	}
}

func TestPayloadAndOrder(t *testing.T) {
	p := NewPool(DefaultConfig())
	type conn struct{ name string }
	for i, id := range []string{"z", "y", "x"} {
		tk := solo(id, 1500, at(float64(-i)))
		tk.Payload = &conn{id}
		p.Add(tk)
	}
	rooms := p.Tick(at(0))
	if len(rooms) != 1 {
		t.Fatalf("%d rooms", len(rooms))
	}
	// Equal ratings keep their arrival order.
	if got := roomIDs(rooms); got != "z,y,x" {
		t.Fatalf("room %q, want z,y,x", got)
	}
	for _, tk := range rooms[0].Tickets {
		if c, ok := tk.Payload.(*conn); !ok || c.name != tk.ID {
			t.Fatalf("payload of %s = %#v", tk.ID, tk.Payload)
		}
		if tk.Enqueued.IsZero() || tk.Members != 1 {
			t.Fatalf("ticket came back changed: %+v", tk)
		}
	}
}

func TestEmptyPoolTick(t *testing.T) {
	p := NewPool(DefaultConfig())
	if rooms := p.Tick(at(0)); rooms != nil {
		t.Fatalf("Tick on an empty pool = %v", rooms)
	}
	if s := p.LastTick(); s != (TickStats{}) {
		t.Fatalf("LastTick = %+v", s)
	}
}

func TestLastTick(t *testing.T) {
	p := NewPool(DefaultConfig())
	for _, tk := range []Ticket{solo("a", 1000, at(0)), solo("b", 1010, at(0)), solo("c", 1020, at(0)), solo("d", 3000, at(0))} {
		p.Add(tk)
	}
	p.Tick(at(1))
	s := p.LastTick()
	if s.Tickets != 4 || s.Players != 4 || s.Rooms != 1 || s.Spread != 20 {
		t.Fatalf("LastTick = %+v", s)
	}
}

func TestPartyRating(t *testing.T) {
	for _, tc := range []struct {
		in   []int
		want int
	}{
		{nil, 0}, {[]int{1500}, 1500}, {[]int{1000, 2000}, 1500}, {[]int{1000, 1001}, 1001}, {[]int{1, 2, 2}, 2}, {[]int{-1, -2}, -2},
	} {
		if got := PartyRating(tc.in...); got != tc.want {
			t.Errorf("PartyRating(%v) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestCheckRoom(t *testing.T) {
	c := DefaultConfig()
	ok := []Ticket{solo("a", 1000, at(0)), solo("b", 1025, at(0)), solo("c", 1050, at(0))}
	if err := c.CheckRoom(ok, at(1)); err != nil {
		t.Fatalf("CheckRoom(valid) = %v", err)
	}
	for name, room := range map[string][]Ticket{
		"too far":        {solo("a", 1000, at(0)), solo("b", 1025, at(0)), solo("c", 1051, at(0))},
		"too few":        ok[:2],
		"too many":       append(slices.Clone(ok), solo("d", 1030, at(0))),
		"duplicate":      {ok[0], ok[1], ok[1]},
		"party too big":  {ok[0], party("p", 1010, 3, at(0))},
		"new ticket gap": {ok[0], ok[1], solo("c", 1050, at(1))},
	} {
		if err := c.CheckRoom(room, at(1)); !errors.Is(err, ErrBadRoom) {
			t.Errorf("CheckRoom(%s) = %v, want ErrBadRoom", name, err)
		}
	}
}

// Restore puts a matched ticket back: it is waiting again, forms rooms
// at the next Tick, can be removed, and a later sweep does not drop it.
func TestRestoreAfterTick(t *testing.T) {
	p := NewPool(DefaultConfig())
	now := time.Unix(1000, 0)
	for i := range 6 {
		if err := p.Add(Ticket{ID: fmt.Sprintf("t%d", i), Rating: 1500, Members: 1, Enqueued: now}); err != nil {
			t.Fatal(err)
		}
	}
	rooms := p.Tick(now)
	if len(rooms) != 2 || p.Len() != 0 {
		t.Fatalf("rooms %d, left %d", len(rooms), p.Len())
	}
	for _, tk := range rooms[1].Tickets {
		if err := p.Restore(tk); err != nil {
			t.Fatal(err)
		}
	}
	if p.Len() != 3 || p.Players() != 3 {
		t.Fatalf("after restore: %d tickets, %d players", p.Len(), p.Players())
	}
	if err := p.Restore(rooms[1].Tickets[0]); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("restore twice: %v", err)
	}
	// Sweeping the retired slots leaves the restored ones live.
	for range 10 {
		p.sweep(100)
	}
	if _, ok := p.Get(rooms[1].Tickets[1].ID); !ok {
		t.Fatal("a restored ticket was swept")
	}
	if _, ok := p.Get(rooms[0].Tickets[0].ID); ok {
		t.Fatal("a matched ticket is still waiting")
	}
	if !p.Remove(rooms[1].Tickets[2].ID) {
		t.Fatal("remove a restored ticket")
	}
	again := p.Tick(now.Add(time.Second))
	if len(again) != 0 || p.Len() != 2 {
		t.Fatalf("two left cannot make a room of 3: %d rooms, %d left", len(again), p.Len())
	}
	_ = p.Add(Ticket{ID: "new", Rating: 1500, Members: 1, Enqueued: now})
	if got := p.Tick(now.Add(2 * time.Second)); len(got) != 1 {
		t.Fatalf("restored tickets did not match with a newcomer: %d rooms", len(got))
	}
}
