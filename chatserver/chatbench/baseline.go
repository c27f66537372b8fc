package chatbench

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/lxzan/gws"
)

// ServeBaseline runs the benchmark's baseline until ctx is done: a bare
// github.com/lxzan/gws server on addr with no auth, channels, history or
// limits, that greets each connection with {"type":"joined","channel":"world"}
// and broadcasts every message it receives to every connection with one
// gws.Broadcaster (the frame is encoded once). It is what the chat server's
// fan-out is compared with; `arena bench chat` runs it as a child process.
func ServeBaseline(ctx context.Context, addr string) error {
	b := &bare{conns: make(map[*gws.Conn]struct{})}
	up := gws.NewUpgrader(b, &gws.ServerOption{
		ReadBufferSize:   4 << 10,
		HandshakeTimeout: 5 * time.Second,
		Recovery:         gws.Recovery,
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/healthz" {
				_, _ = w.Write([]byte("ok\n"))
				return
			}
			c, err := up.Upgrade(w, r)
			if err != nil {
				return
			}
			go c.ReadLoop()
		}),
	}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
		b.closeAll()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

type bare struct {
	mu    sync.RWMutex
	conns map[*gws.Conn]struct{}
}

var hello = []byte(`{"type":"joined","channel":"world"}`)

func (b *bare) OnOpen(c *gws.Conn) {
	b.mu.Lock()
	b.conns[c] = struct{}{}
	b.mu.Unlock()
	_ = c.WriteMessage(gws.OpcodeText, hello)
}

func (b *bare) OnClose(c *gws.Conn, _ error) {
	b.mu.Lock()
	delete(b.conns, c)
	b.mu.Unlock()
}

func (b *bare) OnPing(c *gws.Conn, p []byte) { _ = c.WritePong(p) }
func (b *bare) OnPong(*gws.Conn, []byte)     {}

func (b *bare) OnMessage(_ *gws.Conn, m *gws.Message) {
	payload := append([]byte(nil), m.Bytes()...)
	m.Close()
	bc := gws.NewBroadcaster(gws.OpcodeText, payload)
	defer bc.Close()
	b.mu.RLock()
	defer b.mu.RUnlock()
	for c := range b.conns {
		_ = bc.Broadcast(c)
	}
}

func (b *bare) closeAll() {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for c := range b.conns {
		_ = c.NetConn().Close()
	}
}
