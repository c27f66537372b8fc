// Package linetest is a raw line-protocol client for tests. It writes
// exactly the bytes a test gives it and returns the dispatcher's answers as
// text (err|... included), so tests can send malformed, over-long or
// half-written requests, which lineproto.Client refuses to send.
package linetest

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/lineproto"
)

// Conn is one newline-mode connection. C and R are there for tests that
// write or read raw bytes.
type Conn struct {
	C net.Conn
	R *bufio.Reader
}

// Dial connects to addr, failing t when it cannot; the connection closes
// when the test ends.
func Dial(t testing.TB, addr string) *Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &Conn{C: c, R: bufio.NewReader(c)}
}

// Do sends req and a newline and returns the answer line without its
// newline, failing t on a write or read error (30 s at most).
func (l *Conn) Do(t testing.TB, req string) string {
	t.Helper()
	_ = l.C.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := l.C.Write([]byte(req + "\n")); err != nil {
		t.Fatal(err)
	}
	ans, err := l.R.ReadString('\n')
	if err != nil {
		t.Fatalf("%q: %v", req, err)
	}
	return strings.TrimSuffix(ans, "\n")
}

// Seed sends req the seed's way (a new connection, no newline) and returns
// what the server writes before it closes, failing t on an error.
func Seed(t testing.TB, addr, req string) string {
	t.Helper()
	ans, err := lineproto.SeedRequest(context.Background(), addr, req)
	if err != nil {
		t.Fatal(err)
	}
	return ans
}
