package matchmaking

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/matchmaking/matcher"
)

// stepper drives a matchmaker by hand: no Run goroutine, ticks at chosen
// times, hand-offs finished before step returns.
type stepper struct {
	t      *testing.T
	m      *Matchmaker
	rec    *recorder
	mu     sync.Mutex
	rooms  []FormedRoom
	reg    *prometheus.Registry
	buf    []func()
	closed bool
}

func newStepper(t *testing.T, cfg Config) *stepper {
	t.Helper()
	s := &stepper{t: t, rec: &recorder{}, reg: prometheus.NewRegistry()}
	h := func(ctx context.Context, fr FormedRoom) (map[string]MatchMsg, error) {
		s.mu.Lock()
		s.rooms = append(s.rooms, fr)
		s.mu.Unlock()
		return placeAll(ctx, fr)
	}
	if cfg.Tick == 0 {
		cfg.Tick = time.Second
	}
	m, err := NewMatchmaker(cfg, s.rec, h, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	m.RegisterMetrics(s.reg)
	s.m = m
	return s
}

// run executes everything posted to the matchmaker so far.
func (s *stepper) run() {
	s.m.handoffs.Wait()
	for s.m.inbox.Len() > 0 || s.m.events.Len() > 0 {
		s.buf = s.m.events.Take(s.buf)
		s.buf = append(s.buf, s.m.inbox.Take(nil)...)
		for _, f := range s.buf {
			f()
		}
	}
}

func (s *stepper) enqueue(e Enqueue) error {
	s.t.Helper()
	if e.Source == "" {
		e.Source = SourceBackend
	}
	if e.Created.IsZero() {
		e.Created = epoch
	}
	if e.Profile == "" {
		e.Profile = DefaultProfile
	}
	if err := e.Search.Validate(); err != nil {
		return err
	}
	_, err := s.m.enqueue(e, e.Created)
	return err
}

// step ticks at epoch+at and finishes the hand-offs; it returns the rooms
// formed by that tick.
func (s *stepper) step(at time.Duration) []FormedRoom {
	s.mu.Lock()
	before := len(s.rooms)
	s.mu.Unlock()
	s.m.tick(context.Background(), epoch.Add(at))
	s.run()
	// A plugin function may still be answering: its answer arrives in the
	// inbox, which run handles.
	waitfor.Cond(s.t, "the match function's answer", func() bool { s.run(); return s.m.pending == nil })
	s.run()
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.rooms[before:])
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func roomIDs(fr FormedRoom) []string {
	var out []string
	for _, p := range fr.Players {
		out = append(out, p.UUID)
	}
	sort.Strings(out)
	return out
}

func mustProfiles(t *testing.T, body string, fns ...string) Profiles {
	t.Helper()
	ps, err := ParseProfiles([]byte(body), fns)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// The default profile forms exactly the seed's rooms (matcher.SeedTick)
// on the same pool, tick after tick.
func TestDefaultProfileFormsTheSeedsRooms(t *testing.T) {
	s := newStepper(t, Config{RoomSize: 3, WindowPerSecond: 50})
	rng := rand.New(rand.NewPCG(1, 2))
	var waiting []matcher.Ticket
	for i := range 300 {
		id := fmt.Sprintf("p%03d", i)
		r := 1500 + int(rng.NormFloat64()*200)
		created := epoch.Add(time.Duration(rng.IntN(3000)) * time.Millisecond)
		waiting = append(waiting, matcher.Ticket{ID: id, Rating: r, Members: 1, Enqueued: created})
		if err := s.enqueue(Enqueue{Player: Player{UUID: id, Score: r}, Created: created}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := matcher.DefaultConfig()
	for sec := 3; sec < 12; sec++ {
		now := epoch.Add(time.Duration(sec) * time.Second)
		var want []matcher.Room
		want, waiting = matcher.SeedTick(cfg, waiting, now)
		got := s.step(time.Duration(sec) * time.Second)
		if len(got) != len(want) {
			t.Fatalf("t=%ds: %d rooms, the seed %d", sec, len(got), len(want))
		}
		wantSets := map[string]bool{}
		for _, r := range want {
			var ids []string
			for _, tk := range r.Tickets {
				ids = append(ids, tk.ID)
			}
			sort.Strings(ids)
			wantSets[fmt.Sprint(ids)] = true
		}
		for _, fr := range got {
			if !wantSets[fmt.Sprint(roomIDs(fr))] {
				t.Fatalf("t=%ds: room %v is not one of the seed's", sec, roomIDs(fr))
			}
		}
	}
}

// Two pools of one profile overlap (every "eu" ticket is also in "all"):
// the evaluator keeps the better proposal for a shared ticket, never puts
// a ticket in two rooms, and the losers stay queued.
func TestOverlappingPoolsNeverShareATicket(t *testing.T) {
	ps := mustProfiles(t, `
profiles:
  - name: duel
    rosters: [{name: a, size: 1}, {name: b, size: 1}]
    params: {window_base: 1000, window_per_second: 0}
    pools:
      - name: all
      - name: eu
        string_equals: [{field: region, value: eu}]
`)
	s := newStepper(t, Config{Profiles: ps})
	add := func(id string, rating int, region string) {
		if err := s.enqueue(Enqueue{Player: Player{UUID: id, Score: rating}, Profile: "duel",
			Search: SearchFields{Strings: map[string]string{"region": region}}}); err != nil {
			t.Fatal(err)
		}
	}
	// In "all" (by rating): x 1000, e1 1100, e2 1300: the seed pairs x+e1
	// (spread 100). In "eu": e1+e2 (spread 200). They share e1: the
	// tighter x+e1 wins; e2 stays queued.
	add("x", 1000, "us")
	add("e1", 1100, "eu")
	add("e2", 1300, "eu")
	rooms := s.step(time.Second)
	if len(rooms) != 1 || fmt.Sprint(roomIDs(rooms[0])) != "[e1 x]" {
		t.Fatalf("rooms %v", rooms)
	}
	if st := s.m.status(s.m.players["e2"]); st.State != StateQueued {
		t.Fatalf("the loser's ticket: %+v", st)
	}
	if s.m.stats.lostN != 1 {
		t.Fatalf("lost proposals %d, want 1", s.m.stats.lostN)
	}
	// e2 is matched later with a newcomer, in either pool.
	add("e3", 1310, "eu")
	rooms = s.step(2 * time.Second)
	if len(rooms) != 1 || fmt.Sprint(roomIDs(rooms[0])) != "[e2 e3]" {
		t.Fatalf("second tick rooms %v", rooms)
	}
}

// Many random tickets in overlapping pools of two profiles' worth of
// proposals: no ticket is ever in two rooms, and every room is valid.
func TestOverlappingPoolsProperty(t *testing.T) {
	ps := mustProfiles(t, `
profiles:
  - name: mixed
    params: {window_base: 50, window_per_second: 20}
    pools:
      - name: all
      - name: eu
        string_equals: [{field: region, value: eu}]
      - name: high
        double_range: [{field: level, min: 5}]
      - name: ranked
        tag_present: [ranked]
`)
	s := newStepper(t, Config{Profiles: ps})
	rng := rand.New(rand.NewPCG(7, 7))
	regions := []string{"eu", "us"}
	for i := range 600 {
		sf := SearchFields{Strings: map[string]string{"region": regions[rng.IntN(2)]}, Doubles: map[string]float64{"level": float64(rng.IntN(10))}}
		if rng.IntN(2) == 0 {
			sf.Tags = []string{"ranked"}
		}
		if err := s.enqueue(Enqueue{Player: Player{UUID: fmt.Sprintf("t%d", i), Score: 1500 + rng.IntN(400)}, Profile: "mixed", Search: sf}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for sec := 1; sec <= 10; sec++ {
		for _, fr := range s.step(time.Duration(sec) * time.Second) {
			if len(fr.Players) != 3 {
				t.Fatalf("room of %d", len(fr.Players))
			}
			for _, p := range fr.Players {
				if seen[p.UUID] {
					t.Fatalf("%s in two rooms", p.UUID)
				}
				seen[p.UUID] = true
			}
		}
	}
	if len(seen) < 300 {
		t.Fatalf("only %d players matched", len(seen))
	}
	if len(seen)+int(s.m.order[0].players.Load()) != 600 {
		t.Fatalf("%d matched + %d waiting != 600", len(seen), s.m.order[0].players.Load())
	}
}

func TestEvaluateIsDeterministicByScore(t *testing.T) {
	tk := map[string]*ticket{}
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		tk[id] = &ticket{id: id, waiting: true}
	}
	prop := func(score float64, profile int, ids ...string) *proposal {
		p := &proposal{Proposal: Proposal{Rosters: [][]string{ids}, Score: score}, profile: profile}
		for _, id := range ids {
			p.tickets = append(p.tickets, tk[id])
		}
		return p
	}
	props := []*proposal{prop(1, 1, "a", "b"), prop(5, 0, "b", "c"), prop(5, 1, "c", "d"), prop(2, 0, "d", "e")}
	for serial := range uint64(5) {
		shuffled := slices.Clone(props)
		rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		kept, lost := evaluate(shuffled, serial+1)
		// b+c (5, profile 0) beats c+d (5, profile 1) on the tie; then
		// d+e (2); a+b loses b.
		if len(kept) != 2 || fmt.Sprint(kept[0].Rosters) != "[[b c]]" || fmt.Sprint(kept[1].Rosters) != "[[d e]]" || len(lost) != 2 {
			t.Fatalf("kept %v lost %v", kept, lost)
		}
	}
	tk["b"].waiting = false
	kept, _ := evaluate(slices.Clone(props), 99)
	if fmt.Sprint(kept[0].Rosters) != "[[c d]]" {
		t.Fatalf("a proposal with a ticket no longer waiting was kept: %v", kept)
	}
}

// A function's bad answer (a ticket twice, an unknown ticket, a room of
// the wrong size) is rejected whole, counted, and nothing is matched.
func TestBadFunctionAnswersAreRejected(t *testing.T) {
	var mu sync.Mutex
	var answer []Proposal
	fn := FunctionFunc(func(_ context.Context, req *MatchRequest) ([]Proposal, error) {
		mu.Lock()
		defer mu.Unlock()
		return answer, nil
	})
	ps := mustProfiles(t, `{"profiles":[{"name":"duel","function":"mine","rosters":[{"name":"a","size":1},{"name":"b","size":1}]}]}`, "mine")
	s := newStepper(t, Config{Profiles: ps, Functions: map[string]Function{"mine": fn}})
	for _, id := range []string{"a", "b", "c", "d"} {
		if err := s.enqueue(Enqueue{Player: Player{UUID: id, Score: 1500}, Profile: "duel"}); err != nil {
			t.Fatal(err)
		}
	}
	for i, tc := range []struct {
		reason string
		props  []Proposal
	}{
		{RejectDuplicate, []Proposal{{Rosters: [][]string{{"a"}, {"b"}}}, {Rosters: [][]string{{"c"}, {"a"}}}}},
		{RejectDuplicate, []Proposal{{Rosters: [][]string{{"a"}, {"a"}}}}},
		{RejectUnknown, []Proposal{{Rosters: [][]string{{"a"}, {"b"}}}, {Rosters: [][]string{{"c"}, {"zed"}}}}},
		{RejectSize, []Proposal{{Rosters: [][]string{{"a", "b"}, {"c"}}}}},
		{RejectSize, []Proposal{{Rosters: [][]string{{"a"}}}}},
		{RejectSize, []Proposal{{Rosters: [][]string{{"a"}, {}}}}},
	} {
		mu.Lock()
		answer = tc.props
		mu.Unlock()
		if rooms := s.step(time.Duration(i+1) * time.Second); len(rooms) != 0 {
			t.Fatalf("%d %s: rooms formed from a bad answer: %v", i, tc.reason, rooms)
		}
		var mt dto.Metric
		_ = s.m.stats.rejectedC.WithLabelValues("duel", "mine", tc.reason).Write(&mt)
		c := mt.GetCounter().GetValue()
		if c < 1 {
			t.Fatalf("%d %s: not counted", i, tc.reason)
		}
	}
	if s.m.waiting != 4 {
		t.Fatalf("%d tickets waiting, want all 4", s.m.waiting)
	}
	mu.Lock()
	answer = []Proposal{{Rosters: [][]string{{"a"}, {"d"}}, Score: 1}}
	mu.Unlock()
	if rooms := s.step(10 * time.Second); len(rooms) != 1 || fmt.Sprint(roomIDs(rooms[0])) != "[a d]" || rooms[0].Teams[1].Players[0] != "d" {
		t.Fatalf("a good answer: %v", rooms)
	}
}

func TestFirstComeAndTeamBalance(t *testing.T) {
	ps := mustProfiles(t, `
profiles:
  - name: fifo
    function: first_come
    rosters: [{name: all, size: 3}]
  - name: squads
    function: team_balance
    rosters: [{name: red, size: 2}, {name: blue, size: 2}]
    params: {window_base: 1000, window_per_second: 0}
`)
	s := newStepper(t, Config{Profiles: ps})
	for i, r := range []int{100, 3000, 1500, 900} {
		if err := s.enqueue(Enqueue{Player: Player{UUID: fmt.Sprintf("f%d", i), Score: r}, Profile: "fifo", Created: epoch.Add(time.Duration(i) * time.Millisecond)}); err != nil {
			t.Fatal(err)
		}
	}
	for i, r := range []int{1000, 1100, 1200, 1700} {
		if err := s.enqueue(Enqueue{Player: Player{UUID: fmt.Sprintf("s%d", i), Score: r}, Profile: "squads"}); err != nil {
			t.Fatal(err)
		}
	}
	rooms := s.step(time.Second)
	if len(rooms) != 2 {
		t.Fatalf("rooms %+v", rooms)
	}
	for _, fr := range rooms {
		switch fr.Profile {
		case "fifo":
			if fmt.Sprint(roomIDs(fr)) != "[f0 f1 f2]" {
				t.Fatalf("first come: %v", roomIDs(fr))
			}
		case "squads":
			// 1000+1700 against 1100+1200: means 1350 and 1150 (gap 200);
			// any other split is worse.
			teams := map[string]bool{}
			for _, tm := range fr.Teams {
				ids := slices.Clone(tm.Players)
				sort.Strings(ids)
				teams[fmt.Sprint(ids)] = true
			}
			if !teams["[s0 s3]"] || !teams["[s1 s2]"] {
				t.Fatalf("team balance: %+v", fr.Teams)
			}
		}
	}
}

func TestTicketsExpireAndOwnersAreTold(t *testing.T) {
	ps := mustProfiles(t, `{"profiles":[{"name":"default"},{"name":"quick","ticket_ttl":"5s"}]}`)
	s := newStepper(t, Config{Profiles: ps, TicketTTL: time.Minute})
	var expired []string
	var mu sync.Mutex
	s.m.OnExpire = func(e Enqueue, x Expired) {
		mu.Lock()
		expired = append(expired, x.UUID+"/"+x.Profile)
		mu.Unlock()
	}
	_ = s.enqueue(Enqueue{Player: Player{UUID: "slow", Score: 1}})
	_ = s.enqueue(Enqueue{Player: Player{UUID: "fast", Score: 5000}, Profile: "quick"})
	s.step(4 * time.Second)
	if s.m.waiting != 2 {
		t.Fatal("expired too early")
	}
	s.step(6 * time.Second)
	if s.m.players["fast"] != nil || s.m.players["slow"] == nil {
		t.Fatalf("after 6s: fast=%v slow=%v", s.m.players["fast"], s.m.players["slow"])
	}
	s.step(61 * time.Second)
	if s.m.waiting != 0 || len(s.m.players) != 0 {
		t.Fatalf("after 61s: %d tickets", s.m.waiting)
	}
	waitfor.Cond(t, "two expiry notices", func() bool { mu.Lock(); defer mu.Unlock(); return len(expired) >= 2 })
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	if m, ok := s.rec.msgs["fast"][0].(map[string]any); !ok || m["type"] != "expired" {
		t.Fatalf("owner not told: %v", s.rec.msgs["fast"])
	}
}

func TestTimeFilters(t *testing.T) {
	ps := mustProfiles(t, `
profiles:
  - name: duel
    rosters: [{name: a, size: 1}, {name: b, size: 1}]
    params: {window_base: 10000}
    pools:
      - name: veterans
        created_before: 10s
      - name: fresh
        created_after: 3s
        tag_present: [fresh]
`)
	s := newStepper(t, Config{Profiles: ps})
	_ = s.enqueue(Enqueue{Player: Player{UUID: "old1", Score: 1}, Profile: "duel"})
	_ = s.enqueue(Enqueue{Player: Player{UUID: "old2", Score: 1}, Profile: "duel"})
	if rooms := s.step(5 * time.Second); len(rooms) != 0 {
		t.Fatalf("created_before 10s admitted tickets 5s old: %v", rooms)
	}
	if rooms := s.step(10 * time.Second); len(rooms) != 1 {
		t.Fatalf("veterans not matched at 10s: %v", rooms)
	}
	_ = s.enqueue(Enqueue{Player: Player{UUID: "f1", Score: 1}, Profile: "duel", Search: SearchFields{Tags: []string{"fresh"}}, Created: epoch.Add(10 * time.Second)})
	if rooms := s.step(14 * time.Second); len(rooms) != 0 {
		t.Fatalf("one ticket made a room: %v", rooms)
	}
	_ = s.enqueue(Enqueue{Player: Player{UUID: "f2", Score: 1}, Profile: "duel", Search: SearchFields{Tags: []string{"fresh"}}, Created: epoch.Add(14 * time.Second)})
	// f1 is 4s old at 14s: out of "fresh" (created_after 3s), not yet a
	// veteran: no room.
	if rooms := s.step(14 * time.Second); len(rooms) != 0 {
		t.Fatalf("created_after 3s kept a ticket 4s old: %v", rooms)
	}
}

func TestPlayerMayOnlySetItsProfilesFields(t *testing.T) {
	ps := mustProfiles(t, `{"profiles":[{"name":"default","player_fields":{"strings":["region"]}}]}`)
	s := newStepper(t, Config{Profiles: ps})
	if err := s.enqueue(Enqueue{Player: Player{UUID: "a"}, Source: SourcePlay, Search: SearchFields{Strings: map[string]string{"region": "eu"}}}); err != nil {
		t.Fatal(err)
	}
	err := s.enqueue(Enqueue{Player: Player{UUID: "b"}, Source: SourcePlay, Search: SearchFields{Doubles: map[string]float64{"mmr": 9000}}})
	if err == nil || !errors.Is(err, ErrFieldNotAllowed) {
		t.Fatalf("a player set a backend field: %v", err)
	}
	if err := s.enqueue(Enqueue{Player: Player{UUID: "c"}, Source: SourceBackend, Search: SearchFields{Doubles: map[string]float64{"mmr": 9000}}}); err != nil {
		t.Fatalf("a backend may set any field: %v", err)
	}
}

// A profile whose rooms hold more than they start with fills them from
// the queue (within the window of the room's mean rating); a room that
// asks for a seat (a player left) gets one too; the joining players get
// the room.
func TestBackfillFillsRunningRooms(t *testing.T) {
	ps := mustProfiles(t, `
profiles:
  - {name: open, min_players: 3, max_players: 4, params: {window_base: 100, window_per_second: 0}}
  - {name: closed, params: {window_base: 100, window_per_second: 0}}
`)
	var mu sync.Mutex
	var calls []BackfillRoom
	cfg := Config{Profiles: ps, Backfill: func(_ context.Context, br BackfillRoom) (map[string]MatchMsg, error) {
		mu.Lock()
		calls = append(calls, br)
		mu.Unlock()
		out := map[string]MatchMsg{}
		for _, p := range br.Joining {
			out[p.UUID] = MatchMsg{Type: "match", Room: br.ID, Players: append(slices.Clone(br.Members), br.Joining...)}
		}
		return out, nil
	}}
	s := newStepper(t, cfg)
	for _, id := range []string{"o1", "o2", "o3"} {
		_ = s.enqueue(Enqueue{Player: Player{UUID: id, Score: 1500}, Profile: "open"})
	}
	for _, id := range []string{"c1", "c2", "c3"} {
		_ = s.enqueue(Enqueue{Player: Player{UUID: id, Score: 1500}, Profile: "closed"})
	}
	if rooms := s.step(time.Second); len(rooms) != 2 {
		t.Fatalf("rooms %v", rooms)
	}
	openRoom, closedRoom := s.m.players["o1"].room, s.m.players["c1"].room
	_ = s.enqueue(Enqueue{Player: Player{UUID: "far", Score: 1800}, Profile: "open"})
	_ = s.enqueue(Enqueue{Player: Player{UUID: "near", Score: 1550}, Profile: "open", Created: epoch.Add(time.Second)})
	_ = s.enqueue(Enqueue{Player: Player{UUID: "c4", Score: 1500}, Profile: "closed"})
	s.step(2 * time.Second)
	mu.Lock()
	if len(calls) != 1 || calls[0].ID != openRoom || len(calls[0].Joining) != 1 || calls[0].Joining[0].UUID != "near" || len(calls[0].Members) != 3 {
		t.Fatalf("backfill calls %+v", calls)
	}
	mu.Unlock()
	if q := s.m.players["near"]; q == nil || s.m.stateOf(q) != qInRoom || q.room != openRoom {
		t.Fatalf("near: %+v", q)
	}
	if q := s.m.players["far"]; s.m.stateOf(q) != qQueued {
		t.Fatalf("far (outside the window): %+v", q)
	}
	if q := s.m.players["c4"]; s.m.stateOf(q) != qQueued {
		t.Fatalf("a closed profile's room was filled: %+v", q)
	}
	// The open room is full now; the closed room asks for a seat.
	s.m.WantBackfill(closedRoom, 1)
	s.run()
	s.step(3 * time.Second)
	if q := s.m.players["c4"]; s.m.stateOf(q) != qInRoom || q.room != closedRoom {
		t.Fatalf("c4 after the room asked: %+v", q)
	}
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	if m, ok := s.rec.msgs["near"][0].(*MatchMsg); !ok || m.Room != openRoom || len(m.Players) != 4 {
		t.Fatalf("near was told %+v", s.rec.msgs["near"])
	}
}

// A room that refuses a backfill (full, over) gets no more tries; the
// tickets go back to the queue with their waiting time, their players
// are told nothing, and they are matched into the next room formed.
func TestRefusedBackfillPutsTheTicketsBack(t *testing.T) {
	ps := mustProfiles(t, `
profiles:
  - {name: open, min_players: 3, max_players: 4, params: {window_base: 100, window_per_second: 0}}
`)
	calls := 0
	cfg := Config{Profiles: ps, Backfill: func(_ context.Context, br BackfillRoom) (map[string]MatchMsg, error) {
		calls++ // the hand-off goroutine; read after s.run (handoffs.Wait)
		return nil, fmt.Errorf("backfill room %s: %w", br.ID, errors.New("room full"))
	}}
	s := newStepper(t, cfg)
	for _, id := range []string{"o1", "o2", "o3"} {
		_ = s.enqueue(Enqueue{Player: Player{UUID: id, Score: 1500}, Profile: "open"})
	}
	first := s.step(time.Second)
	if len(first) != 1 {
		t.Fatalf("rooms %v", first)
	}
	late := epoch.Add(1500 * time.Millisecond)
	_ = s.enqueue(Enqueue{Player: Player{UUID: "late", Score: 1500}, Profile: "open", Created: late})
	s.step(2 * time.Second)
	if calls != 1 {
		t.Fatalf("backfill calls %d, want 1", calls)
	}
	q := s.m.players["late"]
	if q == nil || s.m.stateOf(q) != qQueued || s.m.Stats().Queues["open"] != 1 {
		t.Fatalf("late after the refusal: %+v, stats %+v", q, s.m.Stats())
	}
	if got := testutil.ToFloat64(s.m.stats.bfRefusedC); got != 1 || testutil.ToFloat64(s.m.stats.backfilledC) != 0 {
		t.Fatalf("refused %v, backfilled %v", got, testutil.ToFloat64(s.m.stats.backfilledC))
	}
	s.step(3 * time.Second)
	if calls != 1 {
		t.Fatalf("the room that refused was asked again (%d calls)", calls)
	}
	s.rec.mu.Lock()
	told := len(s.rec.msgs["late"])
	s.rec.mu.Unlock()
	if told != 0 {
		t.Fatalf("late was told %v", s.rec.msgs["late"])
	}
	for _, id := range []string{"n1", "n2"} {
		_ = s.enqueue(Enqueue{Player: Player{UUID: id, Score: 1500}, Profile: "open", Created: epoch.Add(3 * time.Second)})
	}
	rooms := s.step(4 * time.Second)
	if len(rooms) != 1 || !slices.Contains(roomIDs(rooms[0]), "late") {
		t.Fatalf("rooms after the refusal %v", rooms)
	}
	if tk := s.m.tickets["late"]; tk != nil && tk.waiting {
		t.Fatalf("late's ticket still queued: %+v", tk)
	}
}

// Stats counts players by state without scanning them, and a room whose
// end is never heard frees its players after RoomLife.
func TestStateCountsAndRoomLife(t *testing.T) {
	s := newStepper(t, Config{RoomSize: 3, WindowPerSecond: 50})
	s.m.RoomLife = time.Minute
	for _, id := range []string{"a", "b", "c", "d"} {
		_ = s.enqueue(Enqueue{Player: Player{UUID: id, Score: 1500}})
	}
	_ = s.enqueue(Enqueue{Player: Player{UUID: "p1", Score: 1500}, Party: []string{"p2"}})
	s.step(time.Second)
	st := s.m.Stats()
	if st.InRoom != 3 || st.PartyPending != 1 || st.Queues[DefaultProfile] != 1 {
		t.Fatalf("stats %+v", st)
	}
	// The room's end is never heard: RoomLife frees its players (the
	// clock is the tick's: RoomLife counts from the hand-off's wall time).
	s.step(time.Since(epoch) + 2*time.Minute)
	st = s.m.Stats()
	if st.InRoom != 0 || s.m.players["a"] != nil || s.m.states[qInRoom] != 0 {
		t.Fatalf("after RoomLife: %+v, a=%v", st, s.m.players["a"])
	}
	if _, err := s.m.enqueue(Enqueue{Player: Player{UUID: "a", Score: 1500}, Profile: DefaultProfile, Source: SourceBackend}, time.Now()); err != nil {
		t.Fatalf("queue again: %v", err)
	}
}

// A room formed before this matchmaker started (by an earlier dispatcher)
// that asks for backfill is looked up (LookupRoom) and then filled like
// the rooms formed here; a room not found is looked up once a minute at
// most, and a room that ended while it was looked up is not adopted.
func TestBackfillAdoptsRoomsFormedBeforeARestart(t *testing.T) {
	ps := mustProfiles(t, `
profiles:
  - {name: closed, params: {window_base: 100, window_per_second: 0}}
`)
	var lookups atomic.Int32
	release := make(chan struct{})
	var backfills []BackfillRoom
	cfg := Config{Profiles: ps,
		Backfill: func(_ context.Context, br BackfillRoom) (map[string]MatchMsg, error) {
			backfills = append(backfills, br) // the hand-off goroutine; read after s.run
			out := map[string]MatchMsg{}
			for _, p := range br.Joining {
				out[p.UUID] = MatchMsg{Type: "match", Room: br.ID}
			}
			return out, nil
		},
		LookupRoom: func(_ context.Context, room string) (FormedRoom, error) {
			defer lookups.Add(1)
			switch room {
			case "old", "ending":
				if room == "ending" {
					<-release
				}
				return FormedRoom{ID: room, Profile: "closed", Players: []Player{{UUID: "x1", Score: 1500}, {UUID: "x2", Score: 1500}, {UUID: "x3", Score: 1500}}}, nil
			}
			return FormedRoom{}, errors.New("no such room")
		}}
	s := newStepper(t, cfg)
	_ = s.enqueue(Enqueue{Player: Player{UUID: "c4", Score: 1520}, Profile: "closed"})
	s.m.WantBackfill("old", 1)
	waitfor.Cond(t, "the old room adopted", func() bool { s.run(); return s.m.rooms["old"] != nil })
	s.step(time.Second)
	if len(backfills) != 1 || backfills[0].ID != "old" || len(backfills[0].Joining) != 1 || backfills[0].Joining[0].UUID != "c4" || len(backfills[0].Members) != 3 {
		t.Fatalf("backfills %+v", backfills)
	}
	if q := s.m.players["c4"]; q == nil || s.m.stateOf(q) != qInRoom || q.room != "old" {
		t.Fatalf("c4: %+v", q)
	}
	// Not found: looked up once, not again within the minute.
	s.m.WantBackfill("gone", 1)
	waitfor.Cond(t, "the unknown room looked up", func() bool { s.run(); return lookups.Load() == 2 })
	s.m.WantBackfill("gone", 1)
	s.run()
	if n := lookups.Load(); n != 2 || s.m.rooms["gone"] != nil {
		t.Fatalf("lookups %d, room %+v: a missing room was looked up again or adopted", n, s.m.rooms["gone"])
	}
	// Ended while looked up: not adopted.
	s.m.WantBackfill("ending", 1)
	s.run()
	s.m.RoomEnded("ending")
	s.run()
	close(release)
	// The lookup posts one event with its answer.
	waitfor.Cond(t, "the ending room's lookup answered", func() bool { return s.m.events.Len() > 0 })
	s.run()
	if s.m.rooms["ending"] != nil {
		t.Fatal("a room that ended while it was looked up was adopted")
	}
}
