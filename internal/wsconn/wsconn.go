// Package wsconn is arena's small WebSocket connection type over
// github.com/lxzan/gws. Every arena server (dispatcher /v1/play, fight, map,
// chat) accepts WebSocket clients through it, so every server gets the same
// limits: a maximum message size, a bounded outbound queue (a client that does
// not read is disconnected, never buffered without bound), an idle timeout
// kept alive by server pings, and one JSON text frame per message.
package wsconn

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lxzan/gws"
	"golang.org/x/time/rate"
)

// Close codes arena uses.
const (
	CloseNormal    = 1000
	CloseGoingAway = 1001
	CloseProtocol  = 1002
	ClosePolicy    = 1008 // auth failures, floods
	CloseTooBig    = 1009
	CloseInternal  = 1011
	// CloseServiceRestart (1012, Service Restart): the server is stopping
	// or restarting; reconnect with backoff (docs/PROTOCOL.md).
	CloseServiceRestart = 1012
	CloseTryAgain       = 1013 // slow consumer, overload
	defaultMax          = 64 << 10
	defaultQueue        = 256
	defaultIdle         = 60 * time.Second
	defaultPingEvery    = 25 * time.Second
)

// Errors returned by Send.
var (
	ErrClosed       = errors.New("wsconn: connection closed")
	ErrSlowConsumer = errors.New("wsconn: outbound queue full (slow consumer)")
)

// Options are the per-server (or per-client) limits. Zero fields take the
// defaults.
type Options struct {
	// MaxMessage is the largest message accepted from the peer (default
	// 64 KiB); a larger one closes the connection with 1009.
	MaxMessage int
	// SendQueue is how many outbound messages may wait for the socket
	// (default 256). A Send past it closes the connection with 1013.
	SendQueue int
	// IdleTimeout closes a connection from which nothing (not even a pong)
	// arrived for this long (default 60s).
	IdleTimeout time.Duration
	// PingInterval is how often the server pings (default 25s; negative: never).
	PingInterval time.Duration
	// ReadBuffer is the read buffer size per connection (default 4 KiB).
	ReadBuffer int
	// WriteNow makes a server connection whose queue is empty write a
	// frame at once, from the sender's goroutine, with a non-blocking
	// write (the rest, if the socket is full, goes to the queue). Best for
	// fanning one message out to many connections (chat: no goroutine per
	// connection per message); worse for connections that receive bursts,
	// where queued frames coalesce into one write (the default).
	WriteNow bool
	// AllowedOrigins are the browser origins allowed to open a server's
	// WebSockets besides the defaults; see OriginAllowed.
	AllowedOrigins []string
}

func (o Options) withDefaults() Options {
	if o.MaxMessage <= 0 {
		o.MaxMessage = defaultMax
	}
	if o.SendQueue <= 0 {
		o.SendQueue = defaultQueue
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = defaultIdle
	}
	if o.PingInterval == 0 {
		o.PingInterval = defaultPingEvery
	}
	if o.ReadBuffer <= 0 {
		o.ReadBuffer = 4 << 10
	}
	return o
}

// Handler receives a connection's events. OnMessage runs on the
// connection's read goroutine, one message at a time; data is only valid
// during the call. OnClose is called exactly once.
type Handler interface {
	OnOpen(c *Conn)
	OnMessage(c *Conn, data []byte)
	OnClose(c *Conn, err error)
}

// Default ping limit, for a Handler that is no PingLimiter.
const (
	DefaultPingRate  = 2.0 // pings answered per second
	DefaultPingBurst = 10
)

// PingLimiter is implemented by a Handler that counts WebSocket ping
// frames against a rate limit, with the connection's other messages:
// AllowPing runs on the read goroutine for every ping; false leaves the
// ping unanswered (the handler closes the connection as it sees fit).
// Without it, a server connection answers DefaultPingRate pings a second
// (burst DefaultPingBurst), leaves the rest unanswered, and closes with
// 1008 a connection that leaves more than DefaultPingBurst unanswered
// faster than one a second.
type PingLimiter interface {
	AllowPing(c *Conn) bool
}

// Conn is one WebSocket connection. Its methods are safe for concurrent use.
type Conn struct {
	ws      *gws.Conn
	opt     Options
	pending atomic.Int32
	closed  atomic.Bool
	ping    *time.Timer
	// Value is for the owner's per-connection state, set before or in OnOpen.
	Value any
	mu    sync.Mutex

	// Server connections write through their own coalescing writer (see
	// writer.go); client connections (masked frames) use gws's writer.
	server bool
	w      writer
	// readDeadline is the read deadline last set (unix ns), see touch.
	readDeadline atomic.Int64
	// pings and pingStrikes limit the pings of a connection whose
	// Handler is no PingLimiter (read goroutine only).
	pings, pingStrikes *rate.Limiter
}

// allowPing applies the default ping limit.
func (c *Conn) allowPing() bool {
	if c.pings == nil {
		c.pings = rate.NewLimiter(DefaultPingRate, DefaultPingBurst)
		c.pingStrikes = rate.NewLimiter(1, DefaultPingBurst)
	}
	if c.pings.Allow() {
		return true
	}
	if !c.pingStrikes.Allow() {
		c.Close(ClosePolicy, "ping flood")
	}
	return false
}

// Send queues one text message. It never blocks: when the outbound queue is
// full the connection is closed (1013) and ErrSlowConsumer returned. On a
// server connection, messages queued while a write is in progress go out
// together in the next write (one system call for many frames), and msg is
// copied before Send returns; a client connection writes msg later, so the
// caller must not modify it afterwards.
func (c *Conn) Send(msg []byte) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if c.server {
		if !c.enqueue(opText, msg) {
			c.Close(CloseTryAgain, "slow consumer")
			return ErrSlowConsumer
		}
		return nil
	}
	if int(c.pending.Add(1)) > c.opt.SendQueue {
		c.pending.Add(-1)
		c.Close(CloseTryAgain, "slow consumer")
		return ErrSlowConsumer
	}
	c.ws.WriteAsync(gws.OpcodeText, msg, func(error) { c.pending.Add(-1) })
	return nil
}

// SendNow sends msgs, in order, as one batch. On a server connection with
// nothing queued or being written it writes them at once, from the
// caller's goroutine, with a single non-blocking write (what the socket
// does not take is queued); otherwise they join the queue like Send's.
// It is for a goroutine that produces a connection's messages for one
// tick: one system call per tick and no goroutine. msgs are copied before
// it returns. Like Send, it never blocks and closes a slow consumer (1013,
// ErrSlowConsumer) when the batch does not fit in the queue.
func (c *Conn) SendNow(msgs ...[]byte) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if !c.server {
		for _, m := range msgs {
			if err := c.Send(append([]byte(nil), m...)); err != nil {
				return err
			}
		}
		return nil
	}
	if !c.enqueueFrames(opText, true, msgs...) {
		c.Close(CloseTryAgain, "slow consumer")
		return ErrSlowConsumer
	}
	return nil
}

// SendJSON marshals v and sends it.
func (c *Conn) SendJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.Send(b)
}

// Pending returns how many messages wait in the outbound queue.
func (c *Conn) Pending() int { return int(c.pending.Load()) }

// Close sends a close frame with code and reason (after the messages already
// queued) and closes the connection. Closing twice is a no-op.
func (c *Conn) Close(code uint16, reason string) {
	if !c.closed.CompareAndSwap(false, true) {
		return
	}
	if len(reason) > 120 {
		reason = reason[:120]
	}
	if code < 1000 || code >= 5000 {
		code = CloseNormal
	}
	ws := c.ws
	if c.server {
		c.closeFrame(code, reason)
		time.AfterFunc(2*time.Second, func() { _ = ws.NetConn().Close() })
		return
	}
	// A client's frames must be masked: let gws write the close frame
	// (after the messages already queued) and close the socket.
	ws.Async(func() { _ = ws.WriteClose(code, []byte(reason)) })
	// A write queue stuck behind a peer that never reads must not keep
	// the socket.
	time.AfterFunc(2*time.Second, func() { _ = ws.NetConn().Close() })
}

// Ping sends a WebSocket ping frame (after the frames already queued on
// a server connection).
func (c *Conn) Ping() error {
	if c.closed.Load() {
		return ErrClosed
	}
	if c.server {
		c.enqueue(opPing, nil)
		return nil
	}
	return c.ws.WritePing(nil)
}

// Closed reports whether Close was called or the connection ended.
func (c *Conn) Closed() bool { return c.closed.Load() }

// RemoteAddr returns the peer address.
func (c *Conn) RemoteAddr() net.Addr { return c.ws.RemoteAddr() }

// bridge adapts a Handler to gws.Event.
type bridge struct {
	h   Handler
	opt Options
}

func (b *bridge) conn(s *gws.Conn) *Conn {
	v, _ := s.Session().Load("c")
	c, _ := v.(*Conn)
	return c
}

// touch pushes the read deadline IdleTimeout ahead. Moving a deadline
// costs a runtime timer update, so a busy connection moves it only when it
// is within three quarters of IdleTimeout of expiring: an idle connection is
// still closed between 3/4 and 1 IdleTimeout after its last frame.
func (b *bridge) touch(s *gws.Conn) {
	now := time.Now()
	if c := b.conn(s); c != nil {
		if next := c.readDeadline.Load(); next != 0 && now.Add(b.opt.IdleTimeout*3/4).UnixNano() < next {
			return
		}
		c.readDeadline.Store(now.Add(b.opt.IdleTimeout).UnixNano())
	}
	_ = s.SetReadDeadline(now.Add(b.opt.IdleTimeout))
}

func (b *bridge) OnOpen(s *gws.Conn) {
	c := b.conn(s)
	b.touch(s)
	if b.opt.PingInterval > 0 {
		var tick func()
		tick = func() {
			if c.closed.Load() {
				return
			}
			if c.server {
				c.enqueue(opPing, nil)
			} else {
				s.Async(func() { _ = s.WritePing(nil) })
			}
			c.mu.Lock()
			c.ping.Reset(b.opt.PingInterval)
			c.mu.Unlock()
		}
		c.mu.Lock()
		c.ping = time.AfterFunc(b.opt.PingInterval, tick)
		c.mu.Unlock()
	}
	b.h.OnOpen(c)
}

func (b *bridge) OnClose(s *gws.Conn, err error) {
	c := b.conn(s)
	c.closed.Store(true)
	c.mu.Lock()
	if c.ping != nil {
		c.ping.Stop()
	}
	c.mu.Unlock()
	b.h.OnClose(c, err)
}

func (b *bridge) OnPing(s *gws.Conn, payload []byte) {
	b.touch(s)
	c := b.conn(s)
	if c != nil && c.closed.Load() {
		return
	}
	if c != nil && c.server {
		if pl, ok := b.h.(PingLimiter); ok {
			if !pl.AllowPing(c) {
				return
			}
		} else if !c.allowPing() {
			return
		}
	}
	if c != nil && c.server {
		c.enqueue(opPong, payload)
		return
	}
	_ = s.WritePong(payload)
}

func (b *bridge) OnPong(s *gws.Conn, _ []byte) { b.touch(s) }

func (b *bridge) OnMessage(s *gws.Conn, m *gws.Message) {
	defer m.Close()
	b.touch(s)
	c := b.conn(s)
	if c.closed.Load() {
		return
	}
	b.h.OnMessage(c, m.Bytes())
}

// Server upgrades HTTP requests to Conns.
type Server struct {
	up  *gws.Upgrader
	opt Options
}

// NewServer returns a Server that hands connections to h.
func NewServer(h Handler, opt Options) *Server {
	opt = opt.withDefaults()
	up := gws.NewUpgrader(&bridge{h: h, opt: opt}, &gws.ServerOption{
		ReadMaxPayloadSize: opt.MaxMessage,
		ReadBufferSize:     opt.ReadBuffer,
		CheckUtf8Enabled:   true,
		HandshakeTimeout:   5 * time.Second,
		Recovery:           gws.Recovery,
		Logger:             quietLogger{},
	})
	return &Server{up: up, opt: opt}
}

// Upgrade upgrades the request, sets value as the Conn's Value and serves
// the connection on its own goroutine. It returns once the handshake is
// done (or failed, in which case an HTTP error was written).
//
// A request from a browser page whose origin is not allowed
// (OriginAllowed) is answered 403 and ErrOrigin returned.
func (s *Server) Upgrade(w http.ResponseWriter, r *http.Request, value any) (*Conn, error) {
	if !OriginAllowed(r, s.opt.AllowedOrigins) {
		http.Error(w, "origin not allowed: this server's WebSockets are for its own pages (see --allowed-origins)", http.StatusForbidden)
		return nil, ErrOrigin
	}
	ws, err := s.up.Upgrade(w, r)
	if err != nil {
		return nil, err
	}
	c := &Conn{ws: ws, opt: s.opt, Value: value, server: true}
	// The HTTP server's read and write deadlines (which net/http leaves on
	// a hijacked connection) end with the upgrade: gws's handshake clears
	// them (TestUpgradeLeavesHTTPDeadlinesBehind); from here the
	// connection's own idle timeout, pings and write deadlines apply.
	c.w.nc = ws.NetConn()
	if sc, ok := c.w.nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			c.w.rc = rc
		}
	}
	ws.Session().Store("c", c)
	go ws.ReadLoop()
	return c, nil
}

type quietLogger struct{}

func (quietLogger) Error(...any) {}
