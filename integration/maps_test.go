package integration

import (
	"context"
	"encoding/json"
	"math"
	"net/url"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/arena-game/arena/hostctl"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/internal/wsconn"
	"github.com/arena-game/arena/mapserver"
)

type enterAns struct {
	Map     string `json:"map"`
	Addr    string `json:"addr"`
	Ticket  string `json:"ticket"`
	Resumed bool   `json:"resumed"`
}

type welcome struct {
	You struct {
		ID        string          `json:"id"`
		X         float64         `json:"x"`
		Y         float64         `json:"y"`
		HP        int             `json:"hp"`
		Inventory json.RawMessage `json:"inventory"`
	} `json:"you"`
	Map struct {
		ID      string `json:"id"`
		Portals []struct {
			Rect struct{ X, Y, W, H float64 } `json:"rect"`
			To   string                       `json:"to"`
		} `json:"portals"`
	} `json:"map"`
	MaxSpeed float64 `json:"max_speed"`
}

// mapPlayer is one player walking the map world over real sockets.
type mapPlayer struct {
	t    *testing.T
	conn *wsconn.Client
	w    welcome
	addr string
	x, y float64
}

func (p *mapPlayer) connect(ctx context.Context, addr, ticket string) {
	p.t.Helper()
	cl, err := wsconn.DialClient(ctx, addr+"?ticket="+url.QueryEscape(ticket), 0)
	if err != nil {
		p.t.Fatal(err)
	}
	if p.conn != nil {
		p.conn.Close(wsconn.CloseNormal, "")
	}
	p.conn, p.addr = cl, addr
	if err := cl.RecvType(ctx, "welcome", &p.w); err != nil {
		p.t.Fatalf("welcome on %s: %v", addr, err)
	}
	p.x, p.y = p.w.You.X, p.w.You.Y
}

// walkTo moves to (x, y) in one move, which the tests' max-speed allows
// from a full movement budget (a fresh connection has one): the player
// needs no clock to pace its steps. A walk into a portal makes the server
// hand the player over.
func (p *mapPlayer) walkTo(x, y float64) {
	p.t.Helper()
	if d, budget := math.Hypot(x-p.x, y-p.y), p.w.MaxSpeed*mapserver.MoveBurst; d > 0.9*budget {
		p.t.Fatalf("walk of %.0f units is over 90%% of one move's budget (%.0f): raise the map's max-speed", d, budget)
	}
	p.x, p.y = x, y
	if err := p.conn.SendJSON(map[string]any{"type": "move", "x": p.x, "y": p.y}); err != nil {
		p.t.Fatalf("move: %v", err)
	}
}

// switchTo walks into the portal to mapID and follows the switch answer.
func (p *mapPlayer) switchTo(ctx context.Context, mapID string) {
	p.t.Helper()
	for _, pt := range p.w.Map.Portals {
		if pt.To != mapID {
			continue
		}
		p.walkTo(pt.Rect.X+pt.Rect.W/2, pt.Rect.Y+pt.Rect.H/2) // walking into a portal switches
		var sw struct {
			Map, Addr, Ticket string
		}
		if err := p.conn.RecvType(ctx, "switch", &sw); err != nil {
			p.t.Fatalf("switch to %s: %v", mapID, err)
		}
		if sw.Map != mapID {
			p.t.Fatalf("switch answered map %s, want %s", sw.Map, mapID)
		}
		p.connect(ctx, sw.Addr, sw.Ticket)
		if p.w.Map.ID != mapID {
			p.t.Fatalf("welcome on map %s, want %s", p.w.Map.ID, mapID)
		}
		return
	}
	p.t.Fatalf("no portal to %s on %s", mapID, p.w.Map.ID)
}

func portOf(t *testing.T, addr string) int {
	u, err := url.Parse(addr)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(u.Port())
	return p
}

// seedState gives a player a saved state (hp, inventory) on town before it
// ever enters, so the walk can check that nothing is lost.
func seedState(t *testing.T, st store.Store, uuid string) {
	s := mapserver.State{UUID: uuid, Map: "town", X: 500, Y: 500, HP: 77, Inventory: json.RawMessage(`{"sword":1,"potions":3}`),
		Version: 1, Status: mapserver.StatusOffline, Updated: time.Now().UnixMilli()}
	b, _ := json.Marshal(s)
	if err := st.Add(context.Background(), &store.Item{Key: mapserver.StateKey(uuid), Value: b}); err != nil {
		t.Fatal(err)
	}
}

func (a *Arena) login(t *testing.T, name string) (uuid, token string) {
	var lr struct{ UUID, Token string }
	if code := api(t, a, "POST", "/v1/login", "", map[string]string{"username": name}, &lr); code != 200 {
		t.Fatalf("login: %d", code)
	}
	return lr.UUID, lr.Token
}

// TestMapWalkDoneWhen walks a player town -> forest -> cave -> town on
// three different map server processes and back, state intact.
func TestMapWalkDoneWhen(t *testing.T) {
	a := startArena(t, "dispatcher", "--guest-login", "--min-map-processes", "3", "--maxnum", "50",
		"--map-option", "max-speed=4000", "--map-option", "save-interval=200ms")
	ctx := ctxT(t, 60*time.Second)
	uuid, tok := a.login(t, "walker")
	st := a.store(t)
	seedState(t, st, uuid)
	waitfor.Cond(t, "three map processes", func() bool {
		n := 0
		for _, p := range stat(t, a.Line).Processes {
			if p.Kind == "map" && p.State == hostctl.Ready {
				n++
			}
		}
		return n == 3
	})
	var ans enterAns
	if code := api(t, a, "GET", "/v1/maps/town/enter", tok, nil, &ans); code != 200 {
		t.Fatalf("enter: %d", code)
	}
	if !ans.Resumed || ans.Map != "town" {
		t.Fatalf("enter = %+v; want to resume the saved state on town", ans)
	}
	p := &mapPlayer{t: t}
	p.connect(ctx, ans.Addr, ans.Ticket)
	ports := map[string]int{"town": portOf(t, p.addr)}
	check := func(where string) {
		t.Helper()
		if p.w.You.HP != 77 || string(p.w.You.Inventory) != `{"sword":1,"potions":3}` {
			t.Fatalf("%s: state hp=%d inventory=%s; want 77 and the sword", where, p.w.You.HP, p.w.You.Inventory)
		}
	}
	check("town")
	for _, next := range []string{"forest", "cave", "town"} {
		prev := portOf(t, p.addr)
		p.switchTo(ctx, next)
		check(next)
		cur := portOf(t, p.addr)
		if cur == prev {
			t.Fatalf("%s is on the same process %d as the map before", next, cur)
		}
		if next != "town" {
			ports[next] = cur
		}
		// One owner at a time: the record names the server the player is on.
		s, _, err := mapserver.GetState(ctx, st, uuid)
		if err != nil || s.Map != next || s.Status != mapserver.StatusPlaying || portOf(t, "ws://"+s.Owner) != cur {
			t.Fatalf("record after switch to %s: %+v %v", next, s, err)
		}
	}
	if len(map[int]bool{ports["town"]: true, ports["forest"]: true, ports["cave"]: true}) != 3 {
		t.Fatalf("maps on %v; want three different processes", ports)
	}
	// And back the other way: town -> forest.
	p.switchTo(ctx, "forest")
	check("forest again")
	// A replayed ticket from before fails (stale), and the player stays put.
	old, err := wsconn.DialClient(ctx, ans.Addr+"?ticket="+url.QueryEscape(ans.Ticket), 0)
	if err == nil {
		var e struct{ Code string }
		if err := old.RecvType(ctx, "error", &e); err != nil || (e.Code != "stale_ticket" && e.Code != "wrong_server" && e.Code != "expired_ticket") {
			t.Fatalf("replayed ticket: %+v %v", e, err)
		}
		old.Close(wsconn.CloseNormal, "")
	}
}

// TestMapServerKilled kills the map server a player is on with -9; the
// player re-enters through the dispatcher and gets its last saved state.
func TestMapServerKilled(t *testing.T) {
	a := startArena(t, "dispatcher", "--guest-login", "--min-map-processes", "1", "--maxnum", "50",
		"--map-option", "max-speed=4000", "--map-option", "save-interval=200ms")
	ctx := ctxT(t, 60*time.Second)
	uuid, tok := a.login(t, "survivor")
	st := a.store(t)
	seedState(t, st, uuid)
	var ans enterAns
	waitfor.Cond(t, "enter town", func() bool {
		return api(t, a, "GET", "/v1/maps/town/enter", tok, nil, &ans) == 200
	})
	p := &mapPlayer{t: t}
	p.connect(ctx, ans.Addr, ans.Ticket)
	p.walkTo(600, 650)
	waitfor.Cond(t, "the position saved", func() bool {
		s, _, err := mapserver.GetState(ctx, st, uuid)
		return err == nil && s.X == 600 && s.Y == 650
	})
	port := portOf(t, p.addr)
	pid := pidOf(stat(t, a.Line), port)
	if pid == 0 {
		t.Fatal("no pid for the map server")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.conn.Done():
	case <-ctx.Done():
		t.Fatal("connection survived the kill")
	}
	// Re-enter: at first the dead server's lease may still hold (in_map);
	// then the dispatcher places town on a live process.
	var again enterAns
	waitfor.Cond(t, "re-enter after the crash", func() bool {
		return api(t, a, "GET", "/v1/maps/town/enter", tok, nil, &again) == 200
	})
	if !again.Resumed || again.Map != "town" || portOf(t, again.Addr) == port {
		t.Fatalf("re-enter = %+v (dead port %d)", again, port)
	}
	q := &mapPlayer{t: t}
	q.connect(ctx, again.Addr, again.Ticket)
	if q.w.You.HP != 77 || string(q.w.You.Inventory) != `{"sword":1,"potions":3}` {
		t.Fatalf("state after crash: %+v", q.w.You)
	}
	if math.Hypot(q.w.You.X-600, q.w.You.Y-650) > 1 {
		t.Fatalf("position after crash (%.0f,%.0f), want the last saved (600,650)", q.w.You.X, q.w.You.Y)
	}
}
