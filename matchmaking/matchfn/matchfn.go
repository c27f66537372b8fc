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
	// 2: candidates and proposals in packed columns, search field sets
	// once each (a plugin built for 1 fails the handshake).
	ProtocolVersion:  2,
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
	return EncodeResponse(req, props), nil
}

// EncodeRequest is req on the wire: each pool's candidates in packed
// columns, their ids end to end in one byte string, and each distinct
// search field set once (candidates sharing a *SearchFields share it on
// the wire too).
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
	sets := searchSets{index: map[*matchmaking.SearchFields]uint32{}}
	for i, pool := range req.Pools {
		pb := encodePool(pool, &sets)
		if i < len(p.Pools) {
			pb.Name = p.Pools[i].Name
		}
		out.Pools = append(out.Pools, pb)
	}
	out.SearchFields = sets.encode()
	return out
}

// searchSets numbers the distinct search field sets of a request (by
// pointer).
type searchSets struct {
	index map[*matchmaking.SearchFields]uint32
	list  []*matchmaking.SearchFields
}

// number is 1 + f's index (0 for no fields).
func (ss *searchSets) number(f *matchmaking.SearchFields) uint32 {
	if f == nil || len(f.Doubles)+len(f.Strings)+len(f.Tags) == 0 {
		return 0
	}
	k, ok := ss.index[f]
	if !ok {
		ss.list = append(ss.list, f)
		k = uint32(len(ss.list))
		ss.index[f] = k
	}
	return k
}

// encode puts the sets in columns.
func (ss *searchSets) encode() *matchfnpb.SearchFieldSets {
	out := &matchfnpb.SearchFieldSets{Count: uint32(len(ss.list))}
	doubles, strs, tags := map[string]*matchfnpb.DoubleColumn{}, map[string]*matchfnpb.StringColumn{}, map[string]*matchfnpb.TagColumn{}
	for i, f := range ss.list {
		row := uint32(i)
		for k, v := range f.Doubles {
			col := doubles[k]
			if col == nil {
				col = &matchfnpb.DoubleColumn{Name: k}
				doubles[k] = col
				out.Doubles = append(out.Doubles, col)
			}
			col.Rows, col.Values = append(col.Rows, row), append(col.Values, v)
		}
		for k, v := range f.Strings {
			col := strs[k]
			if col == nil {
				col = &matchfnpb.StringColumn{Name: k}
				strs[k] = col
				out.Strings = append(out.Strings, col)
			}
			col.Rows, col.Values = append(col.Rows, row), append(col.Values, v)
		}
		for _, k := range f.Tags {
			col := tags[k]
			if col == nil {
				col = &matchfnpb.TagColumn{Name: k}
				tags[k] = col
				out.Tags = append(out.Tags, col)
			}
			col.Rows = append(col.Rows, row)
		}
	}
	return out
}

// encodePool puts a pool's candidates in columns, numbering their search
// field sets.
func encodePool(pool []matchmaking.Candidate, sets *searchSets) *matchfnpb.Pool {
	n, size := len(pool), 0
	for i := range pool {
		size += len(pool[i].ID)
	}
	ids := make([]byte, 0, size)
	pb := &matchfnpb.Pool{IdEnds: make([]uint32, n), Ratings: make([]int64, n), Members: make([]int32, n),
		CreatedUnixNano: make([]int64, n), SearchFields: make([]uint32, n)}
	for i := range pool {
		c := &pool[i]
		ids = append(ids, c.ID...)
		pb.IdEnds[i], pb.Ratings[i], pb.Members[i], pb.CreatedUnixNano[i] = uint32(len(ids)), int64(c.Rating), int32(c.Members), c.Created.UnixNano()
		pb.SearchFields[i] = sets.number(c.Search)
	}
	pb.Ids = ids
	return pb
}

// noFields is the search fields of decoded candidates that have none.
var noFields = &matchmaking.SearchFields{}

// DecodeRequest is a request off the wire (the plugin's side). Candidates
// with equal search fields share one SearchFields; candidates without
// any share an empty one; ids are slices of one string.
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
	n := 0
	for _, pool := range r.GetPools() {
		n += len(pool.GetIdEnds())
	}
	sets, err := decodeSets(r.GetSearchFields(), n)
	if err != nil {
		return nil, err
	}
	req := &matchmaking.MatchRequest{Profile: p, Now: time.Unix(0, r.GetNowUnixNano())}
	for _, pool := range r.GetPools() {
		p.Pools = append(p.Pools, matchmaking.Pool{Name: pool.GetName()})
		cands, err := decodePool(pool, sets)
		if err != nil {
			return nil, err
		}
		req.Pools = append(req.Pools, cands)
	}
	return req, nil
}

// decodeSets rebuilds the search field sets from their columns (no more
// than the candidates').
func decodeSets(ss *matchfnpb.SearchFieldSets, candidates int) ([]matchmaking.SearchFields, error) {
	if int64(ss.GetCount()) > int64(candidates) {
		return nil, fmt.Errorf("decode match request: %d search field sets for %d candidates", ss.GetCount(), candidates)
	}
	fields := make([]matchmaking.SearchFields, ss.GetCount())
	for _, col := range ss.GetDoubles() {
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
	for _, col := range ss.GetStrings() {
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
	for _, col := range ss.GetTags() {
		name := col.GetName()
		if err := decodeColumn(fields, col.GetRows(), make([]struct{}, len(col.GetRows())), func(f *matchmaking.SearchFields, _ struct{}) {
			f.Tags = append(f.Tags, name)
		}); err != nil {
			return nil, err
		}
	}
	return fields, nil
}

// decodeColumn sets one search field column's values on the sets that
// have it.
func decodeColumn[V any](fields []matchmaking.SearchFields, rows []uint32, values []V, set func(*matchmaking.SearchFields, V)) error {
	if len(rows) != len(values) {
		return errors.New("decode match request: a column's rows and values differ in length")
	}
	for j, r := range rows {
		if int(r) >= len(fields) {
			return fmt.Errorf("decode match request: search field row %d of %d sets", r, len(fields))
		}
		set(&fields[r], values[j])
	}
	return nil
}

// decodePool rebuilds a pool's candidates from its columns.
func decodePool(pool *matchfnpb.Pool, sets []matchmaking.SearchFields) ([]matchmaking.Candidate, error) {
	n := len(pool.GetIdEnds())
	if len(pool.GetRatings()) != n || len(pool.GetMembers()) != n || len(pool.GetCreatedUnixNano()) != n || len(pool.GetSearchFields()) != n {
		return nil, errors.New("decode match request: pool columns of different lengths")
	}
	ids := string(pool.GetIds())
	cands := make([]matchmaking.Candidate, n)
	from := uint32(0)
	for i := range cands {
		end, k := pool.IdEnds[i], pool.SearchFields[i]
		if end < from || int(end) > len(ids) {
			return nil, fmt.Errorf("decode match request: candidate %d's id ends at %d, past %d..%d", i, end, from, len(ids))
		}
		if int(k) > len(sets) {
			return nil, fmt.Errorf("decode match request: candidate %d's search fields %d of %d", i, k, len(sets))
		}
		search := noFields
		if k > 0 {
			search = &sets[k-1]
		}
		cands[i] = matchmaking.Candidate{ID: ids[from:end], Rating: int(pool.Ratings[i]), Members: int(pool.Members[i]),
			Created: time.Unix(0, pool.CreatedUnixNano[i]), Search: search}
		from = end
	}
	return cands, nil
}

// EncodeResponse is props, the answer to req, on the wire (the plugin's
// side): tickets by their place among req's candidates.
func EncodeResponse(req *matchmaking.MatchRequest, props []matchmaking.Proposal) *matchfnpb.MatchResponse {
	n := 0
	for _, pool := range req.Pools {
		n += len(pool)
	}
	place := make(map[string]uint32, n)
	i := uint32(0)
	for _, pool := range req.Pools {
		for _, c := range pool {
			if _, ok := place[c.ID]; !ok {
				place[c.ID] = i
			}
			i++
		}
	}
	out := &matchfnpb.MatchResponse{Scores: make([]float64, len(props)), Rosters: make([]uint32, len(props))}
	for j, pr := range props {
		out.Scores[j], out.Rosters[j] = pr.Score, uint32(len(pr.Rosters))
		for _, ids := range pr.Rosters {
			out.RosterSizes = append(out.RosterSizes, uint32(len(ids)))
			for _, id := range ids {
				k, ok := place[id]
				if !ok {
					k = uint32(n + len(out.UnknownIds))
					out.UnknownIds = append(out.UnknownIds, id)
				}
				out.Tickets = append(out.Tickets, k)
			}
		}
	}
	return out
}

// DecodeResponse is an answer to req off the wire (the dispatcher's
// side); the matchmaker validates the proposals against the request. An
// answer whose columns do not add up is an error.
func DecodeResponse(req *matchmaking.MatchRequest, r *matchfnpb.MatchResponse) ([]matchmaking.Proposal, error) {
	scores, counts, sizes, tickets := r.GetScores(), r.GetRosters(), r.GetRosterSizes(), r.GetTickets()
	if len(counts) != len(scores) {
		return nil, fmt.Errorf("decode match response: %d scores, %d roster counts", len(scores), len(counts))
	}
	nr, nt := 0, 0
	for _, c := range counts {
		nr += int(c)
	}
	if nr != len(sizes) {
		return nil, fmt.Errorf("decode match response: %d rosters counted, %d sized", nr, len(sizes))
	}
	for _, c := range sizes {
		nt += int(c)
	}
	if nt != len(tickets) {
		return nil, fmt.Errorf("decode match response: %d tickets counted, %d given", nt, len(tickets))
	}
	// Where each pool's candidates start among all of them.
	starts := make([]int, len(req.Pools)+1)
	for i, pool := range req.Pools {
		starts[i+1] = starts[i] + len(pool)
	}
	total := starts[len(req.Pools)]
	ids := make([]string, len(tickets))
	for j, k := range tickets {
		switch {
		case int(k) < total:
			pi := 0
			for int(k) >= starts[pi+1] {
				pi++
			}
			ids[j] = req.Pools[pi][int(k)-starts[pi]].ID
		case int(k)-total < len(r.GetUnknownIds()):
			ids[j] = r.UnknownIds[int(k)-total]
		default:
			return nil, fmt.Errorf("decode match response: ticket %d of %d candidates and %d unknown ids", k, total, len(r.GetUnknownIds()))
		}
	}
	out := make([]matchmaking.Proposal, len(scores))
	rosters := make([][]string, len(sizes))
	ri, ti := 0, 0
	for j := range out {
		out[j].Score = scores[j]
		out[j].Rosters = rosters[ri : ri+int(counts[j]) : ri+int(counts[j])]
		for k := range out[j].Rosters {
			n := int(sizes[ri])
			out[j].Rosters[k] = ids[ti : ti+n : ti+n]
			ri, ti = ri+1, ti+n
		}
	}
	return out, nil
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
	props, err := DecodeResponse(req, resp)
	if err != nil {
		// Garbage: the process is not trusted with the next call.
		p.failures.WithLabelValues(p.name, FailMalformed).Inc()
		p.stopLocked(FailMalformed)
		return nil, fmt.Errorf("match function %s: %s: %w", p.name, FailMalformed, err)
	}
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
