package lineproto

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrServer is wrapped by Client.Do when the dispatcher answered err|reason.
var ErrServer = errors.New("dispatcher refused")

// Client speaks the newline-terminated form of the line protocol over one
// persistent connection, redialling after any error. Requests are
// serialised; it is safe for concurrent use.
type Client struct {
	addr    string
	timeout time.Duration

	mu   sync.Mutex
	conn net.Conn
	r    *bufio.Reader
}

// NewClient returns a client for the dispatcher at addr (host:port). It dials
// lazily. timeout bounds each request (zero: 2s).
func NewClient(addr string, timeout time.Duration) *Client {
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	return &Client{addr: addr, timeout: timeout}
}

// Do sends line and returns the answer without its newline. An `err|reason`
// answer is returned as an error wrapping ErrServer.
func (c *Client) Do(ctx context.Context, line string) (string, error) {
	if strings.ContainsAny(line, "\r\n") || len(line) > MaxLine {
		return "", fmt.Errorf("line request: %w", ErrTooLong)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var lastErr error
	for attempt := 0; attempt < 2; attempt++ {
		ans, err := c.do(ctx, line)
		if err == nil {
			if reason, ok := strings.CutPrefix(ans, "err|"); ok {
				return "", fmt.Errorf("line request %q: %w: %s", verbOf(line), ErrServer, reason)
			}
			return ans, nil
		}
		c.closeLocked()
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return "", fmt.Errorf("line request %q to %s: %w", verbOf(line), c.addr, lastErr)
}

func verbOf(line string) string {
	v, _, _ := strings.Cut(line, "|")
	return v
}

func (c *Client) do(ctx context.Context, line string) (string, error) {
	deadline := time.Now().Add(c.timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	if c.conn == nil {
		d := net.Dialer{Deadline: deadline}
		conn, err := d.DialContext(ctx, "tcp", c.addr)
		if err != nil {
			return "", err
		}
		c.conn, c.r = conn, bufio.NewReaderSize(conn, 4096)
	}
	_ = c.conn.SetDeadline(deadline)
	if _, err := c.conn.Write([]byte(line + "\n")); err != nil {
		return "", err
	}
	ans, err := c.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(ans, "\n"), nil
}

func (c *Client) closeLocked() {
	if c.conn != nil {
		_ = c.conn.Close()
		c.conn, c.r = nil, nil
	}
}

// Close closes the connection; the next Do redials.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeLocked()
	return nil
}

// GetPort asks for a process of kind (KindFight, or KindMap with mapID) and
// returns its port.
func (c *Client) GetPort(ctx context.Context, kind, mapID string) (int, error) {
	req := Request{Verb: VerbGet, Kind: kind, Map: mapID}
	ans, err := c.Do(ctx, req.Format())
	if err != nil {
		return 0, err
	}
	p, err := strconv.Atoi(ans)
	if err != nil {
		return 0, fmt.Errorf("line request get: bad answer %q", ans)
	}
	return p, nil
}

// LoadReporter reports one process's load changes to the dispatcher with
// add|PORT|TOKEN[|MAPID] and del|PORT|TOKEN[|MAPID].
type LoadReporter struct {
	C     *Client
	Port  int
	Token string
}

// Add reports one more unit of load (a room, or a player on mapID).
func (l *LoadReporter) Add(ctx context.Context, mapID string) error {
	_, err := l.C.Do(ctx, Request{Verb: VerbAdd, Port: l.Port, Token: l.Token, Map: mapID}.Format())
	return err
}

// Del reports one unit of load less.
func (l *LoadReporter) Del(ctx context.Context, mapID string) error {
	_, err := l.C.Do(ctx, Request{Verb: VerbDel, Port: l.Port, Token: l.Token, Map: mapID}.Format())
	return err
}

// SeedRequest sends one request in the seed's framing: no newline, then
// reads the answer until the server closes the connection. It is how the
// original clients speak; tests and tools use it to check that framing.
func SeedRequest(ctx context.Context, addr, req string) (string, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", fmt.Errorf("seed request %q: %w", verbOf(req), err)
	}
	defer c.Close()
	deadline := time.Now().Add(30 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = c.SetDeadline(deadline)
	if _, err := c.Write([]byte(req)); err != nil {
		return "", fmt.Errorf("seed request %q: %w", verbOf(req), err)
	}
	b, err := io.ReadAll(io.LimitReader(c, 1<<20))
	if err != nil {
		return "", fmt.Errorf("seed request %q: %w", verbOf(req), err)
	}
	return string(b), nil
}
