// Package chatbench is `arena bench chat`: it starts the chat server as a
// real child process (`arena chat` on a free loopback port with an embedded
// memcached), connects N WebSocket clients, all in the world channel, posts
// one world message at a time and measures how long until the last client
// has it, and the server's memory per connection (VmRSS growth of the child
// over N). It then does the same against a bare gws broadcast server
// (ServeBaseline, also a child process) in the same run, and reports the
// ratios. See docs/benchmarks/chat.md.
package chatbench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lxzan/gws"

	"github.com/arena-game/arena/chatserver"
	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/httpguard"
)

// Config is one benchmark run.
type Config struct {
	// Clients is how many receiving clients connect (default 20000).
	Clients int
	// Repeats is how many measured fan-outs (default 20), after one warm-up.
	Repeats int
	// Exe is the arena binary to run as `arena chat` and as the baseline
	// (`arena bench chat --serve-baseline ADDR`).
	Exe string
	// Sources are the local addresses clients dial from, round robin
	// (default 127.0.0.1 to 127.0.0.4: each has its own ephemeral ports).
	Sources []string
	// Concurrency bounds handshakes in flight (default 256).
	Concurrency int
	// Timeout bounds the whole run (default 5 minutes).
	Timeout time.Duration
	// NoBaseline skips the baseline server.
	NoBaseline bool
	// ServerLog receives the children's stderr (nil: discarded).
	ServerLog io.Writer
	// Log reports progress (nil: discarded).
	Log *slog.Logger
}

// Side is the figures for one server.
type Side struct {
	Server string `json:"server"`
	// ConnectS is how long connecting every client took.
	ConnectS float64 `json:"connect_s"`
	// LastP50Ms and LastP99Ms are percentiles over the repeats of the time
	// from posting until the last client received the message.
	LastP50Ms float64 `json:"last_p50_ms"`
	LastP99Ms float64 `json:"last_p99_ms"`
	LastMaxMs float64 `json:"last_max_ms"`
	// LastMs is every repeat's time to the last client, in order.
	LastMs []float64 `json:"last_ms"`
	// MedianP50Ms is the p50 over repeats of the time until half the
	// clients had it.
	MedianP50Ms float64 `json:"median_p50_ms"`
	// Incomplete counts repeats in which some client never received it
	// within 10 s.
	Incomplete int `json:"incomplete"`
	// RSS of the server process (bytes) before clients connected and the
	// highest after; RSSPerConn is their difference over Clients.
	RSSBefore  int64   `json:"rss_before_bytes"`
	RSSAfter   int64   `json:"rss_after_bytes"`
	RSSPerConn float64 `json:"rss_per_conn_bytes"`
	// ServerCPUMs and ClientCPUMs are CPU time (user + system) per
	// fan-out of the server process and of all client workers together,
	// averaged over the repeats: a figure that does not depend on what
	// else the machine is running.
	ServerCPUMs float64 `json:"server_cpu_ms_per_fanout"`
	ClientCPUMs float64 `json:"client_cpu_ms_per_fanout"`
}

// Result is the output of `arena bench chat --json`.
type Result struct {
	Clients int `json:"clients"`
	// ClientsRequested is set when fewer clients than asked could be
	// connected (Note says why).
	ClientsRequested int     `json:"clients_requested,omitempty"`
	Note             string  `json:"note,omitempty"`
	Repeats          int     `json:"repeats"`
	CPUs             int     `json:"cpus"`
	Chat             Side    `json:"chat"`
	Baseline         *Side   `json:"baseline,omitempty"`
	Ratio            *Ratios `json:"ratio,omitempty"`
	Targets          Targets `json:"targets"`
	Pass             bool    `json:"pass"`
}

// Ratios are chat over baseline (1.0: as fast or as small as the baseline).
type Ratios struct {
	LastP50    float64 `json:"last_p50"`
	LastP99    float64 `json:"last_p99"`
	RSSPerConn float64 `json:"rss_per_conn"`
}

// Targets are issue 4's: under 200 ms to the last of 20,000 and under
// 32 KiB per connection.
type Targets struct {
	LastP99Ms  float64 `json:"last_p99_ms"`
	RSSPerConn float64 `json:"rss_per_conn_bytes"`
}

func (c Config) withDefaults() Config {
	if c.Clients <= 0 {
		c.Clients = 20000
	}
	if c.Repeats <= 0 {
		c.Repeats = 20
	}
	if len(c.Sources) == 0 {
		c.Sources = []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"}
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 256
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Minute
	}
	if c.Log == nil {
		c.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.ServerLog == nil {
		c.ServerLog = io.Discard
	}
	return c
}

// Run runs the benchmark. It stops its children before returning.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg = cfg.withDefaults()
	if cfg.Exe == "" {
		return Result{}, errors.New("bench chat: no arena binary given")
	}
	for _, s := range cfg.Sources {
		ip := net.ParseIP(strings.TrimSpace(s))
		if ip == nil || !ip.IsLoopback() {
			return Result{}, fmt.Errorf("bench chat: source %q: loopback addresses only", s)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	// The server child (which inherits it) needs a descriptor per client.
	if n, err := chatserver.RaiseFileLimit(uint64(cfg.Clients + 4096)); err != nil {
		cfg.Log.Warn("could not raise the open-file limit", "limit", n, "err", err)
	}
	res := Result{Clients: cfg.Clients, Repeats: cfg.Repeats, CPUs: runtime.NumCPU(),
		Targets: Targets{LastP99Ms: 200, RSSPerConn: 32 << 10}}

	chat, n, err := runSide(ctx, cfg, cfg.Clients, chatTarget)
	if err != nil {
		return res, fmt.Errorf("bench chat: arena chat: %w", err)
	}
	res.Chat, res.Clients = chat, n
	if n < cfg.Clients {
		res.ClientsRequested = cfg.Clients
		res.Note = fmt.Sprintf("clients capped at %d by the server process's open-file limit (RLIMIT_NOFILE) less the reserve its connection cap keeps (internal/httpguard); raising the limit needs CAP_SYS_RESOURCE", n)
	}
	res.Pass = chat.LastP99Ms < res.Targets.LastP99Ms && chat.RSSPerConn < res.Targets.RSSPerConn && chat.Incomplete == 0
	if !cfg.NoBaseline {
		base, _, err := runSide(ctx, cfg, n, baselineTarget)
		if err != nil {
			return res, fmt.Errorf("bench chat: baseline: %w", err)
		}
		res.Baseline = &base
		res.Ratio = &Ratios{
			LastP50:    ratio(chat.LastP50Ms, base.LastP50Ms),
			LastP99:    ratio(chat.LastP99Ms, base.LastP99Ms),
			RSSPerConn: ratio(chat.RSSPerConn, base.RSSPerConn),
		}
	}
	return res, nil
}

func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return round(a/b, 2)
}

func round(v float64, digits int) float64 {
	s := strconv.FormatFloat(v, 'f', digits, 64)
	r, _ := strconv.ParseFloat(s, 64)
	return r
}

// target is how one server is started and spoken to.
type target struct {
	name   string
	tokens bool // clients present player tokens
	args   func(addr, secret, operator string) []string
	urlFor func(addr string, signer *auth.Signer) func(i int) string
	post   func(c *gws.Conn, marker string) error
}

var chatTarget = target{
	name:   "arena chat",
	tokens: true,
	args: func(addr, secret, operator string) []string {
		// --memcache "" overrides any ARENA_MEMCACHE: an embedded memcached.
		return []string{"chat", "--listen", addr, "--memcache", "", "--store-prefix", "bench." + auth.RandomID(4) + ".",
			"--secret", secret, "--operator-token", operator, "--log-level", "warn"}
	},
	urlFor: func(addr string, signer *auth.Signer) func(i int) string {
		return func(i int) string {
			name := "bench-" + strconv.Itoa(i)
			if i < 0 {
				name = "bench-poster"
			}
			tok, _ := signer.Mint(auth.KindPlayer, auth.Claims{Subject: name, Name: name, Bot: true}, time.Hour)
			return "ws://" + addr + "/ws?token=" + tok
		}
	},
	post: func(c *gws.Conn, marker string) error {
		return c.WriteString(`{"type":"post","channel":"world","text":"` + marker + `"}`)
	},
}

var baselineTarget = target{
	name: "bare gws broadcast",
	args: func(addr, _, _ string) []string {
		return []string{"bench", "chat", "--serve-baseline", addr}
	},
	urlFor: func(addr string, _ *auth.Signer) func(i int) string {
		return func(int) string { return "ws://" + addr + "/ws" }
	},
	post: func(c *gws.Conn, marker string) error {
		return c.WriteString(`{"type":"message","channel":"world","text":"` + marker + `"}`)
	},
}

func runSide(ctx context.Context, cfg Config, clients int, t target) (Side, int, error) {
	side := Side{Server: t.name}
	secret, operator := auth.RandomID(16), auth.RandomID(16)
	signer, _ := auth.NewSigner(secret)
	port, err := freePort()
	if err != nil {
		return side, 0, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(cfg.Exe, t.args(addr, secret, operator)...)
	cmd.Stdout = cfg.ServerLog
	cmd.Stderr = cfg.ServerLog
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return side, 0, fmt.Errorf("start %s: %w", cfg.Exe, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer stopChild(cmd, exited)
	if err := waitHealthy(ctx, addr, exited); err != nil {
		return side, 0, err
	}
	pid := cmd.Process.Pid
	time.Sleep(300 * time.Millisecond) // let the child settle after start-up
	side.RSSBefore, err = readRSS(pid)
	if err != nil {
		return side, 0, err
	}
	// One process holds at most RLIMIT_NOFILE descriptors, and arena's
	// chat server takes at most httpguard.TotalFor(that) connections:
	// keep the server's connections (clients and the poster) under both.
	if capacity, err := connCapacity(pid); err == nil && clients > capacity {
		cfg.Log.Warn("server's open-file limit caps the clients", "server", t.name, "requested", clients, "clients", capacity)
		clients = capacity
	}
	cfg.Log.Info("connecting clients", "server", t.name, "addr", addr, "clients", clients)

	nw := (clients + PerWorker - 1) / PerWorker
	workers := make([]*worker, 0, nw)
	defer func() {
		for _, w := range workers {
			w.stop()
		}
	}()
	start := time.Now()
	for i := 0; i < nw; i++ {
		w, err := startWorker(cfg)
		if err != nil {
			return side, 0, err
		}
		workers = append(workers, w)
		from, count := i*PerWorker, min(PerWorker, clients-i*PerWorker)
		su := workerSetup{Addr: addr, From: from, Count: count, Sources: cfg.Sources, Concurrency: max(1, cfg.Concurrency/nw)}
		if t.tokens {
			su.Secret = secret
		}
		if err := w.send(workerIn{Setup: &su}); err != nil {
			return side, 0, err
		}
	}
	for _, w := range workers {
		if _, err := w.recv(); err != nil {
			return side, 0, err
		}
	}
	side.ConnectS = round(time.Since(start).Seconds(), 2)
	ph := &handler{idx: -1}
	poster, err := dialOne(ctx, t.urlFor(addr, signer)(-1), addr, nil, ph)
	if err != nil {
		return side, 0, fmt.Errorf("poster: %w", err)
	}
	defer poster.NetConn().Close()
	for !ph.ready.Load() {
		select {
		case <-ctx.Done():
			return side, 0, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	// Let the world online count settle (sent at most once a second).
	time.Sleep(1500 * time.Millisecond)
	rss, err := readRSS(pid)
	if err != nil {
		return side, 0, err
	}
	side.RSSAfter = rss
	cfg.Log.Info("clients connected", "server", t.name, "took_s", side.ConnectS, "rss_mib", rss>>20, "workers", nw)

	var lasts, medians []float64
	var srvCPU, cliCPU time.Duration
	for rep := -1; rep < cfg.Repeats; rep++ { // -1: warm-up
		if err := ctx.Err(); err != nil {
			return side, 0, err
		}
		marker := fmt.Sprintf("bench-%d-%s", rep, auth.RandomID(6))
		for _, w := range workers {
			if err := w.send(workerIn{Arm: marker}); err != nil {
				return side, 0, err
			}
		}
		for _, w := range workers {
			if _, err := w.recv(); err != nil {
				return side, 0, err
			}
		}
		s0, c0 := cpuTime(pid), workersCPU(workers)
		t0 := time.Now().UnixNano()
		if err := t.post(poster, marker); err != nil {
			return side, 0, fmt.Errorf("post: %w", err)
		}
		var lat []int64
		for _, w := range workers {
			out, err := w.recv()
			if err != nil {
				return side, 0, err
			}
			for _, a := range out.Arrivals {
				lat = append(lat, a-t0)
			}
		}
		if rep >= 0 {
			srvCPU += cpuTime(pid) - s0
			cliCPU += workersCPU(workers) - c0
		}
		slices.Sort(lat)
		var last, median float64
		if len(lat) > 0 {
			last, median = float64(lat[len(lat)-1])/1e6, float64(lat[len(lat)/2])/1e6
		}
		cfg.Log.Debug("fan-out", "server", t.name, "repeat", rep, "last_ms", last, "median_ms", median, "received", len(lat))
		if rep >= 0 {
			if len(lat) < clients {
				side.Incomplete++
				cfg.Log.Warn("fan-out incomplete", "server", t.name, "repeat", rep, "received", len(lat))
			}
			lasts = append(lasts, last)
			medians = append(medians, median)
		}
		// Stay under the chat server's per-player rate (5/s) and let the
		// sockets drain before the next one.
		time.Sleep(250 * time.Millisecond)
	}
	if rss, err := readRSS(pid); err == nil && rss > side.RSSAfter {
		side.RSSAfter = rss
	}
	side.LastP50Ms = round(percentile(lasts, 50), 1)
	side.LastP99Ms = round(percentile(lasts, 99), 1)
	side.LastMaxMs = round(percentile(lasts, 100), 1)
	for _, l := range lasts {
		side.LastMs = append(side.LastMs, round(l, 1))
	}
	side.MedianP50Ms = round(percentile(medians, 50), 1)
	side.RSSPerConn = round(float64(side.RSSAfter-side.RSSBefore)/float64(clients), 0)
	side.ServerCPUMs = round(ms(srvCPU)/float64(cfg.Repeats), 1)
	side.ClientCPUMs = round(ms(cliCPU)/float64(cfg.Repeats), 1)
	cfg.Log.Info("fan-out measured", "server", t.name, "last_p50_ms", side.LastP50Ms, "last_p99_ms", side.LastP99Ms,
		"rss_per_conn", side.RSSPerConn)
	return side, clients, nil
}

// cpuTime returns the user plus system CPU time process pid has used
// (clock-tick resolution), or 0 if it cannot be read.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command: state is field 3; utime and
	// stime are fields 14 and 15.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clockTicks
}

// clockTicks is USER_HZ, 100 on Linux.
const clockTicks = 100

func workersCPU(ws []*worker) time.Duration {
	var d time.Duration
	for _, w := range ws {
		d += cpuTime(w.cmd.Process.Pid)
	}
	return d
}

// connCapacity is how many more sockets process pid can open: its soft
// RLIMIT_NOFILE less the descriptors it holds, less headroom for its own
// needs (memcached connections, accepts in flight) and the poster.
func connCapacity(pid int) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/limits")
	if err != nil {
		return 0, err
	}
	limit := -1
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(strings.TrimPrefix(line, "Max open files")); strings.HasPrefix(line, "Max open files") && len(f) >= 2 {
			limit, _ = strconv.Atoi(f[0])
		}
	}
	if limit <= 0 {
		return 0, fmt.Errorf("no open-file limit for pid %d", pid)
	}
	fds, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return 0, err
	}
	return min(limit-len(fds)-32, httpguard.TotalFor(limit)-1), nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// percentile returns the p-th percentile (nearest rank) of v.
func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	k := int(p/100*float64(len(s))+0.5) - 1
	k = max(0, min(k, len(s)-1))
	return s[k]
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func waitHealthy(ctx context.Context, addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("server exited during start-up (run with -v for its log)")
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("server on %s not healthy after 20 s", addr)
}

// stopChild asks the child to stop (SIGTERM) and kills it after 10 s.
func stopChild(cmd *exec.Cmd, exited <-chan struct{}) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// readRSS returns pid's resident set size in bytes (VmRSS).
func readRSS(pid int) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("read rss: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("read rss: %q: %w", v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("read rss: no VmRSS for pid %d", pid)
}
