package bots

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arena-game/arena/fightserver"
	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/internal/wsconn"
	"github.com/arena-game/arena/sdk"
)

// fakeDispatcher implements the dispatcher's player API as docs/PROTOCOL.md
// states it (login, me, /v1/play with queue/queued/match) with a first-come
// matcher of rooms of three, and hosts the rooms on a real fight server, so
// the bots play real fights to real results.
type fakeDispatcher struct {
	t        *testing.T
	operator string
	signer   *auth.Signer
	fight    *sdk.Server
	srv      *httptest.Server
	ws       *wsconn.Server

	// knobs
	tokenTTL     atomic.Int64 // seconds
	refuseLogins atomic.Bool  // answer 401 to logins
	failRooms    atomic.Bool  // answer room_failed instead of match (once per queue)
	inRoomOnce   atomic.Bool  // answer in_room to the next queue
	generation   atomic.Int32 // tokens of older generations are refused
	// loseFirstRoom: the first room's players reach the fight server
	// through a proxy that drops them once all have joined, as if the
	// server died; then each gets a match for the same room again (as
	// the dispatcher sends for a room placed again), without the proxy.
	loseFirstRoom atomic.Bool
	// lateForFirstRoom (with loseFirstRoom): the first room's last member
	// gets its match again only once the room has ended without it.
	lateForFirstRoom atomic.Bool
	firstRoomEnded   chan struct{} // closed when room-1 ends

	endedMu sync.Mutex
	ended   map[string]string // room -> reason, from the fight server's events

	logins  atomic.Int32
	rooms   atomic.Int32
	queues  atomic.Int32
	playsUp atomic.Int32

	mu    sync.Mutex
	queue []*fakeSession
	conns map[*wsconn.Conn]bool
}

type fakeSession struct {
	conn   *wsconn.Conn
	claims auth.Claims
}

func newFakeDispatcher(t *testing.T) *fakeDispatcher {
	t.Helper()
	signer, err := auth.NewSigner("test-secret")
	if err != nil {
		t.Fatal(err)
	}
	d := &fakeDispatcher{t: t, operator: "op-token", signer: signer, conns: map[*wsconn.Conn]bool{}, ended: map[string]string{}, firstRoomEnded: make(chan struct{})}
	fs, err := fightserver.New(fightserver.Config{Config: sdk.Config{RejoinGrace: 2 * time.Second}, Rules: fightserver.Rules{AttackCooldown: 100 * time.Millisecond}},
		sdk.Deps{Store: store.NewMemory(), Signer: signer, Events: d.event})
	if err != nil {
		t.Fatal(err)
	}
	d.fight = fs
	if _, err := fs.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	d.tokenTTL.Store(3600)
	d.ws = wsconn.NewServer(fakePlay{d}, wsconn.Options{})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/login", d.login)
	mux.HandleFunc("GET /v1/me", d.me)
	mux.HandleFunc("GET /v1/play", d.play)
	d.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		d.mu.Lock()
		for c := range d.conns {
			c.Close(wsconn.CloseGoingAway, "test over")
		}
		d.mu.Unlock()
		d.srv.Close()
		_ = fs.Close()
	})
	return d
}

func (d *fakeDispatcher) event(e sdk.Event) {
	if e.Kind == "room_ended" {
		d.endedMu.Lock()
		d.ended[e.Room] = e.Reason
		d.endedMu.Unlock()
		if e.Room == "room-1" {
			close(d.firstRoomEnded)
		}
	}
}

// endReason is how room ended ("" while it runs).
func (d *fakeDispatcher) endReason(room string) string {
	d.endedMu.Lock()
	defer d.endedMu.Unlock()
	return d.ended[room]
}

func writeErr(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"type": "error", "code": code, "message": code})
}

func (d *fakeDispatcher) login(w http.ResponseWriter, r *http.Request) {
	d.logins.Add(1)
	if d.refuseLogins.Load() {
		writeErr(w, http.StatusUnauthorized, "unauthorized")
		return
	}
	var body struct {
		Username string `json:"username"`
		Photo    string `json:"photo"`
		Bot      bool   `json:"bot"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Username == "" {
		writeErr(w, http.StatusBadRequest, "bad_request")
		return
	}
	if body.Bot && r.Header.Get("Authorization") != "Bearer "+d.operator {
		writeErr(w, http.StatusForbidden, "forbidden")
		return
	}
	if !strings.HasPrefix(body.Photo, "http://") {
		writeErr(w, http.StatusBadRequest, "bad_photo")
		return
	}
	id := auth.NewUUID()
	gen := fmt.Sprintf("g%d-%s", d.generation.Load(), auth.RandomID(4))
	tok, _ := d.signer.Mint(auth.KindPlayer, auth.Claims{Subject: id, Name: body.Username, Photo: body.Photo, Bot: body.Bot, ID: gen},
		time.Duration(d.tokenTTL.Load())*time.Second)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"uuid": id, "username": body.Username, "photo": body.Photo, "score": 1500, "bot": body.Bot, "token": tok})
}

func (d *fakeDispatcher) verify(tok string) (auth.Claims, bool) {
	c, err := d.signer.Verify(auth.KindPlayer, tok)
	return c, err == nil && strings.HasPrefix(c.ID, fmt.Sprintf("g%d-", d.generation.Load()))
}

func (d *fakeDispatcher) me(w http.ResponseWriter, r *http.Request) {
	c, ok := d.verify(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	if !ok {
		writeErr(w, http.StatusUnauthorized, "bad_token")
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"uuid": c.Subject, "username": c.Name, "score": 1500})
}

func (d *fakeDispatcher) play(w http.ResponseWriter, r *http.Request) {
	c, ok := d.verify(r.URL.Query().Get("token"))
	if !ok {
		writeErr(w, http.StatusUnauthorized, "bad_token")
		return
	}
	_, _ = d.ws.Upgrade(w, r, &fakeSession{claims: c})
}

type fakePlay struct{ d *fakeDispatcher }

func (h fakePlay) OnOpen(c *wsconn.Conn) {
	s := c.Value.(*fakeSession)
	s.conn = c
	h.d.playsUp.Add(1)
	h.d.mu.Lock()
	h.d.conns[c] = true
	h.d.mu.Unlock()
	_ = c.SendJSON(map[string]any{"type": "welcome", "uuid": s.claims.Subject})
}

func (h fakePlay) OnClose(c *wsconn.Conn, _ error) {
	d := h.d
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.conns, c)
	for i, s := range d.queue {
		if s.conn == c {
			d.queue = append(d.queue[:i], d.queue[i+1:]...)
			break
		}
	}
}

func (h fakePlay) OnMessage(c *wsconn.Conn, data []byte) {
	d := h.d
	s := c.Value.(*fakeSession)
	var m struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(data, &m) != nil || m.Type != "queue" {
		_ = c.SendJSON(map[string]string{"type": "error", "code": "unknown_type", "message": "?"})
		return
	}
	d.queues.Add(1)
	if d.inRoomOnce.CompareAndSwap(true, false) {
		_ = c.SendJSON(map[string]string{"type": "error", "code": "in_room", "message": "last room still running"})
		return
	}
	_ = c.SendJSON(map[string]string{"type": "queued"})
	if d.failRooms.CompareAndSwap(true, false) {
		_ = c.SendJSON(map[string]string{"type": "error", "code": "room_failed", "room": "gone", "message": "fight server died"})
		return
	}
	d.mu.Lock()
	d.queue = append(d.queue, s)
	var room []*fakeSession
	if len(d.queue) >= 3 {
		room, d.queue = append([]*fakeSession(nil), d.queue[:3]...), d.queue[3:]
	}
	d.mu.Unlock()
	if room != nil {
		go d.startRoom(room)
	}
}

func (d *fakeDispatcher) startRoom(members []*fakeSession) {
	id := fmt.Sprintf("room-%d", d.rooms.Add(1))
	fr := sdk.RoomSpec{ID: id, Expires: time.Now().Add(10 * time.Minute)}
	var players []map[string]any
	for _, s := range members {
		fr.Players = append(fr.Players, sdk.PlayerSpec{UUID: s.claims.Subject, Username: s.claims.Name, Rating: 1500, Bot: s.claims.Bot})
		players = append(players, map[string]any{"uuid": s.claims.Subject, "username": s.claims.Name, "score": 1500, "bot": s.claims.Bot})
	}
	if _, err := d.fight.AssignRoom(context.Background(), fr); err != nil {
		d.t.Errorf("assign room: %v", err)
		return
	}
	match := func(addr string, members []*fakeSession) {
		for _, s := range members {
			tok, _ := d.signer.Mint(auth.KindRoom, auth.Claims{Subject: s.claims.Subject, Name: s.claims.Name, Room: id}, 10*time.Minute)
			_ = s.conn.SendJSON(map[string]any{"type": "match", "room": id, "fight": "ws://" + addr + "/ws", "ticket": tok, "players": players})
		}
	}
	if !d.loseFirstRoom.CompareAndSwap(true, false) {
		match(d.fight.Addr(), members)
		return
	}
	p := newDropProxy(d.t, d.fight.Addr(), len(members))
	match(p.addr(), members)
	<-p.full
	p.dropAll()
	if !d.lateForFirstRoom.Load() {
		match(d.fight.Addr(), members)
		return
	}
	last := len(members) - 1
	match(d.fight.Addr(), members[:last])
	<-d.firstRoomEnded
	match(d.fight.Addr(), members[last:])
}

// dropProxy forwards TCP connections to target; full is closed once n
// connections have each brought their client 1 KiB from the server (the
// upgrade, the room's state and its create_player messages: the player
// has joined), and dropAll cuts them all.
type dropProxy struct {
	ln     net.Listener
	target string
	n      int
	full   chan struct{}
	mu     sync.Mutex
	conns  []net.Conn
	ready  int
}

func (p *dropProxy) joined() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ready++; p.ready == p.n {
		close(p.full)
	}
}

func newDropProxy(t *testing.T, target string, n int) *dropProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Error(err)
		return nil
	}
	p := &dropProxy{ln: ln, target: target, n: n, full: make(chan struct{})}
	t.Cleanup(func() { ln.Close(); p.dropAll() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(s, c); s.Close() }()
			go func() {
				var got int
				buf := make([]byte, 4096)
				for {
					k, err := s.Read(buf)
					if k > 0 {
						if _, werr := c.Write(buf[:k]); werr != nil {
							break
						}
						if got < 1024 && got+k >= 1024 {
							p.joined()
						}
						got += k
					}
					if err != nil {
						break
					}
				}
				c.Close()
			}()
		}
	}()
	return p
}

func (p *dropProxy) addr() string { return p.ln.Addr().String() }

func (p *dropProxy) dropAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}
