package fightserver

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/records"
	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/internal/wsconn"
	"github.com/arena-game/arena/playerdb"
	"github.com/arena-game/arena/sdk"
)

// attackUntilOut has attacker hit target until target is out, checking the
// hp it sees fall by the server's damage each time.
func attackUntilOut(t *testing.T, attacker *wsconn.Client, target string) {
	t.Helper()
	hp := float64(StartHP)
	for hp > 0 {
		sendf(t, attacker, `{"type":"event","event":"attack","target":%q,"ball_uuid":"b1","x":1,"y":2,"angle":0.5,"damage":1000}`, target)
		m := expect(t, attacker, "hp")
		if m.str("uuid") != target || m.num("hp") != hp-DefaultAttackDamage {
			t.Fatalf("hp message %v, want %s at %v", m, target, hp-DefaultAttackDamage)
		}
		hp = m.num("hp")
	}
	if m := expect(t, attacker, "out"); m.str("uuid") != target || m.str("reason") != "killed" {
		t.Fatalf("out message %v", m)
	}
}

// countCreatePlayers reads until n create_player messages arrived and
// returns the uuids they named.
func countCreatePlayers(t *testing.T, cl *wsconn.Client, n int) []string {
	t.Helper()
	var got []string
	for len(got) < n {
		got = append(got, expect(t, cl, "create_player").str("uuid"))
	}
	return got
}

func TestFullRoom(t *testing.T) {
	e := newEnv(t, Config{Rules: Rules{AttackCooldown: -1}})
	ctx := context.Background()
	r := e.newRoom(1500, 1520, 1540)
	a, b, c := r.Players[0], r.Players[1], r.Players[2]
	// The dispatcher wrote the room record; c has a stored rating already.
	if err := records.PutRoom(ctx, e.st, records.Room{ID: r.ID, State: records.RoomAssigned, Players: []records.RoomPlayer{{UUID: a.UUID, HP: 100}, {UUID: b.UUID, HP: 100}, {UUID: c.UUID, HP: 100}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := records.UpdatePlayer(ctx, e.st, c.UUID, func(p *records.Player) { p.Rating, p.Games = 1540, 3 }); err != nil {
		t.Fatal(err)
	}

	ca := e.join(r, 0)
	cb := e.join(r, 1)
	cc := e.join(r, 2)
	want := []string{a.UUID, b.UUID, c.UUID}
	for i, cl := range []*wsconn.Client{ca, cb, cc} {
		got := countCreatePlayers(t, cl, 3)
		slices.Sort(got)
		w := slices.Clone(want)
		slices.Sort(w)
		if !slices.Equal(got, w) {
			t.Fatalf("player %d saw create_player for %v, want %v", i, got, w)
		}
	}
	waitfor.Cond(t, "room record playing", func() bool {
		rr, _, err := records.GetRoom(ctx, e.st, r.ID)
		return err == nil && rr.State == records.RoomPlaying
	})

	attackUntilOut(t, ca, b.UUID)
	// b sees the relayed attacks with a's uuid, and its own hp fall.
	ev := expect(t, cb, "event")
	if ev.str("uuid") != a.UUID || ev.str("event") != "attack" || ev.str("target") != b.UUID || ev["damage"] != nil {
		t.Fatalf("relayed attack %v", ev)
	}
	// An out player may not act, but may still talk.
	send(t, cb, `{"type":"event","event":"move_to","tx":1,"ty":1}`)
	expectError(t, cb, CodePlayerOut)
	send(t, cb, `{"type":"event","event":"message","text":"gg"}`)
	if m := expect(t, cc, "event"); m.str("event") != "attack" {
		t.Fatalf("c got %v", m)
	}

	attackUntilOut(t, ca, c.UUID)
	var results []Result
	for _, cl := range []*wsconn.Client{ca, cb, cc} {
		var res Result
		ctx, cancel := context.WithTimeout(ctx, wait)
		if err := cl.RecvType(ctx, "result", &res); err != nil {
			t.Fatal(err)
		}
		cancel()
		results = append(results, res)
		expectClosed(t, cl, wsconn.CloseNormal)
	}
	res := results[0]
	if res.Room != r.ID || res.Winner != a.UUID || res.Reason != ReasonLastStanding || len(res.Players) != 3 {
		t.Fatalf("result %+v", res)
	}
	// Placement: a won, c went out last, b first.
	olds := []int{1500, 1540, 1520}
	deltas := playerdb.EloDeltas(olds, []int{0, 1, 2}, playerdb.EloK)
	for i, u := range []string{a.UUID, c.UUID, b.UUID} {
		p := res.Players[i]
		if p.UUID != u || p.Place != i+1 || p.OldScore != olds[i] || p.NewScore != olds[i]+deltas[i] {
			t.Fatalf("result player %d: %+v, want %s place %d %d->%d", i, p, u, i+1, olds[i], olds[i]+deltas[i])
		}
		rec, _, err := records.GetPlayer(ctx, e.st, u)
		if err != nil || rec.Rating != p.NewScore {
			t.Fatalf("stored rating of %s: %+v %v, want %d", u, rec, err, p.NewScore)
		}
	}
	if deltas[0] <= 0 || deltas[2] >= 0 || deltas[1] >= deltas[0] || deltas[2] >= deltas[1] {
		t.Fatalf("deltas %v are not ordered by placement", deltas)
	}
	if rec, _, _ := records.GetPlayer(ctx, e.st, a.UUID); rec.Wins != 1 || rec.Games != 1 || rec.Username != a.Username {
		t.Fatalf("winner record %+v", rec)
	}
	if rec, _, _ := records.GetPlayer(ctx, e.st, c.UUID); rec.Games != 4 || rec.Wins != 0 {
		t.Fatalf("c record %+v", rec)
	}
	rr, _, err := records.GetRoom(ctx, e.st, r.ID)
	if err != nil || rr.State != records.RoomEnded || rr.Winner != a.UUID || rr.Reason != ReasonLastStanding {
		t.Fatalf("room record %+v %v", rr, err)
	}
	waitfor.Cond(t, "the room's end told to the host", func() bool { return slices.Equal(e.ended.got(), []string{r.ID}) })
	if st := e.srv.Status(); st.Load != 0 {
		t.Fatalf("load after the room ended: %+v", st)
	}
	// Late joiners hear the room is over.
	cl := e.dial(e.ticket(r, 0))
	expectError(t, cl, CodeRoomOver)
	expectClosed(t, cl, wsconn.ClosePolicy)
}

func TestSpoofedFieldsAreStripped(t *testing.T) {
	e := newEnv(t, Config{Rules: Rules{AttackCooldown: -1}})
	r := e.newRoom(1500, 1500)
	ca, cb := e.join(r, 0), e.join(r, 1)
	// Another player's uuid, damage, hp and unknown fields are not relayed.
	sendf(t, ca, `{"type":"event","event":"move_to","tx":1.5,"ty":2,"uuid":%q,"damage":99,"hp":0,"extra":{"a":[1]},"ts":42}`, r.Players[1].UUID)
	for {
		m, raw := recv(t, cb)
		if m.str("type") != "event" {
			continue
		}
		want := `{"type":"event","event":"move_to","uuid":"` + r.Players[0].UUID + `","tx":1.5,"ty":2,"ts":42}`
		if string(raw) != want {
			t.Fatalf("relayed %s, want %s", raw, want)
		}
		break
	}
	// A client's damage is ignored: the server's is applied.
	sendf(t, ca, `{"type":"event","event":"attack","target":%q,"ball_uuid":"x","x":0,"y":0,"angle":0,"damage":100}`, r.Players[1].UUID)
	if m := expect(t, cb, "hp"); m.num("hp") != StartHP-DefaultAttackDamage || m.str("by") != r.Players[0].UUID {
		t.Fatalf("hp %v", m)
	}
	// Message events carry the sender's name from its ticket.
	send(t, ca, `{"type":"event","event":"message","text":"hi <b>","username":"admin"}`)
	if m := expect(t, cb, "event"); m.str("event") != "message" || m.str("username") != r.Players[0].Username || m.str("text") != "hi <b>" {
		t.Fatalf("message %v", m)
	}
}

func TestAttackRules(t *testing.T) {
	e := newEnv(t, Config{Rules: Rules{AttackCooldown: time.Hour}})
	r := e.newRoom(1500, 1500, 1500)
	ca, cb := e.join(r, 0), e.join(r, 1)
	att := func(target string) {
		sendf(t, ca, `{"type":"event","event":"attack","target":%q,"ball_uuid":"b","x":0,"y":0,"angle":0}`, target)
	}
	att("00000000-0000-4000-8000-000000000000") // not a member
	expectError(t, ca, CodeBadTarget)
	att(r.Players[0].UUID) // oneself
	expectError(t, ca, CodeBadTarget)
	att(r.Players[2].UUID) // has not joined
	expectError(t, ca, CodeBadTarget)
	att(r.Players[1].UUID)
	if m := expect(t, ca, "hp"); m.num("hp") != 80 {
		t.Fatalf("hp %v", m)
	}
	att(r.Players[1].UUID) // within the cooldown
	expectError(t, ca, CodeCooldown)
	if m := expect(t, cb, "hp"); m.num("hp") != 80 {
		t.Fatalf("b saw %v", m)
	}
	expectOpen(t, ca)
}

func TestRejoinGetsState(t *testing.T) {
	e := newEnv(t, Config{Rules: Rules{AttackCooldown: -1}})
	r := e.newRoom(1500, 1500, 1500)
	ca, cb, cc := e.join(r, 0), e.join(r, 1), e.join(r, 2)
	for _, cl := range []*wsconn.Client{ca, cb, cc} {
		countCreatePlayers(t, cl, 3)
	}
	send(t, ca, `{"type":"event","event":"move_to","tx":5,"ty":6}`)
	sendf(t, ca, `{"type":"event","event":"attack","target":%q,"ball_uuid":"b","x":0,"y":0,"angle":0}`, r.Players[1].UUID)
	expect(t, cb, "hp")
	cb.Close(wsconn.CloseNormal, "")
	for _, cl := range []*wsconn.Client{ca, cc} {
		if m := expect(t, cl, "player_away"); m.str("uuid") != r.Players[1].UUID || m.num("grace_ms") != 30000 {
			t.Fatalf("away %v", m)
		}
	}
	cb2 := e.dial(e.ticket(r, 1))
	st := expect(t, cb2, "state")
	if st["rejoin"] != true || st.str("you") != r.Players[1].UUID {
		t.Fatalf("state %v", st)
	}
	players := st["players"].([]any)
	pa, pb := msg(players[0].(map[string]any)), msg(players[1].(map[string]any))
	if pa.num("tx") != 5 || pa.num("ty") != 6 || pb.num("hp") != 80 || pb.str("status") != "playing" || pa.num("hp") != 100 {
		t.Fatalf("state players %v", players)
	}
	countCreatePlayers(t, cb2, 3)
	for _, cl := range []*wsconn.Client{ca, cc} {
		if m := expect(t, cl, "player_back"); m.str("uuid") != r.Players[1].UUID {
			t.Fatalf("back %v", m)
		}
	}
	// The rejoined player plays on.
	send(t, cb2, `{"type":"event","event":"blink","tx":600,"ty":400}`)
	if m := expect(t, ca, "event"); m.str("uuid") != r.Players[1].UUID || m.str("event") != "blink" {
		t.Fatalf("relayed %v", m)
	}
}

func TestSecondConnectionReplacesFirst(t *testing.T) {
	e := newEnv(t, Config{})
	r := e.newRoom(1500, 1500)
	ca, cb := e.join(r, 0), e.join(r, 1)
	cb2 := e.dial(e.ticket(r, 1))
	expectError(t, cb, CodeReplaced)
	expectClosed(t, cb, wsconn.ClosePolicy)
	if st := expect(t, cb2, "state"); st["rejoin"] != true {
		t.Fatalf("state %v", st)
	}
	send(t, cb2, `{"type":"event","event":"move_to","tx":1,"ty":1}`)
	for {
		m, raw := recv(t, ca)
		if m.str("type") == "player_away" || m.str("type") == "player_back" {
			t.Fatalf("a replaced connection is not an absence: %s", raw)
		}
		if m.str("type") == "event" {
			if m.str("uuid") != r.Players[1].UUID {
				t.Fatalf("relayed %v", m)
			}
			break
		}
	}
}

func TestRejoinGraceExpires(t *testing.T) {
	// Long enough for both joins on a loaded machine: a member still
	// pending when the grace passes is gone before it connects.
	e := newEnv(t, Config{Config: sdk.Config{RejoinGrace: time.Second}})
	r := e.newRoom(1500, 1500)
	ca, cb := e.join(r, 0), e.join(r, 1)
	cb.Close(wsconn.CloseNormal, "")
	expect(t, ca, "player_away")
	if m := expect(t, ca, "out"); m.str("uuid") != r.Players[1].UUID || m.str("reason") != "left" {
		t.Fatalf("out %v", m)
	}
	var res Result
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := ca.RecvType(ctx, "result", &res); err != nil {
		t.Fatal(err)
	}
	if res.Winner != r.Players[0].UUID || res.Reason != ReasonLastStanding || res.Players[0].NewScore != 1516 || res.Players[1].NewScore != 1484 {
		t.Fatalf("result %+v", res)
	}
	// Too late to come back.
	cl := e.dial(e.ticket(r, 1))
	expectError(t, cl, CodeRoomOver)
}

func TestLeave(t *testing.T) {
	e := newEnv(t, Config{})
	r := e.newRoom(1500, 1500, 1500)
	ca, cb, cc := e.join(r, 0), e.join(r, 1), e.join(r, 2)
	send(t, cb, `{"type":"leave"}`)
	expectClosed(t, cb, wsconn.CloseNormal)
	if m := expect(t, ca, "out"); m.str("uuid") != r.Players[1].UUID || m.str("reason") != "left" {
		t.Fatalf("out %v", m)
	}
	// A member who left cannot come back.
	cl := e.dial(e.ticket(r, 1))
	expectError(t, cl, CodeLeftRoom)
	expectClosed(t, cl, wsconn.ClosePolicy)
	send(t, cc, `{"type":"leave"}`)
	m := expect(t, ca, "result")
	if m.str("winner") != r.Players[0].UUID || m.str("reason") != ReasonLastStanding {
		t.Fatalf("result %v", m)
	}
}

func TestRoomTimeout(t *testing.T) {
	// Long enough for three joins and the attack on a loaded machine: the
	// result's order depends on the hit.
	e := newEnv(t, Config{Config: sdk.Config{RoomTimeout: 2 * time.Second}})
	r := e.newRoom(1500, 1500, 1500)
	ca, cb, cc := e.join(r, 0), e.join(r, 1), e.join(r, 2)
	sendf(t, ca, `{"type":"event","event":"attack","target":%q,"ball_uuid":"b","x":0,"y":0,"angle":0}`, r.Players[1].UUID)
	expect(t, cb, "hp")
	var res Result
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := cc.RecvType(ctx, "result", &res); err != nil {
		t.Fatal(err)
	}
	// a and c tie on hp at the top: no winner; b (80 hp) placed last.
	if res.Reason != ReasonTimeout || res.Winner != "" || res.Players[2].UUID != r.Players[1].UUID || res.Players[0].Place != 1 || res.Players[1].Place != 1 || res.Players[2].Place != 3 {
		t.Fatalf("result %+v", res)
	}
	if res.Players[0].NewScore != 1508 || res.Players[2].NewScore != 1484 {
		t.Fatalf("ratings %+v", res.Players)
	}
	expectClosed(t, ca, wsconn.CloseNormal)
}

func TestNoShow(t *testing.T) {
	e := newEnv(t, Config{Config: sdk.Config{RejoinGrace: 100 * time.Millisecond}})
	r := e.newRoom(1500, 1600)
	waitfor.Cond(t, "the room to end", func() bool { return len(e.ended.got()) == 1 })
	rr, _, err := records.GetRoom(context.Background(), e.st, r.ID)
	if err != nil || rr.Reason != ReasonNoShow || rr.State != records.RoomEnded {
		t.Fatalf("room record %+v %v", rr, err)
	}
	if _, _, err := records.GetPlayer(context.Background(), e.st, r.Players[0].UUID); !isNotFound(err) {
		t.Fatalf("a no-show room touched ratings: %v", err)
	}
}

func TestAssignRoomErrors(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	r := e.newRoom()
	if _, err := e.srv.AssignRoom(ctx, r); !errorsIs(err, sdk.ErrRoomExists) {
		t.Fatalf("assign twice: %v", err)
	}
	two := []sdk.PlayerSpec{{UUID: "a"}, {UUID: "b"}}
	for name, bad := range map[string]sdk.RoomSpec{
		"bad id":     {ID: "no spaces", Players: two},
		"empty id":   {ID: "", Players: two},
		"one player": {ID: "r1", Players: two[:1]},
		"repeated":   {ID: "r2", Players: []sdk.PlayerSpec{{UUID: "a"}, {UUID: "a"}}},
		"bad uuid":   {ID: "r3", Players: []sdk.PlayerSpec{{UUID: "a"}, {UUID: `"}`}}},
		"expired":    {ID: "r4", Players: two, Expires: time.Now().Add(-time.Minute)},
		"too many":   {ID: "r5", Players: make([]sdk.PlayerSpec, MaxPlayers+1)},
	} {
		if _, err := e.srv.AssignRoom(ctx, bad); !errorsIs(err, sdk.ErrBadRoom) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if load, err := e.srv.AssignRoom(ctx, sdk.RoomSpec{ID: "second", Players: two}); err != nil || load != 2 {
		t.Fatalf("a second room: %d %v", load, err)
	}
	if n := e.srv.Drain(ctx, time.Now().Add(50*time.Millisecond)); n != 2 {
		t.Fatalf("drain left %d rooms, want 2", n)
	}
	if _, err := e.srv.AssignRoom(ctx, sdk.RoomSpec{ID: "late", Players: two}); !errorsIs(err, sdk.ErrDraining) {
		t.Fatalf("assign while draining: %v", err)
	}
	if st := e.srv.Status(); !st.Draining || st.Load != 2 {
		t.Fatalf("status %+v", st)
	}
}

func TestDrainWaitsForRooms(t *testing.T) {
	e := newEnv(t, Config{})
	r := e.newRoom(1500, 1500)
	ca, cb := e.join(r, 0), e.join(r, 1)
	done := make(chan int)
	go func() {
		n := e.srv.Drain(context.Background(), time.Now().Add(wait))
		done <- n
	}()
	send(t, cb, `{"type":"leave"}`)
	expect(t, ca, "result")
	if n := <-done; n != 0 {
		t.Fatalf("drain returned %d rooms left", n)
	}
}

func TestShutdownTellsPlayers(t *testing.T) {
	e := newEnv(t, Config{})
	r := e.newRoom(1500, 1500)
	ca := e.join(r, 0)
	_ = e.srv.Close()
	m := expectError(t, ca, CodeServerShutdown)
	if !contains(m.str("message"), r.ID) {
		t.Fatalf("shutdown message does not name the room: %v", m)
	}
	rr, _, err := records.GetRoom(context.Background(), e.st, r.ID)
	if err != nil || rr.State != records.RoomFailed || rr.Reason != ReasonShutdown {
		t.Fatalf("room record %+v %v", rr, err)
	}
}
