//go:build linux

package wsload

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/internal/wsconn"
)

// echoServer is arena's own server connection type: it says hello, echoes
// text, and closes with 4000 when told "bye".
type echoServer struct{}

func (echoServer) OnOpen(c *wsconn.Conn) { _ = c.Send([]byte(`{"type":"hello"}`)) }
func (echoServer) OnMessage(c *wsconn.Conn, data []byte) {
	if string(data) == "bye" {
		c.Close(4000, "bye")
		return
	}
	_ = c.Send(append([]byte(nil), data...))
}
func (echoServer) OnClose(*wsconn.Conn, error) {}

func newServer(t *testing.T) string {
	t.Helper()
	srv := wsconn.NewServer(echoServer{}, wsconn.Options{MaxMessage: 1 << 20})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ws" {
			http.NotFound(w, r)
			return
		}
		_, _ = srv.Upgrade(w, r, nil)
	}))
	t.Cleanup(hs.Close)
	return "ws" + strings.TrimPrefix(hs.URL, "http")
}

// recorder collects messages and the close error.
type recorder struct {
	mu     sync.Mutex
	msgs   [][]byte
	got    chan struct{}
	closed chan error
}

func newRecorder() *recorder {
	return &recorder{got: make(chan struct{}, 1024), closed: make(chan error, 1)}
}

func (r *recorder) OnMessage(_ *Conn, data []byte) {
	r.mu.Lock()
	r.msgs = append(r.msgs, append([]byte(nil), data...))
	r.mu.Unlock()
	r.got <- struct{}{}
}

func (r *recorder) OnClose(_ *Conn, err error) { r.closed <- err }

func (r *recorder) wait(t *testing.T, n int) [][]byte {
	t.Helper()
	for {
		r.mu.Lock()
		if len(r.msgs) >= n {
			out := r.msgs
			r.mu.Unlock()
			return out
		}
		r.mu.Unlock()
		select {
		case <-r.got:
		case <-time.After(waitfor.Deadline()):
			t.Fatalf("waiting for %d messages: got %d", n, len(r.msgs))
		}
	}
}

func newPool(t *testing.T, loops int) *Pool {
	t.Helper()
	p, err := NewPool(loops, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// dialRecorded dials url through p with a new recorder, failing t when it
// cannot.
func dialRecorded(t *testing.T, p *Pool, url string) (*Conn, *recorder) {
	t.Helper()
	r := newRecorder()
	c, err := p.Dial(context.Background(), url, r)
	if err != nil {
		t.Fatal(err)
	}
	return c, r
}

func TestEchoSizes(t *testing.T) {
	base := newServer(t)
	p := newPool(t, 2)
	c, r := dialRecorded(t, p, base+"/ws?ticket=x")
	// Every length class: 7-bit, 16-bit and 64-bit, and bigger than the
	// initial read buffer.
	sizes := []int{0, 1, 125, 126, 4000, 65535, 65536, 300_000}
	for _, n := range sizes {
		msg := bytes.Repeat([]byte{'a' + byte(n%26)}, n)
		if err := c.Send(msg); err != nil {
			t.Fatalf("send %d: %v", n, err)
		}
	}
	got := r.wait(t, 1+len(sizes))
	if string(got[0]) != `{"type":"hello"}` {
		t.Fatalf("first message %q", got[0])
	}
	for i, n := range sizes {
		if want := bytes.Repeat([]byte{'a' + byte(n%26)}, n); !bytes.Equal(got[i+1], want) {
			t.Fatalf("echo %d: got %d bytes", n, len(got[i+1]))
		}
	}
}

func TestServerCloseCode(t *testing.T) {
	base := newServer(t)
	p := newPool(t, 1)
	c, r := dialRecorded(t, p, base+"/ws")
	_ = c.Send([]byte("bye"))
	select {
	case err := <-r.closed:
		var ce *CloseError
		if !errors.As(err, &ce) || ce.Code != 4000 || ce.Reason != "bye" {
			t.Fatalf("close error %v", err)
		}
	case <-time.After(waitfor.Deadline()):
		t.Fatal("no close")
	}
	if err := c.Send([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after close: %v", err)
	}
}

func TestClientClose(t *testing.T) {
	base := newServer(t)
	p := newPool(t, 1)
	c, r := dialRecorded(t, p, base+"/ws")
	r.wait(t, 1)
	c.Close(1000, "done")
	select {
	case err := <-r.closed:
		if err == nil {
			t.Fatal("nil close error")
		}
	case <-time.After(waitfor.Deadline()):
		t.Fatal("the server did not end the connection after our close frame")
	}
}

func TestDialRefusals(t *testing.T) {
	base := newServer(t)
	p := newPool(t, 1)
	ctx := context.Background()
	for _, u := range []string{
		base + "/nope?ticket=secret", // 404
		"http://" + strings.TrimPrefix(base, "ws://") + "/ws",
		"ws://127.0.0.1:1/ws", // nothing listens
	} {
		_, err := p.Dial(ctx, u, newRecorder())
		if err == nil {
			t.Fatalf("dial %s: no error", u)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Fatalf("error leaks the query: %v", err)
		}
	}
	// A plain HTTP server that answers 101 without the accept header.
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Upgrade", "websocket")
		w.Header().Set("Connection", "Upgrade")
		w.WriteHeader(http.StatusSwitchingProtocols)
	}))
	defer hs.Close()
	if _, err := p.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http")+"/ws", newRecorder()); err == nil || !strings.Contains(err.Error(), "Accept") {
		t.Fatalf("missing accept: %v", err)
	}
}

func TestPoolCloseClosesConns(t *testing.T) {
	base := newServer(t)
	p, err := NewPool(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, r := dialRecorded(t, p, base+"/ws")
	_ = p.Close()
	select {
	case err := <-r.closed:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("close error %v", err)
		}
	case <-time.After(waitfor.Deadline()):
		t.Fatal("no OnClose")
	}
	if _, err := p.Dial(context.Background(), base+"/ws", r); !errors.Is(err, ErrClosed) {
		t.Fatalf("dial on a closed pool: %v", err)
	}
}

// FuzzParse feeds arbitrary server bytes to the frame parser: it must
// deliver whole frames or close the connection, never panic or read past
// what it was given.
func FuzzParse(f *testing.F) {
	f.Add([]byte{0x81, 0x02, 'h', 'i'})
	f.Add([]byte{0x81, 0x7e, 0x00, 0x03, 'a', 'b', 'c'})
	f.Add([]byte{0x01, 0x01, 'a', 0x80, 0x01, 'b'})
	f.Add([]byte{0x88, 0x02, 0x03, 0xe8})
	f.Add([]byte{0x82, 0xff, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{0x89, 0x00, 0x81, 0x80, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, data []byte) {
		p := &Pool{maxMessage: 1 << 10}
		l := &loop{p: p, epfd: -1, conns: map[int32]*Conn{}}
		c := &Conn{l: l, h: discard{}, fd: -1, rbuf: make([]byte, 16), closed: false}
		// Feed in two pieces, as two reads would.
		half := len(data) / 2
		for _, piece := range [][]byte{data[:half], data[half:]} {
			for len(piece) > 0 {
				if c.rn == len(c.rbuf) {
					c.rbuf = append(c.rbuf, make([]byte, len(c.rbuf))...)
				}
				n := copy(c.rbuf[c.rn:], piece)
				piece = piece[n:]
				c.rn += n
				if !c.parse() {
					return
				}
			}
		}
	})
}

type discard struct{}

func (discard) OnMessage(*Conn, []byte) {}
func (discard) OnClose(*Conn, error)    {}
