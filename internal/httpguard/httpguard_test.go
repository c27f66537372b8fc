package httpguard

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/arena-game/arena/internal/waitfor"
)

// serve starts a guarded server whose /hijack handler takes the connection
// over (as a WebSocket upgrade does) and /read reads the whole body.
func serve(t *testing.T, lim Limits) (string, *Guard) {
	t.Helper()
	g := New("test", lim, prometheus.NewRegistry(), nil)
	mux := http.NewServeMux()
	mux.HandleFunc("/hijack", func(w http.ResponseWriter, r *http.Request) {
		c, bw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		_, _ = bw.WriteString("HTTP/1.1 101 Switching Protocols\r\n\r\n")
		_ = bw.Flush()
		go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
	})
	mux.HandleFunc("/read", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "body: "+err.Error(), http.StatusRequestTimeout)
			return
		}
		fmt.Fprintf(w, "%d", len(b))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := g.Server(mux)
	go func() { _ = srv.Serve(g.Listener(ln)) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String(), g
}

// dialFrom connects to addr from the loopback address src.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// status sends a GET for path on c and returns the status code (0 when the
// connection was closed without an answer).
func status(c net.Conn, path string) int {
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestPerAddressCapCountsOnlyTheHTTPPhase(t *testing.T) {
	addr, g := serve(t, Limits{PerAddr: 3})
	var held []net.Conn
	for i := 0; i < 3; i++ {
		c := dialFrom(t, "127.0.0.2", addr)
		if got := status(c, "/"); got != 200 {
			t.Fatalf("connection %d: %d", i, got)
		}
		held = append(held, c) // kept alive, idle: still in the HTTP phase
	}
	if got := status(dialFrom(t, "127.0.0.2", addr), "/"); got != 503 {
		t.Fatalf("fourth connection from one address: %d, want 503", got)
	}
	if got := status(dialFrom(t, "127.0.0.3", addr), "/"); got != 200 {
		t.Fatalf("another address: %d, want 200", got)
	}
	held[0].Close()
	waitfor.Cond(t, "the closed connection counted out", func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.addrs["127.0.0.2"] == 2
	})
	// Upgraded connections leave the HTTP phase: any number may follow.
	for i := 0; i < 5; i++ {
		c := dialFrom(t, "127.0.0.2", addr)
		if got := status(c, "/hijack"); got != 101 {
			t.Fatalf("upgrade %d: %d", i, got)
		}
	}
	if got := status(dialFrom(t, "127.0.0.2", addr), "/"); got != 200 {
		t.Fatalf("after five upgrades: %d, want 200", got)
	}
	if n := testutil.ToFloat64(g.refused.WithLabelValues("addr")); n != 1 {
		t.Fatalf("refused{cap=addr} = %v", n)
	}
}

func TestTotalCap(t *testing.T) {
	addr, g := serve(t, Limits{Total: 4})
	for i := 0; i < 4; i++ {
		c := dialFrom(t, fmt.Sprintf("127.0.0.%d", 2+i), addr)
		if got := status(c, "/hijack"); got != 101 {
			t.Fatalf("connection %d: %d", i, got)
		}
	}
	if got := status(dialFrom(t, "127.0.0.9", addr), "/"); got != 503 {
		t.Fatalf("fifth connection: %d, want 503", got)
	}
	if n := testutil.ToFloat64(g.refused.WithLabelValues("total")); n != 1 {
		t.Fatalf("refused{cap=total} = %v", n)
	}
}

// TestTrickledBodyIsCutOff: a body that has not arrived BodyTimeout after
// its headers fails the read; the server answers and closes.
func TestTrickledBodyIsCutOff(t *testing.T) {
	addr, _ := serve(t, Limits{BodyTimeout: 300 * time.Millisecond})
	c := dialFrom(t, "127.0.0.2", addr)
	fmt.Fprintf(c, "POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0")
	start := time.Now()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a trickled body: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("status %d, want 408 from the handler's failed read", resp.StatusCode)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("cut off after %v", took)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection still open after a timed-out body")
	}
	// A body that arrives in time is read in full.
	c2 := dialFrom(t, "127.0.0.2", addr)
	body := strings.Repeat("x", 100)
	fmt.Fprintf(c2, "POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n%s", body)
	resp, err = http.ReadResponse(bufio.NewReader(c2), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("prompt body: %v %v", resp, err)
	}
}

func TestAddrKey(t *testing.T) {
	for _, tc := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 1}, "192.0.2.7"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 1}, "192.0.2.7"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:3:4:5:6"), Port: 1}, "2001:db8:1:2::/64"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:ffff::1"), Port: 9}, "2001:db8:1:2::/64"},
	} {
		if got := addrKey(tc.addr); got != tc.want {
			t.Errorf("addrKey(%v) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

func TestDefaults(t *testing.T) {
	l := Limits{}.WithDefaults()
	if l.BodyTimeout != 10*time.Second || l.Total != max(64, FileLimit()-min(256, FileLimit()/4)) || l.PerAddr != min(1024, l.Total/8) {
		t.Fatalf("defaults %+v", l)
	}
	if l := (Limits{Total: 400}).WithDefaults(); l.PerAddr != 50 {
		t.Fatalf("PerAddr for Total 400 = %d, want 50: one address never fills the server", l.PerAddr)
	}
}
