package integration

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/arena-game/arena/fleet"
	"github.com/arena-game/arena/hostctl"
	"github.com/arena-game/arena/internal/memcached/mctest"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/internal/wsconn"
)

// storeErrors sums arena_store_errors_total{server=server} on a /metrics
// page.
func storeErrors(t *testing.T, metricsURL, server string) float64 {
	t.Helper()
	return metric(t, metricsURL, `arena_store_errors_total\{op="[^"]*",server="`+regexp.QuoteMeta(server)+`"\}`)
}

// waitReady waits until a process of each kind is ready in a's table.
func waitReady(t *testing.T, a *Arena, kinds ...string) {
	t.Helper()
	waitfor.Cond(t, strings.Join(kinds, ", ")+" ready", func() bool {
		ready := map[string]bool{}
		for _, p := range stat(t, a.Line).Processes {
			if p.State == hostctl.Ready {
				ready[p.Kind] = true
			}
		}
		for _, k := range kinds {
			if !ready[k] {
				return false
			}
		}
		return true
	})
}

// metric sums the series of a /metrics page whose name and labels match
// the pattern.
func metric(t *testing.T, metricsURL, pattern string) float64 {
	t.Helper()
	resp, err := http.Get(metricsURL)
	if err != nil {
		t.Fatalf("GET %s: %v", metricsURL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var sum float64
	for _, m := range regexp.MustCompile(`(?m)^`+pattern+` (\S+)$`).FindAllStringSubmatch(string(b), -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		sum += v
	}
	return sum
}

// TestOneMemcachedDown is the check behind docs/memcached.md's failure
// table: `arena up` on two real memcached servers, one of them killed
// (the one holding the fleet table, the fleet lease and the world chat
// channel's history, chosen through the store prefix), then each process
// is used:
//
//   - dispatcher: stays up and healthy, logins work (players are in the
//     database), `get` still answers from the table in memory, its
//     failed table saves and lease renewals are counted on its /metrics,
//     and it is still serving after several lease periods;
//   - map: entering the map fails with 503 "unavailable" for exactly the
//     players whose map state is on the dead server and works for the
//     others; a player already on the map whose state is there plays on
//     (its failed saves counted on the map server's /metrics) and is
//     refused a portal switch with "unavailable";
//   - chat: a post on world still reaches the other player live; the
//     history write that fails is counted on the chat server's /metrics;
//   - fight: with three bots queueing and playing, rooms keep forming and
//     ending (results go to the database), and the room records and state
//     snapshots on the dead server are failures counted on the fight
//     server's /metrics.
func TestOneMemcachedDown(t *testing.T) {
	mcA := mctest.Start(t)
	mcB := mctest.Start(t)
	servers := []string{mcA.Addr, mcB.Addr}
	ring, err := store.NewKetama(servers)
	if err != nil {
		t.Fatal(err)
	}
	// A prefix that puts the fleet table, the fleet lease and world's
	// history on one server: that one is stopped.
	var prefix, dead string
	for i := 0; ; i++ {
		p := fmt.Sprintf("down%d.%d:", time.Now().UnixNano()%1e6, i)
		if s := ring.Server(p + "fleet:table"); s == ring.Server(p+"chat:history:world") && s == ring.Server(p+fleet.LeaseKey) {
			prefix, dead = p, s
			break
		}
	}
	stop := mcA
	if dead == mcB.Addr {
		stop = mcB
	}
	chatPort := freePort(t)
	a := startArena(t, "up", "--memcache", strings.Join(servers, ","), "--store-prefix", prefix,
		"--chat-port", strconv.Itoa(chatPort), "--credentials", t.TempDir()+"/creds.json", "--bots", "3",
		"--map-option", "max-speed=4000", "--map-option", "save-interval=200ms")
	waitReady(t, a, "fight", "map", "chat")
	chatMetrics := "http://127.0.0.1:" + strconv.Itoa(chatPort) + "/metrics"
	var fightMetrics string
	for _, p := range stat(t, a.Line).Processes {
		if p.Kind == "fight" {
			fightMetrics = "http://127.0.0.1:" + strconv.Itoa(p.Port) + "/metrics"
		}
	}
	roomsEnded := func() float64 { return metric(t, fightMetrics, `arena_game_rooms_ended_total\{[^}]*\}`) }

	// Players log in, and one whose map state lands on the server about
	// to stop enters the map and plays there.
	type player struct{ uuid, token string }
	var players []player
	walker := -1
	for i := range 16 {
		uuid, tok := a.login(t, "p"+strconv.Itoa(i)) // fails the test unless 200
		players = append(players, player{uuid, tok})
		if walker < 0 && ring.Server(prefix+"mapstate:"+uuid) == dead {
			walker = i
		}
	}
	if walker < 0 {
		t.Fatal("no player's map state on the server to stop (2^-16 odds)")
	}
	ctx := ctxT(t, 60*time.Second)
	var ent enterAns
	if code := api(t, a, "POST", "/v1/maps/start/enter", players[walker].token, nil, &ent); code != 200 {
		t.Fatalf("enter map before the stop: %d", code)
	}
	mp := &mapPlayer{t: t}
	mp.connect(ctx, ent.Addr, ent.Ticket)
	defer mp.conn.Close(wsconn.CloseNormal, "")
	mapMetrics := "http://127.0.0.1:" + strconv.Itoa(portOf(t, mp.addr)) + "/metrics"

	stop.Stop()
	t.Logf("stopped memcached %s (fleet table and world history) of %v", dead, servers)

	// Dispatcher.
	if code := api(t, a, "GET", "/healthz", "", nil, nil); code != 200 {
		t.Fatalf("dispatcher /healthz: %d", code)
	}
	for i := range 4 {
		a.login(t, "late"+strconv.Itoa(i)) // the database still answers
	}
	if ans := seed(t, a.Line, "get"); !regexp.MustCompile(`^\d+$`).MatchString(strings.TrimSpace(ans)) {
		t.Fatalf("line protocol get with the table's server down: %q", ans)
	}
	waitfor.Cond(t, "the dispatcher to count a failed table save on "+dead, func() bool {
		return storeErrors(t, "http://"+a.HTTP+"/metrics", dead) > 0
	})

	// Map server: the walker's periodic saves fail and are counted, the
	// walker plays on (a ping is answered), and a portal switch, which
	// must save the state first, is refused with "unavailable".
	waitfor.Cond(t, "the map server to count failed saves on "+dead, func() bool {
		return storeErrors(t, mapMetrics, dead) > 0
	})
	if err := mp.conn.SendJSON(map[string]string{"type": "ping"}); err != nil {
		t.Fatal(err)
	}
	if err := mp.conn.RecvType(ctx, "pong", nil); err != nil {
		t.Fatalf("the walker after failed saves: %v", err)
	}
	pt := mp.w.Map.Portals[0]
	mp.walkTo(pt.Rect.X+pt.Rect.W/2, pt.Rect.Y+pt.Rect.H/2)
	var re *wsconn.RemoteError
	if err := mp.conn.RecvType(ctx, "switch", nil); !errors.As(err, &re) || re.Code != "unavailable" {
		t.Fatalf("switch with the state's server down: %v, want an unavailable error", err)
	}

	// Map: exactly the players whose state is on the dead server are
	// refused, with 503.
	var refused, entered int
	for i, p := range players {
		if i == walker {
			continue
		}
		var ans struct{ Ticket string }
		code := api(t, a, "POST", "/v1/maps/start/enter", p.token, nil, &ans)
		onDead := ring.Server(prefix+"mapstate:"+p.uuid) == dead
		switch {
		case onDead && code == http.StatusServiceUnavailable:
			refused++
		case !onDead && code == http.StatusOK && ans.Ticket != "":
			entered++
		default:
			t.Fatalf("enter map for %s (state on the dead server: %v): %d", p.uuid, onDead, code)
		}
	}
	if refused == 0 || entered == 0 {
		t.Fatalf("enter map: %d refused, %d entered; want both", refused, entered)
	}

	// Chat: live delivery on world works; the history write fails and is
	// counted.
	var cfg struct{ Chat string }
	if code := api(t, a, "GET", "/v1/config", "", nil, &cfg); code != 200 {
		t.Fatalf("/v1/config: %d", code)
	}
	before := storeErrors(t, chatMetrics, dead)
	dial := func(tok string) *wsconn.Client {
		c, err := wsconn.DialClient(ctx, cfg.Chat+"?token="+url.QueryEscape(tok), 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(wsconn.CloseNormal, "") })
		if err := c.RecvType(ctx, "welcome", nil); err != nil {
			t.Fatal(err)
		}
		for {
			var j struct{ Channel string }
			if err := c.RecvType(ctx, "joined", &j); err != nil {
				t.Fatal(err)
			}
			if j.Channel == "world" {
				return c
			}
		}
	}
	ca, cb := dial(players[0].token), dial(players[1].token)
	if err := ca.SendJSON(map[string]string{"type": "post", "channel": "world", "text": "still here"}); err != nil {
		t.Fatal(err)
	}
	for {
		var m struct{ Text string }
		if err := cb.RecvType(ctx, "message", &m); err != nil {
			t.Fatalf("chat message with world's history server down: %v", err)
		}
		if m.Text == "still here" {
			break
		}
	}
	waitfor.Cond(t, "the chat server to count the failed history write on "+dead, func() bool {
		return storeErrors(t, chatMetrics, dead) > before
	})
	// Fight: the bots' rooms keep ending, and the fight server counts the
	// failures of records on the dead server.
	ended := roomsEnded()
	waitfor.Cond(t, "three more bot rooms to end", func() bool { return roomsEnded() >= ended+3 })
	waitfor.Cond(t, "the fight server to count a failure on "+dead, func() bool {
		return storeErrors(t, fightMetrics, dead) > 0
	})
	// The lease's server has been down for longer than a lease period (3 s,
	// one renewal a second): the dispatcher counts the failed renewals and
	// keeps serving (it stopped itself after one period before).
	waitfor.Cond(t, "four failed lease renewals counted", func() bool {
		return metric(t, "http://"+a.HTTP+"/metrics", `arena_fleet_lease_renew_failures_total`) >= 4
	})
	if code := api(t, a, "GET", "/healthz", "", nil, nil); code != 200 {
		t.Fatalf("dispatcher /healthz at the end: %d", code)
	}
	for _, p := range stat(t, a.Line).Processes {
		if p.State != hostctl.Ready {
			t.Fatalf("process %s:%d is %s with one memcached down", p.Kind, p.Port, p.State)
		}
	}
}
