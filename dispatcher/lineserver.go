package dispatcher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/arena-game/arena/fleet"
	"github.com/arena-game/arena/hostctl"
	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/httpguard"
	"github.com/arena-game/arena/internal/lineproto"
	"github.com/arena-game/arena/proc"
)

// DefaultSeedWait is how long a first request without a newline waits for
// the rest of its line before it is a seed request.
const DefaultSeedWait = 10 * time.Millisecond

// LineConfig configures the line protocol server.
type LineConfig struct {
	// FleetToken authorises add, del and maxnum.
	FleetToken string
	// InsecureSeedMode accepts the seed's token-less add|PORT and del|PORT.
	InsecureSeedMode bool
	// IdleTimeout closes a connection that completes no request for this
	// long (default 10s).
	IdleTimeout time.Duration
	// MaxConns is the most connections served at once (default: a quarter
	// of the open-file limit, at most 10000); more are answered err|busy
	// and closed.
	MaxConns int
	// GetTimeout bounds a get that has to wait for a spawn (default 20s).
	GetTimeout time.Duration
	// SeedWait is how long a connection's first bytes without a newline
	// wait for the rest of their line before they are taken for a seed
	// request (default 10ms; negative: at once, on the first read).
	SeedWait time.Duration
}

// Fleeter is what the line server needs from the fleet.
type Fleeter interface {
	// Pick is Get when a process has room (no spawn, no deadline).
	Pick(kind string) (fleet.Placement, bool)
	Get(ctx context.Context, kind string) (fleet.Placement, error)
	PlaceMap(ctx context.Context, mapID string) (fleet.Placement, error)
	Adjust(host string, port, delta int, unit string) (int, error)
	SetMaxNum(n int)
	Table() hostctl.Table
}

// LineServer serves the dispatcher's line protocol (docs/PROTOCOL.md).
type LineServer struct {
	cfg     LineConfig
	fleet   Fleeter
	log     *slog.Logger
	metrics *Metrics

	// Metric children of the hot path, resolved once.
	getOK      map[string]prometheus.Counter
	getSeconds map[string]prometheus.Observer

	conns  atomic.Int64
	mu     sync.Mutex
	ln     net.Listener
	active map[net.Conn]struct{}
	wg     sync.WaitGroup
}

// NewLineServer returns a LineServer answering from f.
func NewLineServer(cfg LineConfig, f Fleeter, log *slog.Logger, m *Metrics) *LineServer {
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 10 * time.Second
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = min(10000, max(64, httpguard.FileLimit()/4))
	}
	if cfg.GetTimeout <= 0 {
		cfg.GetTimeout = 20 * time.Second
	}
	if cfg.SeedWait == 0 {
		cfg.SeedWait = DefaultSeedWait
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	s := &LineServer{cfg: cfg, fleet: f, log: log, metrics: m, active: map[net.Conn]struct{}{},
		getOK: map[string]prometheus.Counter{}, getSeconds: map[string]prometheus.Observer{}}
	for _, k := range []string{lineproto.KindFight, lineproto.KindMap} {
		s.getOK[k] = m.LineRequests.WithLabelValues("get", "ok")
		s.getSeconds[k] = m.GetSeconds.WithLabelValues(k)
	}
	return s
}

// Serve accepts connections on ln until ctx is done, then closes every
// connection and returns.
func (s *LineServer) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		_ = ln.Close()
		s.mu.Lock()
		for c := range s.active {
			_ = c.Close()
		}
		s.mu.Unlock()
	})
	defer stop()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				s.wg.Wait()
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// Out of file descriptors and the like: back off, keep serving.
				if delay == 0 {
					delay = 5 * time.Millisecond
				} else if delay < time.Second {
					delay *= 2
				}
				s.log.Warn("line accept failed, backing off", "err", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			s.wg.Wait()
			return fmt.Errorf("line serve: %w", err)
		}
		delay = 0
		if s.conns.Add(1) > int64(s.cfg.MaxConns) {
			s.conns.Add(-1)
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = c.Write([]byte("err|busy\n"))
			_ = c.Close()
			s.metrics.LineRequests.WithLabelValues("connect", "busy").Inc()
			continue
		}
		s.mu.Lock()
		s.active[c] = struct{}{}
		s.mu.Unlock()
		s.metrics.LineConns.Inc()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(ctx, c)
			s.mu.Lock()
			delete(s.active, c)
			s.mu.Unlock()
			s.conns.Add(-1)
			s.metrics.LineConns.Dec()
		}()
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 4096); return &b }}

// serveConn handles one connection. Its first request decides the mode
// (docs/PROTOCOL.md): a '\n' makes it a newline client, whose every
// '\n'-terminated line is answered with one line (answers to a batch of
// requests flushed together). First bytes with no '\n' followed by a pause
// of SeedWait, or by the client's half-close, are one seed request: it is
// answered without a newline and the connection closed. The first read
// alone never decides, so a newline client whose first segment splits its
// line is served as one.
func (s *LineServer) serveConn(ctx context.Context, c net.Conn) {
	defer c.Close()
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	out := make([]byte, 0, 512)
	n := 0 // bytes of buf in use (an incomplete line)
	first := true
	var seedBy time.Time // first bytes without a newline: a seed request unless more arrive by then
	seed := func() {
		out = s.handle(ctx, out[:0], bytes.TrimRight(buf[:n], "\r"))
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, _ = c.Write(out)
	}
	for {
		if seedBy.IsZero() {
			_ = c.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
		} else {
			_ = c.SetReadDeadline(seedBy)
		}
		m, err := c.Read(buf[n:])
		if m > 0 {
			n += m
			data := buf[:n]
			if first && bytes.IndexByte(data, '\n') < 0 && n <= lineproto.MaxLine {
				if s.cfg.SeedWait < 0 {
					seed() // the seed's own rule: the first read is the request
					return
				}
				if seedBy.IsZero() {
					seedBy = time.Now().Add(s.cfg.SeedWait)
				}
				if err == nil {
					continue // wait for the rest of the line, a pause or a close
				}
			} else {
				first, seedBy = false, time.Time{}
			}
		}
		if first && n > 0 && err != nil {
			var ne net.Error
			if errors.Is(err, io.EOF) || errors.As(err, &ne) && ne.Timeout() {
				seed()
			}
			return
		}
		if m > 0 {
			data := buf[:n]
			out = out[:0]
			closeAfter := false
			for {
				i := bytes.IndexByte(data, '\n')
				if i < 0 {
					break
				}
				line := data[:i]
				data = data[i+1:]
				if len(line) > lineproto.MaxLine {
					out = append(out, "err|line too long\n"...)
					closeAfter = true
					break
				}
				out = s.handle(ctx, out, line)
				out = append(out, '\n')
			}
			if !closeAfter && len(data) > lineproto.MaxLine {
				out = append(out, "err|line too long\n"...)
				closeAfter = true
			}
			if len(out) > 0 {
				_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if _, werr := c.Write(out); werr != nil {
					return
				}
			}
			if closeAfter {
				s.metrics.LineRequests.WithLabelValues("line", "too_long").Inc()
				return
			}
			n = copy(buf, data)
		}
		if err != nil {
			if n > 0 && !first {
				// A half line then a stall or EOF.
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					_ = c.SetWriteDeadline(time.Now().Add(time.Second))
					_, _ = c.Write([]byte("err|timeout\n"))
				}
			}
			return
		}
	}
}

// handle appends the answer to one request line (without '\n') to out.
func (s *LineServer) handle(ctx context.Context, out, line []byte) []byte {
	req, err := lineproto.Parse(line)
	if err != nil {
		s.metrics.LineRequests.WithLabelValues("invalid", "error").Inc()
		return append(append(out, "err|"...), err.Error()...)
	}
	verb := req.Verb.String()
	switch req.Verb {
	case lineproto.VerbGet:
		start := time.Now()
		pl, ok := fleet.Placement{}, false
		if req.Kind != lineproto.KindMap {
			// Most gets find a process: no deadline (its timer costs
			// more than the rest of the answer) unless one is spawned.
			pl, ok = s.fleet.Pick(req.Kind)
		}
		if !ok {
			gctx, cancel := context.WithTimeout(ctx, s.cfg.GetTimeout)
			if req.Kind == lineproto.KindMap {
				pl, err = s.fleet.PlaceMap(gctx, req.Map)
			} else {
				pl, err = s.fleet.Get(gctx, req.Kind)
			}
			cancel()
		}
		if err != nil {
			s.metrics.LineRequests.WithLabelValues(verb, "error").Inc()
			return append(append(out, "err|"...), errorReason(err)...)
		}
		s.getSeconds[req.Kind].Observe(time.Since(start).Seconds())
		s.getOK[req.Kind].Inc()
		// A process on the dispatcher's own machine is named by its port,
		// as the seed's clients expect; one elsewhere by HOST:PORT.
		if !pl.Local {
			return pl.AppendAddr(out)
		}
		return strconv.AppendInt(out, int64(pl.Port), 10)
	case lineproto.VerbAdd, lineproto.VerbDel:
		if !s.authorised(req.Token, true) {
			s.metrics.LineRequests.WithLabelValues(verb, "denied").Inc()
			return append(out, "err|bad token"...)
		}
		delta := 1
		if req.Verb == lineproto.VerbDel {
			delta = -1
		}
		if _, err := s.fleet.Adjust(req.Host, req.Port, delta, req.Map); err != nil {
			s.metrics.LineRequests.WithLabelValues(verb, "error").Inc()
			return append(append(out, "err|"...), errorReason(err)...)
		}
		s.metrics.LineRequests.WithLabelValues(verb, "ok").Inc()
		return append(out, "ok"...)
	case lineproto.VerbMaxnum:
		if !s.authorised(req.Token, false) {
			s.metrics.LineRequests.WithLabelValues(verb, "denied").Inc()
			return append(out, "err|bad token"...)
		}
		s.fleet.SetMaxNum(req.N)
		s.log.Info("maxnum changed", "maxnum", req.N)
		s.metrics.LineRequests.WithLabelValues(verb, "ok").Inc()
		return append(out, "ok"...)
	case lineproto.VerbStat:
		b, err := json.Marshal(s.fleet.Table())
		if err != nil {
			return append(out, "err|internal"...)
		}
		s.metrics.LineRequests.WithLabelValues(verb, "ok").Inc()
		return append(out, b...)
	}
	return append(out, "err|unknown verb"...)
}

// authorised checks a presented fleet token. Token-less add/del pass only
// in insecure seed mode.
func (s *LineServer) authorised(token string, seedAllowed bool) bool {
	if token == "" {
		return seedAllowed && s.cfg.InsecureSeedMode
	}
	return auth.EqualSecret(token, s.cfg.FleetToken)
}

// errorReason maps errors to the reason in err|reason.
func errorReason(err error) string {
	switch {
	case errors.Is(err, fleet.ErrUnknownProcess):
		return "unknown port"
	case errors.Is(err, fleet.ErrNoCapacity):
		return "no capacity"
	case errors.Is(err, fleet.ErrUnknownKind):
		return "unknown process kind"
	case errors.Is(err, proc.ErrUnknownMap):
		return "unknown map"
	case errors.Is(err, fleet.ErrStopped):
		return "shutting down"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "timeout"
	}
	return "internal"
}
