package memcached

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/memcached/mctest"
)

// The differential test: the same sessions go to this server and to a real
// memcached (the memcached binary), and the answers must match byte for
// byte, CAS values normalised (each distinct CAS becomes C1, C2, ... in
// order of appearance, per server and dsession). It runs in CI, which
// installs memcached; elsewhere it skips when the binary is missing.

// step is one request of a session: text is sent as is, except that %CAS%
// becomes the CAS this server last returned for casKey in the session.
type step struct {
	text   string
	casKey string
}

// dsession is a list of steps sent one at a time (each followed by a
// "version" sentinel so its answers can be told apart), then final, sent
// with the write side closed so that an incomplete command or a command
// that closes the connection can end it.
type dsession struct {
	name  string
	steps []step
	final string
}

var (
	diffSessions = flag.Int("diff.sessions", 400, "generated sessions in TestDifferential")
	diffSeed     = flag.Uint64("diff.seed", 20261201, "seed of TestDifferential's generated sessions")
)

func TestDifferential(t *testing.T) {
	real := mctest.Start(t, "-m", "64", "-I", "1m")
	emb, err := Start(Config{MaxMemory: 64 << 20, MaxItemSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()

	sessions := handWritten()
	rng := rand.New(rand.NewPCG(*diffSeed, 7))
	for i := range *diffSessions {
		sessions = append(sessions, generate(rng, i))
	}
	failed := 0
	for _, s := range sessions {
		want, werr := runSession(real.Addr, s)
		got, gerr := runSession(emb.Addr(), s)
		if werr != nil || gerr != nil {
			t.Errorf("session %s: memcached: %v; embedded: %v\n%s", s.name, werr, gerr, transcript(s, want, got))
			failed++
		} else if !equal(want, got) {
			t.Errorf("session %s: answers differ\n%s", s.name, transcript(s, want, got))
			failed++
		}
		if failed >= 5 {
			t.Fatalf("stopping after %d differing sessions", failed)
		}
	}
	if st := emb.Stats(); st.Panics != 0 {
		t.Fatalf("embedded server recovered %d panics", st.Panics)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func transcript(s dsession, want, got []string) string {
	var b strings.Builder
	for i := range max(len(s.steps)+1, len(want), len(got)) {
		sent := "(final) " + strconv.Quote(s.final)
		if i < len(s.steps) {
			sent = strconv.Quote(s.steps[i].text)
		}
		w, g := "-", "-"
		if i < len(want) {
			w = strconv.Quote(want[i])
		}
		if i < len(got) {
			g = strconv.Quote(got[i])
		}
		mark := "  "
		if w != g {
			mark = "!!"
		}
		if len(sent) > 200 {
			sent = sent[:200] + "..."
		}
		fmt.Fprintf(&b, "%s %3d sent %s\n       memcached %s\n       embedded  %s\n", mark, i, sent, trunc(w), trunc(g))
	}
	return b.String()
}

func trunc(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

const sentinel = "version\r\n"

// runSession plays s on a new connection to addr and returns the
// normalised answers, one string per step plus one for the final part.
func runSession(addr string, s dsession) ([]string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	n := newNormaliser()
	var outs []string
	var buf []byte
	rd := make([]byte, 64<<10)
	for i, st := range s.steps {
		text := st.text
		if st.casKey != "" {
			cas, ok := n.lastCAS[st.casKey]
			if !ok {
				cas = "987654321"
			}
			text = strings.ReplaceAll(text, "%CAS%", cas)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, text+sentinel); err != nil {
			return outs, fmt.Errorf("step %d: write: %w", i, err)
		}
		buf = buf[:0]
		for {
			if done, _ := n.complete(buf); done {
				break
			}
			m, err := c.Read(rd)
			buf = append(buf, rd[:m]...)
			if err != nil {
				if isEOF(err) {
					outs = append(outs, n.normalise(buf)+"<closed>")
					return outs, nil
				}
				return outs, fmt.Errorf("step %d: read: %w (so far %q)", i, err, buf)
			}
		}
		outs = append(outs, n.normalise(buf))
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, s.final); err != nil && !isEOF(err) {
		return outs, fmt.Errorf("final: write: %w", err)
	}
	c.(*net.TCPConn).CloseWrite()
	buf = buf[:0]
	for {
		m, err := c.Read(rd)
		buf = append(buf, rd[:m]...)
		if err != nil {
			if isEOF(err) {
				break
			}
			return outs, fmt.Errorf("final: read: %w (so far %q)", err, buf)
		}
	}
	outs = append(outs, n.normalise(buf)+"<closed>")
	return outs, nil
}

func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// normaliser rewrites CAS values in VALUE lines to C1, C2, ... and the
// version string to "*", remembering each key's last CAS for %CAS%.
type normaliser struct {
	labels  map[string]string
	lastCAS map[string]string
}

func newNormaliser() *normaliser {
	return &normaliser{labels: map[string]string{}, lastCAS: map[string]string{}}
}

// walk splits an answer stream into lines and VALUE blocks, calling fn for
// each line (its data block follows when it is a VALUE line). It reports
// whether the stream ends on a complete unit, and the last line.
func walk(b []byte, fn func(line []byte, data []byte)) (complete bool, last []byte) {
	for len(b) > 0 {
		i := bytes.Index(b, []byte("\r\n"))
		if i < 0 {
			return false, last
		}
		line := b[:i]
		b = b[i+2:]
		var data []byte
		if f := bytes.Split(line, []byte(" ")); len(f) >= 4 && string(f[0]) == "VALUE" {
			n, err := strconv.Atoi(string(f[3]))
			if err == nil {
				if len(b) < n+2 {
					return false, last
				}
				data, b = b[:n+2], b[n+2:]
			}
		}
		if fn != nil {
			fn(line, data)
		}
		last = line
	}
	return true, last
}

// complete reports whether buf holds a step's whole answer: it ends with
// the sentinel's VERSION line.
func (n *normaliser) complete(buf []byte) (bool, error) {
	ok, last := walk(buf, nil)
	return ok && bytes.HasPrefix(last, []byte("VERSION ")), nil
}

func (n *normaliser) normalise(buf []byte) string {
	var out bytes.Buffer
	walk(buf, func(line, data []byte) {
		f := bytes.Split(line, []byte(" "))
		if len(f) >= 4 && string(f[0]) == "VALUE" && len(data) >= 2 {
			// memcached rewrites an incr/decr result in place, padded with
			// spaces to the old length, unless another of its threads (the
			// LRU maintainer) holds the item at that moment: then it stores
			// the number unpadded. Both are the same number; compare
			// without the padding (TestIncrPadding checks this server's).
			if v := data[:len(data)-2]; paddedNumber(v) {
				v = bytes.TrimRight(v, " ")
				data = append(append([]byte(nil), v...), '\r', '\n')
				f[3] = []byte(strconv.Itoa(len(v)))
				line = bytes.Join(f, []byte(" "))
			}
		}
		switch {
		case len(f) == 5 && string(f[0]) == "VALUE":
			cas := string(f[4])
			n.lastCAS[string(f[1])] = cas
			l, ok := n.labels[cas]
			if !ok {
				l = "C" + strconv.Itoa(len(n.labels)+1)
				n.labels[cas] = l
			}
			f[4] = []byte(l)
			line = bytes.Join(f, []byte(" "))
		case bytes.HasPrefix(line, []byte("VERSION ")):
			line = []byte("VERSION *")
		}
		out.Write(line)
		out.WriteString("\r\n")
		out.Write(data)
	})
	if ok, _ := walk(buf, nil); !ok {
		// An incomplete tail (the connection closed): keep it raw.
		var consumed int
		walk(buf, func(line, data []byte) { consumed += len(line) + 2 + len(data) })
		out.Write(buf[consumed:])
	}
	s := out.String()
	return strings.TrimSuffix(s, "VERSION *\r\n")
}

// paddedNumber reports whether v is decimal digits followed by at least one
// space: an incr/decr result memcached may or may not have padded.
func paddedNumber(v []byte) bool {
	i := 0
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
	}
	if i == 0 || i == len(v) {
		return false
	}
	for _, b := range v[i:] {
		if b != ' ' {
			return false
		}
	}
	return true
}

// handWritten are the cases written for a reason: every command gomemcache
// sends, each error reply, the limits, and the inputs that crashed the
// server arena used before.
func handWritten() []dsession {
	big := strings.Repeat("v", 1048515) // the largest value with a 2-byte key and no flags
	k250 := strings.Repeat("k", 250)
	k251 := strings.Repeat("k", 251)
	manyKeys := make([]string, 3000)
	for i := range manyKeys {
		manyKeys[i] = "hk" + strconv.Itoa(i%40)
	}
	future := strconv.FormatInt(time.Now().Unix()+100000, 10)
	s := func(name string, final string, texts ...string) dsession {
		ss := dsession{name: name, final: final}
		for _, t := range texts {
			st := step{text: t}
			if strings.Contains(t, "%CAS%") {
				f := strings.Fields(t)
				st.casKey = f[1]
			}
			ss.steps = append(ss.steps, st)
		}
		return ss
	}
	return []dsession{
		s("minimemcached crash", "", "get foo\r\n", "get foo\r\n", "gets foo bar\r\n"),
		s("empty lines", "", "\r\n", "\n", " \r\n", "  \n", "\r\r\n", "x\r\n", "xy\r\n"),
		s("get family", "",
			"set hk1 5 0 3\r\nabc\r\n", "get hk1\r\n", "gets hk1\r\n", "get hk1 hk2 hk1\r\n",
			"gat 100 hk1 hk2\r\n", "gats 0 hk1\r\n", "bget hk1\r\n", "get\r\n", "gets\r\n",
			"gat\r\n", "gat 10\r\n", "gat abc hk1\r\n", "gat -1 hk1\r\n", "get hk1\r\n",
			"get  hk1   hk1  \r\n", "get "+k250+"\r\n", "get hk1 "+k251+" hk1\r\n", "getx hk1\r\n"),
		s("many keys", "", "set hk3 0 0 1\r\nx\r\n", "get "+strings.Join(manyKeys, " ")+"\r\n",
			"gets "+strings.Join(manyKeys, " ")+" "+k251+"\r\n"),
		s("storage", "",
			"set sk 0 0 2\r\nab\r\n", "add sk 0 0 2\r\ncd\r\n", "add sk2 3 0 2\r\ncd\r\n",
			"replace sk 7 0 1\r\nz\r\n", "replace nosuch 0 0 1\r\nz\r\n", "append sk 9 0 2\r\n12\r\n",
			"prepend sk 9 0 2\r\n00\r\n", "get sk sk2\r\n", "append nosuch 0 0 1\r\nq\r\n",
			"prepend nosuch 0 0 1\r\nq\r\n", "set sk 0 0 0\r\n\r\n", "get sk\r\n",
			"set sk 4294967295 0 1\r\nf\r\n", "gets sk\r\n", "set sk 4294967296 0 1\r\ng\r\n", "get sk\r\n",
			"set sk -1 0 1\r\nh\r\n", "set sk -0 0 1\r\nh\r\n", "set sk +5 0 1\r\nh\r\n", "set sk 1a 0 1\r\nh\r\n",
			"set sk 0 abc 1\r\nh\r\n", "set sk 0 0 abc\r\nh\r\n", "set sk 0 0 -1\r\nh\r\n",
			"set sk 0 0 4294967297\r\nh\r\n", "get sk\r\n", "set sk 0 0 1 junk\r\ni\r\n", "get sk\r\n",
			"set sk 0 0\r\n", "set sk 0 0 1 noreply extra\r\n", "set "+k250+" 0 0 1\r\nl\r\n", "get "+k250+"\r\n",
			"set "+k251+" 0 0 1\r\nl\r\n", "set sk\t 0 0 1\r\nt\r\n", "get sk\t\r\n"),
		s("bad data chunks", "", "set bk 0 0 3\r\nhello\r\n", "set bk 0 0 1\r\nab\r\n", "set bk 0 0 2\r\nabXY",
			"set bk 0 0 2\r\nab\n\r", "get bk\r\n", "set bk 0 0 2 noreply\r\nabcd", "get bk\r\n"),
		s("noreply", "",
			"set nk 0 0 1 noreply\r\na\r\n", "get nk\r\n", "add nk 0 0 1 noreply\r\nb\r\n",
			"replace nk 0 0 1 noreply\r\nc\r\n", "append nk 0 0 1 noreply\r\nd\r\n",
			"prepend nk 0 0 1 noreply\r\ne\r\n", "get nk\r\n", "cas nk 0 0 1 1 noreply\r\nf\r\n",
			"incr nk 1 noreply\r\n", "set nk 0 0 1 noreply\r\n5\r\n", "incr nk 1 noreply\r\n",
			"decr nk 9 noreply\r\n", "get nk\r\n", "touch nk 100 noreply\r\n", "delete nk noreply\r\n",
			"delete nk noreply\r\n", "get nk\r\n", "set nk x 0 1 noreply\r\n", "set nk 0 0 abc noreply\r\n",
			"incr nk abc noreply\r\n", "touch nk abc noreply\r\n", "verbosity 1 noreply\r\n",
			"verbosity x noreply\r\n", "flush_all noreply\r\n", "flush_all 0 noreply\r\n"),
		s("cas", "",
			"set ck 0 0 1\r\na\r\n", "gets ck\r\n", "cas ck 0 0 1 %CAS%\r\nb\r\n", "cas ck 0 0 1 %CAS%\r\nc\r\n",
			"gets ck\r\n", "cas ck 0 0 1 0\r\nd\r\n", "cas nosuch 0 0 1 1\r\nd\r\n", "cas ck 0 0 1 abc\r\nd\r\n",
			"cas ck 0 0 1\r\nd\r\n", "cas ck 0 0 1 -1\r\nd\r\n", "gets ck\r\n", "cas ck 0 0 1 %CAS% noreply\r\ne\r\n",
			"gets ck\r\n", "touch ck 100\r\n", "gets ck\r\n", "cas ck 3 0 2 %CAS%\r\nff\r\n", "gets ck\r\n"),
		s("incr decr", "",
			"set ik 0 0 1\r\n5\r\n", "incr ik 1\r\n", "incr ik 18446744073709551615\r\n", "get ik\r\n",
			"set ik 0 0 3\r\n100\r\n", "decr ik 95\r\n", "get ik\r\n", "incr ik 1000\r\n", "gets ik\r\n",
			"decr ik 99999\r\n", "get ik\r\n", "set ik 0 0 20\r\n18446744073709551615\r\n", "incr ik 2\r\n",
			"get ik\r\n", "set ik 0 0 5\r\n5 abc\r\n", "incr ik 1\r\n", "get ik\r\n",
			"set ik 0 0 3\r\nabc\r\n", "incr ik 1\r\n", "set ik 0 0 0\r\n\r\n", "incr ik 1\r\n",
			"set ik 7 100 3\r\n 42\r\n", "incr ik 1\r\n", "get ik\r\n", "set ik 0 0 2\r\n+4\r\n", "decr ik 1\r\n",
			"set ik 0 0 2\r\n-0\r\n", "incr ik 1\r\n", "set ik 0 0 2\r\n-5\r\n", "incr ik 1\r\n",
			"set ik 0 0 25\r\n9999999999999999999999999\r\n", "incr ik 1\r\n", "incr nosuch 1\r\n",
			"incr ik -1\r\n", "incr ik abc\r\n", "incr ik 18446744073709551616\r\n", "incr ik +3\r\n",
			"incr ik\r\n", "decr ik 1 2 3\r\n", "incr "+k251+" 1\r\n"),
		s("delete touch", "",
			"set dk 0 0 1\r\na\r\n", "delete dk 1\r\n", "delete dk noreply 0\r\n", "delete dk 0\r\n",
			"delete dk\r\n", "set dk 0 0 1\r\na\r\n", "delete dk 0 noreply\r\n", "get dk\r\n", "delete\r\n",
			"delete "+k251+"\r\n", "delete a b c d\r\n", "set dk 0 0 1\r\na\r\n", "touch dk 100\r\n",
			"touch dk abc\r\n", "touch dk\r\n", "touch nosuch 10\r\n", "touch dk -1\r\n", "get dk\r\n",
			"touch "+k251+" 1\r\n"),
		s("expiry", "",
			"set ek 0 -1 1\r\na\r\n", "get ek\r\n", "add ek 0 0 1\r\nb\r\n", "get ek\r\n",
			"set ek 0 1000000000 1\r\nc\r\n", "get ek\r\n", "set ek 0 "+future+" 1\r\nd\r\n", "get ek\r\n",
			"set ek 0 2592000 1\r\ne\r\n", "get ek\r\n", "set ek 0 2592001 1\r\nf\r\n", "get ek\r\n",
			"set ek 0 4294967296 1\r\ng\r\n", "get ek\r\n", "set ek2 0 100 1\r\nh\r\n", "gat -1 ek2\r\n", "get ek2\r\n"),
		s("item size limit", "",
			"set bg 0 0 1048515\r\n"+big+"\r\n", "get bg\r\n", "set bg 0 0 1048516\r\n"+big+"v\r\n", "get bg\r\n",
			"set bg 1 0 1048512\r\n"+big[:1048512]+"\r\n", "set bg 1 0 1048511\r\n"+big[:1048511]+"\r\n",
			"append bg 0 0 5\r\nvvvvv\r\n", "get bg\r\n", "set bg2 0 0 2000000\r\n"+strings.Repeat("w", 2000000)+"\r\n",
			"get bg2\r\n", "add bg3 0 0 1048600 noreply\r\n"+strings.Repeat("w", 1048600)+"\r\n", "get bg3\r\n"),
		s("flush_all", "",
			"set fk 0 0 1\r\na\r\n", "flush_all\r\n", "get fk\r\n", "set fk 0 0 1\r\na\r\n", "flush_all 0\r\n",
			"get fk\r\n", "set fk 0 0 1\r\na\r\n", "flush_all 100000\r\n", "get fk\r\n", "flush_all -1\r\n",
			"get fk\r\n", "set fk 0 0 1\r\na\r\n", "flush_all 1000000000\r\n", "get fk\r\n", "flush_all abc\r\n",
			"flush_all 0 noreply extra\r\n", "flush_all noreply 5\r\n", "get fk\r\n"),
		s("other commands", "", "verbosity 1\r\n", "verbosity\r\n", "verbosity abc\r\n", "verbosity 1 2 3\r\n",
			"foo\r\n", "Get k\r\n", "sett k\r\n", "increment k 1\r\n", "a b c d e f g h i j k l m n o p q r s t u v w x y z\r\n",
			"get a\x00b\r\n", "\x00get a\r\n", "set a\x00 0 0 1\r\n", "flush\r\n", "inc\r\n", "touchy k 1\r\n"),
		s("quit", "quit\r\nget k\r\n", "set qk 0 0 1\r\na\r\n"),
		s("http", "GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		s("http post", "POST /x HTTP/1.0\r\n\r\n", "get k\r\n"),
		s("partial line", "get k"),
		s("partial data", "set pk 0 0 10\r\nabc", "get pk\r\n"),
		s("long line", strings.Repeat("x", 20000)),
		s("long get line", "get "+strings.Repeat("k ", 20000)+"\r\n"),
		s("pipelined", "get pp\r\nset pp 0 0 1\r\n1\r\nincr pp 5\r\nget pp\r\n",
			"set pp 0 0 1\r\n1\r\nincr pp 5\r\nget pp\r\ndelete pp\r\nget pp\r\n"),
	}
}

// generate makes a random session from a grammar of valid, malformed and
// hostile requests over a few keys.
func generate(rng *rand.Rand, n int) dsession {
	g := &gen{rng: rng, prefix: "g" + strconv.Itoa(n) + "k"}
	s := dsession{name: "generated-" + strconv.Itoa(n)}
	for range 5 + rng.IntN(25) {
		s.steps = append(s.steps, g.step())
	}
	switch rng.IntN(8) {
	case 0:
		s.final = "quit\r\n"
	case 1:
		s.final = "get " + g.key()
	case 2:
		s.final = "set " + g.key() + " 0 0 10\r\nabc"
	case 3:
		s.final = g.step().text
	}
	return s
}

type gen struct {
	rng    *rand.Rand
	prefix string
}

func (g *gen) pick(xs ...string) string { return xs[g.rng.IntN(len(xs))] }

func (g *gen) key() string {
	switch g.rng.IntN(20) {
	case 0:
		return strings.Repeat("L", 251)
	case 1:
		return g.prefix + strings.Repeat("M", 250-len(g.prefix))
	case 2:
		return g.prefix + "\t" + strconv.Itoa(g.rng.IntN(3))
	case 3:
		return g.prefix + "\xff"
	}
	return g.prefix + strconv.Itoa(g.rng.IntN(6))
}

func (g *gen) value() string {
	if g.rng.IntN(2) == 0 {
		// No value of 2^63 or more: memcached reads such a value's sign by
		// scanning memory past the item (strchr on unterminated data), so
		// its answer to incr/decr depends on stale memory. The hand-written
		// cases cover the wrap on a fresh server.
		return g.pick("0", "5", "999999999999999999", " 7", "+3", "-0", "-5",
			"007", "12 34", "99999999999999999999999", "1\r\n2", "42")
	}
	const alphabet = "abcxyz0123456789 -+\r\n\t\x00"
	for {
		b := make([]byte, g.rng.IntN(20))
		for i := range b {
			b[i] = alphabet[g.rng.IntN(len(alphabet))]
		}
		// Nor a value of white space alone: memcached's incr skips it and
		// the item's "\r\n" and parses whatever memory follows.
		if len(b) == 0 || len(bytes.Trim(b, " \t\r\n")) > 0 {
			return string(b)
		}
	}
}

func (g *gen) exptime() string {
	if g.rng.IntN(3) > 0 {
		return "0"
	}
	return g.pick("100", "2592000", "2592001", strconv.FormatInt(time.Now().Unix()+100000, 10),
		"1000000000", "-1", "abc", "4294967296", "-0", "+100")
}

func (g *gen) noreply() string {
	switch g.rng.IntN(10) {
	case 0, 1:
		return " noreply"
	case 2:
		return " junk"
	}
	return ""
}

func (g *gen) step() step {
	switch k := g.rng.IntN(100); {
	case k < 40:
		return g.storage()
	case k < 60:
		cmd := g.pick("get", "gets", "get", "gets", "gat", "gats", "bget")
		line := cmd
		if cmd == "gat" || cmd == "gats" {
			line += " " + g.pick("0", "100", "-1", "abc", "2592001")
		}
		for range g.rng.IntN(5) {
			line += g.pick(" ", " ", "  ") + g.key()
		}
		return step{text: line + "\r\n"}
	case k < 72:
		cmd := g.pick("incr", "decr")
		delta := g.pick("1", "0", "5", "99999999999999999", "18446744073709551616", "-1", "abc", "+2", "007", "1000")
		return step{text: cmd + " " + g.key() + " " + delta + g.noreply() + "\r\n"}
	case k < 80:
		return step{text: g.pick("delete "+g.key(), "delete "+g.key()+" 0", "delete "+g.key()+" noreply",
			"delete "+g.key()+" 0 noreply", "delete "+g.key()+" 1", "delete "+g.key()+" noreply 0", "delete") + "\r\n"}
	case k < 86:
		return step{text: g.pick("touch "+g.key()+" "+g.exptime()+g.noreply(), "touch "+g.key()) + "\r\n"}
	case k < 88:
		return step{text: g.pick("flush_all", "flush_all 0", "flush_all noreply", "flush_all -1",
			"flush_all abc", "flush_all 0 noreply") + "\r\n"}
	case k < 90:
		return step{text: g.pick("verbosity 1", "verbosity", "verbosity abc", "verbosity 1 noreply") + "\r\n"}
	default:
		return step{text: g.garbage()}
	}
}

func (g *gen) storage() step {
	cmd := g.pick("set", "set", "set", "add", "replace", "append", "prepend", "cas", "cas")
	key := g.key()
	val := g.value()
	flags := "0"
	if g.rng.IntN(3) == 0 {
		flags = g.pick(strconv.FormatUint(uint64(g.rng.Uint32()), 10), "4294967296", "-1", "-0", "abc", "1a", "+3", "7")
	}
	vlen := strconv.Itoa(len(val))
	switch g.rng.IntN(12) {
	case 0:
		vlen = g.pick("-1", "abc", "4294967296", "", strconv.Itoa(len(val)+1))
	case 1:
		vlen = strconv.Itoa(4294967296 + len(val))
	}
	line := cmd + " " + key + " " + flags + " " + g.exptime() + " " + vlen
	st := step{}
	if cmd == "cas" {
		switch g.rng.IntN(4) {
		case 0:
			line += " " + g.pick("0", "1", "abc", "-1", "18446744073709551615")
		default:
			line += " %CAS%"
			st.casKey = key
		}
	}
	line += g.noreply()
	// Frame the data block as the parser says the server will read it:
	// exactly the declared length plus two bytes, sometimes a bad ending.
	probe := strings.ReplaceAll(line, "%CAS%", "1")
	r := parse(cutLine([]byte(probe)))
	data := ""
	if r.op.isStorage() && r.reply == "" {
		d := val + "\r\n"
		want := int(r.vlen) + 2
		for len(d) < want {
			d += "x"
		}
		d = d[:want]
		if g.rng.IntN(10) == 0 {
			d = d[:want-2] + g.pick("XY", "\r\r", "\n\n", "\r ")
		}
		data = d
	} else if g.rng.IntN(2) == 0 {
		// The refused line's data arrives anyway and is read as a command.
		data = strings.NewReplacer("\r", "", "\n", "").Replace(val) + "\r\n"
	}
	st.text = line + "\r\n" + data
	return st
}

func (g *gen) garbage() string {
	switch g.rng.IntN(6) {
	case 0:
		return g.pick("", " ", "\r", "  \r", "\t", "x", "xx", "\x00", "\r\r") + "\r\n"
	case 1:
		return g.pick("\n", "\r\n", " \n")
	case 2:
		return g.pick("get", "gets", "gat", "gat 10", "incr", "decr k", "set k 0 0", "cas k 0 0 1",
			"Set k 0 0 1", "gett k", "sets", "touch", "delete a b c d", "flush_all 1 2 3",
			"verbosity 1 2 3", "quitx", "ab cd", "get \x00k") + "\r\n"
	case 3:
		var toks []string
		for range 20 + g.rng.IntN(10) {
			toks = append(toks, g.pick("a", "bb", "0", "-1", "noreply", "HTTP/"))
		}
		return g.pick("get", "set", "incr", "delete", "flush_all", "zz") + " " + strings.Join(toks, " ") + "\r\n"
	case 4:
		return strings.Repeat(" ", g.rng.IntN(5)) + "get " + g.key() + strings.Repeat(" ", g.rng.IntN(5)) + "\r\n"
	default:
		b := make([]byte, 1+g.rng.IntN(30))
		const alphabet = "abcxyz0123456789 -+\t\x00"
		for i := range b {
			b[i] = alphabet[g.rng.IntN(len(alphabet))]
		}
		return string(b) + "\r\n"
	}
}
