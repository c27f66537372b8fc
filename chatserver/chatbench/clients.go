package chatbench

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"
)

// fleetOfClients is N WebSocket clients of one server, all in world, that
// timestamp the arrival of each marked fan-out message.
type fleetOfClients struct {
	n        int
	ready    atomic.Int64
	got      atomic.Int64
	marker   atomic.Pointer[[]byte]
	arrivals []atomic.Int64 // unix ns of this repeat's arrival, per client
	allIn    atomic.Pointer[chan struct{}]

	mu    sync.Mutex
	conns []*gws.Conn
}

func newFleet(n int) *fleetOfClients {
	f := &fleetOfClients{n: n, arrivals: make([]atomic.Int64, n)}
	f.reset(nil)
	return f
}

func (f *fleetOfClients) reset(marker []byte) {
	for i := range f.arrivals {
		f.arrivals[i].Store(0)
	}
	f.got.Store(0)
	ch := make(chan struct{})
	f.allIn.Store(&ch)
	f.marker.Store(&marker)
}

var joinedWorld = []byte(`"type":"joined","channel":"world"`)

// handler is one client's gws event handler.
type handler struct {
	f     *fleetOfClients
	idx   int // -1: the poster, which is not counted
	ready atomic.Bool
}

func (h *handler) OnOpen(*gws.Conn)                   {}
func (h *handler) OnClose(*gws.Conn, error)           {}
func (h *handler) OnPing(c *gws.Conn, payload []byte) { _ = c.WritePong(payload) }
func (h *handler) OnPong(*gws.Conn, []byte)           {}

func (h *handler) OnMessage(_ *gws.Conn, m *gws.Message) {
	defer m.Close()
	now := time.Now().UnixNano()
	data := m.Bytes()
	if !h.ready.Load() {
		if bytes.Contains(data, joinedWorld) {
			h.ready.Store(true)
			if h.idx >= 0 {
				h.f.ready.Add(1)
			}
		}
		return
	}
	if h.idx < 0 {
		return
	}
	mk := *h.f.marker.Load()
	if len(mk) == 0 || !bytes.Contains(data, mk) {
		return
	}
	if h.f.arrivals[h.idx].CompareAndSwap(0, now) {
		if h.f.got.Add(1) == int64(h.f.n) {
			close(*h.f.allIn.Load())
		}
	}
}

// dialOne opens one client from src to url and serves it.
func dialOne(ctx context.Context, url, hostport string, src net.IP, h *handler) (*gws.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	if src != nil {
		d.LocalAddr = &net.TCPAddr{IP: src}
	}
	nc, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return nil, fmt.Errorf("dial %s from %v: %w", hostport, src, err)
	}
	c, resp, err := gws.NewClientFromConn(h, &gws.ClientOption{
		Addr:             url,
		ReadBufferSize:   1024,
		HandshakeTimeout: 10 * time.Second,
	}, nc)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("handshake %s: http %d: %w", hostport, resp.StatusCode, err)
		}
		return nil, fmt.Errorf("handshake %s: %w", hostport, err)
	}
	go c.ReadLoop()
	return c, nil
}

// connect opens f.n clients, urlFor(i) giving each one's URL, at most
// concurrency handshakes at a time, and waits until every one is in world.
func (f *fleetOfClients) connect(ctx context.Context, hostport string, urlFor func(i int) string, srcs []net.IP, concurrency int) error {
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	f.conns = make([]*gws.Conn, f.n)
	for i := 0; i < f.n && firstErr.Load() == nil; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var src net.IP
			if len(srcs) > 0 {
				src = srcs[i%len(srcs)]
			}
			c, err := dialOne(ctx, urlFor(i), hostport, src, &handler{f: f, idx: i})
			if err != nil {
				firstErr.CompareAndSwap(nil, &err)
				return
			}
			f.mu.Lock()
			f.conns[i] = c
			f.mu.Unlock()
		}()
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return *p
	}
	for f.ready.Load() < int64(f.n) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for clients to join world: %d of %d: %w", f.ready.Load(), f.n, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// close closes every client's socket.
func (f *fleetOfClients) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		if c != nil {
			_ = c.NetConn().Close()
		}
	}
}

// collect returns this repeat's arrival times (unix ns) and clears the
// marker so late copies are not counted.
func (f *fleetOfClients) collect() []int64 {
	f.marker.Store(new([]byte))
	out := make([]int64, 0, f.n)
	for i := range f.arrivals {
		if a := f.arrivals[i].Load(); a != 0 {
			out = append(out, a)
		}
	}
	return out
}
