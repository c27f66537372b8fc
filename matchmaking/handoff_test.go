package matchmaking

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// A seed profile with several rosters: each room's teams are the rosters
// its proposal filled (in rating order, each ticket to the roster with
// the most room left), not the tickets cut in rating order (which is
// what the hand-off did before: the proposal said red a,c and blue b,d,
// the players were told red a,b and blue c,d).
func TestSeedRoomTeamsFollowTheirRosters(t *testing.T) {
	ps := mustProfiles(t, `
profiles:
  - name: squads
    rosters: [{name: red, size: 2}, {name: blue, size: 2}]
    params: {window_base: 1000, window_per_second: 0}
`)
	s := newStepper(t, Config{Profiles: ps})
	for i, id := range []string{"a", "b", "c", "d"} {
		if err := s.enqueue(Enqueue{Player: Player{UUID: id, Score: 1000 + 10*i}, Profile: "squads"}); err != nil {
			t.Fatal(err)
		}
	}
	rooms := s.step(time.Second)
	if len(rooms) != 1 {
		t.Fatalf("rooms %+v", rooms)
	}
	fr := rooms[0]
	if len(fr.Teams) != 2 || fr.Teams[0].Name != "red" || fmt.Sprint(fr.Teams[0].Players) != "[a c]" ||
		fr.Teams[1].Name != "blue" || fmt.Sprint(fr.Teams[1].Players) != "[b d]" {
		t.Fatalf("teams %+v, want red [a c], blue [b d]", fr.Teams)
	}
	var got []string
	for _, p := range fr.Players {
		got = append(got, p.UUID)
	}
	if fmt.Sprint(got) != "[a c b d]" {
		t.Fatalf("players %v, want them roster by roster [a c b d]", got)
	}
}

// A tick hands its rooms off in batches while it goes on: 3,000 players
// make 1,000 rooms (five batches); every player is told once, with its
// own message, and counted in a room.
func TestManyRoomsLeaveInBatches(t *testing.T) {
	s := newStepper(t, Config{RoomSize: 3, WindowPerSecond: 50})
	for i := range 3000 {
		if err := s.enqueue(Enqueue{Player: Player{UUID: fmt.Sprintf("p%04d", i), Score: 1000 + i/3}}); err != nil {
			t.Fatal(err)
		}
	}
	rooms := s.step(time.Second)
	if len(rooms) != 1000 {
		t.Fatalf("%d rooms, want 1000", len(rooms))
	}
	s.rec.mu.Lock()
	for i := range 3000 {
		u := fmt.Sprintf("p%04d", i)
		msgs := s.rec.msgs[u]
		if len(msgs) != 1 {
			s.rec.mu.Unlock()
			t.Fatalf("%s told %d times", u, len(msgs))
		}
		if mm, ok := msgs[0].(*MatchMsg); !ok || mm.UUID != u || len(mm.Players) != 3 {
			s.rec.mu.Unlock()
			t.Fatalf("%s told %+v", u, msgs[0])
		}
	}
	s.rec.mu.Unlock()
	if st := s.m.Stats(); st.InRoom != 3000 || st.RoomsTotal != 1000 || st.MatchesPerMin != 1000 || st.Wait.Count != 1000 {
		t.Fatalf("stats %+v", st)
	}
	if s.m.states[qInRoom] != 3000 || s.m.states[qMatching] != 0 || s.m.states[qQueued] != 0 {
		t.Fatalf("states %v", s.m.states)
	}
}

// Between a tick and its room's hand-off, the room's players are
// matching: they cannot cancel nor queue again, Status says so and the
// counts have them in a room; the tick set this without touching their
// entries (stateOf). A hand-off that fails puts them back, queued.
func TestPlayersAreMatchingUntilTheirRoomIsPlaced(t *testing.T) {
	release := make(chan error)
	s := &stepper{t: t, rec: &recorder{}}
	m, err := NewMatchmaker(Config{RoomSize: 3, WindowPerSecond: 50}, s.rec, func(ctx context.Context, fr FormedRoom) (map[string]MatchMsg, error) {
		if err := <-release; err != nil {
			return nil, err
		}
		return placeAll(ctx, fr)
	}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	s.m = m
	for _, id := range []string{"a", "b", "c", "d"} {
		_ = s.enqueue(Enqueue{Player: Player{UUID: id, Score: 1500}})
	}
	m.tick(context.Background(), epoch.Add(time.Second))
	for _, id := range []string{"a", "b", "c"} {
		if st := m.status(m.players[id]); st.State != StateMatching {
			t.Fatalf("%s: %+v", id, st)
		}
		if err := m.cancel(id, 0); !errors.Is(err, ErrInRoom) {
			t.Fatalf("cancel %s while matching: %v", id, err)
		}
		if _, err := m.enqueue(Enqueue{Player: Player{UUID: id, Score: 1}, Profile: DefaultProfile, Source: SourceBackend}, epoch); !errors.Is(err, ErrInRoom) {
			t.Fatalf("queue %s again while matching: %v", id, err)
		}
	}
	m.publishStats(epoch, true)
	if st := m.Stats(); st.InRoom != 3 || st.Queues[DefaultProfile] != 1 || m.states[qMatching] != 3 || m.states[qQueued] != 1 {
		t.Fatalf("stats %+v, states %v", st, m.states)
	}
	release <- errors.New("no fight server")
	s.run()
	for _, id := range []string{"a", "b", "c", "d"} {
		if st := m.status(m.players[id]); st.State != StateQueued {
			t.Fatalf("%s after a failed hand-off: %+v", id, st)
		}
	}
	if m.states[qMatching] != 0 || m.states[qQueued] != 4 || m.waiting != 4 {
		t.Fatalf("states %v, %d waiting", m.states, m.waiting)
	}
	// They are matched again at the next tick, and placed.
	go func() { release <- nil }()
	m.tick(context.Background(), epoch.Add(2*time.Second))
	s.run()
	if m.states[qInRoom] != 3 || m.states[qQueued] != 1 {
		t.Fatalf("states %v", m.states)
	}
}

// A room whose hand-off fails after a reload removed its profile: its
// tickets expire (profile_removed) instead of staying queued in no pool;
// after a reload that kept the profile, they join its new pools.
func TestFailedHandoffAfterReload(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprint("keep=", keep), func(t *testing.T) {
			release := make(chan error)
			s := &stepper{t: t, rec: &recorder{}}
			ps := mustProfiles(t, `{"profiles":[{"name":"default"},{"name":"other"}]}`)
			m, err := NewMatchmaker(Config{Profiles: ps}, s.rec, func(ctx context.Context, fr FormedRoom) (map[string]MatchMsg, error) {
				return nil, <-release
			}, quietLog())
			if err != nil {
				t.Fatal(err)
			}
			s.m = m
			for _, id := range []string{"a", "b", "c"} {
				_ = s.enqueue(Enqueue{Player: Player{UUID: id, Score: 1500}})
			}
			m.tick(context.Background(), epoch.Add(time.Second))
			next := `{"profiles":[{"name":"other"}]}`
			if keep {
				next = `{"profiles":[{"name":"default","params":{"window_base":5}},{"name":"other"}]}`
			}
			if err := m.install(mustProfiles(t, next), epoch.Add(time.Second)); err != nil {
				t.Fatal(err)
			}
			release <- errors.New("no fight server")
			s.run()
			if !keep {
				if len(m.players) != 0 || m.waiting != 0 || m.states[qQueued] != 0 {
					t.Fatalf("players %v, %d waiting, states %v", m.players, m.waiting, m.states)
				}
				s.rec.mu.Lock()
				defer s.rec.mu.Unlock()
				last := s.rec.msgs["a"][len(s.rec.msgs["a"])-1].(map[string]any)
				if last["type"] != "expired" || last["reason"] != "profile_removed" {
					t.Fatalf("a told %v", s.rec.msgs["a"])
				}
				return
			}
			if m.waiting != 3 || m.profiles[DefaultProfile].tickets != 3 || m.states[qQueued] != 3 {
				t.Fatalf("%d waiting, %d in the new profile, states %v", m.waiting, m.profiles[DefaultProfile].tickets, m.states)
			}
			go func() { release <- nil }()
			m.tick(context.Background(), epoch.Add(2*time.Second))
			s.run()
			if m.states[qInRoom] != 3 || m.waiting != 0 {
				t.Fatalf("states %v, %d waiting", m.states, m.waiting)
			}
		})
	}
}
