// Package memcached is arena's embedded memcached: a server of memcached's
// text protocol on 127.0.0.1 for `arena up` without --memcache, for tests
// and for the benchmarks.
//
// It answers every command github.com/bradfitz/gomemcache sends (get and
// gets with many keys, gat and gats, set, add, replace, append, prepend, cas,
// delete, incr, decr, touch, flush_all, version, noreply on each) plus bget,
// verbosity and quit, with memcached 1.6.18's replies byte for byte,
// including its error replies to malformed lines; a differential test
// checks that against a real memcached. Other memcached commands (stats,
// the meta commands, slabs, lru, watch, shutdown) answer ERROR, and the
// binary protocol is not spoken (a connection that starts with its magic
// byte is closed).
//
// No input can crash it: requests are parsed with explicit bounds, a
// declared data length is never allocated before the data arrives (one over
// the item size limit is read and thrown away), a line longer than 16 KiB
// closes the connection unless it is a get or gets (up to 2 MiB, for many
// keys), and each connection recovers from a panic as a last line of
// defence (counted in Stats.Panics; none is expected). Each connection has
// one buffered reader, so pipelined requests are answered in order.
//
// Items live in memory under a memory limit with least-recently-used
// eviction; expiry follows memcached (seconds from now up to 30 days,
// absolute unix time above, negative is already expired).
package memcached

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Version is what the version command answers after "VERSION ": the
// memcached release whose text protocol this server follows, marked as
// arena's.
const Version = "1.6.18-arena"

// Defaults for Config's zero values.
const (
	DefaultMaxMemory      = 64 << 20
	DefaultMaxItemSize    = 1 << 20
	DefaultMaxConns       = 1024
	DefaultCommandTimeout = 10 * time.Second
	DefaultWriteTimeout   = 10 * time.Second
)

// Line limits.
const (
	// readBufSize is each connection's read buffer, and the longest line
	// other than a get or gets.
	readBufSize = 16 << 10
	// maxGetLine is the longest get or gets line (a long list of keys).
	maxGetLine = 2 << 20
)

// Config configures Start. Zero values take the defaults.
type Config struct {
	// Port to listen on at 127.0.0.1; 0 picks a free one.
	Port int
	// MaxMemory bounds the bytes of items (counted as memcached counts
	// them: key, value and a 59-byte header); the least recently used
	// items are evicted to make room, and a warning is logged (at most
	// once a minute) while that happens. Default 64 MiB.
	MaxMemory int64
	// MaxItemSize is the largest item (memcached's -I), default 1 MiB: a
	// value of a bit under 1 MiB with a short key.
	MaxItemSize int
	// MaxConns bounds open connections; one more is answered "ERROR Too
	// many open connections" and closed, as memcached does. Default 1024.
	MaxConns int
	// CommandTimeout bounds how long a command may take to arrive once its
	// first byte has (a line and its data block); an idle connection
	// between commands is never closed. Default 10 s. A watchdog checks
	// every quarter of the shorter timeout, so a connection is closed
	// between 3/4 and 5/4 of it.
	CommandTimeout time.Duration
	// WriteTimeout bounds each write of answers to a client that does not
	// read them. Default 10 s.
	WriteTimeout time.Duration
	// Logger receives connection errors and recovered panics; nil discards.
	Logger *slog.Logger
	// Now is the clock for expiry; nil is time.Now.
	Now func() time.Time
}

func (c *Config) defaults() {
	if c.MaxMemory <= 0 {
		c.MaxMemory = DefaultMaxMemory
	}
	if c.MaxItemSize <= 0 {
		c.MaxItemSize = DefaultMaxItemSize
	}
	if c.MaxConns <= 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.CommandTimeout <= 0 {
		c.CommandTimeout = DefaultCommandTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Server is a running embedded memcached. Its methods are safe for
// concurrent use.
type Server struct {
	cfg   Config
	ln    net.Listener
	addr  string
	cache *cache

	mu     sync.Mutex
	conns  map[net.Conn]*watch
	closed bool
	stop   chan struct{} // closed by Close: ends the watchdog
	wg     sync.WaitGroup
	clock  atomic.Int64 // unix nanoseconds, advanced by the watchdog

	open     atomic.Int64
	total    atomic.Uint64
	rejected atomic.Uint64
	panics   atomic.Uint64
}

// Stats are a server's counters.
type Stats struct {
	Items         int    // items stored (expired ones not yet reclaimed included)
	Bytes         int64  // bytes of items, as counted against MaxMemory
	Evictions     uint64 // items evicted to make room
	Reclaimed     uint64 // expired or flushed items removed when found
	CurrConns     int64  // open connections
	TotalConns    uint64 // connections accepted
	RejectedConns uint64 // connections refused over MaxConns
	Panics        uint64 // connections closed by a recovered panic
}

// Start listens on 127.0.0.1:cfg.Port and serves until Close.
func Start(cfg Config) (*Server, error) {
	cfg.defaults()
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("start memcached: bad port %d", cfg.Port)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Port)))
	if err != nil {
		return nil, fmt.Errorf("start memcached: %w", err)
	}
	s := &Server{
		cfg:   cfg,
		ln:    ln,
		addr:  ln.Addr().String(),
		cache: newCache(cfg.MaxMemory, int64(cfg.MaxItemSize), cfg.Now),
		conns: make(map[net.Conn]*watch),
		stop:  make(chan struct{}),
	}
	s.clock.Store(time.Now().UnixNano())
	s.wg.Add(2)
	go s.accept()
	go s.watchdog()
	return s, nil
}

// Addr is the host:port clients dial.
func (s *Server) Addr() string { return s.addr }

// Close stops accepting, closes every connection, waits for their
// goroutines and drops the items. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.stop)
	err := s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	st := Stats{
		CurrConns:     s.open.Load(),
		TotalConns:    s.total.Load(),
		RejectedConns: s.rejected.Load(),
		Panics:        s.panics.Load(),
	}
	st.Items, st.Bytes, st.Evictions, st.Reclaimed = s.cache.stats()
	return st
}

func (s *Server) accept() {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait a little, as
			// net/http does, instead of spinning.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.cfg.Logger.Warn("memcached accept failed", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if s.open.Load() >= int64(s.cfg.MaxConns) {
			s.rejected.Add(1)
			c.SetWriteDeadline(time.Now().Add(time.Second))
			c.Write([]byte(replyTooManyConns + "\r\n"))
			c.Close()
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		w := &watch{clock: &s.clock}
		s.conns[c] = w
		s.open.Add(1)
		s.total.Add(1)
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(c, w)
	}
}

// serve runs one connection. The recover is a last line of defence: the
// parser and the commands are written not to panic, and the fuzz targets
// run them without it.
func (s *Server) serve(c net.Conn, w *watch) {
	defer func() {
		if v := recover(); v != nil {
			s.panics.Add(1)
			s.cfg.Logger.Error("memcached connection panicked; closed it", "remote", c.RemoteAddr().String(), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		}
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.open.Add(-1)
		s.wg.Done()
	}()
	sess := newSession(s.cache, c, &watchedWriter{c: c, w: w})
	sess.watch = w
	sess.run()
}

// watch is what the watchdog knows of one connection: since when (on the
// server's coarse clock, unix nanoseconds) its current command has been
// arriving and its current write has been blocked; 0 is not at all. A nil
// watch ignores everything (sessions outside a server).
type watch struct {
	clock   *atomic.Int64
	command atomic.Int64
	write   atomic.Int64
}

// idle says the connection waits for a command: no time limit.
func (w *watch) idle() {
	if w != nil {
		w.command.Store(0)
	}
}

// commandStarts says a command's first byte is in: it must be whole
// within CommandTimeout.
func (w *watch) commandStarts() {
	if w != nil {
		w.command.Store(w.clock.Load())
	}
}

// watchedWriter marks each write of the session's buffered writer for the
// watchdog, so a client that stops reading is cut off after WriteTimeout
// instead of holding the goroutine forever.
type watchedWriter struct {
	c net.Conn
	w *watch
}

func (w *watchedWriter) Write(p []byte) (int, error) {
	w.w.write.Store(w.w.clock.Load())
	n, err := w.c.Write(p)
	w.w.write.Store(0)
	return n, err
}

// watchdog advances the coarse clock, closes connections whose command
// has been arriving longer than CommandTimeout or whose write has been
// blocked longer than WriteTimeout, and logs evictions (at most once a
// minute, with how many since the last line). One goroutine and a few atomic
// operations per command replace two socket deadline changes per command
// (a third of the server's own CPU in the get benchmark).
func (s *Server) watchdog() {
	defer s.wg.Done()
	tick := min(s.cfg.CommandTimeout, s.cfg.WriteTimeout) / 4
	tick = min(max(tick, 5*time.Millisecond), time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	var reported uint64 // evictions already logged
	var warned time.Time
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			ns := now.UnixNano()
			s.clock.Store(ns)
			if _, _, ev, _ := s.cache.stats(); ev > reported && now.Sub(warned) >= time.Minute {
				s.cfg.Logger.Warn("memcached is evicting items to stay within its memory limit: what arena keeps there can be lost; give it more memory or run a real memcached",
					"evicted", ev-reported, "max_memory_bytes", s.cfg.MaxMemory)
				reported, warned = ev, now
			}
			cmdLimit := ns - int64(s.cfg.CommandTimeout)
			writeLimit := ns - int64(s.cfg.WriteTimeout)
			s.mu.Lock()
			for c, w := range s.conns {
				if at := w.command.Load(); at != 0 && at < cmdLimit {
					s.cfg.Logger.Debug("memcached command too slow; closing the connection", "remote", c.RemoteAddr().String())
					c.Close()
				} else if at := w.write.Load(); at != 0 && at < writeLimit {
					s.cfg.Logger.Debug("memcached client not reading; closing the connection", "remote", c.RemoteAddr().String())
					c.Close()
				}
			}
			s.mu.Unlock()
		}
	}
}
