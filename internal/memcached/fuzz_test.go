package memcached

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// FuzzParse runs the command-line parser on any line. It must not panic,
// and what it accepts must hold memcached's limits.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"get foo", "gets a b c", "gat 10 a", "gats x", "set k 0 0 5", "set k 0 0 5 noreply",
		"cas k 1 2 3 4", "incr k 18446744073709551615", "decr k -1", "delete k 0 noreply",
		"touch k -1", "flush_all 10 noreply", "verbosity 1", "version", "quit", "",
		" ", "\t", "mg foo", "GET / HTTP/1.1", "set k 0 0 4294967297", "set " + strings.Repeat("k", 251) + " 0 0 1",
		"get " + strings.Repeat("a ", 40), "incr k +5", "set k -0 +1 007",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		line = cutLine(line)
		r := parse(line)
		if r.reply != "" && r.op != opNone && !r.op.isRetrieval() {
			t.Fatalf("%q: op %d with reply %q", line, r.op, r.reply)
		}
		if r.op.isStorage() {
			if r.vlen < 0 || len(r.key) == 0 || len(r.key) > MaxKeyLen {
				t.Fatalf("%q: accepted vlen %d key %q", line, r.vlen, r.key)
			}
		}
		for rest := r.keys; len(rest) > 0; {
			var k []byte
			k, rest = nextKey(rest)
			if len(k) > MaxKeyLen || bytes.IndexByte(k, ' ') >= 0 {
				t.Fatalf("%q: key %q", line, k)
			}
		}
	})
}

// FuzzSession runs a whole session of any bytes against a small cache, with
// no recover in the way: it must not panic, every answer must be a
// well-formed memcached answer, and the cache must stay consistent and
// within its memory limit.
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"get foo\r\n",
		"set a 0 0 1\r\nx\r\nget a\r\ngets a a\r\n",
		"set a 0 0 3\r\nhello\r\n",
		"set n 0 0 2\r\n99\r\nincr n 1\r\ndecr n 1000\r\nget n\r\n",
		"set a 0 0 1 noreply\r\nx\r\nappend a 0 0 1\r\ny\r\nprepend a 0 0 1\r\nz\r\ncas a 0 0 1 2\r\nq\r\n",
		"set b 0 0 2000\r\n" + strings.Repeat("b", 2000) + "\r\nset c 0 0 2000\r\n" + strings.Repeat("c", 2000) + "\r\nget b c\r\n",
		"flush_all\r\nflush_all 10\r\ntouch a 5\r\ngat 1 a\r\ndelete a\r\n",
		"\x80\x00", "\r\n\r\n\n", "set k 0 0 -1\r\nget\r\n", "set k 0 0 4294967297\r\nx\r\n",
		"GET / HTTP/1.1\r\n", "quit\r\nget a\r\n", "get " + strings.Repeat("k", 300) + "\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		now := time.Unix(1_800_000_000, 0)
		c := newCache(8<<10, 4<<10, func() time.Time { now = now.Add(time.Second); return now })
		var out bytes.Buffer
		s := newSession(c, bytes.NewReader(in), &out)
		s.run()
		if !wellFormed(out.Bytes()) {
			t.Fatalf("answers to %q are not well-formed: %q", in, out.Bytes())
		}
		checkInvariants(t, c)
	})
}

// wellFormed reports whether b is a sequence of memcached answers: lines
// ending in "\r\n", VALUE lines followed by their data block.
func wellFormed(b []byte) bool {
	for len(b) > 0 {
		i := bytes.Index(b, []byte("\r\n"))
		if i < 0 {
			return false
		}
		line := string(b[:i])
		b = b[i+2:]
		if strings.HasPrefix(line, "VALUE ") {
			f := strings.Split(line, " ")
			if len(f) != 4 && len(f) != 5 {
				return false
			}
			n := 0
			for _, d := range f[3] {
				if d < '0' || d > '9' {
					return false
				}
				n = n*10 + int(d-'0')
			}
			if len(b) < n+2 || string(b[n:n+2]) != "\r\n" {
				return false
			}
			b = b[n+2:]
			continue
		}
		switch {
		case line == "END", line == "STORED", line == "NOT_STORED", line == "EXISTS", line == "NOT_FOUND",
			line == "DELETED", line == "TOUCHED", line == "OK", line == "ERROR",
			strings.HasPrefix(line, "CLIENT_ERROR "), strings.HasPrefix(line, "SERVER_ERROR "),
			strings.HasPrefix(line, "VERSION "):
		default:
			if line == "" || strings.Trim(line, "0123456789") != "" {
				return false
			}
		}
	}
	return true
}
