package mapserver

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/internal/wsconn"
	"github.com/arena-game/arena/internal/wsconn/wsconntest"
)

// plainWorld is one big map with no portals, for interest tests.
func plainWorld(t *testing.T) *World {
	w, err := ParseWorld([]byte(`{"maps":[{"id":"plain","width":3000,"height":3000,"spawn":{"x":1500,"y":1500}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// view tracks what one client has been told about the others.
type view struct {
	seen  map[string]Point
	names map[string]string
	msgs  []map[string]any
}

type wirePlayer struct {
	ID   string  `json:"id"`
	Name string  `json:"name"`
	X    float64 `json:"x"`
	Y    float64 `json:"y"`
}

func (v *view) apply(t *testing.T, b []byte) {
	var m struct {
		Type    string       `json:"type"`
		Players []wirePlayer `json:"players"`
		IDs     []string     `json:"ids"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("bad server json %q: %v", b, err)
	}
	switch m.Type {
	case "enter":
		for _, p := range m.Players {
			if _, dup := v.seen[p.ID]; dup {
				t.Fatalf("enter for %s already in view", p.ID)
			}
			v.seen[p.ID] = Point{p.X, p.Y}
			v.names[p.ID] = p.Name
		}
	case "leave":
		for _, id := range m.IDs {
			if _, ok := v.seen[id]; !ok {
				t.Fatalf("leave for %s not in view", id)
			}
			delete(v.seen, id)
		}
	case "positions":
		for _, p := range m.Players {
			if _, ok := v.seen[p.ID]; !ok {
				t.Fatalf("position of %s not in view", p.ID)
			}
			v.seen[p.ID] = Point{p.X, p.Y}
		}
	}
}

func newView() *view { return &view{seen: map[string]Point{}, names: map[string]string{}} }

// until reads cl's messages into v until cond holds.
func (v *view) until(t *testing.T, cl *wsconn.Client, what string, cond func(*view) bool) {
	t.Helper()
	ctx := ctxT(t, waitfor.Deadline())
	for !cond(v) {
		b, err := cl.Recv(ctx)
		if err != nil {
			t.Fatalf("waiting for %s: %v (view %v)", what, err, v.seen)
		}
		v.apply(t, b)
	}
}

// drain reads and applies whatever arrives for d.
func (v *view) drain(t *testing.T, cl *wsconn.Client, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		b, err := cl.Recv(ctx)
		if err != nil {
			return
		}
		v.apply(t, b)
	}
}

// discard reads and drops cl's messages until it closes.
func discard(cl *wsconn.Client) {
	go func() {
		for {
			if _, err := cl.Recv(context.Background()); err != nil {
				return
			}
		}
	}()
}

func TestInterestArea(t *testing.T) {
	cfg := fastCfg
	cfg.ViewRadius = 100
	c := newCluster(t, 1, plainWorld(t), cfg)
	c.place("plain", 0)
	a, b, far := newPlayer("a"), newPlayer("b"), newPlayer("far")
	ca, _ := c.join(a, "plain")
	cb, _ := c.join(b, "plain")
	cf, _ := c.join(far, "plain")
	discard(cb)
	discard(cf)
	move(t, ca, 100, 100)
	move(t, cb, 150, 100)
	move(t, cf, 2900, 2900)
	va := newView()
	va.until(t, ca, "b in view at its spot", func(v *view) bool { p, ok := v.seen[b.Subject]; return ok && p == (Point{150, 100}) })
	if va.names[b.Subject] != "b" {
		t.Fatalf("enter name %q", va.names[b.Subject])
	}
	// Everyone else keeps moving far away: a hears nothing of them.
	others := make([]*wsconn.Client, 20)
	for i := range others {
		others[i], _ = c.join(newPlayer(fmt.Sprint("crowd", i)), "plain")
		discard(others[i])
	}
	for step := 0; step < 5; step++ {
		for i, o := range others {
			move(t, o, 2000+float64(i*20), 2000+float64(step*10))
		}
		c.waitTicks(2) // the moves of each step land in a tick of their own
	}
	move(t, cb, 140, 100)
	va.until(t, ca, "b's position", func(v *view) bool { return v.seen[b.Subject] == Point{140, 100} })
	va.drain(t, ca, 5*cfg.Tick)
	if len(va.seen) != 1 {
		t.Fatalf("a sees %d players, want only b: %v", len(va.seen), va.seen)
	}
	// b walks out of view, far walks in.
	move(t, cb, 400, 100)
	va.until(t, ca, "b leaves", func(v *view) bool { _, ok := v.seen[b.Subject]; return !ok })
	move(t, cf, 120, 130)
	va.until(t, ca, "far enters", func(v *view) bool { return v.seen[far.Subject] == Point{120, 130} })
}

func TestInterestAreaCapped(t *testing.T) {
	cfg := fastCfg
	cfg.ViewRadius = 100
	cfg.MaxVisible = 3
	c := newCluster(t, 1, plainWorld(t), cfg)
	c.place("plain", 0)
	ca, w := c.join(newPlayer("a"), "plain")
	va := newView()
	for i := 0; i < 8; i++ {
		cl, _ := c.join(newPlayer(fmt.Sprint("n", i)), "plain")
		discard(cl)
		move(t, cl, w.You.X+float64(i+1)*5, w.You.Y)
	}
	va.until(t, ca, "three in view", func(v *view) bool { return len(v.seen) == 3 })
	va.drain(t, ca, 10*cfg.Tick)
	if len(va.seen) != 3 {
		t.Fatalf("a sees %d players with max-visible 3", len(va.seen))
	}
}

func TestMoveChecks(t *testing.T) {
	cfg := fastCfg
	cfg.MaxSpeed = 100 // 100*MoveBurst units banked at most
	c := newCluster(t, 1, nil, cfg)
	c.place("town", 0)
	mover, watcher := newPlayer("mover"), newPlayer("watcher")
	cm, w := c.join(mover, "town")
	cw, _ := c.join(watcher, "town")
	x0, y0 := w.You.X, w.You.Y

	move(t, cm, x0+400, y0) // teleport
	e := expectError(t, cm, CodeTooFast)
	if e.X == nil || *e.X != x0 || *e.Y != y0 {
		t.Fatalf("too_fast kept position %v,%v, want %v,%v", e.X, e.Y, x0, y0)
	}
	for _, pt := range [][2]float64{{-1, y0}, {x0, -0.5}, {1000.5, y0}, {x0, 5000}} {
		move(t, cm, pt[0], pt[1])
		e := expectError(t, cm, CodeOutOfBounds)
		if *e.X != x0 || *e.Y != y0 {
			t.Fatalf("out_of_bounds moved the player to %v,%v", *e.X, *e.Y)
		}
	}
	// A legal step is seen by the watcher.
	move(t, cm, x0+20, y0)
	vw := newView()
	vw.until(t, cw, "legal move seen", func(v *view) bool { return v.seen[mover.Subject] == Point{x0 + 20, y0} })
	// However long the player waited, at most max-speed*MoveBurst is banked.
	move(t, cm, x0+20+100*MoveBurst+30, y0)
	e = expectError(t, cm, CodeTooFast)
	if *e.X != x0+20 {
		t.Fatalf("too_fast after a wait kept x=%v, want %v", *e.X, x0+20)
	}
}

func TestSwitchRefusals(t *testing.T) {
	c := newCluster(t, 2, nil, fastCfg)
	c.place("town", 0)
	c.place("forest", 1)
	p := newPlayer("p")
	cl, _ := c.join(p, "town")
	send(t, cl, map[string]string{"type": "switch", "map": "atlantis"})
	expectError(t, cl, CodeUnknownMap)
	send(t, cl, map[string]string{"type": "switch", "map": "../../etc"})
	expectError(t, cl, CodeUnknownMap)
	send(t, cl, map[string]string{"type": "switch", "map": "cave"}) // no portal town -> cave
	expectError(t, cl, CodeNoPortal)
	send(t, cl, map[string]string{"type": "switch", "map": "forest"}) // from the spawn, far away
	expectError(t, cl, CodeNotAtPortal)
	send(t, cl, map[string]string{"type": "switch", "map": "town"}) // no portal to itself
	expectError(t, cl, CodeNoPortal)
	send(t, cl, map[string]string{"type": "ping"})
	if err := cl.RecvType(ctxT(t, waitfor.Deadline()), "pong", nil); err != nil {
		t.Fatalf("still playing after refusals: %v", err)
	}
	if rec := c.state(p.Subject); rec.Status != StatusPlaying || rec.Map != "town" {
		t.Fatalf("refused switches changed the record: %+v", rec)
	}
}

// TestRacingSwitches sends two switches at once: one switch answer, one
// ticket that plays, and the player is never on both servers.
func TestRacingSwitches(t *testing.T) {
	c := newCluster(t, 2, nil, fastCfg)
	c.place("town", 0)
	c.place("forest", 1)
	p := newPlayer("p")
	cl, _ := c.join(p, "town")
	move(t, cl, 950, 500) // within reach of the portal to forest
	// The first switch may be answered, and the connection closed, before
	// the others are written: a failed send is part of the race.
	for i := 0; i < 3; i++ {
		_ = cl.SendJSON(map[string]string{"type": "switch", "map": "forest"})
	}
	_ = cl.SendJSON(map[string]any{"type": "move", "x": 980, "y": 500}) // and walk into it too
	switches := 0
	var sw SwitchAnswer
	ctx := ctxT(t, waitfor.Deadline())
	for {
		b, err := cl.Recv(ctx)
		if err != nil {
			break
		}
		var head struct{ Type, Code string }
		_ = json.Unmarshal(b, &head)
		if head.Type == "switch" {
			switches++
			_ = json.Unmarshal(b, &sw)
		} else if head.Type == "error" && head.Code != CodeSwitching {
			t.Fatalf("unexpected error %s", b)
		}
	}
	if switches != 1 {
		t.Fatalf("%d switch answers, want 1", switches)
	}
	welcome(t, dial(t, sw.Addr, sw.Ticket))
	waitfor.Cond(t, "one owner", func() bool { l := c.load(); return l[0] == 0 && l[1] == 1 })
}

func TestTicketRefusals(t *testing.T) {
	c := newCluster(t, 2, nil, fastCfg)
	c.place("town", 0)
	c.place("forest", 1)
	addr0 := c.servers[0].Addr()
	url0 := WebSocketURL(addr0)
	p := newPlayer("p")
	ans := c.enter(p, "town")
	rec := c.state(p.Subject)
	good := auth.Claims{Subject: p.Subject, Name: "p", Map: "town", Addr: addr0, Version: rec.Version}

	other, _ := auth.NewSigner("some-other-secret")
	forged, _ := other.Mint(auth.KindMap, good, time.Minute)
	playerTok, _ := c.signer.Mint(auth.KindPlayer, auth.Claims{Subject: p.Subject, Name: "p"}, time.Minute)
	roomTok, _ := c.signer.Mint(auth.KindRoom, good, time.Minute)
	expired, _ := c.signer.WithClock(func() time.Time { return time.Now().Add(-time.Hour) }).Mint(auth.KindMap, good, time.Minute)
	elsewhere := good
	elsewhere.Addr = c.servers[1].Addr()
	otherServer, _ := c.signer.Mint(auth.KindMap, elsewhere, time.Minute)
	nowhere := good
	nowhere.Map = "atlantis"
	unknownMap, _ := c.signer.Mint(auth.KindMap, nowhere, time.Minute)
	wrongMap := good
	wrongMap.Map = "forest"
	wrongMapTok, _ := c.signer.Mint(auth.KindMap, wrongMap, time.Minute)
	future := good
	future.Version += 7
	futureTok, _ := c.signer.Mint(auth.KindMap, future, time.Minute)
	// Tampered: a valid ticket's payload swapped for another player's.
	pl, sig, _ := strings.Cut(ans.Ticket, ".")
	_ = pl
	tampered := "eyJrIjoibWFwIiwic3ViIjoieCJ9." + sig
	dotted := good
	dotted.Subject = "p.q" // a valid store key, but not an arena id
	dottedTok, _ := c.signer.Mint(auth.KindMap, dotted, time.Minute)

	cases := []struct{ name, ticket, code string }{
		{"none", "", CodeBadTicket},
		{"garbage", "not-a-ticket", CodeBadTicket},
		{"oversized", strings.Repeat("a", 5000), CodeBadTicket},
		{"forged", forged, CodeBadTicket},
		{"tampered", tampered, CodeBadTicket},
		{"player token", playerTok, CodeBadTicket},
		{"room token", roomTok, CodeBadTicket},
		{"expired", expired, CodeExpiredTicket},
		{"other server", otherServer, CodeWrongServer},
		{"unknown map", unknownMap, CodeUnknownMap},
		{"map the record is not going to", wrongMapTok, CodeStaleTicket},
		{"future version", futureTok, CodeStaleTicket},
		{"subject not an id", dottedTok, CodeBadTicket},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl := dial(t, url0, tc.ticket)
			expectError(t, cl, tc.code)
			expectClosed(t, cl)
		})
	}
	// The real ticket still works after all that, once.
	cl := dial(t, ans.Addr, ans.Ticket)
	welcome(t, cl)
	replay := dial(t, ans.Addr, ans.Ticket)
	var e errMsg
	if err := replay.RecvType(ctxT(t, waitfor.Deadline()), "error", &e); err != nil || (e.Code != CodeAlreadyClaimed && e.Code != CodeStaleTicket) {
		t.Fatalf("replay while playing: %+v %v", e, err)
	}
	send(t, cl, map[string]string{"type": "ping"})
	if err := cl.RecvType(ctxT(t, waitfor.Deadline()), "pong", nil); err != nil {
		t.Fatalf("replay disturbed the owner: %v", err)
	}
	// Walk to the forest; the town ticket is now stale on every server,
	// and the forest ticket only works on the forest's server.
	move(t, cl, 980, 500)
	var sw SwitchAnswer
	if err := cl.RecvType(ctxT(t, waitfor.Deadline()), "switch", &sw); err != nil {
		t.Fatal(err)
	}
	old := dial(t, ans.Addr, ans.Ticket)
	expectError(t, old, CodeStaleTicket)
	wrong := dial(t, url0, sw.Ticket)
	expectError(t, wrong, CodeWrongServer)
	welcome(t, dial(t, sw.Addr, sw.Ticket))
	again := dial(t, sw.Addr, sw.Ticket)
	if err := again.RecvType(ctxT(t, waitfor.Deadline()), "welcome", nil); remoteCode(err) != CodeAlreadyClaimed && remoteCode(err) != CodeStaleTicket {
		t.Fatalf("second use of a switch ticket: %v", err)
	}
	waitfor.Cond(t, "player on the forest server only", func() bool { l := c.load(); return l[0] == 0 && l[1] == 1 })
}

// TestSupersededTicket: a later Enter makes the earlier ticket stale.
func TestSupersededTicket(t *testing.T) {
	c := newCluster(t, 1, nil, fastCfg)
	c.place("town", 0)
	p := newPlayer("p")
	first := c.enter(p, "town")
	second := c.enter(p, "town")
	expectError(t, dial(t, first.Addr, first.Ticket), CodeStaleTicket)
	welcome(t, dial(t, second.Addr, second.Ticket))
}

func TestMalformedAndOversizedMessages(t *testing.T) {
	c := newCluster(t, 1, nil, fastCfg)
	c.place("town", 0)
	cl, _ := c.join(newPlayer("p"), "town")
	bad := map[string]string{
		`not json`:                               CodeBadMessage,
		`{"type":`:                               CodeBadMessage,
		`[1,2,3]`:                                CodeBadMessage,
		`"move"`:                                 CodeBadMessage,
		`{}`:                                     CodeBadMessage,
		`{"type":"move"}`:                        CodeBadMessage,
		`{"type":"move","x":"1","y":2}`:          CodeBadMessage,
		`{"type":"move","x":1}`:                  CodeBadMessage,
		`{"type":"move","x":1e999,"y":1}`:        CodeBadMessage,
		`{"type":"move","x":null,"y":null}`:      CodeBadMessage,
		`{"type":"switch"}`:                      CodeBadMessage,
		`{"type":"switch","map":7}`:              CodeBadMessage,
		`{"type":7}`:                             CodeBadMessage,
		`{"type":"fly","x":1}`:                   CodeUnknownType,
		`{"type":"welcome"}`:                     CodeUnknownType,
		"{\"type\":\"move\",\"x\":1,\"y\":2\x00": CodeBadMessage,
	}
	for msg, code := range bad {
		if err := cl.Send([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		expectError(t, cl, code)
	}
	send(t, cl, map[string]string{"type": "ping"})
	if err := cl.RecvType(ctxT(t, waitfor.Deadline()), "pong", nil); err != nil {
		t.Fatalf("malformed messages closed the connection: %v", err)
	}
	// Over the 4 KiB limit: closed with 1009, the player saved and gone.
	_ = cl.Send([]byte(`{"type":"move","x":1,"y":1,"pad":"` + strings.Repeat("x", 5000) + `"}`))
	expectClosed(t, cl)
	if code := wsconn.CloseCode(cl.CloseErr()); code != wsconn.CloseTooBig {
		t.Fatalf("close code %d, want %d", code, wsconn.CloseTooBig)
	}
	waitfor.Cond(t, "player removed", func() bool { return c.load()[0] == 0 })
}

func TestRateLimit(t *testing.T) {
	c := newCluster(t, 1, nil, fastCfg)
	c.place("town", 0)
	cl, _ := c.join(newPlayer("p"), "town")
	for i := 0; i < 200; i++ {
		send(t, cl, map[string]string{"type": "ping"})
	}
	expectError(t, cl, CodeRateLimited)
}

// TestSpoofedSenderFields: fields naming someone else are ignored; the
// sender is the ticket holder.
func TestSpoofedSenderFields(t *testing.T) {
	c := newCluster(t, 2, nil, fastCfg)
	c.place("town", 0)
	c.place("forest", 1)
	att, vic, obs := newPlayer("attacker"), newPlayer("victim"), newPlayer("observer")
	ca, wa := c.join(att, "town")
	cv, _ := c.join(vic, "town")
	co, _ := c.join(obs, "town")
	discard(cv)
	vo := newView()
	vo.until(t, co, "both in view", func(v *view) bool { return len(v.seen) == 2 })
	send(t, ca, map[string]any{"type": "move", "x": wa.You.X + 30, "y": wa.You.Y,
		"id": vic.Subject, "uuid": vic.Subject, "name": "victim", "from": vic.Subject})
	vo.until(t, co, "attacker's move", func(v *view) bool { return v.seen[att.Subject] == Point{wa.You.X + 30, wa.You.Y} })
	if vo.seen[vic.Subject] != (Point{wa.You.X, wa.You.Y}) || vo.names[att.Subject] != "attacker" {
		t.Fatalf("spoofed move touched the victim: %v %v", vo.seen, vo.names)
	}
	// A spoofed switch moves the attacker, not the victim.
	send(t, ca, map[string]any{"type": "move", "x": 950, "y": 500})
	send(t, ca, map[string]any{"type": "switch", "map": "forest", "uuid": vic.Subject, "id": vic.Subject})
	var sw SwitchAnswer
	if err := ca.RecvType(ctxT(t, waitfor.Deadline()), "switch", &sw); err != nil {
		t.Fatal(err)
	}
	tk, err := c.signer.Verify(auth.KindMap, sw.Ticket)
	if err != nil || tk.Subject != att.Subject {
		t.Fatalf("switch ticket for %q: %v", tk.Subject, err)
	}
	if rec := c.state(vic.Subject); rec.Status != StatusPlaying || rec.Map != "town" {
		t.Fatalf("victim's record changed: %+v", rec)
	}
}

// TestSlowConsumer: a client that completes the handshake and never reads
// is disconnected once its bounded queue fills; the server stays healthy.
func TestSlowConsumer(t *testing.T) {
	cfg := fastCfg
	cfg.SendQueue = 32
	cfg.Tick = 5 * time.Millisecond
	cfg.MaxMsgRate = 10000
	// Leases long enough that a machine slowed down (the race detector,
	// other tests) never fences the crowd off with ownership_lost: this
	// test is about the slow consumer.
	cfg.SaveInterval = 2 * time.Second
	var accepted atomic.Int32
	c := newClusterTuned(t, 1, plainWorld(t), cfg, func(s *Server) {
		// A small kernel buffer for the slow player's connection (the
		// first), so the server's queue is what fills; the crowd's
		// connections keep theirs, so a crowd reader the race detector
		// slows down is not taken for a slow consumer too.
		s.tuneConn = func(c net.Conn) {
			if accepted.Add(1) == 1 {
				_ = c.(*net.TCPConn).SetWriteBuffer(4096)
			}
		}
	})
	c.place("plain", 0)
	slow := newPlayer("slow")
	ans := c.enter(slow, "plain")
	u, _ := url.Parse(ans.Addr)
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048) })
	}}
	raw, err := d.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	fmt.Fprintf(raw, "GET /ws?ticket=%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", url.QueryEscape(ans.Ticket), u.Host)
	br := bufio.NewReader(raw)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, "101") {
		t.Fatalf("handshake: %q %v", status, err)
	}
	waitfor.Cond(t, "slow player joined", func() bool { return c.state(slow.Subject).Status == StatusPlaying })
	// From here on, never read. A crowd moves around the slow player.
	crowd := make([]*wsconn.Client, 30)
	for i := range crowd {
		crowd[i], _ = c.join(newPlayer(fmt.Sprint("c", i)), "plain")
		discard(crowd[i])
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for step := 0; ; step++ {
			for i, cl := range crowd {
				_ = cl.SendJSON(map[string]any{"type": "move", "x": 1400 + float64(i*5), "y": 1450 + float64(step%20)*5})
			}
			select {
			case <-stop:
				return
			case <-time.After(cfg.Tick):
			}
		}
	}()
	waitfor.Cond(t, "the slow consumer disconnected", func() bool { return c.state(slow.Subject).Status != StatusPlaying })
	if rec := c.state(slow.Subject); rec.Status != StatusOffline {
		t.Fatalf("slow consumer's record: %+v", rec)
	}
	st, _ := c.servers[0].Status(context.Background())
	if st.Load != len(crowd) {
		t.Fatalf("load %d after the slow consumer left, want %d", st.Load, len(crowd))
	}
	// Everyone else still plays.
	send(t, crowd[0], map[string]string{"type": "ping"})
}

// TestTicketHostAliases: a ticket may name this server by any local name
// for its port (the dispatcher uses the host the client reached it on),
// but not another machine's address or another port.
func TestTicketHostAliases(t *testing.T) {
	c := newCluster(t, 1, nil, fastCfg)
	_, port, _ := splitHostPort(c.servers[0].Addr())
	c.routes.set("town", net.JoinHostPort("localhost", fmt.Sprint(port)))
	p := newPlayer("p")
	ans := c.enter(p, "town")
	if !strings.HasPrefix(ans.Addr, "ws://localhost:") {
		t.Fatalf("addr %s", ans.Addr)
	}
	welcome(t, dial(t, ans.Addr, ans.Ticket))
	for _, addr := range []string{net.JoinHostPort("192.0.2.1", fmt.Sprint(port)), net.JoinHostPort("127.0.0.1", fmt.Sprint(port+1))} {
		tk, _ := c.signer.Mint(auth.KindMap, auth.Claims{Subject: auth.NewUUID(), Map: "town", Addr: addr, Version: 1}, time.Minute)
		expectError(t, dial(t, WebSocketURL(c.servers[0].Addr()), tk), CodeWrongServer)
	}
}

// TestPingsCountAgainstTheRateLimit: WebSocket pings spend the
// connection's message budget, and a ping flood closes it with 1008.
func TestPingsCountAgainstTheRateLimit(t *testing.T) {
	cfg := fastCfg
	cfg.MaxMsgRate = 10
	c := newCluster(t, 1, nil, cfg)
	c.place("town", 0)
	p := newPlayer("pinger")
	ans := c.enter(p, "town")
	res, err := wsconntest.PingFlood(ctxT(t, 10*time.Second), ans.Addr+"?ticket="+url.QueryEscape(ans.Ticket), nil, 20000, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.Pongs > 20 || !res.Closed || res.CloseCode != wsconn.ClosePolicy {
		t.Fatalf("ping flood: %+v; want at most the burst answered, then a 1008 close", res)
	}
	// Ten pings spend the second's budget of ten messages: the move after
	// them is refused.
	waitfor.Cond(t, "the flooder's record saved", func() bool { return c.state(p.Subject).Status == StatusOffline })
	ans = c.enter(p, "town")
	res, err = wsconntest.PingFlood(ctxT(t, 10*time.Second), ans.Addr+"?ticket="+url.QueryEscape(ans.Ticket), nil, 10, time.Second,
		`{"type":"move","x":10,"y":10}`)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(res.Texts, func(s string) bool { return strings.Contains(s, `"rate_limited"`) }) {
		t.Fatalf("a move after ten pings: %+v; want rate_limited", res)
	}
}
