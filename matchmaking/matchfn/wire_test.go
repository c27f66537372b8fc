package matchfn

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/arena-game/arena/internal/waitfor"

	"github.com/arena-game/arena/examples/matchfn/duo"
	"github.com/arena-game/arena/matchmaking"
	"github.com/arena-game/arena/proto/matchfnpb"
)

// cand is a candidate of the wire tests.
func cand(id string, rating int, search *matchmaking.SearchFields) matchmaking.Candidate {
	return matchmaking.Candidate{ID: id, Rating: rating, Members: 1 + rating%2, Created: time.Unix(int64(rating), 7), Search: search}
}

// sameRequest reports how got differs from want ("" when it does not):
// the same pools of the same candidates, search fields by content.
func sameRequest(got, want *matchmaking.MatchRequest) string {
	if got.Profile.Name != want.Profile.Name || !got.Now.Equal(want.Now) || len(got.Pools) != len(want.Pools) {
		return fmt.Sprintf("profile %q at %v with %d pools", got.Profile.Name, got.Now, len(got.Pools))
	}
	for i := range want.Pools {
		if len(got.Pools[i]) != len(want.Pools[i]) {
			return fmt.Sprintf("pool %d: %d candidates, want %d", i, len(got.Pools[i]), len(want.Pools[i]))
		}
		for j, w := range want.Pools[i] {
			g := got.Pools[i][j]
			ws := w.Search
			if ws == nil {
				ws = noFields
			}
			if g.ID != w.ID || g.Rating != w.Rating || g.Members != w.Members || !g.Created.Equal(w.Created) || fmt.Sprint(*g.Search) != fmt.Sprint(*ws) {
				return fmt.Sprintf("pool %d candidate %d: %+v, want %+v", i, j, g, w)
			}
		}
	}
	return ""
}

// A session sends each candidate once while it stays unchanged: the
// plugin's table rebuilds every request exactly, and each request adds
// only the candidates new or changed since the last and removes the
// ones gone.
func TestSessionSendsOnlyChanges(t *testing.T) {
	eu := &matchmaking.SearchFields{Strings: map[string]string{"region": "eu"}, Tags: []string{"ranked"}}
	us := &matchmaking.SearchFields{Doubles: map[string]float64{"level": 3}}
	profile := &matchmaking.Profile{Name: "p", Pools: []matchmaking.Pool{{Name: "all"}, {Name: "eu"}}}
	a, b, c, d := cand("a", 10, eu), cand("b", 21, us), cand("c", 30, nil), cand("d", 40, eu)
	b2 := b
	b2.Rating = 25 // b queued again with another rating
	s, ts := newSession(), &tables{}
	for _, tc := range []struct {
		name           string
		pools          [][]matchmaking.Candidate
		added, removed int
		sets           uint32
	}{
		{"first: all, a once though in two pools", [][]matchmaking.Candidate{{a, b, c}, {a}}, 3, 0, 2},
		{"unchanged", [][]matchmaking.Candidate{{a, b, c}, {a}}, 0, 0, 0},
		{"c gone, d new, b changed", [][]matchmaking.Candidate{{a, b2, d}, {a, d}}, 2, 1, 2},
		{"a new one in c's old slot", [][]matchmaking.Candidate{{a, b2, d, c}, {a, d}}, 1, 0, 0},
		{"empty", [][]matchmaking.Candidate{{}, {}}, 0, 4, 0},
		{"back", [][]matchmaking.Candidate{{a}, {a}}, 1, 0, 1},
	} {
		req := &matchmaking.MatchRequest{Profile: profile, Now: time.Unix(100, 0), Pools: tc.pools}
		wire := s.encode(req)
		if got, removed := len(wire.GetAdded().GetSlots()), len(wire.GetRemoved()); got != tc.added || removed != tc.removed {
			t.Errorf("%s: %d added, %d removed; want %d, %d", tc.name, got, removed, tc.added, tc.removed)
		}
		if n := wire.GetSearchFields().GetCount(); n != tc.sets {
			t.Errorf("%s: %d search field sets sent, want %d", tc.name, n, tc.sets)
		}
		got, _, err := ts.decode(wire)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if diff := sameRequest(got, req); diff != "" {
			t.Fatalf("%s: %s", tc.name, diff)
		}
	}
}

// A session's first request over one pool takes slots in order and
// leaves both sides' index by id to a goroutine: the answer still names
// its tickets by slot, and the next request still sends only changes,
// even after a first pool that (not from the matchmaker) named a ticket
// twice.
func TestFirstRequestIndexedLater(t *testing.T) {
	profile := &matchmaking.Profile{Name: "p", Pools: []matchmaking.Pool{{Name: "all"}}}
	a, b, c, d := cand("a", 10, nil), cand("b", 21, nil), cand("c", 30, nil), cand("d", 40, nil)
	for _, first := range [][]matchmaking.Candidate{{a, b, c}, {a, b, a, c}} {
		s, ts := newSession(), &tables{}
		for i, tc := range []struct {
			pool           []matchmaking.Candidate
			added, removed int
		}{
			{first, len(first), 0},
			{[]matchmaking.Candidate{a, c, d}, 1, len(first) - 2},
			{[]matchmaking.Candidate{a, c, d}, 0, 0},
		} {
			req := &matchmaking.MatchRequest{Profile: profile, Now: time.Unix(100, 0), Pools: [][]matchmaking.Candidate{tc.pool}}
			wire := s.encode(req)
			if got, removed := len(wire.GetAdded().GetSlots()), len(wire.GetRemoved()); got != tc.added || removed != tc.removed {
				t.Errorf("%v, request %d: %d added, %d removed; want %d, %d", first, i, got, removed, tc.added, tc.removed)
			}
			got, tab, err := ts.decode(wire)
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			if diff := sameRequest(got, req); diff != "" {
				t.Fatalf("request %d: %s", i, diff)
			}
			want := []matchmaking.Proposal{{Rosters: [][]string{{"a"}, {"c"}}, Score: 1}}
			resp := tab.encodeResponse(want)
			if len(resp.GetUnknownIds()) != 0 {
				t.Errorf("request %d: answer names %v by id, not by slot", i, resp.GetUnknownIds())
			}
			props, err := s.decode(resp)
			if err != nil || fmt.Sprint(props) != fmt.Sprint(want) {
				t.Fatalf("request %d: answer decoded to %v, %v; want %v", i, props, err, want)
			}
		}
	}
}

// A request on a table the plugin does not have (unknown session, an
// older or newer generation, a session evicted past maxSessions) is
// ErrStaleSession; a request from empty always decodes.
func TestStaleSessionIsRefused(t *testing.T) {
	profile := &matchmaking.Profile{Name: "p", Pools: []matchmaking.Pool{{Name: "all"}}}
	req := &matchmaking.MatchRequest{Profile: profile, Pools: [][]matchmaking.Candidate{{cand("a", 1, nil)}}}
	ts := &tables{}
	s := newSession()
	first := s.encode(req)
	second := s.encode(req)
	if _, _, err := ts.decode(second); !errors.Is(err, ErrStaleSession) {
		t.Fatalf("a delta on no table: %v", err)
	}
	if _, _, err := ts.decode(first); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ts.decode(first); err != nil {
		t.Fatalf("a request from empty again: %v", err)
	}
	third := s.encode(req)
	if _, _, err := ts.decode(third); !errors.Is(err, ErrStaleSession) {
		t.Fatalf("a delta skipping a generation: %v", err)
	}
	if _, _, err := ts.decode(second); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ts.decode(third); err != nil {
		t.Fatal(err)
	}
	for range maxSessions {
		if _, _, err := ts.decode(newSession().encode(req)); err != nil {
			t.Fatal(err)
		}
	}
	if len(ts.m) > maxSessions {
		t.Fatalf("%d sessions kept", len(ts.m))
	}
	if _, _, err := ts.decode(s.encode(req)); !errors.Is(err, ErrStaleSession) {
		t.Fatalf("the least recently used session after %d others: %v", maxSessions, err)
	}
}

// A request that does not add up is refused, not a panic on the
// plugin's side, and its session is dropped (the next delta is stale).
func TestDecodeRefusesBrokenRequests(t *testing.T) {
	profile := &matchfnpb.Profile{Name: "p"}
	ok := func() *matchfnpb.Candidates {
		return &matchfnpb.Candidates{Slots: []uint32{0}, Ids: []byte("a"), IdEnds: []uint32{1}, Ratings: []int64{1}, Members: []int32{1},
			CreatedUnixNano: []int64{0}, SearchFields: []uint32{0}}
	}
	for name, mod := range map[string]func(r *matchfnpb.MatchRequest){
		"no profile":          func(r *matchfnpb.MatchRequest) { r.Profile = nil },
		"short ratings":       func(r *matchfnpb.MatchRequest) { r.Added.Ratings = nil },
		"no search column":    func(r *matchfnpb.MatchRequest) { r.Added.SearchFields = nil },
		"id past the end":     func(r *matchfnpb.MatchRequest) { r.Added.IdEnds[0] = 5 },
		"unknown fields":      func(r *matchfnpb.MatchRequest) { r.Added.SearchFields[0] = 2 },
		"slot far past":       func(r *matchfnpb.MatchRequest) { r.Added.Slots[0] = 1 << 30 },
		"removed empty slot":  func(r *matchfnpb.MatchRequest) { r.Removed = []uint32{3} },
		"pool on empty slot":  func(r *matchfnpb.MatchRequest) { r.Pools[0].Slots = []uint32{0, 1} },
		"pool past the table": func(r *matchfnpb.MatchRequest) { r.Pools[0].Slots = []uint32{1 << 31} },
		"too many sets":       func(r *matchfnpb.MatchRequest) { r.SearchFields = &matchfnpb.SearchFieldSets{Count: 1 << 30} },
		"set row past end": func(r *matchfnpb.MatchRequest) {
			r.SearchFields = &matchfnpb.SearchFieldSets{Count: 1, Tags: []*matchfnpb.TagColumn{{Name: "x", Rows: []uint32{5}}}}
		},
		"set values missing": func(r *matchfnpb.MatchRequest) {
			r.SearchFields = &matchfnpb.SearchFieldSets{Count: 1, Doubles: []*matchfnpb.DoubleColumn{{Name: "x", Rows: []uint32{0}}}}
		},
		"ids backwards": func(r *matchfnpb.MatchRequest) {
			r.Added = &matchfnpb.Candidates{Slots: []uint32{0, 1}, Ids: []byte("ab"), IdEnds: []uint32{2, 1}, Ratings: []int64{1, 1},
				Members: []int32{1, 1}, CreatedUnixNano: []int64{0, 0}, SearchFields: []uint32{0, 0}}
		},
	} {
		ts := &tables{}
		if _, _, err := ts.decode(&matchfnpb.MatchRequest{Profile: profile, Session: 9, Generation: 1, Added: ok(),
			Pools: []*matchfnpb.Pool{{Slots: []uint32{0}}}}); err != nil {
			t.Fatal(err)
		}
		r := &matchfnpb.MatchRequest{Profile: profile, Session: 9, Generation: 2, Base: 1, Added: ok(), Pools: []*matchfnpb.Pool{{Slots: []uint32{0}}}}
		mod(r)
		if _, _, err := ts.decode(r); err == nil || errors.Is(err, ErrStaleSession) {
			t.Errorf("%s: %v", name, err)
		}
		if _, _, err := ts.decode(&matchfnpb.MatchRequest{Profile: profile, Session: 9, Generation: 2, Base: 1}); name != "no profile" && !errors.Is(err, ErrStaleSession) {
			t.Errorf("%s: the session was kept: %v", name, err)
		}
	}
}

// Proposals travel as slots of the table; a ticket the function was not
// given travels by id (and the matchmaker rejects the answer); an answer
// whose columns do not add up, or that names an empty slot, is an error.
func TestResponseRoundTrip(t *testing.T) {
	req := &matchmaking.MatchRequest{Profile: &matchmaking.Profile{Name: "p"}, Pools: [][]matchmaking.Candidate{
		{cand("a", 1, nil), cand("b", 2, nil)}, {cand("c", 3, nil), cand("a", 1, nil)},
	}}
	s, ts := newSession(), &tables{}
	_, tab, err := ts.decode(s.encode(req))
	if err != nil {
		t.Fatal(err)
	}
	props := []matchmaking.Proposal{
		{Rosters: [][]string{{"a"}, {"c"}}, Score: 1.5},
		{Rosters: [][]string{{"b", "zed"}, {}}, Score: -2},
	}
	got, err := s.decode(tab.encodeResponse(props))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(props) {
		t.Fatalf("round trip: %v, want %v", got, props)
	}
	for name, r := range map[string]*matchfnpb.MatchResponse{
		"counts":         {Scores: []float64{1}, Rosters: []uint32{1, 1}},
		"rosters":        {Scores: []float64{1}, Rosters: []uint32{2}, RosterSizes: []uint32{1}},
		"tickets":        {Scores: []float64{1}, Rosters: []uint32{1}, RosterSizes: []uint32{2}, Tickets: []uint32{0}},
		"past the table": {Scores: []float64{1}, Rosters: []uint32{1}, RosterSizes: []uint32{1}, Tickets: []uint32{4}},
		"unknown past":   {Scores: []float64{1}, Rosters: []uint32{1}, RosterSizes: []uint32{1}, Tickets: []uint32{unknownTicket}},
	} {
		if _, err := s.decode(r); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	// A slot emptied by the last request is no ticket any more.
	s.encode(&matchmaking.MatchRequest{Profile: req.Profile, Pools: [][]matchmaking.Candidate{{cand("b", 2, nil)}}})
	if _, err := s.decode(&matchfnpb.MatchResponse{Scores: []float64{1}, Rosters: []uint32{1}, RosterSizes: []uint32{1}, Tickets: []uint32{0}}); err == nil {
		t.Error("an emptied slot decoded")
	}
}

// A plugin that lost its table (here: the dispatcher's session is put
// ahead of it, as after the plugin evicted it) is sent the table again
// in the same call: the tick is not lost, nothing is counted as failed.
func TestStaleSessionIsSentAgain(t *testing.T) {
	metrics := NewMetrics(nil)
	p := NewPlugin("duo", build(t, "github.com/arena-game/arena/examples/matchfn"), metrics, quiet())
	t.Cleanup(p.Close)
	req := benchRequest(t, 40)
	want, err := duo.TwoVsTwo(context.Background(), req)
	if err != nil || len(want) == 0 {
		t.Fatalf("built in: %v, %v", want, err)
	}
	for i := range 3 {
		if i == 2 {
			p.mu.Lock()
			p.sessions[req.Profile.Name].gen += 5
			p.mu.Unlock()
		}
		got, err := p.Match(context.Background(), req)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("call %d: %v, want %v", i, got, want)
		}
	}
	for _, reason := range []string{FailStart, FailCrash, FailDeadline, FailError, FailMalformed} {
		if v := valueOf(metrics.Failures.WithLabelValues("duo", reason)); v != 0 {
			t.Errorf("%s failures: %v", reason, v)
		}
	}
}

// A request past gRPC's default 4 MB (250,000 candidates, about 5 MB)
// reaches the plugin and is answered.
func TestLargeRequestFits(t *testing.T) {
	if testing.Short() {
		t.Skip("250,000 candidates")
	}
	req := benchRequest(t, 250_000)
	p := NewPlugin("duo", build(t, "github.com/arena-game/arena/examples/matchfn"), nil, quiet())
	t.Cleanup(p.Close)
	p.mu.Lock()
	size := 0
	if err := p.startLocked(); err != nil {
		t.Fatal(err)
	}
	size = proto.Size(newSession().encode(req))
	p.mu.Unlock()
	if size <= 4<<20 {
		t.Fatalf("the request is %d bytes: not past 4 MB", size)
	}
	got, err := p.Match(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < 10_000 {
		t.Fatalf("%d proposals", len(got))
	}
}

// A ticket cancelled after the plugin's table took it leaves the table
// (its slot is removed by the next request) and is never matched: the
// room formed later from tickets old and new is without it.
func TestCancelledTicketLeavesThePluginsTable(t *testing.T) {
	metrics := NewMetrics(nil)
	p := NewPlugin("duo", build(t, "github.com/arena-game/arena/examples/matchfn"), metrics, quiet())
	t.Cleanup(p.Close)
	h := newHarness(t, `profiles:
  - name: duo
    function: duo
    rosters: [{name: red, size: 2}, {name: blue, size: 2}]
    params: {plugin: {max_spread: 200}}`, map[string]matchmaking.Function{"duo": p})
	calls := func() uint64 {
		var m dto.Metric
		_ = metrics.Overhead.WithLabelValues("duo").(prometheus.Histogram).Write(&m)
		return m.GetHistogram().GetSampleCount()
	}
	for i, r := range []int{1000, 1050, 1100} {
		h.enqueue(t, "duo", fmt.Sprintf("e%d", i), r, "eu")
	}
	waitfor.Cond(t, "two calls with three candidates", func() bool { return calls() >= 2 })
	if err := h.m.Cancel(context.Background(), "e1", 0); err != nil {
		t.Fatal(err)
	}
	after := calls()
	// (The first call to finish may have started before the cancel.)
	waitfor.Cond(t, "a call without e1", func() bool { return calls() >= after+2 })
	p.mu.Lock()
	p.sessions["duo"].ids.wait()
	_, held := p.sessions["duo"].ids.m["e1"]
	p.mu.Unlock()
	if held {
		t.Fatal("e1 still has a slot in the plugin's table")
	}
	h.enqueue(t, "duo", "e3", 1060, "eu")
	h.enqueue(t, "duo", "e4", 1090, "eu")
	waitfor.Cond(t, "a 2-vs-2 room", func() bool { return len(h.roomsOf("duo")) == 1 })
	got := strings.Join(h.roomsOf("duo")[0], "+")
	if strings.Contains(got, "e1") || len(strings.Split(got, "+")) != 4 {
		t.Fatalf("room %s", got)
	}
	if st := h.m.Status(context.Background(), "e1"); st.State != matchmaking.StateNone {
		t.Fatalf("e1: %+v", st)
	}
}
