// Package httpguard gives every arena HTTP server (dispatcher, fight, map,
// chat) the same defences against slow and greedy clients:
//
//   - timeouts: request headers within HeaderTimeout; a request body within
//     BodyTimeout of its headers (a trickled body is cut off); a response
//     within WriteTimeout (a handler that streams, such as server-sent
//     events, clears its own deadline with http.ResponseController); an
//     idle keep-alive connection closed after IdleTimeout. A connection
//     upgraded to a WebSocket leaves all of these behind: internal/wsconn
//     clears the deadlines and keeps its own (idle timeout, pings, write
//     deadlines).
//   - a cap on connections per remote address that are still in their HTTP
//     phase (accepted and not upgraded): PerAddr. Upgraded WebSockets are
//     not counted, because each needed a valid token and is bounded by its
//     server's own rules (one /v1/play socket per player, MaxConns, ...).
//     IPv6 addresses count per /64.
//   - a cap on all connections at once, upgraded or not: Total, which by
//     default leaves Reserve file descriptors of the process's open-file
//     limit for the fleet's own traffic (memcached, the database, gRPC,
//     child processes, the line protocol).
//
// A connection over a cap is answered "503 Service Unavailable" with
// "Connection: close" and closed at once; the server keeps accepting.
package httpguard

import (
	"errors"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/arena-game/arena/proc"
	"github.com/prometheus/client_golang/prometheus"
)

// Limits are one server's timeouts and connection caps. Zero fields take
// the defaults.
type Limits struct {
	HeaderTimeout time.Duration // default 10s
	BodyTimeout   time.Duration // from the end of the headers; default 10s
	WriteTimeout  time.Duration // default 30s
	IdleTimeout   time.Duration // default 60s
	// PerAddr is the most connections in their HTTP phase from one remote
	// address (default: an eighth of Total, at most 1,024), so one address
	// never fills Total; players behind one NAT (a browser opens up to six
	// connections) and load generators stay under it.
	PerAddr int
	// Total is the most connections at once (default: the open-file limit
	// less Reserve, at least 64).
	Total int
	// Reserve is how many file descriptors Total's default leaves for
	// everything else the process does (default: a quarter of the
	// open-file limit, at most 256).
	Reserve int
}

// Defaults.
const (
	DefaultHeaderTimeout = 10 * time.Second
	DefaultBodyTimeout   = 10 * time.Second
	DefaultWriteTimeout  = 30 * time.Second
	DefaultIdleTimeout   = 60 * time.Second
	DefaultPerAddr       = 1024 // at most; see Limits.PerAddr
	DefaultReserve       = 256  // at most; see Limits.Reserve
)

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	if l.HeaderTimeout <= 0 {
		l.HeaderTimeout = DefaultHeaderTimeout
	}
	if l.BodyTimeout <= 0 {
		l.BodyTimeout = DefaultBodyTimeout
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = DefaultWriteTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	files := FileLimit()
	if l.Total <= 0 {
		if l.Reserve > 0 {
			l.Total = max(64, files-l.Reserve)
		} else {
			l.Total = TotalFor(files)
		}
	}
	if l.Reserve <= 0 {
		l.Reserve = min(DefaultReserve, files/4)
	}
	if l.PerAddr <= 0 {
		l.PerAddr = max(1, min(DefaultPerAddr, l.Total/8))
	}
	return l
}

// TotalFor is the default Total of a process whose open-file limit is
// files: files less a quarter of them, at most DefaultReserve, and at least
// 64. A load generator uses it to stay under a server's cap.
func TotalFor(files int) int {
	return max(64, files-min(DefaultReserve, files/4))
}

// FileLimit returns the process's soft open-file limit (a large number
// when it cannot be read).
func FileLimit() int {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur > 1<<24 {
		return 1 << 24
	}
	return int(r.Cur)
}

// Guard enforces Limits on one server's connections. Make one with New,
// serve with its Server on its Listener.
type Guard struct {
	lim  Limits
	name string
	log  *slog.Logger

	total atomic.Int64
	mu    sync.Mutex
	addrs map[string]int // connections in their HTTP phase, by address key

	conns   prometheus.Gauge
	refused *prometheus.CounterVec
}

// New returns a Guard for the server called name (a metric label: the
// dispatcher, fight, map or chat). reg may be nil.
func New(name string, lim Limits, reg prometheus.Registerer, log *slog.Logger) *Guard {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &Guard{lim: lim.WithDefaults(), name: name, log: log, addrs: map[string]int{},
		conns: prometheus.NewGauge(prometheus.GaugeOpts{Name: "arena_http_connections",
			Help: "Open HTTP and WebSocket connections of this server.", ConstLabels: prometheus.Labels{"server": name}}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "arena_http_refused_total",
			Help: "Connections refused with 503 at accept, by cap: total or addr.", ConstLabels: prometheus.Labels{"server": name}}, []string{"cap"}),
	}
	if reg != nil {
		g.conns = proc.Register(reg, g.conns)
		g.refused = proc.Register(reg, g.refused)
	}
	return g
}

// Limits returns the limits in force (defaults filled in).
func (g *Guard) Limits() Limits { return g.lim }

// Server returns an http.Server serving h with the guard's timeouts. Serve
// it on g.Listener(ln).
func (g *Guard) Server(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           g.bodyDeadline(h),
		ReadHeaderTimeout: g.lim.HeaderTimeout,
		WriteTimeout:      g.lim.WriteTimeout,
		IdleTimeout:       g.lim.IdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ConnState:         g.connState,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelDebug),
	}
}

// bodyDeadline gives a request with a body BodyTimeout from the end of its
// headers to deliver it.
func (g *Guard) bodyDeadline(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(g.lim.BodyTimeout))
		}
		h.ServeHTTP(w, r)
	})
}

// connState moves a hijacked (upgraded) connection out of its address's
// HTTP-phase count.
func (g *Guard) connState(c net.Conn, st http.ConnState) {
	if st != http.StateHijacked {
		return
	}
	if gc, ok := c.(*conn); ok {
		gc.leaveHTTP()
	}
}

// Listener wraps ln: connections over a cap are answered 503 and closed
// inside Accept, which goes on to the next one.
func (g *Guard) Listener(ln net.Listener) net.Listener { return &listener{Listener: ln, g: g} }

type listener struct {
	net.Listener
	g *Guard
}

// refusal is the whole answer to a connection over a cap.
var refusal = []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 20\r\nConnection: close\r\n\r\ntoo many connections")

func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		g := l.g
		key := addrKey(c.RemoteAddr())
		capName := ""
		if g.total.Add(1) > int64(g.lim.Total) {
			capName = "total"
		} else {
			g.mu.Lock()
			if g.addrs[key] >= g.lim.PerAddr {
				capName = "addr"
			} else {
				g.addrs[key]++
			}
			g.mu.Unlock()
		}
		if capName != "" {
			g.total.Add(-1)
			g.refused.WithLabelValues(capName).Inc()
			_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			_, _ = c.Write(refusal)
			_ = c.Close()
			continue
		}
		g.conns.Inc()
		return &conn{Conn: c, g: g, key: key}, nil
	}
}

// conn counts itself out when closed (and out of its address's HTTP-phase
// count when upgraded). It passes SyscallConn and CloseWrite through, so
// wsconn's non-blocking writes and half-close work on it.
type conn struct {
	net.Conn
	g        *Guard
	key      string
	leftHTTP atomic.Bool // counted out of g.addrs
	closed   atomic.Bool
}

// SyscallConn returns the underlying connection's raw connection.
func (c *conn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("httpguard: connection has no raw connection")
	}
	return sc.SyscallConn()
}

// CloseWrite half-closes the underlying connection (or closes it).
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

func (c *conn) leaveHTTP() {
	if c.leftHTTP.CompareAndSwap(false, true) {
		g := c.g
		g.mu.Lock()
		if g.addrs[c.key]--; g.addrs[c.key] <= 0 {
			delete(g.addrs, c.key)
		}
		g.mu.Unlock()
	}
}

func (c *conn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.leaveHTTP()
		c.g.total.Add(-1)
		c.g.conns.Dec()
	}
	return c.Conn.Close()
}

// addrKey is the address a connection counts against: the IP of an IPv4
// peer, the /64 of an IPv6 one.
func addrKey(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	if ip4 := ta.IP.To4(); ip4 != nil {
		return ip4.String()
	}
	return ta.IP.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// RequireJSON refuses, with 415 and before h runs, a request with a body
// that is not declared JSON (Content-Type application/json, any
// parameters). Browsers send text/plain, form and multipart bodies across
// sites without asking (no CORS preflight), and arena answers no
// preflight: so no other site's page can make a visitor's browser log in,
// spend its address's login budget, or post anything else to arena. The
// answer is arena's error JSON, code unsupported_media_type.
func RequireJSON(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody && !IsJSON(r.Header.Get("Content-Type")) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnsupportedMediaType)
			_, _ = io.WriteString(w, `{"type":"error","code":"unsupported_media_type","message":"send the body as JSON with Content-Type: application/json"}`+"\n")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// IsJSON reports whether a Content-Type header value is application/json.
func IsJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}
