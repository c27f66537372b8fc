package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/records"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/internal/wsconn"
)

// api calls the dispatcher's HTTP API with a bearer token and decodes the
// JSON answer into out (if not nil). It returns the status code.
func api(t *testing.T, a *Arena, method, path, bearer string, body, out any) int {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, "http://"+a.HTTP+path, rd)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

type matchMsg struct {
	Type    string `json:"type"`
	Room    string `json:"room"`
	Fight   string `json:"fight"`
	Ticket  string `json:"ticket"`
	Players []struct {
		UUID     string `json:"uuid"`
		Username string `json:"username"`
		Score    int    `json:"score"`
	} `json:"players"`
}

func (a *Arena) store(t *testing.T) store.Store {
	mc, err := store.NewMemcache(store.MemcacheConfig{Addrs: store.ParseAddrs(a.Memcache)})
	if err != nil {
		t.Fatal(err)
	}
	return store.Prefixed(mc, a.Prefix)
}

// TestMatchDoneWhen is issue 3's acceptance test.
func TestMatchDoneWhen(t *testing.T) {
	// Attacks reach across the arena and have no cooldown: this test is
	// about matching and ratings (range and cooldown have their own tests
	// in fightserver), and the attacker waits for each hit's hp message
	// instead of for the clock.
	a := startArena(t, "dispatcher", "--tick", "200ms", "--maxnum", "10",
		"--fight-option", "attack-range=100000", "--fight-option", "attack-cooldown=0")
	ctx := ctxT(t, 40*time.Second)
	type player struct {
		uuid  string
		score int
		play  *wsconn.Client
		fight *wsconn.Client
		match matchMsg
	}
	suffix := time.Now().UnixNano() % 1e6
	players := []*player{
		{uuid: fmt.Sprintf("p1500-%d", suffix), score: 1500},
		{uuid: fmt.Sprintf("p1520-%d", suffix), score: 1520},
		{uuid: fmt.Sprintf("p1540-%d", suffix), score: 1540},
		{uuid: fmt.Sprintf("p2900-%d", suffix), score: 2900},
	}
	for _, p := range players {
		var tok struct{ Token string }
		if code := api(t, a, "POST", "/v1/tokens", a.Backend, map[string]string{"uuid": p.uuid, "username": "u" + p.uuid[:5]}, &tok); code != 200 {
			t.Fatalf("mint token: %d", code)
		}
		cl, err := wsconn.DialClient(ctx, "ws://"+a.HTTP+"/v1/play?token="+tok.Token, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close(wsconn.CloseNormal, "") })
		if err := cl.RecvType(ctx, "welcome", nil); err != nil {
			t.Fatal(err)
		}
		p.play = cl
	}
	// All four at the same moment.
	for _, p := range players {
		req := map[string]any{"score": p.score, "uuid": p.uuid, "username": "u" + p.uuid[:5], "photo": "https://example.test/" + p.uuid + ".png", "channel_name": "ch-" + p.uuid}
		if code := api(t, a, "POST", "/v1/tickets", a.Backend, req, nil); code != http.StatusAccepted {
			t.Fatalf("POST /v1/tickets for %s: %d", p.uuid, code)
		}
	}
	for _, p := range players[:3] {
		if err := p.play.RecvType(ctx, "match", &p.match); err != nil {
			t.Fatalf("%s: %v", p.uuid, err)
		}
	}
	room, fight := players[0].match.Room, players[0].match.Fight
	for _, p := range players[:3] {
		if p.match.Room != room || p.match.Fight != fight || len(p.match.Players) != 3 {
			t.Fatalf("%s got %+v; want room %s on %s with 3 players", p.uuid, p.match, room, fight)
		}
		for _, m := range p.match.Players {
			if m.UUID == players[3].uuid {
				t.Fatalf("the 2900 player was put in the room: %+v", p.match)
			}
		}
	}
	// The fourth is still queued and got no match.
	var ts struct {
		Queue struct{ State string } `json:"queue"`
	}
	if code := api(t, a, "GET", "/v1/tickets/"+players[3].uuid, a.Backend, nil, &ts); code != 200 || ts.Queue.State != "queued" {
		t.Fatalf("2900 player: %d %+v", code, ts)
	}
	// The assignment is readable for the others. It is recorded just
	// after the players are told (in batches, PROTOCOL.md): wait for it.
	var ts0 struct {
		Assignment matchMsg `json:"assignment"`
	}
	waitfor.Cond(t, "the assignment readable at GET /v1/tickets", func() bool {
		ts0.Assignment = matchMsg{}
		return api(t, a, "GET", "/v1/tickets/"+players[0].uuid, a.Backend, nil, &ts0) == 200 && ts0.Assignment.Room != ""
	})
	if ts0.Assignment.Room != room || ts0.Assignment.Fight != fight || len(ts0.Assignment.Players) != 3 {
		t.Fatalf("GET /v1/tickets assignment = %+v; want room %s on %s with 3 players", ts0.Assignment, room, fight)
	}

	// Join the fight; each sees three create_player.
	for _, p := range players[:3] {
		cl, err := wsconn.DialClient(ctx, p.match.Fight+"?ticket="+p.match.Ticket, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close(wsconn.CloseNormal, "") })
		p.fight = cl
	}
	for _, p := range players[:3] {
		seen := map[string]bool{}
		for len(seen) < 3 {
			var cp struct{ UUID string }
			if err := p.fight.RecvType(ctx, "create_player", &cp); err != nil {
				t.Fatalf("%s create_player: %v (seen %v)", p.uuid, err, seen)
			}
			seen[cp.UUID] = true
		}
	}
	// Player 0 knocks both others out (20 hp per attack), each attack
	// after the hp message of the one before.
	attacker := players[0]
	for _, victim := range players[1:3] {
		for hit := 0; hit < 5; hit++ {
			if err := attacker.fight.SendJSON(map[string]any{"type": "event", "event": "attack", "target": victim.uuid,
				"ball_uuid": fmt.Sprintf("b%d", hit), "x": 0.5, "y": 0.5, "angle": 0.1}); err != nil {
				t.Fatal(err)
			}
			for {
				var hp struct {
					UUID string `json:"uuid"`
					HP   int    `json:"hp"`
				}
				if err := attacker.fight.RecvType(ctx, "hp", &hp); err != nil {
					t.Fatalf("hit %d on %s: %v", hit, victim.uuid, err)
				}
				if hp.UUID == victim.uuid {
					if want := 80 - 20*hit; hp.HP != want {
						t.Fatalf("hit %d on %s: hp %d, want %d", hit, victim.uuid, hp.HP, want)
					}
					break
				}
			}
		}
	}
	var res fightResult
	for {
		b, err := attacker.fight.Recv(ctx)
		if err != nil {
			t.Fatalf("waiting for result: %v", err)
		}
		var head struct{ Type, Code string }
		_ = json.Unmarshal(b, &head)
		if head.Type == "error" {
			t.Fatalf("attacker got %s", b)
		}
		if head.Type == "result" {
			_ = json.Unmarshal(b, &res)
			break
		}
	}
	if res.Room != room || res.Winner != attacker.uuid || len(res.Players) != 3 || res.Pending {
		t.Fatalf("result %+v", res)
	}
	// Ratings in the player database moved by Elo: the winner up, the
	// others down, and the stored rating equals the result's new score.
	for _, rp := range res.Players {
		var prof struct {
			Score int `json:"score"`
			Games int `json:"games"`
		}
		if code := api(t, a, "GET", "/v1/players/"+rp.UUID, "", nil, &prof); code != 200 {
			t.Fatalf("profile of %s: %d", rp.UUID, code)
		}
		if prof.Score != rp.NewScore || prof.Games != 1 {
			t.Errorf("%s: stored %+v, result new_score %d", rp.UUID, prof, rp.NewScore)
		}
		if rp.UUID == attacker.uuid && rp.NewScore <= rp.OldScore {
			t.Errorf("winner's rating did not rise: %+v", rp)
		}
		if rp.UUID != attacker.uuid && rp.NewScore >= rp.OldScore {
			t.Errorf("loser's rating did not fall: %+v", rp)
		}
	}
	// The room ended: members may queue again.
	waitfor.Cond(t, "members leave the in-room state", func() bool {
		var s struct {
			Queue struct{ State string } `json:"queue"`
		}
		api(t, a, "GET", "/v1/tickets/"+attacker.uuid, a.Backend, nil, &s)
		return s.Queue.State == "none"
	})
}

// TestFightServerKilledMidRoom kills the fight process hosting a room
// that saves no state (snapshot-every 0; TestFightRoomSurvivesItsProcess
// has the default) with -9: each member gets an error naming the room on
// /v1/play and may queue again at once.
func TestFightServerKilledMidRoom(t *testing.T) {
	a := startArena(t, "dispatcher", "--guest-login", "--tick", "100ms", "--fight-option", "snapshot-every=0s")
	ctx := ctxT(t, 60*time.Second)
	var plays []*wsconn.Client
	var m matchMsg
	for i := 0; i < 3; i++ {
		_, tok := a.login(t, fmt.Sprintf("k%d", i))
		cl, err := wsconn.DialClient(ctx, "ws://"+a.HTTP+"/v1/play?token="+tok, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close(wsconn.CloseNormal, "") })
		_ = cl.SendJSON(map[string]string{"type": "queue"})
		plays = append(plays, cl)
	}
	var fights []*wsconn.Client
	for _, cl := range plays {
		if err := cl.RecvType(ctx, "match", &m); err != nil {
			t.Fatal(err)
		}
		fc, err := wsconn.DialClient(ctx, m.Fight+"?ticket="+m.Ticket, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { fc.Close(wsconn.CloseNormal, "") })
		fights = append(fights, fc)
	}
	port := portOf(t, m.Fight)
	pid := pidOf(stat(t, a.Line), port)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for _, cl := range plays {
		var e struct{ Code, Room string }
		if err := cl.RecvType(ctx, "error", &e); err != nil {
			t.Fatal(err)
		}
		if e.Code != "room_failed" || e.Room != m.Room {
			t.Fatalf("got %+v, want room_failed for %s", e, m.Room)
		}
	}
	for _, fc := range fights {
		select {
		case <-fc.Done():
		case <-ctx.Done():
			t.Fatal("fight socket survived the kill")
		}
	}
	// The room is marked failed in memcached and the players queue again.
	waitfor.Cond(t, "room record marked failed", func() bool {
		rec, _, err := records.GetRoom(ctx, a.store(t), m.Room)
		return err == nil && rec.State == records.RoomFailed
	})
	_ = plays[0].SendJSON(map[string]string{"type": "queue"})
	if err := plays[0].RecvType(ctx, "queued", nil); err != nil {
		t.Fatal(err)
	}
}
