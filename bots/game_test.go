package bots

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/waitfor"
)

func state(you string, players ...string) []byte {
	type p struct {
		UUID   string `json:"uuid"`
		HP     int    `json:"hp"`
		Status string `json:"status"`
	}
	var ps []p
	for _, id := range players {
		st := "playing"
		if strings.HasSuffix(id, "-pending") {
			st = "pending"
		}
		ps = append(ps, p{id, 100, st})
	}
	b, _ := json.Marshal(map[string]any{"type": "state", "room": "r1", "you": you, "attack_cooldown_ms": 400, "players": ps})
	return b
}

func newTestGame() *game {
	return newGame("me", rand.New(rand.NewPCG(1, 2)), 100*time.Millisecond, 200*time.Millisecond)
}

func TestSpawnIsTheClientsSharedLayout(t *testing.T) {
	// The play page (web/static/js/fight.js, spawn) uses the same formula.
	for _, c := range []struct {
		i, n int
		x, y float64
	}{{0, 3, 400, 120}, {1, 3, 591, 390}, {2, 3, 209, 390}, {0, 1, 400, 120}, {0, 0, 400, 120}} {
		if x, y := Spawn(c.i, c.n); x != c.x || y != c.y {
			t.Errorf("Spawn(%d,%d) = %v,%v want %v,%v", c.i, c.n, x, y, c.x, c.y)
		}
	}
}

func TestGameAttacksOnlyLivingJoinedOpponents(t *testing.T) {
	g := newTestGame()
	now := time.Now()
	if _, err := g.apply(state("me", "a", "me", "b-pending"), now); err != nil {
		t.Fatal(err)
	}
	if g.cooldown != 400*time.Millisecond || g.players["me"].tx != 591 {
		t.Fatalf("state not applied: %+v %+v", g, g.players["me"])
	}
	attacks := map[string]int{}
	var last time.Time
	for i := 0; i < 200; i++ {
		now = now.Add(50 * time.Millisecond)
		for _, m := range g.act(now) {
			var ev struct {
				Event, Target string
				Angle         float64
			}
			_ = json.Unmarshal(m, &ev)
			if ev.Event == "attack" {
				if !last.IsZero() && now.Sub(last) < 450*time.Millisecond {
					t.Fatalf("attacked %v after the last: faster than the cooldown", now.Sub(last))
				}
				last = now
				attacks[ev.Target]++
			}
		}
	}
	if attacks["a"] == 0 || attacks["me"] != 0 || attacks["b-pending"] != 0 {
		t.Fatalf("attacks = %v: only the joined opponent a", attacks)
	}
	// b joins; a is out: b becomes the target.
	g.apply([]byte(`{"type":"create_player","uuid":"b-pending","username":"b"}`), now)
	g.apply([]byte(`{"type":"hp","uuid":"a","hp":0,"by":"me","damage":20}`), now)
	g.apply([]byte(`{"type":"out","uuid":"a","reason":"killed"}`), now)
	clear(attacks)
	for i := 0; i < 100; i++ {
		now = now.Add(50 * time.Millisecond)
		for _, m := range g.act(now) {
			if strings.Contains(string(m), `"attack"`) {
				var ev struct{ Target string }
				_ = json.Unmarshal(m, &ev)
				attacks[ev.Target]++
			}
		}
	}
	if attacks["a"] != 0 || attacks["b-pending"] == 0 {
		t.Fatalf("attacks = %v: never an out player", attacks)
	}
}

// A player backfilled into the running fight (a create_player after the
// start, for a member the bot did not know) stands where the server says,
// with its hp, and is fought like the others.
func TestGameBackfilledPlayerJoinsMidFight(t *testing.T) {
	g := newTestGame()
	now := time.Now()
	g.apply(state("me", "me", "a", "gone"), now)
	g.apply([]byte(`{"type":"out","uuid":"gone","reason":"left"}`), now)
	g.apply([]byte(`{"type":"create_player","uuid":"new","username":"new","photo":"","hp":100,"x":612,"y":181}`), now)
	f := g.players["new"]
	if f == nil || !f.joined || f.out || f.hp != 100 {
		t.Fatalf("the newcomer %+v", f)
	}
	if x, y := f.pos(now, g.speed); x != 612 || y != 181 {
		t.Fatalf("the newcomer at %v,%v, want 612,181", x, y)
	}
	g.apply([]byte(`{"type":"out","uuid":"a","reason":"killed","by":"me"}`), now)
	attacked := false
	for range 100 {
		now = now.Add(50 * time.Millisecond)
		for _, m := range g.act(now) {
			var ev struct{ Event, Target string }
			_ = json.Unmarshal(m, &ev)
			if ev.Event == "attack" {
				if ev.Target != "new" {
					t.Fatalf("attacked %s", ev.Target)
				}
				attacked = true
			}
		}
	}
	if !attacked {
		t.Fatal("the bot never attacked the newcomer")
	}
}

func TestGameMovesStayInTheArena(t *testing.T) {
	g := newTestGame()
	now := time.Now()
	g.apply(state("me", "me", "a"), now)
	g.apply([]byte(`{"type":"event","event":"move_to","uuid":"a","tx":5,"ty":5}`), now)
	moves := 0
	for i := 0; i < 400; i++ {
		now = now.Add(50 * time.Millisecond)
		for _, m := range g.act(now) {
			var ev struct {
				Event  string
				TX, TY float64
			}
			_ = json.Unmarshal(m, &ev)
			if ev.Event == "move_to" {
				moves++
				if ev.TX < margin || ev.TX > ArenaW-margin || ev.TY < margin || ev.TY > ArenaH-margin {
					t.Fatalf("move to %v,%v leaves the arena", ev.TX, ev.TY)
				}
			}
		}
	}
	if moves == 0 {
		t.Fatal("the bot never moved")
	}
}

func TestGameOutPlayerDoesNotAct(t *testing.T) {
	g := newTestGame()
	now := time.Now()
	g.apply(state("me", "me", "a"), now)
	g.apply([]byte(`{"type":"out","uuid":"me","reason":"killed","by":"a"}`), now)
	for i := 0; i < 50; i++ {
		now = now.Add(100 * time.Millisecond)
		if msgs := g.act(now); len(msgs) != 0 {
			t.Fatalf("an out bot sent %s", msgs[0])
		}
	}
}

func TestGameResult(t *testing.T) {
	g := newTestGame()
	g.apply(state("me", "me", "a"), time.Now())
	out, err := g.apply([]byte(`{"type":"result","room":"r1","winner":"me","reason":"last_standing",
		"players":[{"uuid":"me","old_score":1500,"new_score":1516},{"uuid":"a","old_score":1500,"new_score":1484}]}`), time.Now())
	if err != nil || out == nil || !out.Won || out.NewScore != 1516 || out.Room != "r1" {
		t.Fatalf("outcome = %+v, %v", out, err)
	}
	out, _ = g.apply([]byte(`{"type":"result","winner":"","reason":"abandoned","players":[]}`), time.Now())
	if out == nil || out.Won {
		t.Fatalf("no winner: %+v", out)
	}
}

func TestGameRefusals(t *testing.T) {
	for _, code := range []string{"bad_ticket", "expired_ticket", "room_over", "server_shutdown", "rate_limited"} {
		g := newTestGame()
		_, err := g.apply([]byte(`{"type":"error","code":"`+code+`","message":"no"}`), time.Now())
		if !errors.Is(err, errFightClosed) {
			t.Errorf("%s: err = %v", code, err)
		}
	}
	for _, code := range []string{"cooldown", "bad_target", "player_out", "bad_event"} {
		g := newTestGame()
		if out, err := g.apply([]byte(`{"type":"error","code":"`+code+`"}`), time.Now()); err != nil || out != nil {
			t.Errorf("%s: %v %v: a bot shrugs off a refused action", code, out, err)
		}
	}
}

func TestTokenExpiry(t *testing.T) {
	exp := tokenExpiry("eyJrIjoicGxheWVyIiwic3ViIjoieCIsImV4cCI6MTcwMDAwMDAwMH0.c2ln")
	if exp.Unix() != 1700000000 {
		t.Errorf("expiry = %v", exp)
	}
	for _, bad := range []string{"", "x", "!!!.x", "e30.x", "bnVsbA.x"} {
		if !tokenExpiry(bad).IsZero() {
			t.Errorf("tokenExpiry(%q) not zero", bad)
		}
	}
}

// FuzzGameApply feeds arbitrary server messages to a bot's game: it must
// never panic, whatever a (broken or hostile) fight server sends.
func FuzzGameApply(f *testing.F) {
	for _, s := range []string{
		string(state("me", "me", "a", "b")),
		`{"type":"create_player","uuid":"c","username":"c"}`,
		`{"type":"create_player","uuid":"c","hp":-3,"x":1e308,"y":-1e308}`,
		`{"type":"event","event":"move_to","uuid":"a","tx":1e308,"ty":-1e308}`,
		`{"type":"hp","uuid":"a","hp":-5}`,
		`{"type":"hp","uuid":"a"}`,
		`{"type":"out","uuid":"zz"}`,
		`{"type":"result","winner":"me","players":[{"uuid":"me"}]}`,
		`{"type":"state","players":[{"uuid":""},{"uuid":"me","x":null}],"attack_cooldown_ms":-9}`,
		`{"type":"error","code":"room_over"}`,
		`[1,2]`, `null`, `{"type":7}`, "\x00\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		g := newTestGame()
		now := time.Now()
		g.apply(state("me", "me", "a"), now)
		g.apply(b, now)
		g.apply(b, now)
		for i := 0; i < 3; i++ {
			now = now.Add(time.Second)
			for _, m := range g.act(now) {
				if !json.Valid(m) {
					t.Fatalf("invalid message %q", m)
				}
			}
		}
		if len(g.players) > 70 {
			t.Fatalf("%d players from one message", len(g.players))
		}
	})
}

func TestGameBotOnlyRoomsEndQuickly(t *testing.T) {
	count := func(opponentIsBot bool) int {
		g := newGame("me", rand.New(rand.NewPCG(3, 4)), 1200*time.Millisecond, 2600*time.Millisecond)
		if opponentIsBot {
			g.bots["a"] = true
		}
		now := time.Now()
		g.apply(state("me", "me", "a"), now)
		n := 0
		for i := 0; i < 100; i++ { // 5 s
			now = now.Add(50 * time.Millisecond)
			for _, m := range g.act(now) {
				if strings.Contains(string(m), `"attack"`) {
					n++
				}
			}
		}
		return n
	}
	human, bot := count(false), count(true)
	if human > 4 {
		t.Errorf("%d attacks in 5 s on a person: a person must be able to win", human)
	}
	if bot < 7 {
		t.Errorf("%d attacks in 5 s on a bot: bot-only rooms should end fast", bot)
	}
}

// fakeRoomConn is a fight socket the test drives message by message; its
// sends fail once failSends is set, as wsconn's do on a closed connection.
type fakeRoomConn struct {
	in        chan []byte
	closed    chan struct{}
	failSends bool
}

func (c *fakeRoomConn) send([]byte) error {
	if c.failSends {
		return errors.New("wsconn: connection closed")
	}
	return nil
}
func (c *fakeRoomConn) messages() <-chan []byte { return c.in }
func (c *fakeRoomConn) done() <-chan struct{}   { return c.closed }
func (c *fakeRoomConn) closeErr() error         { return errors.New("closed by the server") }

// TestPlayRoomSendOnClosedSocketKeepsTheResult: the fight server sends the
// result and closes while the bot is acting; the bot's send fails before it
// read the result. The room ends with that result, not a failure (CI saw
// "send: wsconn: connection closed" counted as one).
func TestPlayRoomSendOnClosedSocketKeepsTheResult(t *testing.T) {
	c := &fakeRoomConn{in: make(chan []byte, 1), closed: make(chan struct{}), failSends: true}
	think := make(chan time.Time)
	type ended struct {
		out *Outcome
		err error
	}
	done := make(chan ended, 1)
	go func() {
		out, err := playRoom(context.Background(), c, newTestGame(), "r1", think)
		done <- ended{out, err}
	}()
	c.in <- state("me", "me", "a")
	// A think tick far ahead: the bot moves or attacks, and its send fails.
	think <- time.Now().Add(time.Minute)
	c.in <- []byte(`{"type":"result","room":"r1","winner":"a","reason":"last_standing","players":[{"uuid":"me","old_score":1500,"new_score":1484}]}`)
	close(c.closed)
	select {
	case e := <-done:
		if e.err != nil || e.out == nil || e.out.NewScore != 1484 {
			t.Fatalf("playRoom = %+v, %v; want the result sent before the close", e.out, e.err)
		}
	case <-time.After(waitfor.Deadline()):
		t.Fatal("playRoom did not return after the socket closed")
	}
}

// TestPlayRoomClosedWithoutResultIsLost: a socket that closes with nothing
// buffered is a lost room (the dispatcher may place it again).
func TestPlayRoomClosedWithoutResultIsLost(t *testing.T) {
	c := &fakeRoomConn{in: make(chan []byte, 1), closed: make(chan struct{})}
	close(c.closed)
	_, err := playRoom(context.Background(), c, newTestGame(), "r1", nil)
	if !errors.Is(err, errRoomLost) {
		t.Fatalf("playRoom = %v, want errRoomLost", err)
	}
}
