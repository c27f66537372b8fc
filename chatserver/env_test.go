package chatserver

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/internal/store/storetest"
	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/internal/wsconn"
)

const (
	testSecret   = "chat-test-secret"
	testOperator = "chat-test-operator"
)

// testEnv is one in-process chat server on 127.0.0.1:0 with real WebSocket
// clients.
type testEnv struct {
	t      *testing.T
	srv    *Server
	st     store.Store
	signer *auth.Signer
	addr   string
	url    string
}

func newEnv(t *testing.T, cfg Config) *testEnv {
	t.Helper()
	return newEnvOn(t, cfg, storetest.New(t))
}

func newEnvOn(t *testing.T, cfg Config, st store.Store) *testEnv {
	t.Helper()
	signer, err := auth.NewSigner(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OperatorToken == "" {
		cfg.OperatorToken = testOperator
	}
	if cfg.OnlineInterval == 0 {
		cfg.OnlineInterval = 50 * time.Millisecond
	}
	srv, err := New(st, signer, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	e := &testEnv{t: t, srv: srv, st: st, signer: signer, addr: ln.Addr().String()}
	e.url = "ws://" + e.addr + "/ws"
	t.Cleanup(func() { e.stop() })
	return e
}

func (e *testEnv) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), waitfor.Deadline())
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		e.t.Errorf("shutdown: %v", err)
	}
}

func (e *testEnv) playerToken(uuid, name string) string {
	e.t.Helper()
	tok, err := e.signer.Mint(auth.KindPlayer, auth.Claims{Subject: uuid, Name: name}, time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func (e *testEnv) roomToken(uuid, room string) string {
	e.t.Helper()
	tok, err := e.signer.Mint(auth.KindRoom, auth.Claims{Subject: uuid, Room: room}, time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// tclient is a test client: a wsconn.Client that remembers who it is.
type tclient struct {
	*wsconn.Client
	t    *testing.T
	uuid string
}

// waitCtx bounds a wait with the shared test deadline.
func waitCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), waitfor.Deadline())
}

// dial connects as uuid (username "name-"+uuid) with query appended to the
// URL, and waits until it is in world and announce.
func (e *testEnv) dial(uuid, query string) *tclient {
	e.t.Helper()
	c := e.dialRaw(uuid, query)
	c.expect("welcome", nil)
	c.expectJoined("world", "announce")
	return c
}

func (e *testEnv) dialRaw(uuid, query string) *tclient {
	e.t.Helper()
	ctx, cancel := waitCtx()
	defer cancel()
	cl, err := wsconn.DialClient(ctx, e.url+"?token="+e.playerToken(uuid, "name-"+uuid)+query, 4096)
	if err != nil {
		e.t.Fatalf("dial %s: %v", uuid, err)
	}
	e.t.Cleanup(func() { cl.Close(wsconn.CloseNormal, "") })
	return &tclient{Client: cl, t: e.t, uuid: uuid}
}

type msg map[string]any

func (m msg) str(k string) string { s, _ := m[k].(string); return s }

func (m msg) from() string {
	f, _ := m["from"].(map[string]any)
	s, _ := f["uuid"].(string)
	return s
}

func (c *tclient) sendJSON(v any) {
	c.t.Helper()
	if err := c.SendJSON(v); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

func (c *tclient) next(ctx context.Context) (msg, error) {
	b, err := c.Recv(ctx)
	if err != nil {
		return nil, err
	}
	var m msg
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// expect reads until a message of type typ for which match (if set) is
// true, skipping others, and returns it. It fails the test after the shared
// deadline (waitfor.Deadline).
func (c *tclient) expect(typ string, match func(msg) bool) msg {
	c.t.Helper()
	ctx, cancel := waitCtx()
	defer cancel()
	for {
		m, err := c.next(ctx)
		if err != nil {
			c.t.Fatalf("%s waiting for %q: %v", c.uuid, typ, err)
		}
		if m.str("type") == typ && (match == nil || match(m)) {
			return m
		}
	}
}

// expectJoined reads until it has seen "joined" and the last "history"
// frame of each channel (channels on different shards may interleave).
func (c *tclient) expectJoined(channels ...string) {
	c.t.Helper()
	joined, done := map[string]bool{}, map[string]bool{}
	ctx, cancel := waitCtx()
	defer cancel()
	for len(done) < len(channels) {
		m, err := c.next(ctx)
		if err != nil {
			c.t.Fatalf("%s waiting to join %v: %v", c.uuid, channels, err)
		}
		switch ch := m.str("channel"); m.str("type") {
		case "joined":
			joined[ch] = true
		case "history":
			if !joined[ch] {
				c.t.Fatalf("%s: history of %s before joined", c.uuid, ch)
			}
			if m["last"] == true {
				done[ch] = true
			}
		}
	}
}

// expectError reads until an error frame and checks its code.
func (c *tclient) expectError(code string) msg {
	c.t.Helper()
	m := c.expect("error", nil)
	if m.str("code") != code {
		c.t.Fatalf("%s: error %q (%s), want %q", c.uuid, m.str("code"), m.str("message"), code)
	}
	return m
}

// roundTrip sends a ping and waits for its pong: everything the server
// sent before it has been read after this returns.
func (c *tclient) roundTrip() []msg {
	c.t.Helper()
	ref := auth.RandomID(4)
	c.sendJSON(map[string]string{"type": "ping", "ref": ref})
	var seen []msg
	ctx, cancel := waitCtx()
	defer cancel()
	for {
		m, err := c.next(ctx)
		if err != nil {
			c.t.Fatalf("%s waiting for pong: %v", c.uuid, err)
		}
		if m.str("type") == "pong" && m.str("ref") == ref {
			return seen
		}
		seen = append(seen, m)
	}
}

// waitClosed waits until the server closes the connection and returns the
// close code.
func (c *tclient) waitClosed() int {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitfor.Deadline())
	defer cancel()
	for {
		_, err := c.Recv(ctx)
		if errors.Is(err, wsconn.ErrPeerClosed) {
			return wsconn.CloseCode(c.CloseErr())
		}
		if err != nil {
			c.t.Fatalf("%s: not closed: %v", c.uuid, err)
		}
	}
}

func newSignerForTest() (*auth.Signer, error) { return auth.NewSigner(testSecret) }
