package integration

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/arena-game/arena/hostctl"
	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/internal/wsconn"
)

// fighter is a gamer in a fight room.
type fighter struct {
	*gamer
	match matchMsg
	fight *wsconn.Client
}

// joinFight reads g's match and opens its room connection.
// queueThreeAndJoin queues three new gamers named prefix0..2 and joins
// each to the fight it is matched into.
func queueThreeAndJoin(t *testing.T, ctx context.Context, a *Arena, prefix string) []*fighter {
	t.Helper()
	var gs []*gamer
	for i := range 3 {
		g := newGamer(t, ctx, a, fmt.Sprintf("%s%d", prefix, i))
		g.queue(t, ctx)
		gs = append(gs, g)
	}
	var fs []*fighter
	for _, g := range gs {
		fs = append(fs, joinFight(t, ctx, g))
	}
	return fs
}

// seeEachOther waits until each fighter heard create_player for every
// member of its room (itself included).
func seeEachOther(t *testing.T, ctx context.Context, fs []*fighter) {
	t.Helper()
	for _, f := range fs {
		for range fs {
			if err := f.fight.RecvType(ctx, "create_player", nil); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// backfilledAfterLeave waits until a member who stayed hears that gone
// left for good, then joins late to the match it gets, which must be the
// running room with the four players.
func backfilledAfterLeave(t *testing.T, ctx context.Context, stayed, gone *fighter, late *gamer, room string) *fighter {
	t.Helper()
	var out struct{ UUID, Reason string }
	if err := stayed.fight.RecvType(ctx, "out", &out); err != nil || out.UUID != gone.uuid || out.Reason != "left" {
		t.Fatalf("out %+v %v", out, err)
	}
	lf := joinFight(t, ctx, late)
	if lf.match.Room != room || len(lf.match.Players) != 4 {
		t.Fatalf("the latecomer's match %+v, want the running room %s with 4 players", lf.match, room)
	}
	return lf
}

func joinFight(t *testing.T, ctx context.Context, g *gamer) *fighter {
	t.Helper()
	f := &fighter{gamer: g}
	if err := g.play.RecvType(ctx, "match", &f.match); err != nil {
		t.Fatalf("match: %v", err)
	}
	cl, err := wsconn.DialClient(ctx, f.match.Fight+"?ticket="+url.QueryEscape(f.match.Ticket), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close(wsconn.CloseNormal, "") })
	f.fight = cl
	return f
}

// createPlayer is a fight's create_player message.
type createPlayer struct {
	UUID, Username string
	HP             int
	X, Y           float64
}

// queueState is a player's queue state (GET /v1/tickets/{uuid}).
func queueState(t *testing.T, a *Arena, uuid string) string {
	t.Helper()
	var s struct {
		Queue struct{ State string } `json:"queue"`
	}
	api(t, a, "GET", "/v1/tickets/"+uuid, a.Backend, nil, &s)
	return s.Queue.State
}

// TestFightSeatBackfilledFromTheQueue is issue 11 item 5 with real fight
// processes: in a 3-player fight one player drops and never comes back;
// once its rejoin grace has passed the fight asks for a player, a guest
// waiting in the queue is matched into that running room (a match for the
// same room id), joins, the two players left receive create_player for
// it, and the room plays to a rated result that includes it.
func TestFightSeatBackfilledFromTheQueue(t *testing.T) {
	a := startArena(t, "dispatcher", "--guest-login", "--tick", "200ms",
		"--fight-option", "rejoin-grace=3s", "--fight-option", "attack-range=100000",
		"--fight-option", "attack-cooldown=0", "--fight-option", "attack-damage=50")
	ctx := ctxT(t, 90*time.Second)
	fs := queueThreeAndJoin(t, ctx, a, "bf")
	room := fs[0].match.Room
	seeEachOther(t, ctx, fs)
	stay, gone := fs[:2], fs[2]
	// The third drops and never comes back; a latecomer queues meanwhile.
	gone.fight.Close(wsconn.CloseNormal, "")
	var away struct{ UUID string }
	if err := stay[0].fight.RecvType(ctx, "player_away", &away); err != nil || away.UUID != gone.uuid {
		t.Fatalf("player_away %+v %v", away, err)
	}
	late := newGamer(t, ctx, a, "latecomer")
	late.queue(t, ctx)
	if s := queueState(t, a, late.uuid); s != "queued" {
		t.Fatalf("the latecomer during the grace: %s", s)
	}
	lf := backfilledAfterLeave(t, ctx, stay[0], gone, late, room)
	var st struct {
		You     string
		Players []struct {
			UUID   string
			HP     int
			X, Y   float64
			Status string
		}
	}
	if err := lf.fight.RecvType(ctx, "state", &st); err != nil || st.You != late.uuid || len(st.Players) != 4 {
		t.Fatalf("the latecomer's state %+v %v", st, err)
	}
	me := st.Players[3]
	if me.UUID != late.uuid || me.HP != 100 || me.Status != "playing" || me.X == 0 && me.Y == 0 {
		t.Fatalf("the latecomer in its state %+v", st)
	}
	for _, f := range stay {
		var cp createPlayer
		if err := f.fight.RecvType(ctx, "create_player", &cp); err != nil {
			t.Fatal(err)
		}
		if cp.UUID != late.uuid || cp.Username != "latecomer" || cp.HP != 100 || cp.X != me.X || cp.Y != me.Y {
			t.Fatalf("%s heard %+v, want the latecomer at %v,%v", f.uuid, cp, me.X, me.Y)
		}
	}
	// The latecomer knocks out the two others (two hits each) and wins.
	for _, victim := range stay {
		for hit := range 2 {
			if err := lf.fight.SendJSON(map[string]any{"type": "event", "event": "attack", "target": victim.uuid,
				"ball_uuid": fmt.Sprintf("b%d", hit), "x": 1, "y": 1, "angle": 0.1}); err != nil {
				t.Fatal(err)
			}
			var hp struct {
				UUID string
				HP   int
			}
			if err := lf.fight.RecvType(ctx, "hp", &hp); err != nil || hp.UUID != victim.uuid || hp.HP != 50-50*hit {
				t.Fatalf("hit %d on %s: %+v %v", hit, victim.uuid, hp, err)
			}
		}
	}
	var res fightResult
	if err := lf.fight.RecvType(ctx, "result", &res); err != nil {
		t.Fatal(err)
	}
	if res.Room != room || res.Winner != late.uuid || len(res.Players) != 4 || res.Pending {
		t.Fatalf("result %+v", res)
	}
	old, now := res.scores(late.uuid)
	if now <= old {
		t.Fatalf("the latecomer's rating %d -> %d", old, now)
	}
	for _, f := range append(fs, lf) {
		_, want := res.scores(f.uuid)
		if p := profileOf(t, a, f.uuid); p.Games != 1 || p.Score != want {
			t.Errorf("%s stored %+v, result new_score %d", f.uuid, p, want)
		}
	}
	waitfor.Cond(t, "the latecomer leaves the in-room state", func() bool { return queueState(t, a, late.uuid) == "none" })
}

// TestFightSeatBackfilledAfterDispatcherRestart: a room formed by a
// dispatcher that was then killed (-9) and restarted still gets its seat
// filled: its fight process (on an `arena host`, which outlives the
// dispatcher) asks for a player when one leaves for good, the restarted
// dispatcher looks the room up from its record and backfills it from its
// own queue.
func TestFightSeatBackfilledAfterDispatcherRestart(t *testing.T) {
	hostPort := freePort(t)
	a := startArena(t, "dispatcher", "--local-host=false", "--host-listen", "127.0.0.1:"+strconv.Itoa(hostPort),
		"--guest-login", "--tick", "200ms", "--min-map-processes", "0",
		"--fight-option", "rejoin-grace=2s")
	m := machine{name: "h1", rootIP: "127.0.0.1", ip: "127.0.0.2"}
	startHost(t, a, m, "127.0.0.1:"+strconv.Itoa(hostPort), a.Memcache)
	waitfor.Cond(t, "the host connected", func() bool { return len(hostsIn(stat(t, a.Line), hostctl.HostConnected)) == 1 })
	ctx := ctxT(t, 90*time.Second)
	fs := queueThreeAndJoin(t, ctx, a, "rb")
	room := fs[0].match.Room
	seeEachOther(t, ctx, fs)
	_ = a.cmd.Process.Kill()
	<-a.done
	a.restart(t)
	waitfor.Cond(t, "the host back with the room's process", func() bool {
		tab := stat(t, a.Line)
		return len(hostsIn(tab, hostctl.HostConnected)) == 1 && len(processesOn(tab, m.name)) > 0
	})
	late := newGamer(t, ctx, a, "latecomer")
	late.queue(t, ctx)
	stay, gone := fs[:2], fs[2]
	gone.fight.Close(wsconn.CloseNormal, "")
	backfilledAfterLeave(t, ctx, stay[0], gone, late, room)
	for _, f := range stay {
		var cp createPlayer
		if err := f.fight.RecvType(ctx, "create_player", &cp); err != nil || cp.UUID != late.uuid {
			t.Fatalf("%s heard %+v, %v; want the latecomer", f.uuid, cp, err)
		}
	}
}

// writeProfiles writes a profile file of one default profile whose rooms
// start with 3 players and may hold 4.
func writeProfiles(t *testing.T) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "profiles.yaml")
	if err := os.WriteFile(file, []byte("profiles:\n  - {name: default, min_players: 3, max_players: 4, params: {window_base: 100}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestFightRoomForMoreIsBackfilled: a profile's rooms start with 3 and
// may hold 4, so a running fight takes the next queued player without
// anyone leaving; the three hear create_player for it.
func TestFightRoomForMoreIsBackfilled(t *testing.T) {
	a := startArena(t, "dispatcher", "--guest-login", "--tick", "200ms", "--profiles", writeProfiles(t))
	ctx := ctxT(t, 60*time.Second)
	fs := queueThreeAndJoin(t, ctx, a, "more")
	for _, f := range fs {
		if err := f.fight.RecvType(ctx, "state", nil); err != nil {
			t.Fatal(err)
		}
	}
	late := newGamer(t, ctx, a, "fourth")
	late.queue(t, ctx)
	lf := joinFight(t, ctx, late)
	if lf.match.Room != fs[0].match.Room || len(lf.match.Players) != 4 {
		t.Fatalf("the fourth's match %+v, want room %s", lf.match, fs[0].match.Room)
	}
	for _, f := range fs {
		for {
			var cp createPlayer
			if err := f.fight.RecvType(ctx, "create_player", &cp); err != nil {
				t.Fatalf("%s: %v", f.uuid, err)
			}
			if cp.UUID == late.uuid {
				break
			}
		}
	}
}

// TestFightRefusesBackfillWhenFull: a profile's rooms start with 3 and
// may take 4, but the fight holds at most 3 (max-players): the fight
// refuses the queued player the matchmaker tries to add, whose ticket goes
// back to the queue (no match), and it is matched into the next room
// formed.
func TestFightRefusesBackfillWhenFull(t *testing.T) {
	a := startArena(t, "dispatcher", "--guest-login", "--tick", "200ms", "--profiles", writeProfiles(t), "--fight-option", "max-players=3")
	ctx := ctxT(t, 60*time.Second)
	fs := queueThreeAndJoin(t, ctx, a, "full")
	full := fs[0].match.Room
	metrics := "http://" + a.HTTP + "/metrics"
	late := newGamer(t, ctx, a, "refused")
	late.queue(t, ctx)
	waitfor.Cond(t, "the fight refuses the backfill", func() bool { return metric(t, metrics, "arena_mm_backfills_refused_total") == 1 })
	if s := queueState(t, a, late.uuid); s != "queued" {
		t.Fatalf("the refused player's queue state: %s", s)
	}
	if n := metric(t, metrics, "arena_mm_backfilled_players_total"); n != 0 {
		t.Fatalf("backfilled players %v", n)
	}
	// Back in the queue: two more guests make a new room with it.
	for i := range 2 {
		newGamer(t, ctx, a, fmt.Sprintf("next%d", i)).queue(t, ctx)
	}
	lf := joinFight(t, ctx, late)
	if lf.match.Room == full || len(lf.match.Players) != 3 {
		t.Fatalf("the refused player's match %+v (the full room is %s)", lf.match, full)
	}
	if err := lf.fight.RecvType(ctx, "state", nil); err != nil {
		t.Fatal(err)
	}
	if n := metric(t, metrics, "arena_mm_backfills_refused_total"); n != 1 {
		t.Fatalf("the full room was asked again: %v refusals", n)
	}
}
