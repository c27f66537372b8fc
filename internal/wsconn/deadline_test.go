package wsconn

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/waitfor"
)

// holder keeps the server side of each connection for the test to drive.
type holder struct{ conns chan *Conn }

func (h holder) OnOpen(c *Conn)          { h.conns <- c }
func (h holder) OnMessage(*Conn, []byte) {}
func (h holder) OnClose(*Conn, error)    {}

// TestDirectWriteAfterQueuedWriteDeadline checks that a write deadline the
// flush goroutine set for a queued frame (here a ping) does not fail a
// later direct write (SendNow, WriteNow) once it has passed: direct writes
// never block, and the connection must stay open.
func TestDirectWriteAfterQueuedWriteDeadline(t *testing.T) {
	old := writeTimeout
	writeTimeout = 100 * time.Millisecond
	t.Cleanup(func() { writeTimeout = old })
	for _, writeNow := range []bool{false, true} {
		h := holder{conns: make(chan *Conn, 1)}
		srv := NewServer(h, Options{WriteNow: writeNow})
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = srv.Upgrade(w, r, nil)
		}))
		ctx, cancel := context.WithTimeout(context.Background(), waitfor.Deadline())
		cl, err := DialClient(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), 0)
		if err != nil {
			t.Fatal(err)
		}
		c := <-h.conns
		c.enqueueFrames(opPing, false, nil) // through the flush goroutine: sets a write deadline
		waitfor.Cond(t, "the flush done and its write deadline passed", func() bool {
			c.w.mu.Lock()
			defer c.w.mu.Unlock()
			return !c.w.busy && !c.w.deadline.IsZero() && time.Now().After(c.w.deadline)
		})
		send := func(b []byte) error { return c.SendNow(b) }
		if writeNow {
			send = c.Send
		}
		for _, m := range []string{"one", "two"} {
			if err := send([]byte(m)); err != nil {
				t.Fatalf("WriteNow %v: send %s: %v", writeNow, m, err)
			}
			b, err := cl.Recv(ctx)
			if err != nil || string(b) != m {
				t.Fatalf("WriteNow %v: got %q, %v; want %q (closed: %v)", writeNow, b, err, m, cl.CloseErr())
			}
		}
		if c.Closed() {
			t.Fatalf("WriteNow %v: the connection closed", writeNow)
		}
		cancel()
		hs.Close()
	}
}

// TestUpgradeLeavesHTTPDeadlinesBehind: an HTTP server's read and write
// timeouts (which net/http leaves on a hijacked connection) do not cut off
// a WebSocket once upgraded. (gws's handshake clears them; every arena
// HTTP server has such timeouts, internal/httpguard.)
func TestUpgradeLeavesHTTPDeadlinesBehind(t *testing.T) {
	const httpTimeout = 200 * time.Millisecond
	for _, writeNow := range []bool{false, true} {
		h := holder{conns: make(chan *Conn, 1)}
		srv := NewServer(h, Options{WriteNow: writeNow})
		hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = srv.Upgrade(w, r, nil)
		}))
		hs.Config.ReadTimeout, hs.Config.WriteTimeout = httpTimeout, httpTimeout
		hs.Start()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cl, err := DialClient(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), 0)
		if err != nil {
			t.Fatal(err)
		}
		c := <-h.conns
		upgraded := time.Now()
		waitfor.Cond(t, "the HTTP server's timeouts to pass", func() bool { return time.Since(upgraded) > 3*httpTimeout })
		if err := c.Send([]byte("late")); err != nil {
			t.Fatalf("WriteNow %v: send: %v", writeNow, err)
		}
		if b, err := cl.Recv(ctx); err != nil || string(b) != "late" {
			t.Fatalf("WriteNow %v: got %q, %v (closed: %v)", writeNow, b, err, cl.CloseErr())
		}
		if c.Closed() {
			t.Fatalf("WriteNow %v: the connection closed", writeNow)
		}
		cancel()
		hs.Close()
	}
}
