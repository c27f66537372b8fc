// Package fightbench is the load generator behind `arena bench fight`:
// rooms of real WebSocket players on one fight server process, each player
// sending events at a fixed rate, with the relay latency measured at the
// receivers, the messages delivered per second, the fight process's memory
// per connection, and the same load against a bare gws echo server measured
// in the same run as the baseline. See docs/benchmarks/fight.md.
package fightbench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lxzan/gws"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/arena-game/arena/fightserver"
	"github.com/arena-game/arena/host"
	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/internal/wsload"
	"github.com/arena-game/arena/proc"
	"github.com/arena-game/arena/proto/procpb"
)

// Config is one benchmark run.
type Config struct {
	// Exe is the arena binary whose `fight` command is started as a
	// go-plugin child (the real process, so its RSS can be read). Empty
	// runs the fight server inside this process (tests; no memory figure).
	Exe string
	// Rooms and Players per room (defaults 1000 and 3).
	Rooms, Players int
	// Rate is events per second per player (default 20).
	Rate float64
	// Duration is the measured time per phase; Warmup runs before it
	// (defaults 10s and 2s).
	Duration, Warmup time.Duration
	// SkipBaseline skips the echo baseline.
	SkipBaseline bool
	// DialConcurrency bounds connections being opened at once (default 64).
	DialConcurrency int
	// Client is how the players connect: ClientEpoll (the default on
	// Linux: a wsload pool, no goroutine per connection, so the generator
	// takes less of the machine from the server) or ClientGWS (a gws
	// client and read goroutine per player).
	Client string
	// FightOptions are KEY=VALUE fight options set on top of the bench's
	// own (e.g. snapshot-every=0s; docs/fight.md lists them).
	FightOptions []string
	// Games are game binaries (the SDK's, or any process-contract server
	// that relays the events keeping their "ts") measured after the fight
	// with the same load, each as a phase of its own.
	Games []Game
	// Log receives progress and the child's log lines (nil: discard).
	Log *slog.Logger
}

// Game is a game binary to measure beside the fight.
type Game struct {
	Name string
	Path string
	// Config is the game's configuration JSON (nil: {}).
	Config []byte
}

// GamePhase is one game's measurement, and its ratios to the fight's.
type GamePhase struct {
	Name  string `json:"name"`
	Phase Phase  `json:"phase"`
	Mem   Mem    `json:"mem"`
	// P50, P99 and CPUPerEvent are the game's / the fight's.
	P50         float64 `json:"p50_vs_fight"`
	P99         float64 `json:"p99_vs_fight"`
	CPUPerEvent float64 `json:"cpu_per_event_vs_fight"`
}

// Mem is a server process's memory around one phase.
type Mem struct {
	RSSStart, RSSJoined, RSSEnd int64
	BytesPerConn                float64 `json:"bytes_per_conn"`
	BytesPerConnIdle            float64 `json:"bytes_per_conn_idle"`
}

// Client kinds.
const (
	ClientEpoll = "epoll"
	ClientGWS   = "gws"
)

func (c Config) withDefaults() Config {
	if c.Client == "" {
		c.Client = ClientEpoll
		if runtime.GOOS != "linux" {
			c.Client = ClientGWS
		}
	}
	if c.Rooms <= 0 {
		c.Rooms = 1000
	}
	if c.Players <= 0 {
		c.Players = 3
	}
	if c.Rate <= 0 {
		c.Rate = 20
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Warmup < 0 {
		c.Warmup = 0
	} else if c.Warmup == 0 {
		c.Warmup = 2 * time.Second
	}
	if c.DialConcurrency <= 0 {
		c.DialConcurrency = 64
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Phase is one measured load phase.
type Phase struct {
	Connections   int     `json:"connections"`
	SentPerS      float64 `json:"sent_per_s"`
	DeliveredPerS float64 `json:"delivered_per_s"`
	// Fanout is how many receivers each sent event has (players-1 for
	// the fight relay, 1 for the echo); Delivered ratio = delivered /
	// (sent * fanout).
	Fanout         int     `json:"fanout"`
	DeliveredRatio float64 `json:"delivered_ratio"`
	P50US          float64 `json:"p50_us"`
	P90US          float64 `json:"p90_us"`
	P99US          float64 `json:"p99_us"`
	P999US         float64 `json:"p999_us"`
	MaxUS          float64 `json:"max_us"`
	Errors         int64   `json:"errors"`
	Closed         int64   `json:"closed"`
	// ServerCPUS is the CPU time (user+system) the server process used
	// during the measured window (0 when the server runs in this
	// process). GeneratorCPUS is this process's.
	ServerCPUS    float64 `json:"server_cpu_s"`
	GeneratorCPUS float64 `json:"generator_cpu_s"`
	// ServerCPUPerEventUS is ServerCPUS per sent event, in microseconds.
	ServerCPUPerEventUS float64 `json:"server_cpu_per_event_us,omitempty"`
}

// Result is what `arena bench fight --json` prints.
type Result struct {
	Rooms          int     `json:"rooms"`
	PlayersPerRoom int     `json:"players_per_room"`
	Connections    int     `json:"connections"`
	RatePerPlayer  float64 `json:"rate_per_player"`
	DurationS      float64 `json:"duration_s"`
	WarmupS        float64 `json:"warmup_s"`
	// Client is how the players connected (Config.Client).
	Client   string      `json:"client"`
	Fight    Phase       `json:"fight"`
	Baseline *Phase      `json:"baseline,omitempty"`
	Games    []GamePhase `json:"games,omitempty"`
	// Fight process resident memory: after Start, after every player
	// joined, at the end of the load.
	FightRSSStart  int64 `json:"fight_rss_start_bytes"`
	FightRSSJoined int64 `json:"fight_rss_joined_bytes"`
	FightRSSEnd    int64 `json:"fight_rss_end_bytes"`
	// BytesPerConn is (RSS at the end of the load - RSS after Start) /
	// connections; BytesPerConnIdle uses the RSS after joining instead.
	BytesPerConn     float64 `json:"bytes_per_conn"`
	BytesPerConnIdle float64 `json:"bytes_per_conn_idle"`
	// Runtime is the fight process's Go memory (from its /metrics) after
	// every player joined and at the end of the load: where the bytes
	// per connection go.
	RuntimeJoined *RuntimeMem `json:"runtime_joined,omitempty"`
	RuntimeEnd    *RuntimeMem `json:"runtime_end,omitempty"`
	// Ratios are fight / baseline.
	Ratios  *Ratios `json:"ratios,omitempty"`
	Targets Targets `json:"targets"`
	Machine string  `json:"machine"`
	// LoadAvg1Before and After are the machine's 1-minute load average
	// around the run: other work on the machine shares its cores.
	LoadAvg1Before float64 `json:"load_avg_1m_before"`
	LoadAvg1After  float64 `json:"load_avg_1m_after"`
}

// RuntimeMem is a fight process's Go memory, from its go_memstats series.
type RuntimeMem struct {
	HeapInuse  float64 `json:"heap_inuse_bytes"`
	HeapAlloc  float64 `json:"heap_alloc_bytes"`
	StackInuse float64 `json:"stack_inuse_bytes"`
	Goroutines float64 `json:"goroutines"`
}

// runtimeMem scrapes addr's /metrics (nil when it cannot).
func runtimeMem(addr string) *RuntimeMem {
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := io.Copy(&b, io.LimitReader(resp.Body, 4<<20)); err != nil {
		return nil
	}
	m := &RuntimeMem{}
	fields := map[string]*float64{
		"go_memstats_heap_inuse_bytes": &m.HeapInuse, "go_memstats_heap_alloc_bytes": &m.HeapAlloc,
		"go_memstats_stack_inuse_bytes": &m.StackInuse, "go_goroutines": &m.Goroutines,
	}
	for _, line := range strings.Split(b.String(), "\n") {
		name, val, ok := strings.Cut(line, " ")
		if p, want := fields[name]; ok && want {
			*p, _ = strconv.ParseFloat(strings.TrimSpace(val), 64)
		}
	}
	return m
}

// Ratios compare the fight relay with the echo baseline.
type Ratios struct {
	P50           float64 `json:"p50"`
	P99           float64 `json:"p99"`
	DeliveredPerS float64 `json:"delivered_per_s"`
}

// Targets are the speed targets.
type Targets struct {
	P99Under10ms        bool `json:"p99_under_10ms"`
	Under32KiBPerConn   bool `json:"under_32kib_per_conn"`
	MemoryMeasured      bool `json:"memory_measured"`
	AllDeliveredInPhase bool `json:"all_delivered"`
}

// fightTarget is the server under test.
type fightTarget struct {
	proc  proc.Client
	addr  string
	pid   int
	close func()
}

// Run runs the benchmark.
func Run(ctx context.Context, cfg Config) (res Result, err error) {
	cfg = cfg.withDefaults()
	if cfg.Client != ClientEpoll && cfg.Client != ClientGWS {
		return res, fmt.Errorf("bench fight: client %q: want %q or %q", cfg.Client, ClientEpoll, ClientGWS)
	}
	res = Result{
		Rooms: cfg.Rooms, PlayersPerRoom: cfg.Players, Connections: cfg.Rooms * cfg.Players,
		RatePerPlayer: cfg.Rate, Client: cfg.Client, DurationS: cfg.Duration.Seconds(), WarmupS: cfg.Warmup.Seconds(),
		Machine: fmt.Sprintf("%s/%s, %d CPUs (GOMAXPROCS %d), %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version()),
	}
	res.LoadAvg1Before = loadAvg()
	defer func() { res.LoadAvg1After = loadAvg() }()
	secret := auth.RandomID(16)
	signer, err := auth.NewSigner(secret)
	if err != nil {
		return res, err
	}
	mc, err := store.StartEmbedded(0)
	if err != nil {
		return res, fmt.Errorf("bench fight: %w", err)
	}
	defer mc.Close()
	opts := &procpb.FightOptions{
		RoomTimeout: durationpb.New(cfg.Warmup + cfg.Duration + 10*time.Minute),
		EventRate:   proto.Float64(max(fightserver.DefaultEventRate, 2*cfg.Rate)),
		// Ten seconds' worth: when the machine starves the server for
		// seconds, a backlog arrives at once and is not a flood.
		EventBurst: proto.Int32(int32(max(fightserver.DefaultEventBurst, 10*cfg.Rate))),
		// The load blinks once a second across its 100-unit square from
		// spawn points farther away: relay every blink, as before the
		// server checked blinks.
		BlinkRange:    proto.Float64(100000),
		BlinkCooldown: durationpb.New(0),
	}
	if err := proc.SetOptions(opts, cfg.FightOptions); err != nil {
		return res, fmt.Errorf("bench fight: %w", err)
	}
	start := proc.StartRequest{Kind: proc.KindFight, BindHost: "127.0.0.1", Memcache: []string{mc.Addr()}, StorePrefix: "bench:", Secret: secret, Fight: opts}
	tgt, err := startFight(ctx, cfg, start)
	if err != nil {
		return res, err
	}
	phase, mem, rt, err := measure(ctx, cfg, tgt, signer)
	if err != nil {
		return res, err
	}
	res.Fight, res.RuntimeJoined, res.RuntimeEnd = phase, rt[0], rt[1]
	res.FightRSSStart, res.FightRSSJoined, res.FightRSSEnd = mem.RSSStart, mem.RSSJoined, mem.RSSEnd
	if mem.RSSStart > 0 {
		res.Targets.MemoryMeasured = true
		res.BytesPerConn, res.BytesPerConnIdle = mem.BytesPerConn, mem.BytesPerConnIdle
	}
	cfg.Log.Info("fight phase done", "delivered_per_s", res.Fight.DeliveredPerS, "p99_us", res.Fight.P99US)
	for _, g := range cfg.Games {
		runtime.GC()
		config := g.Config
		if len(config) == 0 {
			config = []byte("{}")
		}
		req := proc.StartRequest{Kind: g.Name, BindHost: "127.0.0.1", Memcache: []string{mc.Addr()}, StorePrefix: "bench:" + g.Name + ":",
			Secret: secret, Game: &procpb.GameOptions{ConfigJson: gameConfig(config, cfg)}}
		gt, err := startGame(ctx, cfg, g, req)
		if err != nil {
			return res, err
		}
		phase, mem, _, err := measure(ctx, cfg, gt, signer)
		if err != nil {
			return res, err
		}
		res.Games = append(res.Games, GamePhase{Name: g.Name, Phase: phase, Mem: mem,
			P50: ratio(phase.P50US, res.Fight.P50US), P99: ratio(phase.P99US, res.Fight.P99US),
			CPUPerEvent: ratio(phase.ServerCPUPerEventUS, res.Fight.ServerCPUPerEventUS)})
		cfg.Log.Info("game phase done", "game", g.Name, "delivered_per_s", phase.DeliveredPerS, "p99_us", phase.P99US)
	}

	if !cfg.SkipBaseline {
		runtime.GC()
		b, err := runBaseline(ctx, cfg, res.Connections)
		if err != nil {
			return res, err
		}
		res.Baseline = &b
		res.Ratios = &Ratios{
			P50: ratio(res.Fight.P50US, b.P50US), P99: ratio(res.Fight.P99US, b.P99US),
			DeliveredPerS: ratio(res.Fight.DeliveredPerS, b.DeliveredPerS),
		}
	}
	res.Targets.P99Under10ms = res.Fight.P99US < 10000
	res.Targets.Under32KiBPerConn = res.Targets.MemoryMeasured && res.BytesPerConn < 32<<10
	res.Targets.AllDeliveredInPhase = res.Fight.DeliveredRatio > 0.999
	return res, nil
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// measure assigns the rooms on tgt, joins every player, runs the load and
// closes tgt; it returns the phase, the process's memory and its Go
// runtime's after joining and at the end.
func measure(ctx context.Context, cfg Config, tgt *fightTarget, signer *auth.Signer) (Phase, Mem, [2]*RuntimeMem, error) {
	defer tgt.close()
	var mem Mem
	var rt [2]*RuntimeMem
	mem.RSSStart = rss(tgt.pid)
	cfg.Log.Info("server up", "addr", tgt.addr, "pid", tgt.pid)
	urls := make([]string, 0, cfg.Rooms*cfg.Players)
	for i := 0; i < cfg.Rooms; i++ {
		room := proc.Room{ID: fmt.Sprintf("bench%06d", i), Expires: time.Now().Add(time.Hour)}
		for j := 0; j < cfg.Players; j++ {
			room.Players = append(room.Players, proc.Player{UUID: auth.NewUUID(), Username: fmt.Sprintf("bot%d_%d", i, j), Score: 1500, Bot: true})
		}
		if _, err := tgt.proc.Rooms.AssignRoom(ctx, room); err != nil {
			return Phase{}, mem, rt, fmt.Errorf("bench fight: assign room %d: %w", i, err)
		}
		for _, p := range room.Players {
			tok, err := signer.Mint(auth.KindRoom, auth.Claims{Subject: p.UUID, Name: p.Username, Room: room.ID, Bot: true}, time.Hour)
			if err != nil {
				return Phase{}, mem, rt, err
			}
			urls = append(urls, "ws://"+tgt.addr+"/ws?ticket="+tok)
		}
	}
	cfg.Log.Info("rooms assigned", "rooms", cfg.Rooms)
	st := newStats()
	ps, err := dialAll(ctx, cfg, urls, st, cfg.Players)
	if err != nil {
		return Phase{}, mem, rt, err
	}
	cfg.Log.Info("players joined", "connections", len(ps.clients))
	runtime.GC()
	mem.RSSJoined = rss(tgt.pid)
	rt[0] = runtimeMem(tgt.addr)
	phase := runLoad(ctx, cfg, ps.clients, st, cfg.Players-1, tgt.pid)
	mem.RSSEnd = rss(tgt.pid)
	rt[1] = runtimeMem(tgt.addr)
	ps.closeAll()
	if mem.RSSStart > 0 {
		n := float64(len(urls))
		mem.BytesPerConn = float64(mem.RSSEnd-mem.RSSStart) / n
		mem.BytesPerConnIdle = float64(mem.RSSJoined-mem.RSSStart) / n
	}
	return phase, mem, rt, nil
}

// gameConfig adds the load's limits (event rate and burst, room timeout)
// to a game's configuration JSON object.
func gameConfig(config []byte, cfg Config) []byte {
	var m map[string]any
	if json.Unmarshal(config, &m) != nil || m == nil {
		m = map[string]any{}
	}
	for k, v := range map[string]any{
		"room-timeout": (cfg.Warmup + cfg.Duration + 10*time.Minute).String(),
		"event-rate":   max(fightserver.DefaultEventRate, 2*cfg.Rate),
		"event-burst":  int(max(fightserver.DefaultEventBurst, 10*cfg.Rate)),
	} {
		if _, set := m[k]; !set {
			m[k] = v
		}
	}
	b, _ := json.Marshal(m)
	return b
}

// startGame starts a game binary through go-plugin.
func startGame(ctx context.Context, cfg Config, g Game, req proc.StartRequest) (*fightTarget, error) {
	child, err := host.Spawn(ctx, host.SpawnConfig{Kind: g.Name, Command: host.Command{Path: g.Path},
		Tag: g.Name, Log: cfg.Log, Env: []string{"ARENA_LOG_LEVEL=warn"}})
	if err != nil {
		return nil, fmt.Errorf("bench fight: game %s: %w", g.Name, err)
	}
	addr, err := startOnFreePort(ctx, child.Client.Lifecycle, req)
	if err != nil {
		child.Kill()
		return nil, err
	}
	return &fightTarget{proc: child.Client, addr: addr, pid: child.Pid, close: child.Kill}, nil
}

// startFight starts the fight server: `Exe fight` through go-plugin, or in
// this process when Exe is empty.
func startFight(ctx context.Context, cfg Config, req proc.StartRequest) (*fightTarget, error) {
	if cfg.Exe == "" {
		p := fightserver.NewProcess(cfg.Log)
		ps := p.ProcServer()
		addr, err := startOnFreePort(ctx, ps.Lifecycle, req)
		if err != nil {
			return nil, err
		}
		return &fightTarget{proc: proc.Client{Lifecycle: ps.Lifecycle, Rooms: ps.Rooms}, addr: addr, pid: 0, close: p.Shutdown}, nil
	}
	child, err := host.Spawn(ctx, host.SpawnConfig{Kind: proc.KindFight, Command: host.Command{Path: cfg.Exe, Args: []string{"fight"}},
		Tag: "fight", Log: cfg.Log, Env: []string{"ARENA_LOG_LEVEL=warn"}})
	if err != nil {
		return nil, fmt.Errorf("bench fight: %w", err)
	}
	addr, err := startOnFreePort(ctx, child.Client.Lifecycle, req)
	if err != nil {
		child.Kill()
		return nil, err
	}
	return &fightTarget{proc: child.Client, addr: addr, pid: child.Pid, close: child.Kill}, nil
}

func startOnFreePort(ctx context.Context, p proc.Lifecycle, req proc.StartRequest) (string, error) {
	var last error
	for attempt := 0; attempt < 8; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		req.Port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		st, err := p.Start(sctx, req)
		cancel()
		if err == nil {
			return st.Addr, nil
		}
		if !errors.Is(err, proc.ErrPortInUse) {
			return "", fmt.Errorf("bench fight: start: %w", err)
		}
		last = err
	}
	return "", fmt.Errorf("bench fight: start: %w", last)
}

// rss returns pid's resident set size in bytes (0 if unknown).
func rss(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// loadAvg returns the 1-minute load average (0 if unknown).
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// procCPU returns pid's user+system CPU seconds (0 if unknown).
func procCPU(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command (which may hold spaces) in parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	stm, _ := strconv.ParseFloat(f[12], 64)
	return (ut + stm) / 100 // USER_HZ is 100 on Linux
}

// selfCPU returns this process's user+system CPU seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// runBaseline runs the same load against a bare gws echo server (each
// message comes back to its sender): `Exe bench fight --serve-echo ADDR` as
// a child process like the fight server, or in this process when Exe is
// empty.
func runBaseline(ctx context.Context, cfg Config, conns int) (Phase, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Phase{}, err
	}
	addr := ln.Addr().String()
	pid := 0
	if cfg.Exe == "" {
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() { _ = serveEcho(sctx, ln) }()
	} else {
		ln.Close()
		cmd := exec.CommandContext(ctx, cfg.Exe, "bench", "fight", "--serve-echo", addr)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return Phase{}, fmt.Errorf("bench fight: start echo server: %w", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		defer func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(3 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		}()
		if err := waitHealthy(ctx, addr, exited); err != nil {
			return Phase{}, err
		}
		pid = cmd.Process.Pid
	}
	urls := make([]string, conns)
	for i := range urls {
		urls[i] = "ws://" + addr + "/echo"
	}
	st := newStats()
	ps, err := dialAll(ctx, cfg, urls, st, 0)
	if err != nil {
		return Phase{}, err
	}
	defer ps.closeAll()
	cfg.Log.Info("baseline connected", "connections", len(ps.clients))
	return runLoad(ctx, cfg, ps.clients, st, 1, pid), nil
}

func waitHealthy(ctx context.Context, addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-exited:
			return errors.New("bench fight: the echo server exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return errors.New("bench fight: the echo server did not come up")
}

// ServeEcho serves the baseline: a bare gws echo server on addr (/echo,
// and /healthz), until ctx is done. `arena bench fight --serve-echo ADDR`
// runs it.
func ServeEcho(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("serve echo: %w", err)
	}
	return serveEcho(ctx, ln)
}

func serveEcho(ctx context.Context, ln net.Listener) error {
	up := gws.NewUpgrader(echoHandler{}, &gws.ServerOption{ReadMaxPayloadSize: 64 << 10})
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r)
		if err == nil {
			go c.ReadLoop()
		}
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { <-ctx.Done(); _ = hs.Close() }()
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve echo: %w", err)
	}
	return nil
}

type echoHandler struct{ gws.BuiltinEventHandler }

func (echoHandler) OnMessage(c *gws.Conn, m *gws.Message) {
	_ = c.WriteMessage(m.Opcode, m.Bytes())
	m.Close()
}

// client is one load-generating player. Its connection is written to
// synchronously by the sender goroutines (no queue, no goroutine per send).
type client struct {
	send    func([]byte) error
	close   func()
	need    int32
	creates atomic.Int32
	ready   chan struct{}
	st      *stats
}

var (
	createPlayer = []byte(`"type":"create_player"`)
	errorType    = []byte(`"type":"error"`)
)

func (c *client) onMessage(data []byte) {
	if ts, ok := findTS(data); ok {
		c.st.record(ts)
		return
	}
	switch {
	case bytes.Contains(data, createPlayer):
		if c.creates.Add(1) == c.need {
			close(c.ready)
		}
	case bytes.Contains(data, errorType):
		c.st.errors.Add(1)
	}
}

// OnMessage and OnClose serve the client's wsload connection.
func (c *client) OnMessage(_ *wsload.Conn, data []byte) { c.onMessage(data) }
func (c *client) OnClose(*wsload.Conn, error)           { c.st.closed.Add(1) }

// gwsClient serves a client's gws connection (Config.Client "gws").
type gwsClient struct {
	gws.BuiltinEventHandler
	c *client
}

func (g gwsClient) OnMessage(_ *gws.Conn, m *gws.Message) {
	g.c.onMessage(m.Bytes())
	m.Close()
}

func (g gwsClient) OnClose(*gws.Conn, error) { g.c.st.closed.Add(1) }

// findTS returns the value of a trailing "ts":N field.
func findTS(b []byte) (int64, bool) {
	i := len(b) - 1
	if i < 0 || b[i] != '}' {
		return 0, false
	}
	j := i - 1
	for j >= 0 && b[j] >= '0' && b[j] <= '9' {
		j--
	}
	if j == i-1 || j < 5 || string(b[j-4:j+1]) != `"ts":` {
		return 0, false
	}
	v, err := strconv.ParseInt(string(b[j+1:i]), 10, 64)
	return v, err == nil
}

// players is a phase's connected clients and how to close them all.
type players struct {
	clients []*client
	pool    *wsload.Pool // nil with gws clients
}

func (ps *players) closeAll() {
	for _, c := range ps.clients {
		if c != nil && c.close != nil {
			c.close()
		}
	}
	if ps.pool != nil {
		// Give the close frames a moment to be answered, then drop the rest.
		time.Sleep(200 * time.Millisecond)
		_ = ps.pool.Close()
	}
}

// dialAll opens one client per url, need create_player messages each
// before it counts as joined (0: joined on connect).
func dialAll(ctx context.Context, cfg Config, urls []string, st *stats, need int) (*players, error) {
	ps := &players{clients: make([]*client, len(urls))}
	if cfg.Client == ClientEpoll {
		pool, err := wsload.NewPool(runtime.GOMAXPROCS(0), 64<<10)
		if err != nil {
			return nil, fmt.Errorf("bench fight: epoll clients: %w (use --client gws)", err)
		}
		ps.pool = pool
	}
	sem := make(chan struct{}, cfg.DialConcurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i, u := range urls {
		c := &client{need: int32(need), ready: make(chan struct{}), st: st}
		if need == 0 {
			close(c.ready)
		}
		ps.clients[i] = c
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := c.dial(ctx, ps.pool, u)
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("%s: %w", strings.Split(u, "?")[0], err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		ps.closeAll()
		return nil, fmt.Errorf("bench fight: dial: %w", firstErr)
	}
	deadline := time.After(60 * time.Second)
	for _, c := range ps.clients {
		select {
		case <-c.ready:
		case <-deadline:
			ps.closeAll()
			return nil, errors.New("bench fight: players did not all see every create_player within 60s")
		case <-ctx.Done():
			ps.closeAll()
			return nil, ctx.Err()
		}
	}
	return ps, nil
}

// dial connects c to u through pool, or with gws when pool is nil.
func (c *client) dial(ctx context.Context, pool *wsload.Pool, u string) error {
	if pool != nil {
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		conn, err := pool.Dial(dctx, u, c)
		if err != nil {
			return err
		}
		c.send = conn.Send
		c.close = func() { conn.Close(1000, "") }
		return nil
	}
	conn, _, err := gws.NewClient(gwsClient{c: c}, &gws.ClientOption{
		Addr: u, HandshakeTimeout: 30 * time.Second, ReadMaxPayloadSize: 64 << 10,
		NewDialer: func() (gws.Dialer, error) { return &net.Dialer{Timeout: 30 * time.Second}, nil },
	})
	if err != nil {
		return err
	}
	c.send = func(b []byte) error { return conn.WriteMessage(gws.OpcodeText, b) }
	c.close = func() { _ = conn.WriteClose(1000, nil) }
	go conn.ReadLoop()
	return nil
}

// runLoad has every client send cfg.Rate events per second (spread evenly
// over 1 ms slots) for Warmup+Duration, and measures the Duration part.
func runLoad(ctx context.Context, cfg Config, clients []*client, st *stats, fanout int, serverPID int) Phase {
	const senders = 4
	period := time.Duration(float64(time.Second) / cfg.Rate)
	slots := max(1, int(period/time.Millisecond))
	st.base = time.Now()
	from := cfg.Warmup
	to := cfg.Warmup + cfg.Duration
	st.from.Store(int64(from))
	st.to.Store(int64(to))
	var sent atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < senders; g++ {
		// This sender's clients, by slot.
		bySlot := make([][]*client, slots)
		for i := g; i < len(clients); i += senders {
			s := (i / senders) % slots
			bySlot[s] = append(bySlot[s], clients[i])
		}
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			var n int64
			buf := make([]byte, 0, 128) // WriteMessage is synchronous: reusable
			next := 0                   // next slot tick (in ms since base) to send
			seq := g
			tk := time.NewTicker(time.Millisecond)
			defer tk.Stop()
			for {
				el := time.Since(st.base)
				if el >= to || ctx.Err() != nil {
					break
				}
				now := int(el / time.Millisecond)
				for ; next <= now; next++ {
					for _, c := range bySlot[next%slots] {
						ts := int64(time.Since(st.base))
						seq++
						buf = eventMsg(buf[:0], seq, ts)
						if c.send(buf) == nil && ts >= int64(from) && ts < int64(to) {
							n++
						}
					}
				}
				<-tk.C
			}
			sent.Add(n)
		}(g)
	}
	// CPU over the measured window.
	var srv0, gen0 float64
	select {
	case <-time.After(from):
		srv0, gen0 = procCPU(serverPID), selfCPU()
	case <-ctx.Done():
	}
	wg.Wait()
	srv1, gen1 := procCPU(serverPID), selfCPU()
	// Let what is in flight arrive (failure guard, not a measurement).
	drain := time.Now().Add(2 * time.Second)
	want := sent.Load() * int64(fanout)
	for time.Now().Before(drain) && st.received.Load() < want {
		time.Sleep(10 * time.Millisecond)
	}
	secs := cfg.Duration.Seconds()
	p := Phase{
		Connections: len(clients), Fanout: fanout,
		SentPerS: float64(sent.Load()) / secs, DeliveredPerS: float64(st.received.Load()) / secs,
		Errors: st.errors.Load(), Closed: st.closed.Load(),
		ServerCPUS: srv1 - srv0, GeneratorCPUS: gen1 - gen0,
	}
	if serverPID == 0 {
		p.ServerCPUS = 0
	} else if sent.Load() > 0 {
		p.ServerCPUPerEventUS = p.ServerCPUS / float64(sent.Load()) * 1e6
	}
	if want > 0 {
		p.DeliveredRatio = float64(st.received.Load()) / float64(want)
	}
	p.P50US, p.P90US, p.P99US, p.P999US = st.quantile(0.5), st.quantile(0.9), st.quantile(0.99), st.quantile(0.999)
	p.MaxUS = float64(st.max.Load()) / 1e3
	return p
}

// eventMsg is a player's event: mostly move_to, some shoot_fireball and
// blink, stamped with ts (ns since the phase began).
func eventMsg(b []byte, seq int, ts int64) []byte {
	x, y := float64(seq*37%1000)/10, float64(seq*91%1000)/10
	switch seq % 20 {
	case 0:
		b = append(b, `{"type":"event","event":"shoot_fireball","ball_uuid":"b`...)
		b = strconv.AppendInt(b, int64(seq), 10)
		b = append(b, `","tx":`...)
	case 1:
		b = append(b, `{"type":"event","event":"blink","tx":`...)
	default:
		b = append(b, `{"type":"event","event":"move_to","tx":`...)
	}
	b = strconv.AppendFloat(b, x, 'g', -1, 64)
	b = append(b, `,"ty":`...)
	b = strconv.AppendFloat(b, y, 'g', -1, 64)
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, ts, 10)
	return append(b, '}')
}

// stats is a lock-free latency histogram: 10 µs buckets up to 1 s.
type stats struct {
	base     time.Time
	from, to atomic.Int64 // measured window, ns since base
	buckets  []atomic.Int64
	received atomic.Int64
	errors   atomic.Int64
	closed   atomic.Int64
	max      atomic.Int64
}

const bucketNS = 10_000

func newStats() *stats { return &stats{buckets: make([]atomic.Int64, 100_001)} }

func (s *stats) record(ts int64) {
	if ts < s.from.Load() || ts >= s.to.Load() {
		return
	}
	d := int64(time.Since(s.base)) - ts
	if d < 0 {
		d = 0
	}
	s.received.Add(1)
	i := min(d/bucketNS, int64(len(s.buckets)-1))
	s.buckets[i].Add(1)
	for {
		m := s.max.Load()
		if d <= m || s.max.CompareAndSwap(m, d) {
			break
		}
	}
}

// quantile returns the q quantile in microseconds (upper bucket bound).
func (s *stats) quantile(q float64) float64 {
	total := s.received.Load()
	if total == 0 {
		return 0
	}
	rank := int64(q*float64(total-1)) + 1
	var seen int64
	for i := range s.buckets {
		seen += s.buckets[i].Load()
		if seen >= rank {
			return float64((int64(i)+1)*bucketNS) / 1e3
		}
	}
	return float64(s.max.Load()) / 1e3
}

// Format renders r as an aligned text report.
func Format(r Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "fight bench: %d rooms x %d players = %d connections, %g events/s each, %gs measured (%gs warmup)\n",
		r.Rooms, r.PlayersPerRoom, r.Connections, r.RatePerPlayer, r.DurationS, r.WarmupS)
	fmt.Fprintf(&b, "machine: %s; load average %.1f before, %.1f after; %s clients\n", r.Machine, r.LoadAvg1Before, r.LoadAvg1After, r.Client)
	row := func(name string, p Phase) {
		fmt.Fprintf(&b, "%-9s %9.0f %12.0f %7.3f %9.0f %9.0f %9.0f %9.0f %6d %8.2f %8.2f\n",
			name, p.SentPerS, p.DeliveredPerS, p.DeliveredRatio, p.P50US, p.P99US, p.P999US, p.MaxUS, p.Errors, p.ServerCPUS, p.GeneratorCPUS)
	}
	fmt.Fprintf(&b, "%-9s %9s %12s %7s %9s %9s %9s %9s %6s %8s %8s\n", "phase", "sent/s", "delivered/s", "deliv.", "p50 us", "p99 us", "p99.9 us", "max us", "errors", "srv cpu", "gen cpu")
	row("fight", r.Fight)
	for _, g := range r.Games {
		row(g.Name, g.Phase)
	}
	if r.Baseline != nil {
		row("echo", *r.Baseline)
	}
	for _, g := range r.Games {
		fmt.Fprintf(&b, "%s/fight: p50 %.2fx, p99 %.2fx, server CPU per event %.2fx (%.1f us, %.2f cores); %.1f KiB per connection (%.1f KiB idle)\n",
			g.Name, g.P50, g.P99, g.CPUPerEvent, g.Phase.ServerCPUPerEventUS, g.Phase.ServerCPUS/r.DurationS, g.Mem.BytesPerConn/1024, g.Mem.BytesPerConnIdle/1024)
	}
	if r.Ratios != nil {
		fmt.Fprintf(&b, "fight/echo: p50 %.2fx, p99 %.2fx, delivered/s %.2fx\n", r.Ratios.P50, r.Ratios.P99, r.Ratios.DeliveredPerS)
	}
	if r.Fight.ServerCPUPerEventUS > 0 {
		fmt.Fprintf(&b, "server CPU per event received: fight %.1f us (%.2f cores)", r.Fight.ServerCPUPerEventUS, r.Fight.ServerCPUS/r.DurationS)
		if r.Baseline != nil && r.Baseline.ServerCPUPerEventUS > 0 {
			fmt.Fprintf(&b, ", echo %.1f us (%.2f cores)", r.Baseline.ServerCPUPerEventUS, r.Baseline.ServerCPUS/r.DurationS)
		}
		b.WriteString("\n")
	}
	if r.Targets.MemoryMeasured {
		fmt.Fprintf(&b, "fight RSS: %.1f MiB at start, %.1f MiB joined, %.1f MiB after load: %.1f KiB per connection (%.1f KiB idle)\n",
			float64(r.FightRSSStart)/(1<<20), float64(r.FightRSSJoined)/(1<<20), float64(r.FightRSSEnd)/(1<<20),
			r.BytesPerConn/1024, r.BytesPerConnIdle/1024)
	}
	for _, rm := range []struct {
		when string
		m    *RuntimeMem
	}{{"joined", r.RuntimeJoined}, {"after load", r.RuntimeEnd}} {
		if rm.m != nil && r.Connections > 0 {
			n := float64(r.Connections) * 1024
			fmt.Fprintf(&b, "fight Go memory %s: heap in use %.1f KiB/conn (live %.1f), stacks %.1f KiB/conn, %.0f goroutines\n",
				rm.when, rm.m.HeapInuse/n, rm.m.HeapAlloc/n, rm.m.StackInuse/n, rm.m.Goroutines)
		}
	}
	fmt.Fprintf(&b, "targets: p99 under 10 ms %v, under 32 KiB per connection %v\n", r.Targets.P99Under10ms, r.Targets.Under32KiBPerConn)
	return b.String()
}
