// Package matchfn runs a studio's own match function as a plugin: the
// function is a separate binary serving one small gRPC interface
// (proto/matchfn.proto) over hashicorp/go-plugin, and the dispatcher,
// given --match-function NAME=PATH, starts it, calls it each tick for the
// profiles that name it, and supervises it.
//
// A studio writes its function against matchmaking.Function and serves
// it from main with Serve (examples/matchfn is a complete one). The
// dispatcher's side is Plugin: a matchmaking.Function that calls the
// binary, starting it on first use and again after it crashed, hung past
// the call's deadline or answered something that cannot be decoded; each
// of those fails that one call (that profile loses the tick) and is
// counted in arena_mm_function_failures_total{function,reason}.
package matchfn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime/debug"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/arena-game/arena/matchmaking"
	"github.com/arena-game/arena/proto/matchfnpb"
)

// Handshake is the match function plugins' go-plugin handshake.
var Handshake = plugin.HandshakeConfig{
	// 3: a session per profile, only the candidates that changed since
	// the last call (2: every candidate in columns each call; 1: a
	// message per candidate). A plugin built for another version fails
	// the handshake.
	ProtocolVersion:  3,
	MagicCookieKey:   "ARENA_MATCHFN_PLUGIN",
	MagicCookieValue: "b6e2c54d-arena-matchfn-v1",
}

// PluginName is the one capability a match function binary serves.
const PluginName = "matchfunction"

// ErrManualStart is returned by Serve when the binary was started by hand.
var ErrManualStart = errors.New("this is an arena match function plugin: give it to the dispatcher with --match-function NAME=PATH")

// Serve serves fn as a match function plugin until the dispatcher stops
// it. Nothing may be written to stdout before it (go-plugin speaks its
// handshake there).
func Serve(fn matchmaking.Function) error {
	if os.Getenv(Handshake.MagicCookieKey) != Handshake.MagicCookieValue {
		return ErrManualStart
	}
	if os.Getenv("GOGC") == "" {
		// A match function's process keeps little (its tables) and
		// allocates much per call: at the default 100 the collector runs
		// during most calls, and the function and the call's decoding and
		// encoding pay its write barriers and assists. GOGC in the
		// environment overrides this.
		debug.SetGCPercent(gcPercent)
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         map[string]plugin.Plugin{PluginName: &grpcPlugin{impl: fn}},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return plugin.DefaultGRPCServer(append(opts, grpcServerOptions...))
		},
		Logger: hclog.New(&hclog.LoggerOptions{Output: os.Stderr, JSONFormat: true, Level: hclog.Warn}),
	})
	return nil
}

// The connection's limits, on both sides: a request of a million
// candidates is about 20 MB (gRPC's default limit is 4 MB), and a window
// of 1 MB lets a tick's request or answer go in one flight instead of
// waiting for the window to grow from 64 KB.
const (
	maxMessage = 64 << 20
	window     = 1 << 20
)

var (
	grpcServerOptions = []grpc.ServerOption{grpc.MaxRecvMsgSize(maxMessage), grpc.MaxSendMsgSize(maxMessage),
		grpc.InitialWindowSize(window), grpc.InitialConnWindowSize(window)}
	grpcDialOptions = []grpc.DialOption{grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessage), grpc.MaxCallSendMsgSize(maxMessage)),
		grpc.WithInitialWindowSize(window), grpc.WithInitialConnWindowSize(window)}
)

// gcPercent is a plugin process's garbage collection target (see Serve).
const gcPercent = 400

// grpcPlugin is the go-plugin glue of the one capability.
type grpcPlugin struct {
	plugin.Plugin
	impl matchmaking.Function
}

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	matchfnpb.RegisterMatchFunctionServer(s, &server{fn: p.impl})
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return matchfnpb.NewMatchFunctionClient(c), nil
}

// server adapts a Function to the gRPC service. Requests of one session
// come one at a time (the dispatcher's Plugin serialises its calls).
type server struct {
	matchfnpb.UnimplementedMatchFunctionServer
	fn     matchmaking.Function
	tables tables
}

// ErrorDomain is the google.rpc.ErrorInfo domain of the plugin protocol's
// errors; ReasonStaleSession the reason of ErrStaleSession.
const (
	ErrorDomain        = "arena.matchfn"
	ReasonStaleSession = "STALE_SESSION"
)

func (s *server) Match(ctx context.Context, r *matchfnpb.MatchRequest) (*matchfnpb.MatchResponse, error) {
	req, t, err := s.tables.decode(r)
	if errors.Is(err, ErrStaleSession) {
		st := status.New(codes.FailedPrecondition, err.Error())
		if d, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: ReasonStaleSession, Domain: ErrorDomain}); derr == nil {
			st = d
		}
		return nil, st.Err()
	}
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	start := time.Now()
	props, err := s.fn.Match(ctx, req)
	took := time.Since(start)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	resp := t.encodeResponse(props)
	resp.FunctionNanos = int64(took)
	return resp, nil
}

// isStale reports whether err is the plugin's ErrStaleSession.
func isStale(err error) bool {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.FailedPrecondition {
		return false
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == ErrorDomain && info.GetReason() == ReasonStaleSession {
			return true
		}
	}
	return false
}

// Failure reasons (the reason label of arena_mm_function_failures_total).
const (
	FailStart    = "start"    // the binary did not start or handshake
	FailCrash    = "crash"    // the process died or the connection broke
	FailDeadline = "deadline" // no answer before the call's deadline
	FailError    = "error"    // the function answered an error
	// FailMalformed: the answer's columns do not add up (the process is
	// restarted).
	FailMalformed = "malformed"
)

// Plugin is a match function plugin binary as a matchmaking.Function: it
// starts the binary on first use, calls it, and restarts it after a
// crash, a hang past the deadline or a broken connection. Safe for
// concurrent use (one call at a time reaches the binary).
type Plugin struct {
	name, path string
	log        *slog.Logger
	failures   *prometheus.CounterVec
	restarts   prometheus.Counter
	overhead   prometheus.Observer

	mu       sync.Mutex
	client   *plugin.Client
	fn       matchfnpb.MatchFunctionClient
	sessions map[string]*session // by profile, with the running process
}

// Metrics are the plugins' counters; register them once.
type Metrics struct {
	Failures *prometheus.CounterVec
	Restarts *prometheus.CounterVec
	// Overhead is each answered call's time less the function's own (as
	// the plugin measured it): encoding, the RPC, decoding.
	Overhead *prometheus.HistogramVec
}

// NewMetrics makes and registers the plugins' counters on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "arena_mm_function_failures_total",
			Help: "Match function plugin calls that failed (the profile lost the tick), by function and reason (start, crash, deadline, error)."}, []string{"function", "reason"}),
		Restarts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "arena_mm_function_restarts_total",
			Help: "Match function plugin processes started again after a failure, by function."}, []string{"function"}),
		Overhead: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "arena_mm_function_overhead_seconds",
			Help:    "Match function plugin calls' time less the function's own (encoding, RPC, decoding), by function.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 12)}, []string{"function"}),
	}
	if reg != nil {
		reg.MustRegister(m.Failures, m.Restarts, m.Overhead)
	}
	return m
}

// NewPlugin returns the function NAME served by the binary at path. The
// binary is started on the first call.
func NewPlugin(name, path string, m *Metrics, log *slog.Logger) *Plugin {
	if m == nil {
		m = NewMetrics(nil)
	}
	return &Plugin{name: name, path: path, log: log, failures: m.Failures, restarts: m.Restarts.WithLabelValues(name),
		overhead: m.Overhead.WithLabelValues(name)}
}

// Match implements matchmaking.Function.
func (p *Plugin) Match(ctx context.Context, req *matchmaking.MatchRequest) ([]matchmaking.Proposal, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client != nil && p.client.Exited() {
		p.stopLocked(FailCrash)
	}
	fresh := p.client == nil
	if fresh {
		if err := p.startLocked(); err != nil {
			p.failures.WithLabelValues(p.name, FailStart).Inc()
			return nil, fmt.Errorf("match function %s: start: %w", p.name, err)
		}
	}
	// The profile's session with this process: only what changed since
	// its last call travels. A plugin that lost it (restarted, evicted)
	// says so, and the table is sent again from empty.
	name := req.Profile.Name
	s := p.sessions[name]
	if s == nil {
		s = newSession()
		p.sessions[name] = s
	}
	start := time.Now()
	resp, err := p.fn.Match(ctx, s.encode(req))
	if isStale(err) {
		s = newSession()
		p.sessions[name] = s
		resp, err = p.fn.Match(ctx, s.encode(req))
	}
	if err != nil {
		delete(p.sessions, name) // the plugin may or may not have applied it
		reason := FailCrash
		switch {
		case ctx.Err() != nil || status.Code(err) == codes.DeadlineExceeded:
			reason = FailDeadline
		case status.Code(err) == codes.Internal || status.Code(err) == codes.InvalidArgument:
			reason = FailError
		}
		p.failures.WithLabelValues(p.name, reason).Inc()
		// A hung or broken process is replaced before the next call; one
		// whose start used up this call's deadline has not hung: replaced,
		// it would start as slowly on every call and never answer one.
		if reason != FailError && (reason != FailDeadline || !fresh) {
			p.stopLocked(reason)
		}
		return nil, fmt.Errorf("match function %s: %s: %w", p.name, reason, err)
	}
	props, err := s.decode(resp)
	if err != nil {
		// Garbage: the process is not trusted with the next call.
		delete(p.sessions, name)
		p.failures.WithLabelValues(p.name, FailMalformed).Inc()
		p.stopLocked(FailMalformed)
		return nil, fmt.Errorf("match function %s: %s: %w", p.name, FailMalformed, err)
	}
	p.overhead.Observe(max(0, time.Since(start)-time.Duration(resp.GetFunctionNanos())).Seconds())
	return props, nil
}

func (p *Plugin) startLocked() error {
	cmd := exec.Command(p.path)
	cmd.Stdout, cmd.Stderr = nil, nil
	c := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		Plugins:          map[string]plugin.Plugin{PluginName: &grpcPlugin{}},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		GRPCDialOptions:  grpcDialOptions,
		StartTimeout:     10 * time.Second,
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "matchfn." + p.name, Output: io.Discard, Level: hclog.Error}),
		Stderr:           io.Discard,
	})
	rpc, err := c.Client()
	if err != nil {
		c.Kill()
		return err
	}
	raw, err := rpc.Dispense(PluginName)
	if err != nil {
		c.Kill()
		return err
	}
	p.client, p.fn = c, raw.(matchfnpb.MatchFunctionClient)
	p.sessions = map[string]*session{} // a new process has no tables
	return nil
}

// stopLocked kills the process; the next call starts a new one.
func (p *Plugin) stopLocked(reason string) {
	if p.client == nil {
		return
	}
	p.log.Warn("match function plugin restarted", "function", p.name, "reason", reason)
	p.restarts.Inc()
	go p.client.Kill() // Kill waits up to 2 s for a graceful exit: not on the caller's time
	p.client, p.fn = nil, nil
}

// Close stops the plugin's process.
func (p *Plugin) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client != nil {
		p.client.Kill()
		p.client, p.fn = nil, nil
	}
}
