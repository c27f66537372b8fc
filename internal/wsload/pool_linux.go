//go:build linux

package wsload

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/arena-game/arena/internal/wsconn"
)

// Pool serves client connections on a fixed number of epoll loops.
type Pool struct {
	loops      []*loop
	next       atomic.Uint32
	maxMessage int
	stop       chan struct{}
	wg         sync.WaitGroup
	closeOnce  sync.Once
}

type loop struct {
	p     *Pool
	epfd  int
	mu    sync.RWMutex
	conns map[int32]*Conn
}

// NewPool starts loops epoll loops (at least 1), each on its own goroutine.
// maxMessage bounds a server message (0: DefaultMaxMessage); a longer one
// closes its connection with ErrProtocol.
func NewPool(loops, maxMessage int) (*Pool, error) {
	if loops < 1 {
		loops = 1
	}
	if maxMessage <= 0 {
		maxMessage = DefaultMaxMessage
	}
	p := &Pool{maxMessage: maxMessage, stop: make(chan struct{})}
	for i := 0; i < loops; i++ {
		fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("wsload: epoll: %w", err)
		}
		l := &loop{p: p, epfd: fd, conns: make(map[int32]*Conn)}
		p.loops = append(p.loops, l)
		p.wg.Add(1)
		go l.run()
	}
	return p, nil
}

// Close stops the loops and closes every connection still open (OnClose
// gets ErrClosed). It is safe to call more than once.
func (p *Pool) Close() error {
	p.closeOnce.Do(func() {
		close(p.stop)
		p.wg.Wait()
		for _, l := range p.loops {
			l.mu.Lock()
			conns := make([]*Conn, 0, len(l.conns))
			for _, c := range l.conns {
				conns = append(conns, c)
			}
			l.mu.Unlock()
			for _, c := range conns {
				c.shut(ErrClosed)
			}
			_ = unix.Close(l.epfd)
		}
	})
	return nil
}

func (l *loop) run() {
	defer l.p.wg.Done()
	events := make([]unix.EpollEvent, 256)
	for {
		select {
		case <-l.p.stop:
			return
		default:
		}
		n, err := unix.EpollWait(l.epfd, events, 100)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		for i := 0; i < n; i++ {
			l.mu.RLock()
			c := l.conns[events[i].Fd]
			l.mu.RUnlock()
			if c != nil {
				c.readable()
			}
		}
	}
}

// Conn is one client connection. Send and Close are safe for concurrent
// use; messages arrive on the Handler.
type Conn struct {
	l    *loop
	h    Handler
	fd   int
	rbuf []byte // received bytes; rbuf[:rn] not yet parsed
	rn   int

	wmu       sync.Mutex
	wbuf      []byte
	rnd       uint64 // mask key generator (xorshift), under wmu
	closed    bool   // fd closed, under wmu
	sentClose bool

	done atomic.Bool // OnClose called
	// Value is for the owner's per-connection state.
	Value any
}

// Dial connects to rawURL (ws://host:port/path?query), completes the
// WebSocket handshake on a blocking socket (bounded by ctx's deadline, 10 s
// without one), then hands the connection to one of the pool's loops. An
// answer other than 101 is an error naming the HTTP status; frames that
// arrived with the handshake answer are delivered before Dial returns.
func (p *Pool) Dial(ctx context.Context, rawURL string, h Handler) (*Conn, error) {
	select {
	case <-p.stop:
		return nil, ErrClosed
	default:
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "ws" || u.Host == "" {
		return nil, fmt.Errorf("wsload: dial %s: want ws://host:port/path", wsconn.RedactURL(rawURL))
	}
	timeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
		if timeout <= 0 {
			return nil, fmt.Errorf("wsload: dial %s: %w", wsconn.RedactURL(rawURL), context.DeadlineExceeded)
		}
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	addr, err := net.ResolveTCPAddr("tcp", host)
	if err != nil {
		return nil, fmt.Errorf("wsload: dial %s: %w", wsconn.RedactURL(rawURL), err)
	}
	fd, rest, err := handshake(addr, u, timeout)
	if err != nil {
		return nil, fmt.Errorf("wsload: dial %s: %w", wsconn.RedactURL(rawURL), err)
	}
	l := p.loops[int(p.next.Add(1))%len(p.loops)]
	var seed [8]byte
	_, _ = rand.Read(seed[:])
	c := &Conn{l: l, h: h, fd: fd, rbuf: make([]byte, max(2048, len(rest))), rnd: binary.LittleEndian.Uint64(seed[:]) | 1}
	c.rn = copy(c.rbuf, rest)
	if c.rn > 0 && !c.parse() {
		return c, nil // closed while delivering what came with the answer
	}
	l.mu.Lock()
	l.conns[int32(fd)] = c
	l.mu.Unlock()
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}); err != nil {
		c.shut(err)
		return nil, fmt.Errorf("wsload: dial %s: epoll: %w", wsconn.RedactURL(rawURL), err)
	}
	return c, nil
}

// handshake connects to addr and upgrades, returning the socket (switched
// to non-blocking) and any bytes received after the answer's headers.
func handshake(addr *net.TCPAddr, u *url.URL, timeout time.Duration) (int, []byte, error) {
	family := unix.AF_INET
	var sa unix.Sockaddr
	if ip4 := addr.IP.To4(); ip4 != nil {
		sa4 := &unix.SockaddrInet4{Port: addr.Port}
		copy(sa4.Addr[:], ip4)
		sa = sa4
	} else {
		family = unix.AF_INET6
		sa6 := &unix.SockaddrInet6{Port: addr.Port}
		copy(sa6.Addr[:], addr.IP.To16())
		sa = sa6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = unix.Close(fd)
		}
	}()
	tv := unix.NsecToTimeval(int64(timeout))
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	for {
		err = unix.Connect(fd, sa)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return -1, nil, err
	}
	var k [16]byte
	_, _ = rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
		"\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if err := writeAll(fd, []byte(req)); err != nil {
		return -1, nil, err
	}
	buf := make([]byte, 0, 1024)
	var end int
	for {
		if len(buf) == cap(buf) {
			if len(buf) >= 16<<10 {
				return -1, nil, errors.New("handshake answer headers over 16 KiB")
			}
			buf = append(buf, make([]byte, len(buf))...)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return -1, nil, fmt.Errorf("handshake: %w", err)
		}
		if n == 0 {
			return -1, nil, errors.New("handshake: connection closed before the answer")
		}
		buf = buf[:len(buf)+n]
		if end = bytes.Index(buf, []byte("\r\n\r\n")); end >= 0 {
			break
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(buf[:end+4])), nil)
	if err != nil {
		return -1, nil, fmt.Errorf("handshake: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return -1, nil, fmt.Errorf("handshake: http %d", resp.StatusCode)
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		return -1, nil, errors.New("handshake: missing or wrong Sec-WebSocket-Accept")
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return -1, nil, err
	}
	ok = true
	return fd, append([]byte(nil), buf[end+4:]...), nil
}

// writeAll writes b to a blocking or non-blocking socket, waiting up to
// 10 s for room.
func writeAll(fd int, b []byte) error {
	deadline := time.Now().Add(10 * time.Second)
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		switch {
		case err == nil:
			b = b[n:]
		case errors.Is(err, unix.EINTR):
		case errors.Is(err, unix.EAGAIN):
			left := time.Until(deadline)
			if left <= 0 {
				return errors.New("write: the server does not read (10 s)")
			}
			_, _ = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}, int(min(left, time.Second)/time.Millisecond)+1)
		default:
			return err
		}
	}
	return nil
}

// Send sends msg as one text message. It returns once the frame is in the
// socket's buffer (waiting for room when the server does not read, up to
// 10 s, then failing), or ErrClosed.
func (c *Conn) Send(msg []byte) error { return c.write(opText, msg) }

// Close sends a close frame with code and reason; the connection closes
// when the server answers (or when the pool closes).
func (c *Conn) Close(code int, reason string) {
	p := make([]byte, 0, 2+len(reason))
	p = append(p, byte(code>>8), byte(code))
	p = append(p, reason...)
	_ = c.write(opClose, p)
}

func (c *Conn) write(op byte, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed || c.sentClose {
		return ErrClosed
	}
	if op == opClose {
		c.sentClose = true
	}
	c.rnd ^= c.rnd << 13
	c.rnd ^= c.rnd >> 7
	c.rnd ^= c.rnd << 17
	c.wbuf = appendMaskedFrame(c.wbuf[:0], op, payload, uint32(c.rnd))
	err := writeAll(c.fd, c.wbuf)
	if cap(c.wbuf) > 4<<10 {
		c.wbuf = nil
	}
	return err
}

// readable reads what the socket holds and delivers every whole frame.
func (c *Conn) readable() {
	for {
		if c.rn == len(c.rbuf) {
			c.rbuf = append(c.rbuf, make([]byte, len(c.rbuf))...)
		}
		n, err := unix.Read(c.fd, c.rbuf[c.rn:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EAGAIN) {
			return
		}
		if err != nil {
			c.shut(err)
			return
		}
		if n == 0 {
			c.shut(errors.New("wsload: connection closed by server"))
			return
		}
		full := c.rn+n == len(c.rbuf)
		c.rn += n
		if !c.parse() || !full {
			return // drained; level-triggered epoll says when more comes
		}
	}
}

// parse delivers the whole frames in rbuf[:rn] and keeps the rest. It
// reports false once the connection is closed.
func (c *Conn) parse() bool {
	off := 0
	for {
		fin, op, hl, pl, err := frameHeader(c.rbuf[off:c.rn])
		if err != nil {
			c.shut(err)
			return false
		}
		if hl == 0 {
			break
		}
		if pl > c.l.p.maxMessage {
			c.shut(fmt.Errorf("%w: message of %d bytes", ErrProtocol, pl))
			return false
		}
		if c.rn-off < hl+pl {
			if need := hl + pl; need > len(c.rbuf) {
				nb := make([]byte, need)
				c.rn = copy(nb, c.rbuf[off:c.rn])
				c.rbuf, off = nb, 0
			}
			break
		}
		payload := c.rbuf[off+hl : off+hl+pl]
		off += hl + pl
		if !fin || op == opContinuation {
			c.shut(fmt.Errorf("%w: fragmented message", ErrProtocol))
			return false
		}
		switch op {
		case opText, opBinary:
			c.h.OnMessage(c, payload)
		case opPing:
			_ = c.write(opPong, payload)
		case opPong:
		case opClose:
			ce := &CloseError{Code: 1005}
			if len(payload) >= 2 {
				ce.Code = int(payload[0])<<8 | int(payload[1])
				ce.Reason = string(payload[2:])
			}
			_ = c.write(opClose, payload[:min(2, len(payload))])
			c.shut(ce)
			return false
		default:
			c.shut(fmt.Errorf("%w: opcode %d", ErrProtocol, op))
			return false
		}
		if c.isClosed() {
			return false
		}
	}
	c.rn = copy(c.rbuf, c.rbuf[off:c.rn])
	return true
}

func (c *Conn) isClosed() bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.closed
}

// shut closes the socket and calls OnClose once.
func (c *Conn) shut(err error) {
	c.wmu.Lock()
	if c.closed {
		c.wmu.Unlock()
		return
	}
	c.closed = true
	c.l.mu.Lock()
	if c.l.conns[int32(c.fd)] == c {
		delete(c.l.conns, int32(c.fd))
		_ = unix.EpollCtl(c.l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	}
	c.l.mu.Unlock()
	_ = unix.Close(c.fd)
	c.wmu.Unlock()
	if c.done.CompareAndSwap(false, true) {
		c.h.OnClose(c, err)
	}
}
