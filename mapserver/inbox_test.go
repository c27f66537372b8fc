package mapserver

import (
	"bytes"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/internal/wsconn"
)

// recordConn is a clientConn that keeps what it is sent.
type recordConn struct {
	mu   sync.Mutex
	msgs [][]byte
}

func (c *recordConn) Send(b []byte) error {
	c.mu.Lock()
	c.msgs = append(c.msgs, append([]byte(nil), b...))
	c.mu.Unlock()
	return nil
}
func (c *recordConn) SendJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.Send(b)
}
func (c *recordConn) SendNow(msgs ...[]byte) error {
	for _, m := range msgs {
		_ = c.Send(m)
	}
	return nil
}
func (c *recordConn) Close(uint16, string) {}

func (c *recordConn) count(sub string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, m := range c.msgs {
		if bytes.Contains(m, []byte(sub)) {
			n++
		}
	}
	return n
}

// TestStalledInstanceNeverBlocksSenders: a map instance whose goroutine
// does not run (stuck, or not yet started) never blocks the connection
// goroutines that post to it. Switches past the inbox's capacity and
// moves past the pending-move cap are refused with "busy"; the player's
// leave still gets in.
func TestStalledInstanceNeverBlocksSenders(t *testing.T) {
	signer, _ := auth.NewSigner("x")
	s, err := New(Deps{Store: store.NewMemory(), Signer: signer, World: DefaultWorld(), Config: Config{MaxMsgRate: 1e9}})
	if err != nil {
		t.Fatal(err)
	}
	in := newInstance(s, s.world.Map("town")) // its goroutine never runs
	conn := &recordConn{}
	sess := &session{srv: s, conn: conn, inst: in, joined: true, limit: newMsgLimiter(1e9),
		claims: auth.Claims{Subject: "p1", Name: "p1"}}
	sess.leave = in.inbox.Reserve() // as join takes it
	c := &wsconn.Conn{Value: sess}
	done := make(chan struct{})
	go func() {
		defer close(done)
		h := handler{s}
		for i := 0; i < 6000; i++ {
			h.OnMessage(c, []byte(`{"type":"switch","map":"forest"}`))
		}
		for i := 0; i < 10000; i++ {
			h.OnMessage(c, []byte(`{"type":"move","x":10,"y":10}`))
		}
	}()
	waitfor.Within(t, 10*time.Second, "16,000 messages posted to a stalled instance", func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	})
	if conn.count(`"code":"busy"`) == 0 {
		t.Fatal("no busy error for messages past the instance's capacity")
	}
	if in.inbox.Len() != inboxSize || in.moves.Len() != maxPendingMoves {
		t.Fatalf("queued %d inbox messages and %d moves, want %d and %d", in.inbox.Len(), in.moves.Len(), inboxSize, maxPendingMoves)
	}
	handler{s}.OnClose(c, nil)
	msgs := in.inbox.Take(nil)
	if len(msgs) != inboxSize+1 {
		t.Fatalf("%d inbox messages after the leave, want %d", len(msgs), inboxSize+1)
	}
	if _, ok := msgs[inboxSize].(leaveMsg); !ok {
		t.Fatalf("last inbox message %T, want the leave", msgs[inboxSize])
	}
}
