package turns_test

import (
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/arena-game/arena/examples/turns"
	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/sdk"
	"github.com/arena-game/arena/sdk/sdktest"
)

// play has every player, on its turn, attack the last other player still
// in; it returns the result message everyone got.
func play(t *testing.T, room sdk.RoomSpec, cl []*sdktest.Client) sdktest.Msg {
	t.Helper()
	out := map[string]bool{}
	idx := map[string]int{}
	for i, p := range room.Players {
		idx[p.UUID] = i
	}
	for {
		m, _ := cl[0].Next()
		switch m.Str("type") {
		case "out":
			out[m.Str("uuid")] = true
		case "result":
			for _, c := range cl[1:] {
				c.Expect("result")
			}
			return m
		case "turn":
			me := idx[m.Str("uuid")]
			target := ""
			for j := len(room.Players) - 1; j >= 0; j-- {
				if id := room.Players[j].UUID; j != me && !out[id] {
					target = id
					break
				}
			}
			cl[me].SendJSON(map[string]any{"type": "act", "action": "attack", "target": target})
		}
	}
}

func TestThreePlayersPlayToAResult(t *testing.T) {
	env := sdktest.New(t, &turns.Game{TurnTime: time.Minute}, sdk.Config{})
	room := env.Room(3)
	var cl []*sdktest.Client
	for i := range 3 {
		c := env.Join(room, i)
		st := c.Expect("state")
		if len(st.List("players")) != 3 || st.List("players")[i].Num("hp") != turns.StartHP {
			t.Fatalf("state %v", st)
		}
		cl = append(cl, c)
	}
	res := play(t, room, cl)
	ps := res.List("players")
	if res.Str("reason") != "last_standing" || res.Str("winner") != room.Players[0].UUID || len(ps) != 3 {
		t.Fatalf("result %v", res)
	}
	// Player 2 went out first (last), player 1 second; ratings moved.
	if ps[1].Str("uuid") != room.Players[1].UUID || ps[2].Str("uuid") != room.Players[2].UUID ||
		ps[0].Num("new_score") != 1516 || ps[2].Num("new_score") != 1484 || ps[0].Num("hp") != 50 {
		t.Fatalf("placements %v", ps)
	}
	if r, g, w, ok := env.Rating(room.Players[0].UUID); !ok || r != 1516 || g != 1 || w != 1 {
		t.Fatalf("winner's record %d %d %d", r, g, w)
	}
}

func TestTimedOutPlayerLosesTheTurn(t *testing.T) {
	env := sdktest.New(t, &turns.Game{TurnTime: 100 * time.Millisecond}, sdk.Config{})
	room := env.Room(3)
	a := env.Join(room, 0)
	b := env.Join(room, 1)
	c := env.Join(room, 2)
	for _, x := range []*sdktest.Client{a, b, c} {
		x.Expect("state")
	}
	if m := a.Expect("turn"); m.Str("uuid") != room.Players[0].UUID {
		t.Fatalf("first turn %v", m)
	}
	// Player 1 acts out of turn.
	b.Send(`{"type":"act","action":"heal"}`)
	b.ExpectError("not_your_turn")
	// Player 0 does nothing: it loses the turn to player 1.
	if m := a.Expect("turn_timeout"); m.Str("uuid") != room.Players[0].UUID {
		t.Fatalf("timeout %v", m)
	}
	if m := a.Expect("turn"); m.Str("uuid") != room.Players[1].UUID {
		t.Fatalf("next turn %v", m)
	}
	b.Sendf(`{"type":"act","action":"attack","target":%q}`, room.Players[1].UUID)
	b.ExpectError("bad_target")
	b.Send(`{"type":"act","action":"dance"}`)
	b.ExpectError("bad_action")
}

func TestDefendHalvesAndHealRestores(t *testing.T) {
	env := sdktest.New(t, &turns.Game{TurnTime: time.Minute}, sdk.Config{})
	room := env.Room(2)
	a, b := env.Join(room, 0), env.Join(room, 1)
	a.Expect("turn")
	b.Expect("turn")
	a.Send(`{"type":"act","action":"defend"}`)
	a.Expect("acted")
	if m := b.Expect("acted"); m.Num("round") != 1 {
		t.Fatalf("first round %v", m)
	}
	b.Expect("turn")
	b.Sendf(`{"type":"act","action":"attack","target":%q}`, room.Players[0].UUID)
	if m := a.Expect("acted"); m.Num("damage") != turns.AttackDamage/2 || m.Num("hp") != 88 {
		t.Fatalf("defended hit %v", m)
	}
	a.Expect("turn")
	a.Send(`{"type":"act","action":"heal"}`)
	b.Expect("acted") // its own attack
	if m := b.Expect("acted"); m.Num("healed") != 12 || m.Num("hp") != 100 {
		t.Fatalf("heal %v", m)
	}
}

func TestBattleSurvivesItsProcess(t *testing.T) {
	g := &turns.Game{TurnTime: time.Minute}
	env := sdktest.New(t, g, sdk.Config{})
	room := env.Room(2)
	a, b := env.Join(room, 0), env.Join(room, 1)
	a.Expect("turn")
	a.Sendf(`{"type":"act","action":"attack","target":%q}`, room.Players[1].UUID)
	b.Expect("acted")
	b.Expect("turn") // the turn's snapshot is saved now
	waitfor.Cond(t, "the second turn's snapshot", func() bool {
		it, err := env.Store.Get(t.Context(), "gamestate:"+room.ID)
		var snap struct{ Turn int }
		return err == nil && json.Unmarshal(it.Value, &snap) == nil && snap.Turn == 1
	})
	// Another process (sharing the store) is given the room.
	env2 := sdktest.New(t, g, sdk.Config{}, sdktest.Options{Store: env.Store})
	env2.Assign(room)
	b2 := env2.Join(room, 1)
	st := b2.Expect("state")
	if st.Str("turn") != room.Players[1].UUID || st.List("players")[1].Num("hp") != 75 {
		t.Fatalf("restored state %v", st)
	}
}

// A player who quits frees a seat; the room asks for a player (backfill)
// and the newcomer takes the seat with full hp and gets turns.
func TestQuitterSeatIsBackfilled(t *testing.T) {
	var wanted []sdk.Event
	var mu sync.Mutex
	env := sdktest.New(t, &turns.Game{TurnTime: time.Minute}, sdk.Config{}, sdktest.Options{Events: func(e sdk.Event) {
		mu.Lock()
		wanted = append(wanted, e)
		mu.Unlock()
	}})
	room := env.Room(3)
	a, b, c := env.Join(room, 0), env.Join(room, 1), env.Join(room, 2)
	a.Expect("turn")
	c.Send(`{"type":"leave"}`)
	if m := a.Expect("out"); m.Str("uuid") != room.Players[2].UUID || m.Str("reason") != "left" {
		t.Fatalf("out %v", m)
	}
	waitfor.Cond(t, "a backfill request", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(wanted) > 0 && wanted[len(wanted)-1].Kind == "backfill_wanted" && wanted[len(wanted)-1].Open == 1
	})
	extra := sdktest.Spec(1)
	if _, err := env.Server.Backfill(t.Context(), room.ID, extra.Players); err != nil {
		t.Fatal(err)
	}
	if m := b.Expect("seated"); m.Str("uuid") != extra.Players[0].UUID || m.Num("hp") != turns.StartHP {
		t.Fatalf("seated %v", m)
	}
	full := room
	full.Players = append(append([]sdk.PlayerSpec(nil), room.Players...), extra.Players...)
	d := env.Join(full, 3)
	if st := d.Expect("state"); len(st.List("players")) != 4 {
		t.Fatalf("newcomer's state %v", st)
	}
	// A and B act; the newcomer's turn comes.
	a.Sendf(`{"type":"act","action":"heal"}`)
	b.Expect("turn")
	b.Sendf(`{"type":"act","action":"heal"}`)
	for {
		if m := d.Expect("turn"); m.Str("uuid") == extra.Players[0].UUID {
			break
		}
	}
	// A fourth seat is not there.
	more := sdktest.Spec(1)
	if _, err := env.Server.Backfill(t.Context(), room.ID, more.Players); !errors.Is(err, sdk.ErrRoomFull) {
		t.Fatalf("backfill over the seats: %v", err)
	}
}
