package integration

import (
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/internal/wsconn"
	"github.com/arena-game/arena/sdk"
)

// TestFightRoomSurvivesItsProcess: the built-in fight saves its rooms'
// state (hp at once, positions within snapshot-every); when the fight
// process is killed with -9 in the middle of a room, the dispatcher places
// the room again on a new fight process, which restores it, the players
// get a match for the same room, find their hp and positions and finish
// the fight there, and the result is recorded once.
func TestFightRoomSurvivesItsProcess(t *testing.T) {
	a := startArena(t, "dispatcher", "--guest-login", "--tick", "100ms", "--room-size", "2",
		"--fight-option", "attack-cooldown=0s", "--fight-option", "attack-range=1000")
	ctx := ctxT(t, 90*time.Second)
	ann, bob := newGamer(t, ctx, a, "ann"), newGamer(t, ctx, a, "bob")
	ann.queue(t, ctx)
	bob.queue(t, ctx)
	gs := []*gamer{ann, bob}
	fights := make([]*wsconn.Client, 2)
	var room string
	join := func(i int) (m matchMsg) {
		t.Helper()
		if err := gs[i].play.RecvType(ctx, "match", &m); err != nil {
			t.Fatal(err)
		}
		if room != "" && m.Room != room {
			t.Fatalf("%s's match is for room %s, want %s", gs[i].uuid, m.Room, room)
		}
		room = m.Room
		cl, err := wsconn.DialClient(ctx, m.Fight+"?ticket="+url.QueryEscape(m.Ticket), 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close(wsconn.CloseNormal, "") })
		fights[i] = cl
		return m
	}
	attack := func() {
		t.Helper()
		if err := fights[0].SendJSON(map[string]any{"type": "event", "event": "attack", "target": bob.uuid, "ball_uuid": "b", "x": 0, "y": 0, "angle": 0}); err != nil {
			t.Fatal(err)
		}
		var hp struct {
			UUID string
			HP   int
		}
		if err := fights[1].RecvType(ctx, "hp", &hp); err != nil || hp.UUID != bob.uuid {
			t.Fatalf("hp after an attack: %+v %v", hp, err)
		}
	}
	for i := range 2 {
		join(i)
		if err := fights[i].RecvType(ctx, "state", nil); err != nil {
			t.Fatal(err)
		}
	}
	// Ann hits Bob twice (60 hp left) and walks to (123, 456).
	attack()
	attack()
	if err := fights[0].SendJSON(map[string]any{"type": "event", "event": "move_to", "tx": 123, "ty": 456}); err != nil {
		t.Fatal(err)
	}
	if err := fights[1].RecvType(ctx, "event", nil); err != nil {
		t.Fatal(err)
	}
	st := a.store(t)
	type saved struct {
		F []struct {
			U      string
			HP     int
			TX, TY float64
		}
	}
	waitfor.Cond(t, "the room's state with the hits and the move is in memcached", func() bool {
		it, err := st.Get(ctx, sdk.SnapshotKey(room))
		var s saved
		if err != nil || json.Unmarshal(it.Value, &s) != nil {
			return false
		}
		ok := 0
		for _, f := range s.F {
			if f.U == bob.uuid && f.HP == 60 || f.U == ann.uuid && f.TX == 123 && f.TY == 456 {
				ok++
			}
		}
		return ok == 2
	})

	killKind(t, a, "fight")
	for _, cl := range fights {
		select {
		case <-cl.Done():
		case <-ctx.Done():
			t.Fatal("a fight socket survived the kill")
		}
	}
	// Both get a match for the same room, on the new process, with its state.
	for i := range 2 {
		join(i)
		var state struct {
			Players []struct {
				UUID string
				HP   int
				TX   float64
				TY   float64
			}
		}
		if err := fights[i].RecvType(ctx, "state", &state); err != nil {
			t.Fatal(err)
		}
		for _, p := range state.Players {
			if p.UUID == bob.uuid && p.HP != 60 || p.UUID == ann.uuid && (p.HP != 100 || p.TX != 123 || p.TY != 456) {
				t.Fatalf("restored state %+v: want bob at 60 hp, ann walking to (123, 456)", state)
			}
		}
	}
	// Three more hits end it: the hp were kept.
	for range 3 {
		attack()
	}
	var res fightResult
	if err := fights[0].RecvType(ctx, "result", &res); err != nil {
		t.Fatal(err)
	}
	if res.Room != room || res.Winner != ann.uuid || res.Pending {
		t.Fatalf("result %+v; want room %s won by ann", res, room)
	}
	// Recorded once: one match in each history, each rating moved once,
	// as the result said.
	for _, g := range gs {
		var p profileView
		waitfor.Cond(t, "the result in the player's record", func() bool {
			p = profileView{}
			return api(t, a, "GET", "/v1/players/"+g.uuid, "", nil, &p) == 200 && p.Games > 0
		})
		_, score := res.scores(g.uuid)
		if p.Games != 1 || p.Score != score {
			t.Fatalf("%s's record %+v; want one game and the result's score %d", g.uuid, p, score)
		}
		if n := historyLen(t, a, g.uuid); n != 1 {
			t.Fatalf("%s's history has %d matches, want 1", g.uuid, n)
		}
	}
	if p := profileOf(t, a, ann.uuid); p.Wins != 1 {
		t.Fatalf("ann's record %+v: want the win", p)
	}
	// The room is over for the dispatcher: both may queue again.
	ann.queue(t, ctx)
}
