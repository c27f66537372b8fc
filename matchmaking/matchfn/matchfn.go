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
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/arena-game/arena/matchmaking"
	"github.com/arena-game/arena/proto/matchfnpb"
)

// Handshake is the match function plugins' go-plugin handshake.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
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
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         map[string]plugin.Plugin{PluginName: &grpcPlugin{impl: fn}},
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger:          hclog.New(&hclog.LoggerOptions{Output: os.Stderr, JSONFormat: true, Level: hclog.Warn}),
	})
	return nil
}

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

// server adapts a Function to the gRPC service.
type server struct {
	matchfnpb.UnimplementedMatchFunctionServer
	fn matchmaking.Function
}

func (s *server) Match(ctx context.Context, r *matchfnpb.MatchRequest) (*matchfnpb.MatchResponse, error) {
	req, err := DecodeRequest(r)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	props, err := s.fn.Match(ctx, req)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return EncodeResponse(props), nil
}

// EncodeRequest is req on the wire.
func EncodeRequest(req *matchmaking.MatchRequest) *matchfnpb.MatchRequest {
	p := req.Profile
	out := &matchfnpb.MatchRequest{NowUnixNano: req.Now.UnixNano(), Profile: &matchfnpb.Profile{
		Name: p.Name, MinPlayers: int32(p.MinPlayers), MaxPlayers: int32(p.MaxPlayers),
		PluginParams: p.Params.Plugin,
	}}
	if p.Params.WindowBase != nil {
		out.Profile.WindowBase = *p.Params.WindowBase
	}
	if p.Params.WindowPerSecond != nil {
		out.Profile.WindowPerSecond = *p.Params.WindowPerSecond
	}
	for _, r := range p.Rosters {
		out.Profile.Rosters = append(out.Profile.Rosters, &matchfnpb.Roster{Name: r.Name, Size: int32(r.Size)})
	}
	for i, pool := range req.Pools {
		pb := encodePool(pool)
		if i < len(p.Pools) {
			pb.Name = p.Pools[i].Name
		}
		out.Pools = append(out.Pools, pb)
	}
	return out
}

// encodePool puts a pool's candidates in columns.
func encodePool(pool []matchmaking.Candidate) *matchfnpb.Pool {
	n := len(pool)
	pb := &matchfnpb.Pool{Ids: make([]string, n), Ratings: make([]int64, n), Members: make([]int32, n), CreatedUnixNano: make([]int64, n)}
	doubles, strs, tags := map[string]*matchfnpb.DoubleColumn{}, map[string]*matchfnpb.StringColumn{}, map[string]*matchfnpb.TagColumn{}
	for i, c := range pool {
		pb.Ids[i], pb.Ratings[i], pb.Members[i], pb.CreatedUnixNano[i] = c.ID, int64(c.Rating), int32(c.Members), c.Created.UnixNano()
		if c.Search == nil {
			continue
		}
		row := uint32(i)
		for k, v := range c.Search.Doubles {
			col := doubles[k]
			if col == nil {
				col = &matchfnpb.DoubleColumn{Name: k}
				doubles[k] = col
				pb.Doubles = append(pb.Doubles, col)
			}
			col.Rows, col.Values = append(col.Rows, row), append(col.Values, v)
		}
		for k, v := range c.Search.Strings {
			col := strs[k]
			if col == nil {
				col = &matchfnpb.StringColumn{Name: k}
				strs[k] = col
				pb.Strings = append(pb.Strings, col)
			}
			col.Rows, col.Values = append(col.Rows, row), append(col.Values, v)
		}
		for _, k := range c.Search.Tags {
			col := tags[k]
			if col == nil {
				col = &matchfnpb.TagColumn{Name: k}
				tags[k] = col
				pb.Tags = append(pb.Tags, col)
			}
			col.Rows = append(col.Rows, row)
		}
	}
	return pb
}

// DecodeRequest is a request off the wire (the plugin's side).
func DecodeRequest(r *matchfnpb.MatchRequest) (*matchmaking.MatchRequest, error) {
	pp := r.GetProfile()
	if pp == nil {
		return nil, errors.New("decode match request: no profile")
	}
	base, per := pp.GetWindowBase(), pp.GetWindowPerSecond()
	p := &matchmaking.Profile{Name: pp.GetName(), MinPlayers: int(pp.GetMinPlayers()), MaxPlayers: int(pp.GetMaxPlayers()),
		Params: matchmaking.Params{WindowBase: &base, WindowPerSecond: &per, Plugin: json.RawMessage(pp.GetPluginParams())}}
	for _, r := range pp.GetRosters() {
		p.Rosters = append(p.Rosters, matchmaking.Roster{Name: r.GetName(), Size: int(r.GetSize())})
	}
	req := &matchmaking.MatchRequest{Profile: p, Now: time.Unix(0, r.GetNowUnixNano())}
	for _, pool := range r.GetPools() {
		p.Pools = append(p.Pools, matchmaking.Pool{Name: pool.GetName()})
		cands, err := decodePool(pool)
		if err != nil {
			return nil, err
		}
		req.Pools = append(req.Pools, cands)
	}
	return req, nil
}

// decodePool rebuilds a pool's candidates from its columns. Candidates
// without search fields share one empty SearchFields.
func decodePool(pool *matchfnpb.Pool) ([]matchmaking.Candidate, error) {
	n := len(pool.GetIds())
	if len(pool.GetRatings()) != n || len(pool.GetMembers()) != n || len(pool.GetCreatedUnixNano()) != n {
		return nil, errors.New("decode match request: pool columns of different lengths")
	}
	cands := make([]matchmaking.Candidate, n)
	fields := make([]matchmaking.SearchFields, n)
	for i := range cands {
		cands[i] = matchmaking.Candidate{ID: pool.Ids[i], Rating: int(pool.Ratings[i]), Members: int(pool.Members[i]),
			Created: time.Unix(0, pool.CreatedUnixNano[i]), Search: &fields[i]}
	}
	for _, col := range pool.GetDoubles() {
		name := col.GetName()
		if err := decodeColumn(fields, col.GetRows(), col.GetValues(), func(f *matchmaking.SearchFields, v float64) {
			if f.Doubles == nil {
				f.Doubles = map[string]float64{}
			}
			f.Doubles[name] = v
		}); err != nil {
			return nil, err
		}
	}
	for _, col := range pool.GetStrings() {
		name := col.GetName()
		if err := decodeColumn(fields, col.GetRows(), col.GetValues(), func(f *matchmaking.SearchFields, v string) {
			if f.Strings == nil {
				f.Strings = map[string]string{}
			}
			f.Strings[name] = v
		}); err != nil {
			return nil, err
		}
	}
	for _, col := range pool.GetTags() {
		name := col.GetName()
		if err := decodeColumn(fields, col.GetRows(), make([]struct{}, len(col.GetRows())), func(f *matchmaking.SearchFields, _ struct{}) {
			f.Tags = append(f.Tags, name)
		}); err != nil {
			return nil, err
		}
	}
	return cands, nil
}

// decodeColumn sets one search field column's values on the rows that
// have it.
func decodeColumn[V any](fields []matchmaking.SearchFields, rows []uint32, values []V, set func(*matchmaking.SearchFields, V)) error {
	if len(rows) != len(values) {
		return errors.New("decode match request: a column's rows and values differ in length")
	}
	for j, r := range rows {
		if int(r) >= len(fields) {
			return fmt.Errorf("decode match request: search field row %d of %d candidates", r, len(fields))
		}
		set(&fields[r], values[j])
	}
	return nil
}

// EncodeResponse is props on the wire.
func EncodeResponse(props []matchmaking.Proposal) *matchfnpb.MatchResponse {
	out := &matchfnpb.MatchResponse{Proposals: make([]*matchfnpb.Proposal, len(props))}
	for i, pr := range props {
		pp := &matchfnpb.Proposal{Score: pr.Score, Rosters: make([]*matchfnpb.RosterTickets, len(pr.Rosters))}
		for j, ids := range pr.Rosters {
			pp.Rosters[j] = &matchfnpb.RosterTickets{TicketIds: ids}
		}
		out.Proposals[i] = pp
	}
	return out
}

// DecodeResponse is an answer off the wire (the dispatcher's side); the
// matchmaker validates the proposals against the request.
func DecodeResponse(r *matchfnpb.MatchResponse) []matchmaking.Proposal {
	out := make([]matchmaking.Proposal, len(r.GetProposals()))
	for i, pp := range r.GetProposals() {
		out[i].Score = pp.GetScore()
		out[i].Rosters = make([][]string, len(pp.GetRosters()))
		for j, rt := range pp.GetRosters() {
			out[i].Rosters[j] = rt.GetTicketIds()
		}
	}
	return out
}

// Failure reasons (the reason label of arena_mm_function_failures_total).
const (
	FailStart    = "start"    // the binary did not start or handshake
	FailCrash    = "crash"    // the process died or the connection broke
	FailDeadline = "deadline" // no answer before the call's deadline
	FailError    = "error"    // the function answered an error
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

	mu     sync.Mutex
	client *plugin.Client
	fn     matchfnpb.MatchFunctionClient
}

// Metrics are the plugins' counters; register them once.
type Metrics struct {
	Failures *prometheus.CounterVec
	Restarts *prometheus.CounterVec
}

// NewMetrics makes and registers the plugins' counters on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "arena_mm_function_failures_total",
			Help: "Match function plugin calls that failed (the profile lost the tick), by function and reason (start, crash, deadline, error)."}, []string{"function", "reason"}),
		Restarts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "arena_mm_function_restarts_total",
			Help: "Match function plugin processes started again after a failure, by function."}, []string{"function"}),
	}
	if reg != nil {
		reg.MustRegister(m.Failures, m.Restarts)
	}
	return m
}

// NewPlugin returns the function NAME served by the binary at path. The
// binary is started on the first call.
func NewPlugin(name, path string, m *Metrics, log *slog.Logger) *Plugin {
	if m == nil {
		m = NewMetrics(nil)
	}
	return &Plugin{name: name, path: path, log: log, failures: m.Failures, restarts: m.Restarts.WithLabelValues(name)}
}

// Match implements matchmaking.Function.
func (p *Plugin) Match(ctx context.Context, req *matchmaking.MatchRequest) ([]matchmaking.Proposal, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client != nil && p.client.Exited() {
		p.stopLocked(FailCrash)
	}
	if p.client == nil {
		if err := p.startLocked(); err != nil {
			p.failures.WithLabelValues(p.name, FailStart).Inc()
			return nil, fmt.Errorf("match function %s: start: %w", p.name, err)
		}
	}
	resp, err := p.fn.Match(ctx, EncodeRequest(req))
	if err != nil {
		reason := FailCrash
		switch {
		case ctx.Err() != nil || status.Code(err) == codes.DeadlineExceeded:
			reason = FailDeadline
		case status.Code(err) == codes.Internal || status.Code(err) == codes.InvalidArgument:
			reason = FailError
		}
		p.failures.WithLabelValues(p.name, reason).Inc()
		if reason != FailError {
			// A hung or broken process is replaced before the next call.
			p.stopLocked(reason)
		}
		return nil, fmt.Errorf("match function %s: %s: %w", p.name, reason, err)
	}
	return DecodeResponse(resp), nil
}

func (p *Plugin) startLocked() error {
	cmd := exec.Command(p.path)
	cmd.Stdout, cmd.Stderr = nil, nil
	c := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		Plugins:          map[string]plugin.Plugin{PluginName: &grpcPlugin{}},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
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
