package fightserver

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/internal/wsconn"
	"github.com/arena-game/arena/sdk"
	"github.com/arena-game/arena/sdk/sdktest"
)

// backfill adds new players to room r through the server (as the
// dispatcher's Backfill does) and returns r with them as members.
func (e *env) backfill(r sdk.RoomSpec, n int) (sdk.RoomSpec, error) {
	e.t.Helper()
	extra := sdktest.Spec(n)
	if _, err := e.srv.Backfill(context.Background(), r.ID, extra.Players); err != nil {
		return r, err
	}
	r.Players = append(slices.Clone(r.Players), extra.Players...)
	return r, nil
}

// A member who drops and does not come back within the grace is out
// ("left"), and the fight asks the queue for one player; a backfilled
// player joins with full hp where the server placed it, everyone hears
// create_player for it (with that hp and position), it plays, and the
// rated result ranks it with the others.
func TestLeaverSeatIsBackfilled(t *testing.T) {
	e := newEnv(t, Config{Config: sdk.Config{RejoinGrace: time.Second}, Rules: Rules{AttackCooldown: -1, AttackDamage: 50}})
	r := e.newRoom(1500, 1500, 1500)
	ca, cb, cc := e.join(r, 0), e.join(r, 1), e.join(r, 2)
	a, b, c := r.Players[0], r.Players[1], r.Players[2]
	countCreatePlayers(t, ca, 3)
	countCreatePlayers(t, cb, 3)
	cc.Close(wsconn.CloseNormal, "")
	if m := expect(t, ca, "player_away"); m.str("uuid") != c.UUID {
		t.Fatalf("away %v", m)
	}
	if len(e.ended.asked(r.ID)) != 0 {
		t.Fatal("the room asked for a player while the leaver's seat was kept")
	}
	if m := expect(t, ca, "out"); m.str("uuid") != c.UUID || m.str("reason") != "left" {
		t.Fatalf("out %v", m)
	}
	waitfor.Cond(t, "the room asks for one player", func() bool { return slices.Equal(e.ended.asked(r.ID), []int{1}) })

	r, err := e.backfill(r, 1)
	if err != nil {
		t.Fatal(err)
	}
	d := r.Players[3]
	cd := e.dial(e.ticket(r, 3))
	st := expect(t, cd, "state")
	var dx, dy float64
	for _, p := range st["players"].([]any) {
		pm := msg(p.(map[string]any))
		if pm.str("uuid") == d.UUID {
			if pm.num("hp") != StartHP || pm.str("status") != "playing" {
				t.Fatalf("the newcomer in its state: %v", pm)
			}
			dx, dy = pm.num("x"), pm.num("y")
		}
	}
	if len(st["players"].([]any)) != 4 || dx == 0 && dy == 0 {
		t.Fatalf("the newcomer's state %v", st)
	}
	// Placed away from the two fighters alive (a and b stand at their
	// spawns: 3-player points 0 and 1).
	for i := range 2 {
		x, y := Spawn(i, 3)
		if math.Hypot(x-dx, y-dy) < 200 {
			t.Fatalf("the newcomer at %v,%v is %v from fighter %d", dx, dy, math.Hypot(x-dx, y-dy), i)
		}
	}
	if got := countCreatePlayers(t, cd, 3); !slices.Contains(got, d.UUID) || slices.Contains(got, c.UUID) {
		t.Fatalf("the newcomer saw create_player for %v", got)
	}
	for _, cl := range []*wsconn.Client{ca, cb} {
		m := expect(t, cl, "create_player")
		if m.str("uuid") != d.UUID || m.str("username") != d.Username || m.num("score") != float64(d.Rating) || m.num("hp") != StartHP ||
			m.num("x") != dx || m.num("y") != dy {
			t.Fatalf("create_player for the newcomer: %v (at %v,%v)", m, dx, dy)
		}
	}

	// The newcomer plays: it knocks out a, then b, and wins.
	for _, target := range []string{a.UUID, b.UUID} {
		for range 2 {
			sendf(t, cd, `{"type":"event","event":"attack","target":%q,"ball_uuid":"b1","x":1,"y":2,"angle":0.5}`, target)
			expect(t, cd, "hp")
		}
		expect(t, cd, "out")
	}
	res := readResult(t, cd)
	if res.Winner != d.UUID || res.Reason != ReasonLastStanding || len(res.Players) != 4 {
		t.Fatalf("result %+v", res)
	}
	for _, p := range res.Players {
		if p.UUID == d.UUID && (p.Place != 1 || p.NewScore <= p.OldScore) {
			t.Fatalf("the newcomer's line %+v", p)
		}
	}
	waitfor.Cond(t, "the newcomer's rating stored", func() bool {
		rating, games, wins, ok := e.se.Rating(d.UUID)
		return ok && games == 1 && wins == 1 && rating > 1500
	})
	if slices.Contains(e.ended.asked(r.ID), 2) {
		t.Fatalf("asked %v", e.ended.asked(r.ID))
	}
}

// A member who quits asks for its seat at once; the room then refuses
// players past max-players (ROOM_FULL, nobody added) and, once over,
// every backfill (UNKNOWN_ROOM).
func TestBackfillRefusedWhenFullOrOver(t *testing.T) {
	e := newEnv(t, Config{Rules: Rules{AttackCooldown: -1, AttackDamage: 100, MaxPlayers: 3}})
	r := e.newRoom(1500, 1500, 1500)
	ca, cb, cc := e.join(r, 0), e.join(r, 1), e.join(r, 2)
	if _, err := e.backfill(r, 1); !errors.Is(err, sdk.ErrRoomFull) {
		t.Fatalf("a fourth player in a fight of at most 3: %v", err)
	}
	send(t, cc, `{"type":"leave"}`)
	waitfor.Cond(t, "the quitter's seat asked for", func() bool { return slices.Equal(e.ended.asked(r.ID), []int{1}) })
	if _, err := e.backfill(r, 2); !errors.Is(err, sdk.ErrRoomFull) {
		t.Fatalf("two players for one seat: %v", err)
	}
	r, err := e.backfill(r, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.backfill(r, 1); !errors.Is(err, sdk.ErrRoomFull) {
		t.Fatalf("a player past max-players: %v", err)
	}
	// Nobody refused became a member: the room still holds 4 (c left).
	cd := e.dial(e.ticket(r, 3))
	if st := expect(t, cd, "state"); len(st["players"].([]any)) != 4 {
		t.Fatalf("state after refusals %v", st)
	}
	// a knocks out b and the newcomer: the room is over.
	for _, target := range []string{r.Players[1].UUID, r.Players[3].UUID} {
		sendf(t, ca, `{"type":"event","event":"attack","target":%q,"ball_uuid":"b1","x":1,"y":2,"angle":0.5}`, target)
		expect(t, ca, "out")
	}
	if res := readResult(t, ca); res.Winner != r.Players[0].UUID || len(res.Players) != 4 {
		t.Fatalf("result %+v", res)
	}
	expect(t, cb, "result")
	if _, err := e.backfill(r, 1); !errors.Is(err, sdk.ErrUnknownRoom) {
		t.Fatalf("backfill into a room that is over: %v", err)
	}
}

// A fight whose members alive have all dropped (it was played; they are
// away within their grace) refuses newcomers: they would find nobody to
// fight in a room that is likely to end. Once one is back it takes them.
func TestBackfillRefusedWhileNobodyPlays(t *testing.T) {
	e := newEnv(t, Config{})
	r := e.newRoom(1500, 1500, 1500)
	ca, cb, cc := e.join(r, 0), e.join(r, 1), e.join(r, 2)
	send(t, cc, `{"type":"leave"}`)
	waitfor.Cond(t, "the quitter's seat asked for", func() bool { return slices.Equal(e.ended.asked(r.ID), []int{1}) })
	ca.Close(wsconn.CloseNormal, "")
	cb.Close(wsconn.CloseNormal, "")
	// The drops are in the room's mailbox once the server counts no
	// connection, so the backfill, posted after them, finds both away.
	waitfor.Cond(t, "no connection left", func() bool { return e.srv.Status().Connections == 0 })
	if _, err := e.backfill(r, 1); !errors.Is(err, sdk.ErrRoomFull) {
		t.Fatalf("a backfill while nobody plays: %v", err)
	}
	e.join(r, 0)
	if _, err := e.backfill(r, 1); err != nil {
		t.Fatalf("a backfill once a player is back: %v", err)
	}
}
