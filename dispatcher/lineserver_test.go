package dispatcher

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arena-game/arena/fleet"
	"github.com/arena-game/arena/hostctl"
	"github.com/arena-game/arena/internal/lineproto/linetest"
	"github.com/arena-game/arena/proc"
)

const testToken = "fleet-secret"

// lineTest is a line server on a fleet with one host on the dispatcher's
// machine; p0 and p1 are the ports its first two fight processes take,
// unused a port no process has.
type lineTest struct {
	addr           string
	f              *fleet.Fleet
	p0, p1, unused string
}

func startLine(t *testing.T, cfg LineConfig) lineTest {
	t.Helper()
	f, base := newTestFleet(t, 2, 1)
	if cfg.FleetToken == "" {
		cfg.FleetToken = testToken
	}
	ls := NewLineServer(cfg, f, quietLog(), nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = ls.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return lineTest{addr: ln.Addr().String(), f: f, p0: strconv.Itoa(base), p1: strconv.Itoa(base + 1), unused: strconv.Itoa(base + 19)}
}

// seed sends one request the seed's way (no newline) and reads until close.
func seed(t *testing.T, addr, req string) string { t.Helper(); return linetest.Seed(t, addr, req) }

func dialLine(t *testing.T, addr string) *linetest.Conn {
	t.Helper()
	l := linetest.Dial(t, addr)
	_ = l.C.SetDeadline(time.Now().Add(20 * time.Second))
	return l
}

func TestSeedClients(t *testing.T) {
	lt := startLine(t, LineConfig{InsecureSeedMode: true})
	addr := lt.addr
	if got := seed(t, addr, "get"); got != lt.p0 {
		t.Fatalf("seed get = %q", got)
	}
	if got := seed(t, addr, "add|"+lt.p0); got != "ok" {
		t.Fatalf("seed add = %q", got)
	}
	if got := seed(t, addr, "add|"+lt.p0); got != "ok" {
		t.Fatalf("seed add = %q", got)
	}
	if got := seed(t, addr, "get"); got != lt.p1 {
		t.Fatalf("seed get on a full fleet = %q, want %s", got, lt.p1)
	}
	if got := seed(t, addr, "del|"+lt.p0); got != "ok" {
		t.Fatalf("seed del = %q", got)
	}
	if got := seed(t, addr, "bogus"); got != "err|unknown verb" {
		t.Fatalf("seed bogus = %q", got)
	}
}

func TestPipelinedAndBadInput(t *testing.T) {
	lt := startLine(t, LineConfig{})
	addr, f := lt.addr, lt.f
	l := dialLine(t, addr)
	cases := []struct{ req, want string }{
		{"get", lt.p0},
		{"get|fight", lt.p0},
		{"add|" + lt.p0 + "|" + testToken, "ok"},
		{"add|" + lt.p0, "err|bad token"}, // no seed mode
		{"add|" + lt.p0 + "|wrong", "err|bad token"},
		{"del|" + lt.p0 + "|wrong", "err|bad token"},
		{"maxnum|5|wrong", "err|bad token"},
		{"add|" + lt.unused + "|" + testToken, "err|unknown port"},
		{"add|abc|" + testToken, "err|bad port"},
		{"add|70000|" + testToken, "err|bad port"},
		{"add||" + testToken, "err|bad port"},
		{"add", "err|wrong number of fields"},
		{"maxnum|-1|" + testToken, "err|bad number"},
		{"maxnum|0|" + testToken, "err|bad number"},
		{"maxnum|99999999|" + testToken, "err|bad number"},
		{"maxnum|x|" + testToken, "err|bad number"},
		{"jump", "err|unknown verb"},
		{"", "err|empty request"},
		{"get|dragon", "err|unknown process kind"},
		{"get|map|no spaces", "err|bad map id"},
		{"del|" + lt.p0 + "|" + testToken, "ok"},
		{"del|" + lt.p0 + "|" + testToken, "ok"}, // never below 0
		{"maxnum|3|" + testToken, "ok"},
	}
	for _, c := range cases {
		if got := l.Do(t, c.req); got != c.want {
			t.Errorf("%q = %q, want %q", c.req, got, c.want)
		}
	}
	if f.MaxNum() != 3 {
		t.Fatalf("maxnum = %d, want 3", f.MaxNum())
	}
	var tab hostctl.Table
	if err := json.Unmarshal([]byte(l.Do(t, "stat")), &tab); err != nil {
		t.Fatal(err)
	}
	if tab.MaxNum != 3 || len(tab.Processes) != 1 || tab.Processes[0].Load != 0 || tab.Processes[0].Kind != proc.KindFight {
		t.Fatalf("stat = %+v", tab)
	}
	// Many requests in one write are answered in order.
	var b strings.Builder
	for i := 0; i < 1000; i++ {
		b.WriteString("get\n")
	}
	if _, err := l.C.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1000; i++ {
		ans, err := l.R.ReadString('\n')
		if err != nil || ans != lt.p0+"\n" {
			t.Fatalf("pipelined answer %d = %q, %v", i, ans, err)
		}
	}
}

func TestLineTooLongCloses(t *testing.T) {
	lt := startLine(t, LineConfig{})
	addr := lt.addr
	l := dialLine(t, addr)
	if got := l.Do(t, "get"); got != lt.p0 {
		t.Fatal(got)
	}
	long := strings.Repeat("x", 1025)
	if got := l.Do(t, long); got != "err|line too long" {
		t.Fatalf("long line = %q", got)
	}
	if _, err := l.R.ReadByte(); err != io.EOF {
		t.Fatalf("connection not closed after a long line: %v", err)
	}
	// A long line split over many writes without a newline is refused too.
	l2 := dialLine(t, addr)
	_ = l2.Do(t, "get")
	for i := 0; i < 5; i++ {
		_, _ = l2.C.Write([]byte(strings.Repeat("y", 400)))
	}
	ans, _ := l2.R.ReadString('\n')
	if ans != "err|line too long\n" {
		t.Fatalf("unterminated long line = %q", ans)
	}
	// The server still answers others.
	if got := seed(t, addr, "get"); got != lt.p0 {
		t.Fatalf("after abuse, get = %q", got)
	}
}

func TestIdleAndHalfLineClientsAreClosed(t *testing.T) {
	lt := startLine(t, LineConfig{IdleTimeout: 100 * time.Millisecond})
	addr := lt.addr
	// Connects and sends nothing.
	silent := dialLine(t, addr)
	if _, err := silent.R.ReadByte(); err == nil {
		t.Fatal("silent client got data instead of a close")
	}
	// Sends a line, then half a line, then stalls.
	half := dialLine(t, addr)
	if got := half.Do(t, "get"); got != lt.p0 {
		t.Fatal(got)
	}
	_, _ = half.C.Write([]byte("get|fi"))
	ans, _ := half.R.ReadString('\n')
	if ans != "err|timeout\n" {
		t.Fatalf("half line answer = %q", ans)
	}
	if _, err := half.R.ReadByte(); err != io.EOF {
		t.Fatalf("half-line client not closed: %v", err)
	}
	if got := seed(t, addr, "get"); got != lt.p0 {
		t.Fatalf("get after = %q", got)
	}
}

func TestFiveThousandConnectionsAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	lt := startLine(t, LineConfig{})
	addr := lt.addr
	var ok, failed atomic.Int32
	var wg sync.WaitGroup
	conns := make([]net.Conn, 5000)
	for i := range conns {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", addr, 15*time.Second)
			if err != nil {
				failed.Add(1)
				return
			}
			conns[i] = c
		}(i)
	}
	wg.Wait()
	// All open at once; now each asks.
	for _, c := range conns {
		if c == nil {
			continue
		}
		wg.Add(1)
		go func(c net.Conn) {
			defer wg.Done()
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			if _, err := c.Write([]byte("get\n")); err != nil {
				failed.Add(1)
				return
			}
			b := make([]byte, 16)
			n, err := io.ReadAtLeast(c, b, len(lt.p0)+1)
			if err == nil && string(b[:n]) == lt.p0+"\n" {
				ok.Add(1)
			} else {
				if failed.Add(1) < 3 {
					t.Logf("answer %q %v", b[:n], err)
				}
			}
		}(c)
	}
	wg.Wait()
	if ok.Load() != 5000 {
		t.Fatalf("%d of 5000 answered, %d failed", ok.Load(), failed.Load())
	}
}

func TestMaxConnsRefusesExtra(t *testing.T) {
	lt := startLine(t, LineConfig{MaxConns: 2})
	addr := lt.addr
	a := dialLine(t, addr)
	b := dialLine(t, addr)
	_ = a.Do(t, "get")
	_ = b.Do(t, "get")
	c := dialLine(t, addr)
	ans, _ := c.R.ReadString('\n')
	if ans != "err|busy\n" {
		t.Fatalf("third connection got %q, want err|busy", ans)
	}
}

func TestRandomBytesNeverCrash(t *testing.T) {
	lt := startLine(t, LineConfig{})
	addr := lt.addr
	for i := 0; i < 50; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		junk := []byte(fmt.Sprintf("\x00\xff|%d|\x7f\n|||\r\n\xde\xad", i))
		_, _ = c.Write(junk)
		_ = c.(*net.TCPConn).CloseWrite()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		_, _ = io.ReadAll(c)
		c.Close()
	}
	if got := seed(t, addr, "get"); got != lt.p0 {
		t.Fatalf("get after junk = %q", got)
	}
}

// FuzzLineServer feeds arbitrary bytes to a connection handler and checks
// that it answers or closes without panicking.
func FuzzLineServer(f *testing.F) {
	for _, s := range []string{"get", "get\n", "add|7000|t\nget\n", "maxnum|2|t\n", "stat\n", "\x00\n", strings.Repeat("a", 2000)} {
		f.Add([]byte(s))
	}
	fl, _ := newTestFleet(f, 2, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ls := NewLineServer(LineConfig{FleetToken: "t", IdleTimeout: 50 * time.Millisecond}, fl, quietLog(), nil)
	f.Fuzz(func(t *testing.T, b []byte) {
		server, client := net.Pipe()
		done := make(chan struct{})
		go func() { ls.serveConn(ctx, server); close(done) }()
		go func() { _, _ = io.Copy(io.Discard, client) }()
		_ = client.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = client.Write(b)
		<-done
		client.Close()
	})
}

// BenchmarkHandleGet is the dispatcher's own cost per get: parsing the
// request, choosing the least-loaded of 16 fight processes and formatting
// the answer, without a socket.
func BenchmarkHandleGet(b *testing.B) {
	f, base := newTestFleet(b, 1000, 16)
	for i, p := range f.Snapshot() {
		for j := 0; j < (i*7)%13; j++ {
			_, _ = f.Adjust(p.Host, p.Port, 1, "")
		}
	}
	ls := NewLineServer(LineConfig{FleetToken: "t"}, f, quietLog(), nil)
	line := []byte("get")
	out := make([]byte, 0, 64)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out = ls.handle(ctx, out[:0], line)
	}
	if n, err := strconv.Atoi(string(out)); err != nil || n < base || n >= base+20 {
		b.Fatalf("answer %q", out)
	}
}

// TestSplitFirstLineIsNotASeedRequest: the framing decides on a complete
// line, a close or a pause, never on the first read. A newline client whose
// first segment splits its line ("ge", then "t\n") is answered as a newline
// client; a seed client (no newline, waits) still gets its answer and the
// close; so does one that half-closes after its request.
func TestSplitFirstLineIsNotASeedRequest(t *testing.T) {
	fl, base := newTestFleet(t, 2, 1)
	p0 := strconv.Itoa(base)
	ls := NewLineServer(LineConfig{FleetToken: testToken}, fl, quietLog(), nil)
	ctx := context.Background()
	// net.Pipe delivers each write to one read of its own: the server's
	// first read is exactly "ge".
	for _, parts := range [][]string{{"ge", "t\n"}, {"get", "\n"}, {"get|", "fight\nstat\n"}} {
		server, client := net.Pipe()
		go ls.serveConn(ctx, server)
		_ = client.SetDeadline(time.Now().Add(10 * time.Second))
		for _, p := range parts {
			if _, err := client.Write([]byte(p)); err != nil {
				t.Fatalf("%q: write %q: %v (the server took the first read for a seed request)", parts, p, err)
			}
		}
		r := bufio.NewReader(client)
		if ans, err := r.ReadString('\n'); ans != p0+"\n" {
			t.Fatalf("%q: answer %q, %v; want %s and a newline", parts, ans, err, p0)
		}
		client.Close()
	}
	// The seed's clients: no newline, then wait for the answer and the close.
	server, client := net.Pipe()
	go ls.serveConn(ctx, server)
	_ = client.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := client.Write([]byte("get")); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(client); string(b) != p0 || err != nil {
		t.Fatalf("seed client got %q, %v; want %s then the close", b, err, p0)
	}
	// A request then a half-close is a seed request too, answered at once.
	lt := startLine(t, LineConfig{SeedWait: time.Hour})
	addr := lt.addr
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = c.Write([]byte("get"))
	_ = c.(*net.TCPConn).CloseWrite()
	if b, err := io.ReadAll(c); string(b) != lt.p0 || err != nil {
		t.Fatalf("half-closing seed client got %q, %v", b, err)
	}
}
