// Package sdktest runs a game on a real sdk.Server for tests: rooms are
// assigned directly (no dispatcher), players are real WebSocket clients
// with real room tickets, and the store is in memory (or the memcached of
// ARENA_TEST_MEMCACHE). Every wait is bounded by Wait and fails the test.
//
//	env := sdktest.New(t, mygame.Game{}, sdk.Config{})
//	room := env.Room(2)
//	a, b := env.Join(room, 0), env.Join(room, 1)
//	a.Send(`{"type":"move","x":1}`)
//	b.Expect("moved")
package sdktest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/records"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/internal/store/storetest"
	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/internal/wsconn"
	"github.com/arena-game/arena/sdk"
)

// Secret is the cluster secret test tickets are signed with.
const Secret = "sdktest-secret"

// Wait bounds every wait of this package: the shared test deadline
// (internal/waitfor: 30 s, or ARENA_TEST_WAIT), generous enough for a
// loaded machine under the race detector.
var Wait = waitfor.Deadline()

// Env is one game server under test.
type Env struct {
	T        testing.TB
	Server   *sdk.Server
	Store    store.Store
	Signer   *auth.Signer
	Reporter *sdk.MemReporter
	// URL is the server's ws://host:port/ws.
	URL string
}

// Options change what New builds.
type Options struct {
	// GameConfig is the game's configuration JSON ("{}" when nil).
	GameConfig []byte
	// Recorder replaces the StoreRecorder.
	Recorder sdk.Recorder
	// Events receives the server's events.
	Events func(sdk.Event)
	// Store replaces the per-test store (to share one between servers).
	Store store.Store
	// Log receives the server's log (nil: discarded).
	Log *slog.Logger
}

// New starts a Server for game on a free loopback port; it is closed when
// the test ends.
func New(t testing.TB, game sdk.Game, cfg sdk.Config, opts ...Options) *Env {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	st := o.Store
	if st == nil {
		st = storetest.New(t)
	}
	signer, err := auth.NewSigner(Secret)
	if err != nil {
		t.Fatal(err)
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	rep := &sdk.MemReporter{}
	srv, err := sdk.New(game, cfg, o.GameConfig, sdk.Deps{Store: st, Signer: signer, Reporter: rep, Recorder: o.Recorder, Events: o.Events, Logger: log})
	if err != nil {
		t.Fatalf("sdktest: new server: %v", err)
	}
	addr, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatalf("sdktest: listen: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return &Env{T: t, Server: srv, Store: st, Signer: signer, Reporter: rep, URL: "ws://" + addr + "/ws"}
}

// Spec returns a room of n players (ratings 1500 unless given), not yet
// assigned.
func Spec(n int, ratings ...int) sdk.RoomSpec {
	r := sdk.RoomSpec{ID: "r" + auth.RandomID(6), Expires: time.Now().Add(time.Hour)}
	for i := range n {
		rating := 1500
		if i < len(ratings) {
			rating = ratings[i]
		}
		r.Players = append(r.Players, sdk.PlayerSpec{UUID: auth.NewUUID(), Username: fmt.Sprintf("p%d", i), Photo: fmt.Sprintf("https://img.example/%d.png", i), Rating: rating})
	}
	return r
}

// Room assigns a room of n players (see Spec) and returns it.
func (e *Env) Room(n int, ratings ...int) sdk.RoomSpec {
	e.T.Helper()
	r := Spec(n, ratings...)
	e.Assign(r)
	return r
}

// Assign assigns r, failing the test on an error.
func (e *Env) Assign(r sdk.RoomSpec) {
	e.T.Helper()
	if _, err := e.Server.AssignRoom(context.Background(), r); err != nil {
		e.T.Fatalf("sdktest: assign room: %v", err)
	}
}

// Ticket mints member i's room ticket.
func (e *Env) Ticket(r sdk.RoomSpec, i int) string {
	e.T.Helper()
	p := r.Players[i]
	tok, err := e.Signer.Mint(auth.KindRoom, auth.Claims{Subject: p.UUID, Name: p.Username, Photo: p.Photo, Room: r.ID, Addr: e.URL}, time.Hour)
	if err != nil {
		e.T.Fatal(err)
	}
	return tok
}

// Dial connects with ticket (its refusal, if any, arrives as a message).
func (e *Env) Dial(ticket string) *Client {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	cl, err := wsconn.DialClient(ctx, e.URL+"?ticket="+ticket, 4096)
	if err != nil {
		e.T.Fatalf("sdktest: dial: %v", err)
	}
	e.T.Cleanup(func() { cl.Close(wsconn.CloseNormal, "") })
	return &Client{Client: cl, T: e.T}
}

// Join connects member i of r with its ticket.
func (e *Env) Join(r sdk.RoomSpec, i int) *Client {
	e.T.Helper()
	return e.Dial(e.Ticket(r, i))
}

// Rating returns uuid's stored rating, games and wins (ok false: no record).
func (e *Env) Rating(uuid string) (rating, games, wins int, ok bool) {
	p, _, err := records.GetPlayer(context.Background(), e.Store, uuid)
	if err != nil {
		return 0, 0, 0, false
	}
	return p.Rating, p.Games, p.Wins, true
}

// Metrics returns the server's /metrics page.
func (e *Env) Metrics() string {
	e.T.Helper()
	resp, err := http.Get("http://" + e.Server.Addr() + "/metrics")
	if err != nil {
		e.T.Fatalf("sdktest: metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// FreePort returns a loopback port that was free a moment ago (a process
// started on it may still find it taken: retry on ErrPortInUse).
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Msg is one received JSON message.
type Msg map[string]any

// Str returns field k as a string ("" if not one).
func (m Msg) Str(k string) string { s, _ := m[k].(string); return s }

// Num returns field k as a number (0 if not one).
func (m Msg) Num(k string) float64 { f, _ := m[k].(float64); return f }

// List returns field k as a list of objects.
func (m Msg) List(k string) []Msg {
	var out []Msg
	l, _ := m[k].([]any)
	for _, v := range l {
		if o, ok := v.(map[string]any); ok {
			out = append(out, Msg(o))
		}
	}
	return out
}

// Client is a player's connection.
type Client struct {
	*wsconn.Client
	T testing.TB
}

// Send sends s as one text frame.
func (c *Client) Send(s string) {
	c.T.Helper()
	if err := c.Client.Send([]byte(s)); err != nil {
		c.T.Fatalf("sdktest: send: %v", err)
	}
}

// Sendf sends a formatted message.
func (c *Client) Sendf(format string, a ...any) {
	c.T.Helper()
	c.Send(fmt.Sprintf(format, a...))
}

// SendJSON sends v encoded.
func (c *Client) SendJSON(v any) {
	c.T.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.T.Fatal(err)
	}
	c.Send(string(b))
}

// Next returns the next message and its bytes.
func (c *Client) Next() (Msg, []byte) {
	c.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	b, err := c.Recv(ctx)
	if err != nil {
		c.T.Fatalf("sdktest: recv: %v", err)
	}
	var m Msg
	if err := json.Unmarshal(b, &m); err != nil {
		c.T.Fatalf("sdktest: server sent bad json %q: %v", b, err)
	}
	return m, b
}

// Expect skips messages until one of type typ; an error message fails
// the test unless typ is "error".
func (c *Client) Expect(typ string) Msg {
	c.T.Helper()
	for {
		m, b := c.Next()
		if m.Str("type") == typ {
			return m
		}
		if m.Str("type") == "error" {
			c.T.Fatalf("sdktest: waiting for %q: got %s", typ, b)
		}
	}
}

// ExpectError reads until an error message and checks its code.
func (c *Client) ExpectError(code string) Msg {
	c.T.Helper()
	m := c.Expect("error")
	if m.Str("code") != code {
		c.T.Fatalf("sdktest: error code %q (%s), want %q", m.Str("code"), m.Str("message"), code)
	}
	return m
}

// ExpectClosed waits until the server closed the connection and checks
// the close code (0: any).
func (c *Client) ExpectClosed(code int) {
	c.T.Helper()
	select {
	case <-c.Done():
	case <-time.After(Wait):
		c.T.Fatal("sdktest: connection was not closed")
	}
	if got := wsconn.CloseCode(c.CloseErr()); code != 0 && got != code {
		c.T.Fatalf("sdktest: close code %d (%v), want %d", got, c.CloseErr(), code)
	}
}

// ExpectOpen sends a ping and checks the next message but those of types
// skip is its pong: the connection is open and no error was queued.
func (c *Client) ExpectOpen(skip ...string) {
	c.T.Helper()
	c.Send(`{"type":"ping"}`)
	for {
		m, b := c.Next()
		switch m.Str("type") {
		case "pong":
			return
		case "error":
			c.T.Fatalf("sdktest: unexpected error %s", b)
		}
		ok := false
		for _, s := range skip {
			ok = ok || m.Str("type") == s
		}
		if !ok && len(skip) > 0 {
			c.T.Fatalf("sdktest: unexpected %s before the pong", b)
		}
	}
}
