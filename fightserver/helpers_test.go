package fightserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/internal/wsconn"
	"github.com/arena-game/arena/sdk"
	"github.com/arena-game/arena/sdk/sdktest"
)

const testSecret = "fight-test-secret"

// wait is the failure guard for every receive (the shared test deadline);
// tests never depend on speed.
var wait = waitfor.Deadline()

type env struct {
	t      *testing.T
	se     *sdktest.Env
	srv    *sdk.Server
	st     store.Store
	signer *auth.Signer
	ended  *endedLog
	addr   string
	url    string
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newEnv runs the fight on a real server (sdktest), rules from cfg.
func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	ended := &endedLog{}
	if cfg.AttackRange == 0 {
		cfg.AttackRange = 100000 // the range has its own tests
	}
	cfg.Config.Game = Name
	se := sdktest.New(t, NewGame(cfg.Rules), cfg.Config, sdktest.Options{Events: ended.add, Log: quietLogger()})
	return &env{t: t, se: se, srv: se.Server, st: se.Store, signer: se.Signer, ended: ended, addr: se.Server.Addr(), url: se.URL}
}

// newRoom assigns a room with one player per score (1500 each if none).
func (e *env) newRoom(scores ...int) sdk.RoomSpec {
	e.t.Helper()
	if len(scores) == 0 {
		scores = []int{1500, 1500}
	}
	r := sdktest.Spec(len(scores), scores...)
	e.se.Assign(r)
	return r
}

func (e *env) ticket(r sdk.RoomSpec, i int) string { return e.se.Ticket(r, i) }

func (e *env) dial(tok string) *wsconn.Client { return e.se.Dial(tok).Client }

// join dials member i and reads its state message.
func (e *env) join(r sdk.RoomSpec, i int) *wsconn.Client {
	e.t.Helper()
	cl := e.dial(e.ticket(r, i))
	expect(e.t, cl, "state")
	return cl
}

type msg map[string]any

func (m msg) str(k string) string { s, _ := m[k].(string); return s }
func (m msg) num(k string) float64 {
	f, _ := m[k].(float64)
	return f
}

// recv returns the next message.
func recv(t *testing.T, cl *wsconn.Client) (msg, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	b, err := cl.Recv(ctx)
	if err != nil {
		t.Fatalf("recv: %v", err)
	}
	var m msg
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("server sent bad json %q: %v", b, err)
	}
	return m, b
}

// expect skips messages until one of type typ; an error message fails the
// test unless typ is "error".
func expect(t *testing.T, cl *wsconn.Client, typ string) msg {
	t.Helper()
	for {
		m, b := recv(t, cl)
		if m.str("type") == typ {
			return m
		}
		if m.str("type") == "error" {
			t.Fatalf("waiting for %q: got %s", typ, b)
		}
	}
}

// expectError reads until an error message and checks its code.
func expectError(t *testing.T, cl *wsconn.Client, code string) msg {
	t.Helper()
	m := expect(t, cl, "error")
	if m.str("code") != code {
		t.Fatalf("error code %q (%s), want %q", m.str("code"), m.str("message"), code)
	}
	return m
}

// expectClosed waits for the server to close cl and checks the close code
// (0: any).
func expectClosed(t *testing.T, cl *wsconn.Client, code int) {
	t.Helper()
	select {
	case <-cl.Done():
	case <-time.After(wait):
		t.Fatal("connection was not closed")
	}
	if got := wsconn.CloseCode(cl.CloseErr()); code != 0 && got != code {
		t.Fatalf("close code %d (%v), want %d", got, cl.CloseErr(), code)
	}
}

// expectNoError sends a ping and checks the next message is its pong: the
// connection is open and nothing (no error) was queued before it.
func expectOpen(t *testing.T, cl *wsconn.Client) {
	t.Helper()
	send(t, cl, `{"type":"ping"}`)
	for {
		m, b := recv(t, cl)
		switch m.str("type") {
		case "pong":
			return
		case "error":
			t.Fatalf("unexpected error %s", b)
		}
	}
}

func send(t *testing.T, cl *wsconn.Client, s string) {
	t.Helper()
	if err := cl.Send([]byte(s)); err != nil {
		t.Fatalf("send: %v", err)
	}
}

func sendf(t *testing.T, cl *wsconn.Client, format string, a ...any) {
	t.Helper()
	send(t, cl, fmt.Sprintf(format, a...))
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

// ResultPlayer is one member's line in a result message, best placed first.
type ResultPlayer struct {
	UUID     string `json:"uuid"`
	Username string `json:"username"`
	OldScore int    `json:"old_score"`
	NewScore int    `json:"new_score"`
	HP       int    `json:"hp"`
	Place    int    `json:"place"`
}

// Result is the {"type":"result"} message sent when a room ends.
type Result struct {
	Type    string         `json:"type"`
	Room    string         `json:"room"`
	Winner  string         `json:"winner"`
	Reason  string         `json:"reason"`
	Players []ResultPlayer `json:"players"`
}

// endedLog records the rooms whose end a server told its host, and the
// seats rooms asked the queue for.
type endedLog struct {
	mu     sync.Mutex
	rooms  []string
	wanted []sdk.Event
}

func (l *endedLog) add(ev sdk.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch ev.Kind {
	case "room_ended":
		l.rooms = append(l.rooms, ev.Room)
	case "backfill_wanted":
		l.wanted = append(l.wanted, ev)
	}
}

// asked returns the open seats of each backfill_wanted of room, in order.
func (l *endedLog) asked(room string) []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []int
	for _, ev := range l.wanted {
		if ev.Room == room {
			out = append(out, ev.Open)
		}
	}
	return out
}

func (l *endedLog) got() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.rooms...)
}

// readResult reads until the result message and decodes it.
func readResult(t *testing.T, cl *wsconn.Client) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var res Result
	if err := cl.RecvType(ctx, "result", &res); err != nil {
		t.Fatalf("result: %v", err)
	}
	return res
}
