// Package mapbench is `arena bench map`: players walking on maps and
// switching between them, against real map server processes (started as
// go-plugin children, with an embedded memcached and a tiny line-protocol
// responder on 127.0.0.1) or against a running arena (--dispatcher). It
// reports move-to-seen latency, handoff latency (switch sent to welcome
// on the next server) and, as the baseline measured in the same run, a
// raw memcached get+set round trip. See docs/benchmarks/maps.md.
package mapbench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/arena-game/arena/host"
	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/internal/wsload"
	"github.com/arena-game/arena/mapserver"
	"github.com/arena-game/arena/proc"
	"github.com/arena-game/arena/proto/procpb"
)

// Config is one benchmark run.
type Config struct {
	Players  int           // simulated players (default 5000)
	Servers  int           // map server processes to start (default 3; one map each)
	Duration time.Duration // measured walking time after everyone joined (default 20s)
	MoveRate float64       // moves per second per player (default 2)
	// Observers is the share of players that decode positions to measure
	// move-to-seen latency (default 0.25); the others only read.
	Observers float64
	MapSize   float64       // side of each bench map (default 6000)
	Tick      time.Duration // map server tick (default: the server's, 100ms)
	// Command starts one map server process, e.g. [arena, "map"].
	Command []string
	// InfraCommand, when set, starts a process that runs memcached and the
	// line-protocol responder (ServeInfra), e.g. [arena, "bench", "map",
	// "--infra"]; otherwise they run inside the bench process.
	InfraCommand []string
	// MemcachedBin is a memcached binary to run instead of the embedded
	// memcached ("" = embedded).
	MemcachedBin string
	// Memcache, when set without Dispatcher, is used instead of an
	// embedded memcached.
	// Dispatcher, when set, benchmarks a running arena instead: maps are
	// placed with get|map|ID on that line protocol address, and Memcache,
	// StorePrefix and Secret must be the arena's. World is then the
	// arena's world (default: the built-in one).
	Dispatcher  string
	Memcache    []string
	StorePrefix string
	Secret      string
	World       *mapserver.World

	Concurrency int // concurrent joins while connecting (default 64)
	// Client is how players connect: "epoll" (the default on Linux: a
	// wsload pool, no goroutine per connection, so the load generator
	// takes less of the machine) or "gws" (wsconn.Dial, a gws client and
	// read goroutine per player).
	Client   string
	Seed     uint64
	Log      *slog.Logger
	Progress io.Writer // progress lines (nil: none)
}

// Result is what Run measured. Latencies are microseconds.
type Result struct {
	Players   int `json:"players"`
	Connected int `json:"connected"`
	Servers   int `json:"servers"`
	Maps      int `json:"maps"`
	Cores     int `json:"cores"`
	// Client is how the players connected (Config.Client).
	Client string `json:"client"`
	// LoadAvg is the machine's 1-minute load average when the measured run
	// started and ended (Linux; 0 elsewhere): other work on the machine
	// shows here.
	LoadAvgStart float64 `json:"loadavg_start"`
	LoadAvgEnd   float64 `json:"loadavg_end"`
	DurationS    float64 `json:"duration_s"`
	ConnectS     float64 `json:"connect_s"`
	MoveRate     float64 `json:"move_rate"`
	Moves        int64   `json:"moves"`
	MovesPerS    float64 `json:"moves_per_s"`
	MsgsInPerS   float64 `json:"messages_received_per_s"`
	SeenSamples  uint64  `json:"move_to_seen_samples"`
	SeenP50      float64 `json:"move_to_seen_p50_us"`
	SeenP99      float64 `json:"move_to_seen_p99_us"`

	Handoffs        uint64  `json:"handoffs"`
	HandoffsPerS    float64 `json:"handoffs_per_s"`
	HandoffFailures int64   `json:"handoff_failures"`
	HandoffP50      float64 `json:"handoff_p50_us"`
	HandoffP99      float64 `json:"handoff_p99_us"`

	BaselineP50     float64 `json:"baseline_memcached_getset_p50_us"`
	BaselineP99     float64 `json:"baseline_memcached_getset_p99_us"`
	BaselineLoadP50 float64 `json:"baseline_memcached_getset_under_load_p50_us"`
	BaselineLoadP99 float64 `json:"baseline_memcached_getset_under_load_p99_us"`
	// HandoffOverBaseline is handoff p50 / memcached get+set p50 under
	// the same load: a handoff is two get+cas pairs, a dispatcher
	// round trip and a WebSocket connect.
	HandoffOverBaseline float64 `json:"handoff_p50_over_baseline_p50"`

	// The handoff's two halves, as the client sees them: switch sent to
	// switch answer (old server: locate, get + cas, mint), and dial to
	// welcome (new server: connect, verify, get + cas, join).
	SwitchAnswerP50 float64 `json:"handoff_switch_answer_p50_us"`
	SwitchAnswerP99 float64 `json:"handoff_switch_answer_p99_us"`
	JoinP50         float64 `json:"handoff_join_p50_us"`
	JoinP99         float64 `json:"handoff_join_p99_us"`

	// CPU time (user + system, from /proc) during the measured run: of
	// the map server processes together, per player per second of play
	// (microseconds of CPU per second), and of the load generator itself.
	// Unlike latencies, these hardly depend on other work on the machine.
	ServerCPUS           float64 `json:"server_cpu_s"`
	ServerCPUPerPlayerUS float64 `json:"server_cpu_us_per_player_s"`
	BenchCPUS            float64 `json:"bench_cpu_s"`

	// Server counters summed over the map server processes (from their
	// /metrics), when the bench started them.
	Server map[string]float64 `json:"server,omitempty"`

	Errors map[string]int64 `json:"errors,omitempty"`
}

func (c *Config) defaults() error {
	if c.Players <= 0 {
		c.Players = 5000
	}
	if c.Servers <= 0 {
		c.Servers = 3
	}
	if c.Duration <= 0 {
		c.Duration = 20 * time.Second
	}
	if c.MoveRate <= 0 {
		c.MoveRate = 2
	}
	if c.Observers <= 0 {
		c.Observers = 0.25
	}
	if c.MapSize <= 0 {
		c.MapSize = 6000
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 64
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Client == "" {
		c.Client = "epoll"
		if runtime.GOOS != "linux" {
			c.Client = "gws"
		}
	}
	if c.Client != "epoll" && c.Client != "gws" {
		return fmt.Errorf("bench map: client %q: want epoll or gws", c.Client)
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Dispatcher == "" && len(c.Command) == 0 {
		return errors.New("bench map: no map server command")
	}
	if c.Dispatcher != "" && (len(c.Memcache) == 0 || c.Secret == "") {
		return errors.New("bench map: --dispatcher needs the arena's --memcache, --store-prefix and --secret")
	}
	return nil
}

// bench is one run's shared state.
type bench struct {
	cfg    Config
	st     store.Store
	signer *auth.Signer
	world  *mapserver.World
	loc    mapserver.Locator
	reach  float64
	speed  float64

	bots map[string]*bot
	pool *wsload.Pool // nil: players dial with wsconn

	seen, handoff, baseLoad hist
	swAnswer, swJoin        hist
	moves, msgsIn           atomic.Int64
	handoffFail             atomic.Int64
	errMu                   sync.Mutex
	errs                    map[string]int64
	measuring               atomic.Bool
}

func (b *bench) countErr(code string) {
	b.errMu.Lock()
	b.errs[code]++
	b.errMu.Unlock()
}

func (b *bench) progress(format string, args ...any) {
	if b.cfg.Progress != nil {
		fmt.Fprintf(b.cfg.Progress, format+"\n", args...)
	}
}

// Run runs the benchmark and tears down everything it started.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	b := &bench{cfg: cfg, bots: map[string]*bot{}, errs: map[string]int64{},
		speed: mapserver.DefaultMaxSpeed, reach: mapserver.DefaultSwitchReach}
	if cfg.Client == "epoll" {
		pool, err := wsload.NewPool(runtime.GOMAXPROCS(0), 1<<20)
		if err != nil {
			return nil, fmt.Errorf("bench map: epoll clients: %w (use --client gws)", err)
		}
		b.pool = pool
	}
	var cleanup []func()
	defer func() {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
		if b.pool != nil {
			_ = b.pool.Close()
		}
	}()
	secret, prefix, mcAddrs := cfg.Secret, cfg.StorePrefix, cfg.Memcache
	var childAddrs []string
	var childPIDs []int
	servers := 0
	if cfg.Dispatcher == "" {
		secret = auth.RandomID(16)
		prefix = "bench" + auth.RandomID(4) + ":"
		worldJSON, w, err := benchWorld(cfg.Servers, cfg.MapSize)
		if err != nil {
			return nil, err
		}
		b.world = w
		dir, err := os.MkdirTemp("", "arena-bench-map")
		if err != nil {
			return nil, fmt.Errorf("bench map: %w", err)
		}
		cleanup = append(cleanup, func() { os.RemoveAll(dir) })
		worldPath := filepath.Join(dir, "world.json")
		if err := os.WriteFile(worldPath, worldJSON, 0o600); err != nil {
			return nil, fmt.Errorf("bench map: %w", err)
		}
		// memcached and the dispatcher stand-in: in their own process when
		// InfraCommand is set, else in this one.
		var fleetToken, dispatcher string
		var place func(string, int)
		if len(cfg.InfraCommand) > 0 {
			ip, err := startInfraProc(cfg.InfraCommand)
			if err != nil {
				return nil, err
			}
			cleanup = append(cleanup, ip.close)
			if len(mcAddrs) == 0 {
				mcAddrs = ip.info.Memcache
			}
			fleetToken, dispatcher, place = ip.info.Token, ip.info.Dispatcher, ip.place
		} else {
			if len(mcAddrs) == 0 {
				addrs, stop, err := startMemcached(cfg.MemcachedBin)
				if err != nil {
					return nil, err
				}
				cleanup = append(cleanup, stop)
				mcAddrs = addrs
			}
			fleetToken = auth.RandomID(16)
			resp, err := startResponder(fleetToken)
			if err != nil {
				return nil, fmt.Errorf("bench map: responder: %w", err)
			}
			cleanup = append(cleanup, resp.close)
			dispatcher, place = resp.addr(), resp.place
		}
		opts := &procpb.MapOptions{World: worldPath}
		if cfg.Tick > 0 {
			opts.Tick = durationpb.New(cfg.Tick)
		}
		// The children locate maps through their host (this bench), which
		// asks the responder as a host asks its dispatcher.
		childHost := hostLocator{mapserver.NewLineLocator(dispatcher, "127.0.0.1", 8)}
		ids := w.IDs()
		for i := 0; i < cfg.Servers; i++ {
			addr, pid, stop, err := startChild(ctx, cfg, proc.StartRequest{Kind: proc.KindMap, BindHost: "127.0.0.1",
				Memcache: mcAddrs, StorePrefix: prefix, Secret: secret, MaxNum: cfg.Players, Map: opts, Host: childHost}, ids, i)
			if stop != nil {
				cleanup = append(cleanup, stop)
			}
			if err != nil {
				return nil, err
			}
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, fmt.Errorf("bench map: map server address %q: %w", addr, err)
			}
			p, _ := strconv.Atoi(port)
			for j := i; j < len(ids); j += cfg.Servers {
				place(ids[j], p)
			}
			servers++
			childAddrs = append(childAddrs, addr)
			childPIDs = append(childPIDs, pid)
		}
		b.loc = mapserver.NewLineLocator(dispatcher, "127.0.0.1", 8)
		for _, id := range ids { // the placements reached the responder
			deadline := time.Now().Add(5 * time.Second)
			for {
				if _, err := b.loc.Locate(ctx, id); err == nil {
					break
				} else if time.Now().After(deadline) {
					return nil, fmt.Errorf("bench map: placing %s: %w", id, err)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		b.progress("started %d map server processes, memcached %v", servers, mcAddrs)
	} else {
		b.world = cfg.World
		if b.world == nil {
			b.world = mapserver.DefaultWorld()
		}
		host, _, _ := net.SplitHostPort(cfg.Dispatcher)
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		b.loc = mapserver.NewLineLocator(cfg.Dispatcher, host, 8)
	}
	signer, err := auth.NewSigner(secret)
	if err != nil {
		return nil, fmt.Errorf("bench map: %w", err)
	}
	b.signer = signer
	mc, err := store.NewMemcache(store.MemcacheConfig{Addrs: mcAddrs, Timeout: 2 * time.Second, MaxIdleConns: 128})
	if err != nil {
		return nil, fmt.Errorf("bench map: %w", err)
	}
	b.st = store.Prefixed(mc, prefix)

	// Baseline: a raw memcached get+set of a record-sized value, idle.
	var baseIdle hist
	if err := b.baseline(ctx, &baseIdle, 2000, 0); err != nil {
		return nil, fmt.Errorf("bench map: baseline: %w", err)
	}

	// Players: seeded at random spots (so they do not all start in one
	// place), then entered and connected.
	rng := rand.New(rand.NewPCG(cfg.Seed, 7))
	ids := b.world.IDs()
	all := make([]*bot, cfg.Players)
	for i := range all {
		bt := &bot{b: b, claims: auth.Claims{Subject: auth.NewUUID(), Name: fmt.Sprint("bench-", i), Bot: true},
			observer: rng.Float64() < cfg.Observers, events: make(chan event, 32),
			rng: rand.New(rand.NewPCG(cfg.Seed, uint64(i)+100))}
		m := b.world.Map(ids[i%len(ids)])
		bt.x, bt.y = bt.randomSpot(m)
		if err := b.seed(ctx, bt, m.ID); err != nil {
			return nil, fmt.Errorf("bench map: seed players: %w", err)
		}
		all[i] = bt
		b.bots[bt.claims.Subject] = bt
	}
	start := time.Now()
	var connected atomic.Int64
	work := make(chan *bot)
	var wg sync.WaitGroup
	for i := 0; i < cfg.Concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for bt := range work {
				if err := bt.enter(ctx); err != nil {
					b.countErr("join: " + shortErr(err))
					continue
				}
				connected.Add(1)
			}
		}()
	}
	for _, bt := range all {
		select {
		case work <- bt:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	connectS := time.Since(start).Seconds()
	b.progress("%d/%d players joined in %.1fs", connected.Load(), cfg.Players, connectS)
	if connected.Load() == 0 {
		return nil, fmt.Errorf("bench map: no player could join (%v)", b.errs)
	}

	// The measured run.
	loadStart := loadAvg()
	serverCPU0, benchCPU0 := cpuSeconds(childPIDs...), cpuSeconds(os.Getpid())
	b.measuring.Store(true)
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	runStart := time.Now()
	var bwg sync.WaitGroup
	for _, bt := range all {
		if bt.conn == nil {
			continue
		}
		bwg.Add(1)
		go func(bt *bot) {
			defer bwg.Done()
			bt.walk(runCtx)
		}(bt)
	}
	loadDone := make(chan error, 1)
	go func() { loadDone <- b.baseline(runCtx, &b.baseLoad, 0, 5*time.Millisecond) }()
	<-runCtx.Done()
	elapsed := time.Since(runStart).Seconds()
	b.measuring.Store(false)
	bwg.Wait()
	<-loadDone
	serverCPU, benchCPU := cpuSeconds(childPIDs...)-serverCPU0, cpuSeconds(os.Getpid())-benchCPU0
	serverMetrics := scrapeMetrics(childAddrs)
	for _, bt := range all {
		bt.close()
	}

	r := &Result{
		Players: cfg.Players, Connected: int(connected.Load()), Servers: servers, Maps: len(ids),
		Cores: runtime.NumCPU(), Client: cfg.Client, LoadAvgStart: loadStart, LoadAvgEnd: loadAvg(), DurationS: elapsed, ConnectS: connectS, MoveRate: cfg.MoveRate,
		Moves: b.moves.Load(), MovesPerS: float64(b.moves.Load()) / elapsed,
		MsgsInPerS:  float64(b.msgsIn.Load()) / elapsed,
		SeenSamples: b.seen.count(), SeenP50: b.seen.quantile(.5), SeenP99: b.seen.quantile(.99),
		Handoffs: b.handoff.count(), HandoffsPerS: float64(b.handoff.count()) / elapsed,
		HandoffFailures: b.handoffFail.Load(),
		HandoffP50:      b.handoff.quantile(.5), HandoffP99: b.handoff.quantile(.99),
		BaselineP50: baseIdle.quantile(.5), BaselineP99: baseIdle.quantile(.99),
		BaselineLoadP50: b.baseLoad.quantile(.5), BaselineLoadP99: b.baseLoad.quantile(.99),
		SwitchAnswerP50: b.swAnswer.quantile(.5), SwitchAnswerP99: b.swAnswer.quantile(.99),
		JoinP50: b.swJoin.quantile(.5), JoinP99: b.swJoin.quantile(.99),
		Server:     serverMetrics,
		ServerCPUS: serverCPU, BenchCPUS: benchCPU,
	}
	if len(childPIDs) > 0 && elapsed > 0 {
		r.ServerCPUPerPlayerUS = serverCPU / elapsed / float64(r.Connected) * 1e6
	}
	if r.BaselineLoadP50 > 0 {
		r.HandoffOverBaseline = r.HandoffP50 / r.BaselineLoadP50
	}
	if len(b.errs) > 0 {
		r.Errors = b.errs
	}
	return r, nil
}

// baseline measures get+set round trips of a 256-byte value: n of them
// back to back, or (n == 0) one every `every` until ctx ends.
func (b *bench) baseline(ctx context.Context, h *hist, n int, every time.Duration) error {
	val := []byte(strings.Repeat("x", 256))
	key := "bench:baseline:" + auth.RandomID(4)
	if err := b.st.Set(ctx, &store.Item{Key: key, Value: val}); err != nil {
		return err
	}
	for i := 0; n == 0 || i < n; i++ {
		if every > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(every):
			}
		} else if ctx.Err() != nil {
			return ctx.Err()
		}
		t0 := time.Now()
		if _, err := b.st.Get(ctx, key); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := b.st.Set(ctx, &store.Item{Key: key, Value: val}); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		h.add(time.Since(t0))
	}
	return nil
}

// seed stores a player's state offline at its starting spot.
func (b *bench) seed(ctx context.Context, bt *bot, mapID string) error {
	s := mapserver.State{UUID: bt.claims.Subject, Name: bt.claims.Name, Map: mapID, X: bt.x, Y: bt.y,
		HP: mapserver.DefaultHP, Inventory: json.RawMessage(`{"bench":true}`), Version: 1,
		Status: mapserver.StatusOffline, Updated: time.Now().UnixMilli()}
	v, _ := json.Marshal(s)
	return b.st.Set(ctx, &store.Item{Key: mapserver.StateKey(s.UUID), Value: v})
}

// hostLocator offers a Locator to map children as their host's services.
type hostLocator struct{ loc mapserver.Locator }

func (h hostLocator) LocateMap(ctx context.Context, mapID string) (string, error) {
	return h.loc.Locate(ctx, mapID)
}

// startChild starts the i-th map server process through go-plugin and
// hosts its share of the maps.
func startChild(ctx context.Context, cfg Config, req proc.StartRequest, ids []string, i int) (string, int, func(), error) {
	log := cfg.Log
	if !log.Enabled(ctx, slog.LevelWarn) {
		log = slog.New(slog.DiscardHandler)
	}
	child, err := host.Spawn(ctx, host.SpawnConfig{Kind: proc.KindMap, Command: host.Command{Path: cfg.Command[0], Args: cfg.Command[1:]},
		Tag: fmt.Sprint("map-", i), Log: log, Env: []string{"ARENA_LOG_LEVEL=warn"}})
	if err != nil {
		return "", 0, nil, fmt.Errorf("bench map: start map server: %w", err)
	}
	p := child.Client
	stop := func() {
		dctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, _ = p.Lifecycle.Drain(dctx, time.Now().Add(2*time.Second))
		cancel()
		child.Kill()
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := p.Lifecycle.Start(sctx, req)
	if err != nil {
		return "", 0, stop, fmt.Errorf("bench map: start map server: %w", err)
	}
	for j := i; j < len(ids); j += cfg.Servers {
		if _, err := p.Maps.HostMap(sctx, ids[j]); err != nil {
			return "", 0, stop, fmt.Errorf("bench map: host %s: %w", ids[j], err)
		}
	}
	return st.Addr, child.Pid, stop, nil
}

func shortErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && len(s)-i < 60 {
		return s[i+2:]
	}
	if len(s) > 60 {
		return s[:60]
	}
	return s
}

// Text renders r for people.
func (r *Result) Text() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "players %d (connected %d) on %d map servers, %d maps, %d cores (load average %.1f -> %.1f), %.1fs (joins took %.1fs)\n",
		r.Players, r.Connected, r.Servers, r.Maps, r.Cores, r.LoadAvgStart, r.LoadAvgEnd, r.DurationS, r.ConnectS)
	fmt.Fprintf(&sb, "moves          %d (%.0f/s), messages received %.0f/s\n", r.Moves, r.MovesPerS, r.MsgsInPerS)
	fmt.Fprintf(&sb, "move-to-seen   p50 %.0f µs  p99 %.0f µs  (%d samples)\n", r.SeenP50, r.SeenP99, r.SeenSamples)
	fmt.Fprintf(&sb, "handoff        p50 %.0f µs  p99 %.0f µs  (%d ok, %.0f/s, %d failed)\n", r.HandoffP50, r.HandoffP99, r.Handoffs, r.HandoffsPerS, r.HandoffFailures)
	fmt.Fprintf(&sb, "baseline       memcached get+set p50 %.0f µs p99 %.0f µs idle; p50 %.0f µs p99 %.0f µs under load\n",
		r.BaselineP50, r.BaselineP99, r.BaselineLoadP50, r.BaselineLoadP99)
	fmt.Fprintf(&sb, "  switch answer p50 %.0f µs p99 %.0f µs; join on the next server p50 %.0f µs p99 %.0f µs\n",
		r.SwitchAnswerP50, r.SwitchAnswerP99, r.JoinP50, r.JoinP99)
	fmt.Fprintf(&sb, "handoff p50 / memcached get+set p50 under load = %.1fx\n", r.HandoffOverBaseline)
	fmt.Fprintf(&sb, "cpu            map servers %.1fs (%.0f µs per player per second), load generator %.1fs\n",
		r.ServerCPUS, r.ServerCPUPerPlayerUS, r.BenchCPUS)
	if len(r.Server) > 0 {
		keys := make([]string, 0, len(r.Server))
		for k := range r.Server {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&sb, "server %-50s %g\n", k, r.Server[k])
		}
	}
	if len(r.Errors) > 0 {
		keys := make([]string, 0, len(r.Errors))
		for k := range r.Errors {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&sb, "error %-30s %d\n", k, r.Errors[k])
		}
	}
	return sb.String()
}

// scrapeMetrics sums a few counters and histogram sums over the map
// servers' /metrics.
func scrapeMetrics(addrs []string) map[string]float64 {
	if len(addrs) == 0 {
		return nil
	}
	out := map[string]float64{}
	cl := http.Client{Timeout: 3 * time.Second}
	for _, a := range addrs {
		resp, err := cl.Get("http://" + a + "/metrics")
		if err != nil {
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		resp.Body.Close()
		for _, line := range strings.Split(string(body), "\n") {
			if !strings.HasPrefix(line, "arena_map_") {
				continue
			}
			name, val, ok := strings.Cut(line, " ")
			if !ok || strings.Contains(name, "_bucket") || strings.HasPrefix(name, "arena_map_players") || strings.HasPrefix(name, "arena_map_connections") {
				continue
			}
			v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
			if err != nil {
				continue
			}
			out[name] += v
		}
	}
	return out
}

// loadAvg returns the 1-minute load average (Linux), or 0.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f, _, _ := strings.Cut(string(b), " ")
	v, _ := strconv.ParseFloat(f, 64)
	return v
}

// cpuSeconds returns the user + system CPU time of the processes (Linux
// /proc/PID/stat, 100 ticks per second), 0 for those it cannot read.
func cpuSeconds(pids ...int) float64 {
	total := 0.0
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Fields after the command (which may hold spaces) start at ") ".
		s := string(b)
		i := strings.LastIndex(s, ") ")
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+2:])
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		total += (ut + st) / 100
	}
	return total
}
