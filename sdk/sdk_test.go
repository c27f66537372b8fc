package sdk_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/records"
	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/sdk"
	"github.com/arena-game/arena/sdk/sdktest"
)

// testGame is a small game whose messages exercise the Room API:
// say (to all but the sender), dm (to one), all (to all), end (a ranking),
// panic, block, big (over the size limit), save, after (a timer).
type testGame struct {
	block   chan struct{} // "block" waits on it
	tick    time.Duration
	refuse  bool
	onStart func(r *sdk.Room)
}

type testRoom struct {
	r       *sdk.Room
	g       *testGame
	counter int
	ticks   int
}

func (g *testGame) NewRoom(r *sdk.Room) (sdk.Handler, error) {
	if g.refuse {
		return nil, errors.New("no rooms today")
	}
	h := &testRoom{r: r, g: g}
	if g.tick > 0 {
		r.SetTick(g.tick)
	}
	if g.onStart != nil {
		g.onStart(r)
	}
	return h, nil
}

func (h *testRoom) Join(p *sdk.Player, how sdk.JoinKind) {
	_ = h.r.BroadcastJSON(map[string]any{"type": "joined", "uuid": p.UUID, "how": how.String(), "counter": h.counter})
}

func (h *testRoom) Leave(p *sdk.Player, why sdk.LeaveReason) {
	_ = h.r.BroadcastJSON(map[string]any{"type": "left", "uuid": p.UUID, "why": why.String()})
}

func (h *testRoom) Tick(time.Time) {
	h.ticks++
	if h.ticks%5 == 0 {
		_ = h.r.BroadcastJSON(map[string]any{"type": "tick", "n": h.ticks})
	}
}

func (h *testRoom) Snapshot() ([]byte, error) { return json.Marshal(h.counter) }
func (h *testRoom) Restore(b []byte) error    { return json.Unmarshal(b, &h.counter) }

func (h *testRoom) Backfill(ps []*sdk.Player) error {
	if len(h.r.Players()) > 4 {
		return errors.New("four is enough")
	}
	return nil
}

func (h *testRoom) Message(p *sdk.Player, m sdk.Message) {
	var in struct {
		To    string   `json:"to"`
		Rank  []string `json:"rank"`
		Text  string   `json:"text"`
		Delay string   `json:"delay"`
	}
	_ = json.Unmarshal(m.Raw, &in)
	switch m.Type {
	case "say":
		_ = h.r.BroadcastExcept(p, []byte(fmt.Sprintf(`{"type":"said","from":%q,"text":%q}`, p.UUID, in.Text)))
	case "dm":
		if t := h.r.Player(in.To); t != nil {
			_ = h.r.Send(t, []byte(fmt.Sprintf(`{"type":"dm","from":%q}`, p.UUID)))
		}
	case "all":
		_ = h.r.Broadcast([]byte(`{"type":"all"}`))
	case "count":
		h.counter++
		_ = h.r.Send(p, []byte(fmt.Sprintf(`{"type":"count","n":%d}`, h.counter)))
	case "end":
		res := sdk.Ranking("decided")
		for i, id := range in.Rank {
			res.Players = append(res.Players, sdk.PlayerResult{UUID: id, Rank: i + 1, Score: float64(10 - i), Extra: map[string]any{"medal": i == 0, "place": 99}})
		}
		h.r.End(res)
	case "panic":
		panic("the game fell over")
	case "block":
		<-h.g.block
	case "big":
		err := h.r.Send(p, []byte(`{"type":"big","pad":"`+strings.Repeat("x", h.r.Config().MaxMessage)+`"}`))
		_ = h.r.SendJSON(p, map[string]any{"type": "big_refused", "too_big": errors.Is(err, sdk.ErrTooBig)})
	case "save":
		_ = h.r.SendJSON(p, map[string]any{"type": "saved", "err": fmt.Sprint(h.r.Save())})
	case "after":
		d, _ := time.ParseDuration(in.Delay)
		h.r.After(d, func() { _ = h.r.Send(p, []byte(`{"type":"timer"}`)) })
	case "want":
		h.r.WantPlayers(2)
	default:
		h.r.Error(p, "unknown", "what is "+m.Type)
	}
}

func newEnv(t *testing.T, g *testGame, cfg sdk.Config, opts ...sdktest.Options) *sdktest.Env {
	if cfg.Game == "" {
		cfg.Game = "test"
	}
	return sdktest.New(t, g, cfg, opts...)
}

func TestRoomRelaysToOneAllAndAllButOne(t *testing.T) {
	env := newEnv(t, &testGame{}, sdk.Config{})
	room := env.Room(3)
	var cl []*sdktest.Client
	for i := range 3 {
		cl = append(cl, env.Join(room, i))
		for _, c := range cl { // everyone connected hears the join
			if m := c.Expect("joined"); m.Str("uuid") != room.Players[i].UUID {
				t.Fatalf("joined %v, want %s", m, room.Players[i].UUID)
			}
		}
	}
	cl[0].Send(`{"type":"say","text":"hi"}`)
	for _, c := range cl[1:] {
		if m := c.Expect("said"); m.Str("from") != room.Players[0].UUID || m.Str("text") != "hi" {
			t.Fatalf("said %v", m)
		}
	}
	cl[0].ExpectOpen() // no echo of its own say
	cl[1].Sendf(`{"type":"dm","to":%q}`, room.Players[2].UUID)
	if m := cl[2].Expect("dm"); m.Str("from") != room.Players[1].UUID {
		t.Fatalf("dm %v", m)
	}
	cl[0].ExpectOpen()
	cl[2].Send(`{"type":"all"}`)
	for _, c := range cl {
		c.Expect("all")
	}
}

func TestEndRecordsRanksAndRatings(t *testing.T) {
	env := newEnv(t, &testGame{}, sdk.Config{})
	room := env.Room(3, 1500, 1500, 1500)
	a, b, c := env.Join(room, 0), env.Join(room, 1), env.Join(room, 2)
	for _, cl := range []*sdktest.Client{a, b, c} {
		cl.Expect("joined") // its own join: it is in the room
	}
	ids := []string{room.Players[2].UUID, room.Players[0].UUID, room.Players[1].UUID}
	a.SendJSON(map[string]any{"type": "end", "rank": ids})
	for _, cl := range []*sdktest.Client{a, b, c} {
		res := cl.Expect("result")
		if res.Str("reason") != "decided" || res.Str("winner") != ids[0] {
			t.Fatalf("result %v", res)
		}
		ps := res.List("players")
		if len(ps) != 3 || ps[0].Str("uuid") != ids[0] || ps[0].Num("place") != 1 || ps[2].Num("place") != 3 {
			t.Fatalf("players %v", ps)
		}
		if ps[0].Num("new_score") != 1516 || ps[0].Num("old_score") != 1500 || ps[2].Num("new_score") != 1484 {
			t.Fatalf("ratings %v", ps)
		}
		if ps[0]["medal"] != true || ps[0].Num("score") != 10 {
			t.Fatalf("extra fields %v", ps[0])
		}
		cl.ExpectClosed(1000)
	}
	if r, g, w, ok := env.Rating(ids[0]); !ok || r != 1516 || g != 1 || w != 1 {
		t.Fatalf("winner's record %d %d %d %v", r, g, w, ok)
	}
	if r, _, w, _ := env.Rating(ids[2]); r != 1484 || w != 0 {
		t.Fatalf("last's record %d wins %d", r, w)
	}
	rec, _, err := records.GetRoom(context.Background(), env.Store, room.ID)
	if err != nil || rec.State != records.RoomEnded || rec.Winner != ids[0] || rec.Reason != "decided" {
		t.Fatalf("room record %+v %v", rec, err)
	}
	waitfor.Cond(t, "add and del reported", func() bool {
		got := env.Reporter.Calls()
		return len(got) == 2 && got[0] == "add|"+room.ID && got[1] == "del|"+room.ID
	})
	// Late joiners hear room_over; a room it does not host is wrong_room.
	late := env.Join(room, 0)
	late.ExpectError(sdk.CodeRoomOver)
	late.ExpectClosed(1008)
}

func TestRejoinReplaceLeaveAndGrace(t *testing.T) {
	// The grace is long enough for the joins and drops below on a loaded
	// machine: the third player, who never comes, is gone once it passes.
	env := newEnv(t, &testGame{}, sdk.Config{RejoinGrace: 2 * time.Second})
	room := env.Room(3)
	a := env.Join(room, 0)
	a.Expect("joined")
	// left waits until a has heard that uuid left for why; the third
	// player's end of grace may come between the others' messages.
	seen := map[string]bool{}
	left := func(uuid, why string) {
		t.Helper()
		for !seen[uuid+" "+why] {
			m := a.Expect("left")
			seen[m.Str("uuid")+" "+m.Str("why")] = true
		}
	}
	b := env.Join(room, 1)
	b.Expect("joined")
	if m := a.Expect("joined"); m.Str("uuid") != room.Players[1].UUID || m.Str("how") != "first" {
		t.Fatalf("joined %v", m)
	}
	// A second connection replaces the first.
	b2 := env.Join(room, 1)
	b.ExpectError(sdk.CodeReplaced)
	b.ExpectClosed(1008)
	if m := b2.Expect("joined"); m.Str("how") != "replace" {
		t.Fatalf("replace %v", m)
	}
	// A drop is away; back within the grace is a rejoin.
	b2.Close(1000, "bye")
	left(room.Players[1].UUID, "away")
	b3 := env.Join(room, 1)
	if m := b3.Expect("joined"); m.Str("how") != "rejoin" {
		t.Fatalf("rejoin %v", m)
	}
	// Leave is for good.
	b3.Send(`{"type":"leave"}`)
	b3.ExpectClosed(1000)
	left(room.Players[1].UUID, "quit")
	again := env.Join(room, 1)
	again.ExpectError(sdk.CodeLeftRoom)
	// The third never arrives: gone when its grace passes.
	left(room.Players[2].UUID, "gone")
	// A is the last seated player; dropping for good ends the room (abandoned, unrated).
	a.Send(`{"type":"leave"}`)
	waitfor.Cond(t, "room ended", func() bool { return env.Server.Status().Load == 0 })
}

func TestTimeoutWithoutHandlerIsADraw(t *testing.T) {
	// Long enough for both joins on a loaded machine: a player who comes
	// after the end hears room_over.
	env := newEnv(t, &testGame{}, sdk.Config{RoomTimeout: 2 * time.Second, RejoinGrace: time.Hour})
	room := env.Room(2)
	a, b := env.Join(room, 0), env.Join(room, 1)
	a.Expect("joined")
	b.Expect("joined")
	res := a.Expect("result")
	if res.Str("reason") != sdk.ReasonTimeout || res.Str("winner") != "" {
		t.Fatalf("timeout result %v", res)
	}
	for _, p := range res.List("players") {
		if p.Num("place") != 1 || p.Num("new_score") != 1500 {
			t.Fatalf("draw %v", p)
		}
	}
}

func TestNoShowIsUnrated(t *testing.T) {
	env := newEnv(t, &testGame{}, sdk.Config{RejoinGrace: 50 * time.Millisecond})
	room := env.Room(2)
	waitfor.Cond(t, "no-show room ended", func() bool { return env.Server.Status().Load == 0 })
	rec, _, err := records.GetRoom(context.Background(), env.Store, room.ID)
	if err != nil || rec.Reason != sdk.ReasonNoShow {
		t.Fatalf("record %+v %v", rec, err)
	}
	if _, _, _, ok := env.Rating(room.Players[0].UUID); ok {
		t.Fatal("a no-show changed a rating")
	}
}

func TestPanicEndsOnlyThatRoom(t *testing.T) {
	env := newEnv(t, &testGame{}, sdk.Config{})
	bad, good := env.Room(2), env.Room(2)
	a, b := env.Join(bad, 0), env.Join(bad, 1)
	g := env.Join(good, 0)
	a.Expect("joined")
	// b must be in the room before it panics: a connection that comes
	// after the end hears room_over instead of the result.
	b.Expect("joined")
	g.Expect("joined")
	a.Send(`{"type":"panic"}`)
	for _, c := range []*sdktest.Client{a, b} {
		res := c.Expect("result")
		if res.Str("reason") != sdk.ReasonError || res["unrated"] != true {
			t.Fatalf("error result %v", res)
		}
		c.ExpectClosed(1011)
	}
	// The other room plays on.
	g.Send(`{"type":"all"}`)
	g.Expect("all")
	if _, _, _, ok := env.Rating(bad.Players[0].UUID); ok {
		t.Fatal("a panicked room changed a rating")
	}
	body := env.Metrics()
	if !strings.Contains(body, `arena_game_callback_panics_total{game="test"} 1`) {
		t.Fatalf("panic not counted:\n%s", body)
	}
}

func TestStuckCallbackEndsTheRoom(t *testing.T) {
	g := &testGame{block: make(chan struct{})}
	defer close(g.block)
	// Long enough that the other room's calls, preempted on a loaded
	// machine, are never taken for stuck.
	env := newEnv(t, g, sdk.Config{CallbackDeadline: time.Second})
	stuck, good := env.Room(2), env.Room(2)
	a := env.Join(stuck, 0)
	o := env.Join(good, 0)
	a.Expect("joined")
	o.Expect("joined")
	a.Send(`{"type":"block"}`)
	res := a.Expect("result")
	if res.Str("reason") != sdk.ReasonStuck {
		t.Fatalf("stuck result %v", res)
	}
	a.ExpectClosed(1011)
	o.Send(`{"type":"all"}`)
	o.Expect("all")
	if !strings.Contains(env.Metrics(), `arena_game_callback_stuck_total{game="test"} 1`) {
		t.Fatal("stuck call not counted")
	}
	// The room is gone: a new connection hears room_over.
	late := env.Join(stuck, 1)
	late.ExpectError(sdk.CodeRoomOver)
}

func TestOversizedSendIsAnError(t *testing.T) {
	env := newEnv(t, &testGame{}, sdk.Config{MaxMessage: 1024})
	room := env.Room(2)
	a := env.Join(room, 0)
	a.Expect("joined")
	a.Send(`{"type":"big"}`)
	if m := a.Expect("big_refused"); m["too_big"] != true {
		t.Fatalf("big %v", m)
	}
	a.ExpectOpen()
	// A client's frame over the limit closes its connection (1009).
	a.Send(`{"type":"say","text":"` + strings.Repeat("y", 2000) + `"}`)
	a.ExpectClosed(1009)
}

func TestRefusals(t *testing.T) {
	env := newEnv(t, &testGame{}, sdk.Config{})
	room := env.Room(2)
	other := sdktest.Spec(2)
	for _, tc := range []struct {
		ticket, code string
	}{
		{"", sdk.CodeBadTicket},
		{"garbage", sdk.CodeBadTicket},
		{env.Ticket(other, 0), sdk.CodeWrongRoom},
	} {
		c := env.Dial(tc.ticket)
		c.ExpectError(tc.code)
		c.ExpectClosed(1008)
	}
	// A ticket for a player who is not a member.
	spec := room
	spec.Players = append([]sdk.PlayerSpec(nil), room.Players...)
	spec.Players[0].UUID = "not-a-member"
	c := env.Dial(env.Ticket(spec, 0))
	c.ExpectError(sdk.CodeNotMember)
	// Bad JSON and a missing type are errors; the connection stays open.
	a := env.Join(room, 0)
	a.Expect("joined")
	a.Send(`{"type":`)
	a.ExpectError(sdk.CodeBadJSON)
	a.Send(`{"text":"x"}`)
	a.ExpectError(sdk.CodeUnknownType)
	a.ExpectOpen()
	// Assignment refusals.
	if _, err := env.Server.AssignRoom(context.Background(), room); !errors.Is(err, sdk.ErrRoomExists) {
		t.Fatalf("second assign: %v", err)
	}
	if _, err := env.Server.AssignRoom(context.Background(), sdk.RoomSpec{ID: "bad id!"}); !errors.Is(err, sdk.ErrBadRoom) {
		t.Fatalf("bad id: %v", err)
	}
	refusing := newEnv(t, &testGame{refuse: true}, sdk.Config{})
	if _, err := refusing.Server.AssignRoom(context.Background(), sdktest.Spec(2)); err == nil || refusing.Server.Status().Load != 0 {
		t.Fatalf("NewRoom error: %v", err)
	}
}

func TestRateLimitCountsPings(t *testing.T) {
	env := newEnv(t, &testGame{}, sdk.Config{EventRate: 1, EventBurst: 5})
	room := env.Room(2)
	a := env.Join(room, 0)
	a.Expect("joined")
	for range 10 {
		if err := a.Client.Send([]byte(`{"type":"ping"}`)); err != nil {
			break
		}
	}
	a.ExpectError(sdk.CodeRateLimited)
	a.ExpectClosed(1008)
	// WebSocket ping frames count too.
	b := env.Join(room, 1)
	b.Expect("joined")
	for range 10 {
		_ = b.Client.Ping()
	}
	b.ExpectError(sdk.CodeRateLimited)
	b.ExpectClosed(1008)
}

func TestTickBatchesAndTimers(t *testing.T) {
	env := newEnv(t, &testGame{tick: 10 * time.Millisecond}, sdk.Config{})
	room := env.Room(2)
	a, b := env.Join(room, 0), env.Join(room, 1)
	a.Expect("joined")
	b.Expect("joined")
	a.Expect("tick")
	a.Send(`{"type":"say","text":"batched"}`)
	b.Expect("said")
	a.Send(`{"type":"after","delay":"30ms"}`)
	a.Expect("timer")
}

func TestInboxFullRefusesMessages(t *testing.T) {
	g := &testGame{block: make(chan struct{})}
	env := newEnv(t, g, sdk.Config{Inbox: 2, CallbackDeadline: time.Minute})
	room := env.Room(2)
	a := env.Join(room, 0)
	a.Expect("joined")
	a.Send(`{"type":"block"}`)
	// The room is blocked: two messages wait, the third is refused. The
	// block message itself may still be in the inbox, so send four.
	for range 4 {
		a.Send(`{"type":"all"}`)
	}
	a.ExpectError(sdk.CodeRoomBusy)
	close(g.block)
	for {
		if m, _ := a.Next(); m.Str("type") == "all" {
			break
		}
	}
}

func TestSnapshotRestoresOnAnotherServer(t *testing.T) {
	g := &testGame{}
	env := newEnv(t, g, sdk.Config{})
	room := env.Room(2)
	a := env.Join(room, 0)
	a.Expect("joined")
	a.Send(`{"type":"count"}`)
	a.Send(`{"type":"count"}`)
	a.Expect("count")
	if m := a.Expect("count"); m.Num("n") != 2 {
		t.Fatalf("count %v", m)
	}
	a.Send(`{"type":"save"}`)
	if m := a.Expect("saved"); m.Str("err") != "<nil>" {
		t.Fatalf("save %v", m)
	}
	waitfor.Cond(t, "snapshot written", func() bool {
		return strings.Contains(env.Metrics(), `arena_game_state_saves_total{game="test",result="ok"} 1`)
	})
	// Another server sharing the store takes the room over.
	env2 := newEnv(t, g, sdk.Config{}, sdktest.Options{Store: env.Store})
	env2.Assign(room)
	b := env2.Join(room, 1)
	if m := b.Expect("joined"); m.Num("counter") != 2 {
		t.Fatalf("restored counter %v", m)
	}
}

func TestBackfillAddsAPlayer(t *testing.T) {
	var mu sync.Mutex
	var events []sdk.Event
	env := newEnv(t, &testGame{}, sdk.Config{}, sdktest.Options{Events: func(e sdk.Event) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}})
	room := env.Room(2)
	a := env.Join(room, 0)
	a.Expect("joined")
	a.Send(`{"type":"want"}`)
	waitfor.Cond(t, "backfill wanted", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(events) == 1 && events[0].Kind == "backfill_wanted" && events[0].Open == 2
	})
	extra := sdktest.Spec(1)
	if _, err := env.Server.Backfill(context.Background(), room.ID, extra.Players); err != nil {
		t.Fatal(err)
	}
	joined := room
	joined.Players = append(append([]sdk.PlayerSpec(nil), room.Players...), extra.Players...)
	c := env.Join(joined, 2)
	if m := c.Expect("joined"); m.Str("uuid") != extra.Players[0].UUID || m.Str("how") != "first" {
		t.Fatalf("backfilled join %v", m)
	}
	if _, err := env.Server.Backfill(context.Background(), "nope", extra.Players); !errors.Is(err, sdk.ErrUnknownRoom) {
		t.Fatalf("unknown room: %v", err)
	}
	more := sdktest.Spec(3)
	if _, err := env.Server.Backfill(context.Background(), room.ID, more.Players); !errors.Is(err, sdk.ErrRoomFull) {
		t.Fatalf("refused backfill: %v", err)
	}
}

func TestShutdownTellsPlayers(t *testing.T) {
	env := newEnv(t, &testGame{}, sdk.Config{})
	room := env.Room(2)
	a := env.Join(room, 0)
	a.Expect("joined")
	_ = env.Server.Close()
	m := a.ExpectError(sdk.CodeServerShutdown)
	if !strings.Contains(m.Str("message"), room.ID) {
		t.Fatalf("shutdown message %v", m)
	}
	rec, _, err := records.GetRoom(context.Background(), env.Store, room.ID)
	if err != nil || rec.State != records.RoomFailed {
		t.Fatalf("record %+v %v", rec, err)
	}
}

func TestParseConfig(t *testing.T) {
	c, err := sdk.ParseConfig(sdk.Config{}, []byte(`{"room-timeout":"90s","event-rate":"12.5","event-burst":30,"max-message":4096,"speed":3}`))
	if err != nil || c.RoomTimeout != 90*time.Second || c.EventRate != 12.5 || c.EventBurst != 30 || c.MaxMessage != 4096 {
		t.Fatalf("%+v %v", c, err)
	}
	for _, bad := range []string{`[]`, `{"room-timeout":"soon"}`, `{"event-rate":0}`, `{"rejoin-grace":5}`, `{"inbox":"NaN"}`} {
		if _, err := sdk.ParseConfig(sdk.Config{}, []byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
