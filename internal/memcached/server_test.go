package memcached

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/arena-game/arena/internal/waitfor"
)

func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// exchange sends req on a new connection, closes the write side and
// returns everything the server answered before it closed.
func exchange(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(waitfor.Deadline()))
	io.WriteString(c, req)
	c.(*net.TCPConn).CloseWrite()
	b, err := io.ReadAll(c)
	if err != nil && !isEOF(err) {
		t.Fatalf("read answer to %q: %v", req, err)
	}
	return string(b)
}

// checkInvariants walks the cache: the list and the map hold the same
// items, the byte count is their sum and within the limit.
func checkInvariants(t testing.TB, c *cache) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int
	var used int64
	var prev *entry
	for e := c.head; e != nil; e = e.next {
		if e.prev != prev {
			t.Fatalf("list: %q has a wrong prev link", e.key)
		}
		if c.items[e.key] != e {
			t.Fatalf("list item %q is not the map's", e.key)
		}
		if e.size != itemSize(len(e.key), len(e.value), e.flags) {
			t.Fatalf("item %q: size %d, want %d", e.key, e.size, itemSize(len(e.key), len(e.value), e.flags))
		}
		n++
		used += e.size
		prev = e
	}
	if c.tail != prev {
		t.Fatal("list: tail is not the last item")
	}
	if n != len(c.items) || used != c.used {
		t.Fatalf("list has %d items of %d bytes, map %d, count %d", n, used, len(c.items), c.used)
	}
	if c.used > c.limit {
		t.Fatalf("%d bytes used over the limit of %d", c.used, c.limit)
	}
}

// TestServes answers each command as memcached does (the differential test
// checks many more against a real memcached; these run everywhere).
func TestServes(t *testing.T) {
	s := start(t, Config{})
	for _, tc := range []struct{ name, req, want string }{
		{"get missing", "get foo\r\n", "END\r\n"},
		{"set get", "set a 5 0 3\r\nabc\r\nget a\r\n", "STORED\r\nVALUE a 5 3\r\nabc\r\nEND\r\n"},
		{"gets", "set b 0 0 1\r\nx\r\ngets b b\r\n", "STORED\r\nVALUE b 0 1 C\r\nx\r\nVALUE b 0 1 C\r\nx\r\nEND\r\n"},
		{"add replace", "add c 0 0 1\r\n1\r\nadd c 0 0 1\r\n2\r\nreplace c 0 0 1\r\n3\r\nreplace nc 0 0 1\r\n3\r\nget c\r\n",
			"STORED\r\nNOT_STORED\r\nSTORED\r\nNOT_STORED\r\nVALUE c 0 1\r\n3\r\nEND\r\n"},
		{"append prepend", "set d 3 0 1\r\nb\r\nappend d 9 0 1\r\nc\r\nprepend d 9 0 1\r\na\r\nget d\r\n",
			"STORED\r\nSTORED\r\nSTORED\r\nVALUE d 3 3\r\nabc\r\nEND\r\n"},
		{"delete", "set e 0 0 1\r\n1\r\ndelete e\r\ndelete e\r\ndelete e 0\r\ndelete e 1\r\n",
			"STORED\r\nDELETED\r\nNOT_FOUND\r\nNOT_FOUND\r\nCLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"},
		{"touch", "set f 0 0 1\r\n1\r\ntouch f 100\r\ntouch nf 100\r\ntouch f x\r\n",
			"STORED\r\nTOUCHED\r\nNOT_FOUND\r\nCLIENT_ERROR invalid exptime argument\r\n"},
		{"gat", "set g 0 0 1\r\n1\r\ngat 100 g ng\r\ngat -1 g\r\nget g\r\n",
			"STORED\r\nVALUE g 0 1\r\n1\r\nEND\r\nVALUE g 0 1\r\n1\r\nEND\r\nEND\r\n"},
		{"noreply", "set h 0 0 1 noreply\r\n1\r\nincr h 1 noreply\r\nset h x 0 1 noreply\r\nget h\r\n", "VALUE h 0 1\r\n2\r\nEND\r\n"},
		{"flush_all", "set i 0 0 1\r\n1\r\nflush_all\r\nget i\r\nflush_all noreply\r\n", "STORED\r\nOK\r\nEND\r\n"},
		{"version", "version\r\n", "VERSION " + Version + "\r\n"},
		{"unknown", "stats\r\nfoo\r\n\r\nmg foo\r\n", "ERROR\r\nERROR\r\nERROR\r\nERROR\r\n"},
		{"bad chunk", "set j 0 0 1\r\nab\r\n", "CLIENT_ERROR bad data chunk\r\nERROR\r\n"},
		{"too large", "set k 0 0 2000000\r\n" + strings.Repeat("x", 2000000) + "\r\nget k\r\n", "SERVER_ERROR object too large for cache\r\nEND\r\n"},
		{"key too long", "get " + strings.Repeat("k", 251) + "\r\nset " + strings.Repeat("k", 251) + " 0 0 1\r\n",
			"CLIENT_ERROR bad command line format\r\nCLIENT_ERROR bad command line format\r\n"},
		{"quit", "quit\r\nversion\r\n", ""},
		{"http", "GET / HTTP/1.1\r\nversion\r\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := exchange(t, s.Addr(), tc.req)
			if strings.Contains(tc.want, " C\r\n") {
				// Any CAS: replace numbers after the length in gets lines.
				var b strings.Builder
				for _, l := range strings.SplitAfter(got, "\r\n") {
					if f := strings.Fields(l); len(f) == 5 && f[0] == "VALUE" {
						l = strings.Join(f[:4], " ") + " C\r\n"
					}
					b.WriteString(l)
				}
				got = b.String()
			}
			if got != tc.want {
				t.Fatalf("sent %q\n got %q\nwant %q", tc.req, got, tc.want)
			}
		})
	}
}

// TestIncrDecr checks memcached's arithmetic: 64-bit wrap, decr stopping at
// zero, a shorter result padded with spaces in place, white space and a
// sign accepted around a number, other values refused.
func TestIncrDecr(t *testing.T) {
	s := start(t, Config{})
	for i, tc := range []struct {
		value, cmd, want, after string
	}{
		{"5", "incr 1", "6", "6"},
		{"100", "decr 95", "5", "5  "},
		{"5", "incr 1000", "1005", "1005"},
		{"18446744073709551615", "incr 2", "1", "1                   "},
		{"3", "decr 10", "0", "0"},
		{"5 abc", "incr 1", "6", "6    "},
		{" 42", "incr 1", "43", "43 "},
		{"+4", "decr 1", "3", "3 "},
		{"-0", "incr 1", "1", "1 "},
		{"-5", "incr 1", "CLIENT_ERROR cannot increment or decrement non-numeric value", "-5"},
		{"abc", "incr 1", "CLIENT_ERROR cannot increment or decrement non-numeric value", "abc"},
		{"", "incr 1", "CLIENT_ERROR cannot increment or decrement non-numeric value", ""},
		{"99999999999999999999", "incr 1", "CLIENT_ERROR cannot increment or decrement non-numeric value", "99999999999999999999"},
		{"7", "incr -1", "CLIENT_ERROR invalid numeric delta argument", "7"},
		{"7", "incr 18446744073709551616", "CLIENT_ERROR invalid numeric delta argument", "7"},
		{"7", "incr +2", "9", "9"},
	} {
		key := "n" + strconv.Itoa(i)
		req := fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n%s %s\r\nget %s\r\n", key, len(tc.value), tc.value, strings.Fields(tc.cmd)[0], key+" "+strings.Fields(tc.cmd)[1], key)
		want := fmt.Sprintf("STORED\r\n%s\r\nVALUE %s 0 %d\r\n%s\r\nEND\r\n", tc.want, key, len(tc.after), tc.after)
		if got := exchange(t, s.Addr(), req); got != want {
			t.Errorf("%q then %s:\n got %q\nwant %q", tc.value, tc.cmd, got, want)
		}
	}
	if got := exchange(t, s.Addr(), "incr nosuch 1\r\n"); got != "NOT_FOUND\r\n" {
		t.Errorf("incr of a missing key: %q", got)
	}
}

// TestHostileInputs sends what crashed or stalled the server arena used
// before (minimemcached panicked on "get foo\r\n" and took arena down) and
// other hostile input, each on its own connection, and checks after each
// that the server still answers and never panicked.
func TestHostileInputs(t *testing.T) {
	s := start(t, Config{MaxMemory: 8 << 20})
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(i*7919 + i/13)
	}
	for _, in := range []string{
		"get foo\r\n",
		"get foo\r\nget foo\r\nget foo\r\n",
		"gets foo bar baz\r\n",
		"\r\n", "\n", "\x00\r\n", " \r\n", "\r",
		"get\r\n", "gat\r\n", "gat 10\r\n", "gats x y\r\n",
		"set k 0 0 -1\r\n", "set k 0 0 2147483647\r\n", "set k 0 0 4294967295\r\nabc",
		"set k 0 0 10\r\nab",
		"cas k 0 0 1 x\r\n", "incr k 18446744073709551616\r\n", "decr\r\n",
		"get " + strings.Repeat("k", 300) + "\r\n",
		strings.Repeat("x", 100000),
		"get " + strings.Repeat("k ", 2<<20),
		"\x80\x00\x00\x05",
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		string(random),
		strings.Repeat("set a 0 0 1\r\nb\r\n", 1000) + "quit\r\n",
		strings.Repeat(" ", 200) + strings.Repeat("g", 30000),
	} {
		exchange(t, s.Addr(), in)
		if got := exchange(t, s.Addr(), "set ok 0 0 2\r\nup\r\nget ok\r\n"); got != "STORED\r\nVALUE ok 0 2\r\nup\r\nEND\r\n" {
			t.Fatalf("after %.40q the server answers %q", in, got)
		}
	}
	if p := s.Stats().Panics; p != 0 {
		t.Fatalf("%d panics recovered", p)
	}
	checkInvariants(t, s.cache)
}

// TestDeclaredLengthNotAllocated declares a data block far over the item
// size limit and sends all of it: the server reads and drops it without
// holding it, then answers the next command.
func TestDeclaredLengthNotAllocated(t *testing.T) {
	s := start(t, Config{})
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(waitfor.Deadline()))
	const declared = 64 << 20
	chunk := bytes.Repeat([]byte("z"), 1<<20)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	go func() {
		fmt.Fprintf(c, "set big 0 0 %d\r\n", declared)
		for range declared / len(chunk) {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
		io.WriteString(c, "\r\nversion\r\n")
	}()
	br := bufio.NewReader(c)
	if line, _ := br.ReadString('\n'); line != "SERVER_ERROR object too large for cache\r\n" {
		t.Fatalf("answer %q", line)
	}
	if line, _ := br.ReadString('\n'); !strings.HasPrefix(line, "VERSION") {
		t.Fatalf("after the dropped block: %q", line)
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
		t.Fatalf("allocated %d bytes while a %d-byte block was dropped", grew, declared)
	}
}

// TestDataGrowsAsItArrives declares a value just under the item size limit
// and sends ten bytes of it: what the session holds is a small buffer, not
// the declared megabyte.
func TestDataGrowsAsItArrives(t *testing.T) {
	sess := newSession(newCache(64<<20, 1<<20, time.Now), strings.NewReader("0123456789"), io.Discard)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if _, err := sess.readData(1_000_000); err == nil {
		t.Fatal("read of 1 MB from 10 bytes succeeded")
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 256<<10 {
		t.Fatalf("allocated %d bytes for 10 bytes of a declared 1 MB value", grew)
	}
}

// TestPipelining sends a thousand commands in one write and gets every
// answer in order (minimemcached made a new reader per command and lost
// the requests buffered with the first).
func TestPipelining(t *testing.T) {
	s := start(t, Config{})
	var req, want strings.Builder
	for i := range 1000 {
		v := strconv.Itoa(i)
		fmt.Fprintf(&req, "set p%d 0 0 %d\r\n%s\r\nget p%d\r\nincr p%d 1\r\n", i, len(v), v, i, i)
		fmt.Fprintf(&want, "STORED\r\nVALUE p%d 0 %d\r\n%s\r\nEND\r\n%d\r\n", i, len(v), v, i+1)
	}
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(waitfor.Deadline()))
	go io.WriteString(c, req.String())
	got := make([]byte, want.Len())
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read answers: %v (got %d bytes)", err, len(got))
	}
	if string(got) != want.String() {
		t.Fatal("pipelined answers differ from the answers one by one")
	}
}

// TestEviction fills a small server far past its memory limit: the bytes
// stay within it, the oldest items go first, and an item read often
// survives.
func TestEviction(t *testing.T) {
	const limit = 256 << 10
	s := start(t, Config{MaxMemory: limit})
	mc := memcache.New(s.Addr())
	value := bytes.Repeat([]byte("v"), 1000)
	for i := range 2000 {
		if err := mc.Set(&memcache.Item{Key: "e" + strconv.Itoa(i), Value: value}); err != nil {
			t.Fatal(err)
		}
		if _, err := mc.Get("e0"); err != nil {
			t.Fatalf("after %d sets, the item read after each set is gone: %v", i, err)
		}
	}
	st := s.Stats()
	if st.Bytes > limit || st.Evictions == 0 {
		t.Fatalf("stats %+v: want bytes within %d and evictions", st, limit)
	}
	if _, err := mc.Get("e1"); !errors.Is(err, memcache.ErrCacheMiss) {
		t.Fatalf("the oldest unread item: %v, want evicted", err)
	}
	if _, err := mc.Get("e1999"); err != nil {
		t.Fatalf("the newest item: %v", err)
	}
	checkInvariants(t, s.cache)
	if _, err := mc.Get("e0"); err != nil {
		t.Fatal(err)
	}
}

// TestEvictionIsLogged warns when items are evicted: what arena keeps in
// memcached is then being lost.
func TestEvictionIsLogged(t *testing.T) {
	warnings := make(recorder, 16)
	s := start(t, Config{MaxMemory: 64 << 10, Logger: slog.New(warnings)})
	mc := memcache.New(s.Addr())
	for i := range 200 {
		if err := mc.Set(&memcache.Item{Key: "w" + strconv.Itoa(i), Value: bytes.Repeat([]byte("v"), 1000)}); err != nil {
			t.Fatal(err)
		}
	}
	for {
		r := waitfor.Recv(t, warnings, "an eviction warning")
		if r.Level == slog.LevelWarn && strings.HasPrefix(r.Message, "memcached is evicting items") {
			return
		}
	}
}

// recorder is a slog handler that hands records to a channel (dropping
// them when it is full).
type recorder chan slog.Record

func (r recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r recorder) WithGroup(string) slog.Handler            { return r }
func (r recorder) Handle(_ context.Context, rec slog.Record) error {
	select {
	case r <- rec:
	default:
	}
	return nil
}

// TestExpiry uses a settable clock: relative and absolute expiry, negative
// expiry, touch and gat, and a delayed flush_all.
func TestExpiry(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := start(t, Config{Now: func() time.Time { return now }})
	ask := func(req string) string { return exchange(t, s.Addr(), req) }
	ask("set rel 0 10 1\r\na\r\nset abs 0 1800000020 1\r\nb\r\nset neg 0 -1 1\r\nc\r\nset past 0 1700000000 1\r\nd\r\nset never 0 0 1\r\ne\r\n")
	if got := ask("get rel abs neg past never\r\n"); got != "VALUE rel 0 1\r\na\r\nVALUE abs 0 1\r\nb\r\nVALUE never 0 1\r\ne\r\nEND\r\n" {
		t.Fatalf("at once: %q", got)
	}
	now = now.Add(10 * time.Second)
	if got := ask("get rel abs never\r\n"); got != "VALUE abs 0 1\r\nb\r\nVALUE never 0 1\r\ne\r\nEND\r\n" {
		t.Fatalf("after 10 s: %q", got)
	}
	ask("touch abs 100\r\ngat 5 never\r\n")
	now = now.Add(20 * time.Second)
	if got := ask("get abs never\r\n"); got != "VALUE abs 0 1\r\nb\r\nEND\r\n" {
		t.Fatalf("after touch and gat: %q", got)
	}
	ask("set f1 0 0 1\r\nx\r\nflush_all 60\r\n")
	if got := ask("get f1\r\n"); got != "VALUE f1 0 1\r\nx\r\nEND\r\n" {
		t.Fatalf("before a delayed flush: %q", got)
	}
	now = now.Add(60 * time.Second)
	ask("set f2 0 0 1\r\ny\r\n")
	if got := ask("get f1 f2\r\n"); got != "VALUE f2 0 1\r\ny\r\nEND\r\n" {
		t.Fatalf("after a delayed flush: %q", got)
	}
	checkInvariants(t, s.cache)
}

// TestConnectionLimit refuses a connection over MaxConns as memcached does
// and takes new ones again once one closes.
func TestConnectionLimit(t *testing.T) {
	s := start(t, Config{MaxConns: 2})
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "version\r\n")
		if l, _ := bufio.NewReader(c).ReadString('\n'); !strings.HasPrefix(l, "VERSION") {
			t.Fatalf("held connection: %q", l)
		}
		held = append(held, c)
	}
	if got := exchange(t, s.Addr(), "version\r\n"); got != "ERROR Too many open connections\r\n" {
		t.Fatalf("third connection: %q", got)
	}
	if s.Stats().RejectedConns != 1 {
		t.Fatalf("stats %+v", s.Stats())
	}
	held[0].Close()
	waitfor.Cond(t, "the closed connection to be counted out", func() bool { return s.Stats().CurrConns < 2 })
	if got := exchange(t, s.Addr(), "version\r\n"); !strings.HasPrefix(got, "VERSION") {
		t.Fatalf("after one closed: %q", got)
	}
}

// TestCommandTimeout closes a connection whose command stalls half way,
// and keeps one that is idle between commands.
func TestCommandTimeout(t *testing.T) {
	s := start(t, Config{CommandTimeout: 100 * time.Millisecond})
	stalled, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	idle, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	io.WriteString(stalled, "set k 0 0 10\r\nab")
	stalled.SetReadDeadline(time.Now().Add(waitfor.Deadline()))
	if b, err := io.ReadAll(stalled); err != nil && !isEOF(err) || len(b) != 0 {
		t.Fatalf("stalled command: read %q, %v; want a close", b, err)
	}
	// The stalled one was closed after at least CommandTimeout; the idle
	// one has been idle as long and must still answer.
	io.WriteString(idle, "version\r\n")
	idle.SetReadDeadline(time.Now().Add(waitfor.Deadline()))
	if l, err := bufio.NewReader(idle).ReadString('\n'); !strings.HasPrefix(l, "VERSION") {
		t.Fatalf("idle connection: %q, %v", l, err)
	}
}

// TestGomemcache drives the server with the client arena uses, through
// every call that client offers.
func TestGomemcache(t *testing.T) {
	s := start(t, Config{})
	mc := memcache.New(s.Addr())
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(mc.Ping())
	must(mc.Set(&memcache.Item{Key: "a", Value: []byte("1"), Flags: 7, Expiration: 100}))
	it, err := mc.Get("a")
	must(err)
	if string(it.Value) != "1" || it.Flags != 7 || it.CasID == 0 {
		t.Fatalf("get: %+v", it)
	}
	if err := mc.Add(&memcache.Item{Key: "a", Value: []byte("2")}); !errors.Is(err, memcache.ErrNotStored) {
		t.Fatalf("add existing: %v", err)
	}
	must(mc.Replace(&memcache.Item{Key: "a", Value: []byte("3")}))
	must(mc.Append(&memcache.Item{Key: "a", Value: []byte("4")}))
	must(mc.Prepend(&memcache.Item{Key: "a", Value: []byte("2")}))
	it, err = mc.Get("a")
	must(err)
	if string(it.Value) != "234" {
		t.Fatalf("after replace, append, prepend: %q", it.Value)
	}
	it.Value = []byte("5")
	must(mc.CompareAndSwap(it))
	if err := mc.CompareAndSwap(it); !errors.Is(err, memcache.ErrCASConflict) {
		t.Fatalf("stale cas: %v", err)
	}
	n, err := mc.Increment("a", 10)
	must(err)
	if n != 15 {
		t.Fatalf("increment: %d", n)
	}
	if n, err = mc.Decrement("a", 100); err != nil || n != 0 {
		t.Fatalf("decrement: %d %v", n, err)
	}
	must(mc.Touch("a", 100))
	it, err = mc.GetAndTouch("a", 100)
	must(err)
	if strings.TrimSpace(string(it.Value)) != "0" {
		t.Fatalf("get and touch: %q", it.Value)
	}
	keys := make([]string, 500)
	for i := range keys {
		keys[i] = "m" + strconv.Itoa(i)
		must(mc.Set(&memcache.Item{Key: keys[i], Value: []byte(keys[i])}))
	}
	got, err := mc.GetMulti(append(keys, "missing"))
	must(err)
	if len(got) != len(keys) || string(got["m42"].Value) != "m42" {
		t.Fatalf("get multi: %d items", len(got))
	}
	must(mc.Delete("a"))
	if err := mc.Delete("a"); !errors.Is(err, memcache.ErrCacheMiss) {
		t.Fatalf("delete twice: %v", err)
	}
	if _, err := mc.Increment("a", 1); !errors.Is(err, memcache.ErrCacheMiss) {
		t.Fatalf("increment missing: %v", err)
	}
	must(mc.FlushAll())
	if _, err := mc.Get("m1"); !errors.Is(err, memcache.ErrCacheMiss) {
		t.Fatalf("after flush_all: %v", err)
	}
	must(mc.Set(&memcache.Item{Key: "z", Value: []byte("1")}))
	must(mc.DeleteAll())
	if _, err := mc.Get("z"); !errors.Is(err, memcache.ErrCacheMiss) {
		t.Fatalf("after delete all: %v", err)
	}
}

// TestClose stops the server with connections open, and Close twice is
// fine.
func TestClose(t *testing.T) {
	s, err := Start(Config{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "set k 0 0 5\r\nab") // mid-command
	waitfor.Cond(t, "the connection to be served", func() bool { return s.Stats().CurrConns == 1 })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(waitfor.Deadline()))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection still open after Close")
	}
	if _, err := net.Dial("tcp", s.Addr()); err == nil {
		t.Fatal("still accepting after Close")
	}
}

// TestLoopbackOnly listens on 127.0.0.1 whatever the port.
func TestLoopbackOnly(t *testing.T) {
	s := start(t, Config{})
	host, _, _ := net.SplitHostPort(s.Addr())
	if host != "127.0.0.1" {
		t.Fatalf("listening on %s", s.Addr())
	}
	if _, err := Start(Config{Port: 70000}); err == nil {
		t.Fatal("port 70000 accepted")
	}
}
