package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/internal/wsconn"
)

// buildGame builds the Go game binary at pkg (relative to the repository).
func buildGame(t *testing.T, pkg string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg))
	if out, err := exec.Command("go", "build", "-o", bin, "../"+pkg).CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// gamer is a guest with its /v1/play socket.
type gamer struct {
	uuid, token string
	play        *wsconn.Client
}

func newGamer(t *testing.T, ctx context.Context, a *Arena, name string) *gamer {
	t.Helper()
	g := &gamer{}
	g.uuid, g.token = a.login(t, name)
	cl, err := wsconn.DialClient(ctx, "ws://"+a.HTTP+"/v1/play?token="+url.QueryEscape(g.token), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close(wsconn.CloseNormal, "") })
	if err := cl.RecvType(ctx, "welcome", nil); err != nil {
		t.Fatal(err)
	}
	g.play = cl
	return g
}

// TestTurnsGameEndToEnd runs the second game (examples/turns) as its own
// binary with `--game turns=PATH`: three guests queue in the turns
// profile, are matched into one room on the turns server the dispatcher
// spawned, play it to a result, and their ratings change.
func TestTurnsGameEndToEnd(t *testing.T) {
	bin := buildGame(t, "examples/turns/cmd/turns")
	a := startArena(t, "dispatcher", "--guest-login", "--tick", "200ms",
		"--game", "turns="+bin, "--game-option", "turns.turn-time=10s", "--game-option", "turns.start-delay=2s")
	ctx := ctxT(t, 90*time.Second)
	var gs []*gamer
	for i := range 3 {
		g := newGamer(t, ctx, a, "turner"+strconv.Itoa(i))
		if err := g.play.SendJSON(map[string]any{"type": "queue", "profile": "turns"}); err != nil {
			t.Fatal(err)
		}
		if err := g.play.RecvType(ctx, "queued", nil); err != nil {
			t.Fatal(err)
		}
		gs = append(gs, g)
	}
	var matches []matchMsg
	for _, g := range gs {
		var m matchMsg
		if err := g.play.RecvType(ctx, "match", &m); err != nil {
			t.Fatal(err)
		}
		matches = append(matches, m)
	}
	if matches[0].Room != matches[2].Room {
		t.Fatalf("matches %+v", matches)
	}
	// The room is on the turns process, not on a fight server.
	var table struct {
		Processes []struct {
			Kind string `json:"kind"`
			Port int    `json:"port"`
		} `json:"processes"`
	}
	if code := api(t, a, "GET", "/v1/fleet", "", nil, &table); code != 200 {
		t.Fatalf("fleet: %d", code)
	}
	onTurns := false
	for _, p := range table.Processes {
		onTurns = onTurns || p.Kind == "turns" && strings.Contains(matches[0].Fight, ":"+strconv.Itoa(p.Port)+"/")
	}
	if !onTurns {
		t.Fatalf("room %s at %s is not on a turns process: %+v", matches[0].Room, matches[0].Fight, table)
	}
	var rooms []*wsconn.Client
	for i, g := range gs {
		cl, err := wsconn.DialClient(ctx, matches[i].Fight+"?ticket="+url.QueryEscape(matches[i].Ticket), 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close(wsconn.CloseNormal, "") })
		var st struct{ You string }
		if err := cl.RecvType(ctx, "state", &st); err != nil || st.You != g.uuid {
			t.Fatalf("state: %+v %v", st, err)
		}
		rooms = append(rooms, cl)
	}
	// Everyone on its turn attacks the last other player still in.
	idx := map[string]int{}
	for i, g := range gs {
		idx[g.uuid] = i
	}
	out := map[string]bool{}
	var res struct {
		Winner  string
		Players []struct {
			UUID string
			Old  int `json:"old_score"`
			New  int `json:"new_score"`
		}
	}
	for done := false; !done; {
		b, err := rooms[0].Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var m struct{ Type, UUID string }
		_ = json.Unmarshal(b, &m)
		switch m.Type {
		case "out":
			out[m.UUID] = true
		case "result":
			_ = json.Unmarshal(b, &res)
			done = true
		case "turn":
			me := idx[m.UUID]
			target := ""
			for j := len(gs) - 1; j >= 0; j-- {
				if j != me && !out[gs[j].uuid] {
					target = gs[j].uuid
					break
				}
			}
			if err := rooms[me].SendJSON(map[string]any{"type": "act", "action": "attack", "target": target}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if res.Winner != gs[0].uuid || len(res.Players) != 3 || res.Players[0].New <= res.Players[0].Old || res.Players[2].New >= res.Players[2].Old {
		t.Fatalf("result %+v", res)
	}
	// The ratings changed in the player database, in the turns profile.
	var me struct {
		Ratings map[string]struct{ Score int } `json:"ratings"`
	}
	waitfor.Cond(t, "the winner's turns rating", func() bool {
		code := api(t, a, "GET", "/v1/players/"+gs[0].uuid, "", nil, &me)
		return code == 200 && me.Ratings["turns"].Score == res.Players[0].New
	})
}

// TestBadGameBinariesGetNoRooms: a game binary that fails the handshake,
// one that exits at once, and one that speaks another protocol version
// are each reported with a clear line in the dispatcher's log and a
// spawn_failed event on the dashboard's stream, and no room is sent to
// them: their players stay queued.
func TestBadGameBinariesGetNoRooms(t *testing.T) {
	dir := t.TempDir()
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// garbage and futurist are wrapper scripts whose child (sleep) holds
	// their output open: the host kills the whole process group, or the
	// spawn would last as long as the sleep.
	bad := map[string]string{
		"garbage":  script("garbage", "echo 'hello, I am not a plugin'; sleep 120"),
		"quitter":  script("quitter", "exit 3"),
		"futurist": script("futurist", "echo '1|9|tcp|127.0.0.1:1|grpc'; sleep 120"),
	}
	args := []string{"dispatcher", "--guest-login", "--tick", "200ms", "--room-size", "2"}
	for name, path := range bad {
		args = append(args, "--game", name+"="+path)
	}
	a := startArena(t, args[0], args[1:]...)
	ctx := ctxT(t, 60*time.Second)
	// The dashboard's stream, opened first.
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+a.HTTP+"/v1/fleet/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// Each kind once: a kind is tried again after a backoff, and a full
	// channel must not hold the stream back.
	failed := make(chan string, len(bad))
	go func() {
		sent := map[string]bool{}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "data: "); ok && strings.Contains(line, `"spawn_failed"`) {
				var ev struct{ Kind, Reason string }
				_ = json.Unmarshal([]byte(line), &ev)
				if _, isBad := bad[ev.Kind]; isBad && !sent[ev.Kind] {
					sent[ev.Kind] = true
					failed <- ev.Kind
				}
			}
		}
	}()
	for name := range bad {
		p1, p2 := newGamer(t, ctx, a, name+"1"), newGamer(t, ctx, a, name+"2")
		for _, g := range []*gamer{p1, p2} {
			if err := g.play.SendJSON(map[string]any{"type": "queue", "profile": name}); err != nil {
				t.Fatal(err)
			}
		}
		// No match comes: the formed room finds no process; the players
		// are told and stay queued.
		for _, g := range []*gamer{p1, p2} {
			for {
				b, err := g.play.Recv(ctx)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				var m struct{ Type, Code string }
				_ = json.Unmarshal(b, &m)
				if m.Type == "match" {
					t.Fatalf("%s: a room was sent to a broken game: %s", name, b)
				}
				if m.Code == "no_capacity" {
					break
				}
			}
		}
	}
	seen := map[string]bool{}
	for len(seen) < len(bad) {
		select {
		case k := <-failed:
			seen[k] = true
		case <-ctx.Done():
			t.Fatalf("spawn_failed events for %v only", seen)
		}
	}
	// The log says it in one line per binary, with the reason.
	for name, want := range map[string]string{
		"futurist": "speaks version 9 of the process contract; this host speaks 2",
		"quitter":  "exited at once, before the go-plugin handshake",
		"garbage":  `failed the handshake: printed \"hello, I am not a plugin\"`,
	} {
		waitfor.Cond(t, "the log line for "+name, func() bool {
			for _, line := range strings.Split(a.log.String(), "\n") {
				if strings.Contains(line, "a process could not be started; no room goes to it") && strings.Contains(line, "kind="+name) && strings.Contains(line, want) {
					return true
				}
			}
			return false
		})
	}
}

// TestPythonGameServerGetsARoom: the dispatcher spawns the Python game
// server of examples/pygame (`--game pygame=...`), sends it a room formed
// in the pygame profile, and hears from it that the room ended: the
// players can queue again.
func TestPythonGameServerGetsARoom(t *testing.T) {
	if err := exec.Command("/usr/bin/python3", "-c", "import grpc, google.protobuf").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Debian's python3 with grpc and protobuf is needed: %v", err)
		}
		t.Skipf("no /usr/bin/python3 with grpc and protobuf: %v", err)
	}
	server, err := filepath.Abs("../examples/pygame/server.py")
	if err != nil {
		t.Fatal(err)
	}
	launcher := filepath.Join(t.TempDir(), "pygame")
	if err := os.WriteFile(launcher, []byte("#!/bin/sh\nexec /usr/bin/python3 "+server+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	a := startArena(t, "dispatcher", "--guest-login", "--tick", "200ms", "--room-size", "2",
		"--game", "pygame="+launcher, "--game-option", "pygame.room_seconds=1")
	ctx := ctxT(t, 60*time.Second)
	p1, p2 := newGamer(t, ctx, a, "py1"), newGamer(t, ctx, a, "py2")
	for _, g := range []*gamer{p1, p2} {
		if err := g.play.SendJSON(map[string]any{"type": "queue", "profile": "pygame"}); err != nil {
			t.Fatal(err)
		}
	}
	var m matchMsg
	if err := p1.play.RecvType(ctx, "match", &m); err != nil {
		t.Fatalf("%v\n%s", err, a.log.String())
	}
	// The room is on the Python process, which lists it.
	addr := strings.TrimSuffix(strings.TrimPrefix(m.Fight, "ws://"), "/ws")
	resp, err := http.Get("http://" + addr + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var st struct{ Rooms []string }
	_ = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if len(st.Rooms) != 1 || st.Rooms[0] != m.Room {
		t.Fatalf("python server's rooms %v, want %s", st.Rooms, m.Room)
	}
	// Its RoomEnded reaches the dispatcher: the process's load is 0 again,
	// and the players are out of the room and may queue again.
	waitfor.Cond(t, "the python room's end in the fleet table", func() bool {
		var tbl struct {
			Processes []struct {
				Kind string `json:"kind"`
				Load int    `json:"load"`
			} `json:"processes"`
		}
		api(t, a, "GET", "/v1/fleet", "", nil, &tbl)
		for _, p := range tbl.Processes {
			if p.Kind == "pygame" {
				return p.Load == 0
			}
		}
		return false
	})
	if err := p1.play.SendJSON(map[string]any{"type": "queue", "profile": "pygame"}); err != nil {
		t.Fatal(err)
	}
	if err := p1.play.RecvType(ctx, "queued", nil); err != nil {
		t.Fatalf("queue again after the room ended: %v", err)
	}
}

// TestGameRoomSurvivesItsProcess: the turns game saves its state every
// turn (sdk Room.Save); when its process is killed mid-battle the
// dispatcher places the room again on a new turns process, which restores
// it, and the players get a match for the same room and play on.
func TestGameRoomSurvivesItsProcess(t *testing.T) {
	bin := buildGame(t, "examples/turns/cmd/turns")
	a := startArena(t, "dispatcher", "--guest-login", "--tick", "200ms", "--room-size", "2",
		"--game", "turns="+bin, "--game-option", "turns.turn-time=30s", "--game-option", "turns.start-delay=1s")
	ctx := ctxT(t, 90*time.Second)
	var gs []*gamer
	for i := range 2 {
		g := newGamer(t, ctx, a, "survivor"+strconv.Itoa(i))
		if err := g.play.SendJSON(map[string]any{"type": "queue", "profile": "turns"}); err != nil {
			t.Fatal(err)
		}
		gs = append(gs, g)
	}
	var ms [2]matchMsg
	var rooms [2]*wsconn.Client
	join := func(i int) {
		t.Helper()
		if err := gs[i].play.RecvType(ctx, "match", &ms[i]); err != nil {
			t.Fatal(err)
		}
		cl, err := wsconn.DialClient(ctx, ms[i].Fight+"?ticket="+url.QueryEscape(ms[i].Ticket), 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close(wsconn.CloseNormal, "") })
		rooms[i] = cl
	}
	join(0)
	join(1)
	// Player 0 (first in turn order) hits player 1 once.
	var turn struct{ UUID string }
	if err := rooms[0].RecvType(ctx, "turn", &turn); err != nil {
		t.Fatal(err)
	}
	first := 0
	if turn.UUID != gs[0].uuid {
		first = 1
	}
	if err := rooms[first].SendJSON(map[string]any{"type": "act", "action": "attack", "target": gs[1-first].uuid}); err != nil {
		t.Fatal(err)
	}
	if err := rooms[first].RecvType(ctx, "turn", nil); err != nil {
		t.Fatal(err)
	}
	// The second turn's snapshot (victim at 75 hp) is in memcached. Its
	// turn is an index in the room's turn order, whose first fighter
	// played the first turn: the second turn is index 1's, whichever of
	// gs came first (1-first held only when gs[0] did).
	st := a.store(t)
	waitfor.Cond(t, "the second turn's snapshot", func() bool {
		it, err := st.Get(ctx, "gamestate:"+ms[0].Room)
		var snap struct{ Turn int }
		return err == nil && json.Unmarshal(it.Value, &snap) == nil && snap.Turn == 1
	})
	killKind(t, a, "turns")
	// Both get a new match for the same room, on another process, with its state.
	old := ms[0].Fight
	for i := range 2 {
		join(i)
		if ms[i].Room != ms[0].Room || ms[i].Fight == old {
			t.Fatalf("match after the kill %+v (before: %s)", ms[i], old)
		}
	}
	var state struct {
		Turn    string
		Players []struct {
			UUID string
			HP   int
		}
	}
	if err := rooms[1-first].RecvType(ctx, "state", &state); err != nil {
		t.Fatal(err)
	}
	if state.Turn != gs[1-first].uuid {
		t.Fatalf("restored turn %s, want %s", state.Turn, gs[1-first].uuid)
	}
	for _, p := range state.Players {
		if p.UUID == gs[1-first].uuid && p.HP != 75 {
			t.Fatalf("restored hp %d, want 75: %+v", p.HP, state)
		}
	}
	// And the battle plays on: the restored turn's player acts.
	if err := rooms[1-first].SendJSON(map[string]any{"type": "act", "action": "heal"}); err != nil {
		t.Fatal(err)
	}
	var acted struct{ HP int }
	if err := rooms[first].RecvType(ctx, "acted", &acted); err != nil || acted.HP != 90 {
		t.Fatalf("acted after the restore: %+v %v", acted, err)
	}
}

// killKind kills (SIGKILL) every process of kind in a's fleet; there must
// be one.
func killKind(t *testing.T, a *Arena, kind string) {
	t.Helper()
	var table struct {
		Processes []struct {
			Kind string `json:"kind"`
			Pid  int    `json:"pid"`
		} `json:"processes"`
	}
	api(t, a, "GET", "/v1/fleet", "", nil, &table)
	killed := false
	for _, p := range table.Processes {
		if p.Kind == kind {
			if err := syscall.Kill(p.Pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	if !killed {
		t.Fatalf("no %s process in %+v", kind, table)
	}
}

// TestTurnsSeatBackfilledFromTheQueue: a player quits a running turns
// battle; the game asks for a player (BackfillWanted), the matchmaker takes
// one queued in the turns profile and the dispatcher's Backfill puts it in
// the running room, where it is seated and plays. Then the turns process
// is killed: the room, whose record and saved state list the newcomer, is
// placed again, and the newcomer gets a match for it and its seat back.
func TestTurnsSeatBackfilledFromTheQueue(t *testing.T) {
	bin := buildGame(t, "examples/turns/cmd/turns")
	a := startArena(t, "dispatcher", "--guest-login", "--tick", "200ms",
		"--game", "turns="+bin, "--game-option", "turns.turn-time=30s", "--game-option", "turns.start-delay=1s")
	ctx := ctxT(t, 90*time.Second)
	var gs []*gamer
	var rooms []*wsconn.Client
	var room string
	for i := range 3 {
		g := newGamer(t, ctx, a, "seat"+strconv.Itoa(i))
		if err := g.play.SendJSON(map[string]any{"type": "queue", "profile": "turns"}); err != nil {
			t.Fatal(err)
		}
		gs = append(gs, g)
	}
	for _, g := range gs {
		var m matchMsg
		if err := g.play.RecvType(ctx, "match", &m); err != nil {
			t.Fatal(err)
		}
		room = m.Room
		cl, err := wsconn.DialClient(ctx, m.Fight+"?ticket="+url.QueryEscape(m.Ticket), 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close(wsconn.CloseNormal, "") })
		rooms = append(rooms, cl)
	}
	if err := rooms[0].RecvType(ctx, "turn", nil); err != nil {
		t.Fatal(err)
	}
	// The third player quits.
	if err := rooms[2].SendJSON(map[string]string{"type": "leave"}); err != nil {
		t.Fatal(err)
	}
	// A fourth player queues in the turns profile and is put in that room.
	late := newGamer(t, ctx, a, "latecomer")
	if err := late.play.SendJSON(map[string]any{"type": "queue", "profile": "turns"}); err != nil {
		t.Fatal(err)
	}
	var m matchMsg
	if err := late.play.RecvType(ctx, "match", &m); err != nil {
		t.Fatalf("backfill match: %v\n%s", err, a.log.String())
	}
	if m.Room != room {
		t.Fatalf("the latecomer got room %s, want the running %s", m.Room, room)
	}
	var seated struct{ UUID string }
	if err := rooms[0].RecvType(ctx, "seated", &seated); err != nil || seated.UUID != late.uuid {
		t.Fatalf("seated %+v %v", seated, err)
	}
	cl, err := wsconn.DialClient(ctx, m.Fight+"?ticket="+url.QueryEscape(m.Ticket), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close(wsconn.CloseNormal, "") })
	var st struct {
		You     string
		Players []struct{ UUID string }
	}
	if err := cl.RecvType(ctx, "state", &st); err != nil || st.You != late.uuid || len(st.Players) != 4 {
		t.Fatalf("latecomer's state %+v %v", st, err)
	}

	// The saved state has the newcomer; the process dies.
	mc := a.store(t)
	waitfor.Cond(t, "a snapshot with the newcomer", func() bool {
		it, err := mc.Get(ctx, "gamestate:"+room)
		var snap struct{ Fighters []json.RawMessage }
		return err == nil && json.Unmarshal(it.Value, &snap) == nil && len(snap.Fighters) == 4
	})
	killKind(t, a, "turns")
	for _, g := range []*gamer{gs[0], late} {
		var again matchMsg
		if err := g.play.RecvType(ctx, "match", &again); err != nil {
			t.Fatalf("match after the kill: %v\n%s", err, a.log.String())
		}
		if again.Room != room || len(again.Players) != 4 {
			t.Fatalf("placed again %+v", again)
		}
		m = again
	}
	back, err := wsconn.DialClient(ctx, m.Fight+"?ticket="+url.QueryEscape(m.Ticket), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { back.Close(wsconn.CloseNormal, "") })
	var restored struct {
		You     string
		Players []struct {
			UUID string
			HP   int
			Out  bool
		}
	}
	if err := back.RecvType(ctx, "state", &restored); err != nil || restored.You != late.uuid || len(restored.Players) != 4 {
		t.Fatalf("the newcomer's restored state %+v %v", restored, err)
	}
	if p := restored.Players[3]; p.UUID != late.uuid || p.HP != 100 || p.Out {
		t.Fatalf("the newcomer's seat after the restore %+v", restored)
	}
}
