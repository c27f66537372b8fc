// Package fleetbench is `arena bench fleet`: it measures the fleet across
// hosts with real `arena dispatcher` processes (killed with -9 and
// restarted like a crashed one) and hosts that dial their host-control
// port over TCP.
//
//   - restart: a dispatcher with Hosts hosts of PerHost processes each,
//     with loads, is killed with -9 and started again, Rounds times; timed
//     from the new dispatcher listening, and from the first host
//     registered again, to a table holding every process with its exact
//     pid and load (nothing killed, no port twice).
//   - spawn: every fight process of a remote `arena host` (advertised on
//     127.0.0.2) is full at MAXNUM 1, so each timed `get` spawns a real
//     `arena fight` on that host and answers HOST:PORT once it listens.
//   - seed: `get` throughput (seed and pipelined clients) of a dispatcher
//     whose fleet is Hosts x SeedPerHost fight processes against a
//     dispatcher with its own single host (today's single-machine arena),
//     in the same run.
//
// The restart and seed hosts are host.Agents in this process whose
// processes are fakeproc's in-memory fakes: the fleet's own costs are
// measured, not the fight servers'.
package fleetbench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/arena-game/arena/dispatcher/dispatchbench"
	"github.com/arena-game/arena/fleet/fakeproc"
	"github.com/arena-game/arena/host"
	"github.com/arena-game/arena/hostctl"
	"github.com/arena-game/arena/internal/benchdisp"
	"github.com/arena-game/arena/proc"
)

// Config configures a run.
type Config struct {
	// Exe is the arena binary (default: this executable).
	Exe string
	// Memcache is the memcached list (default: an embedded one).
	Memcache string
	// Scenarios to run: "restart", "spawn", "seed" (default all).
	Scenarios []string
	// Hosts (default 3) and PerHost processes each (default 20) for
	// restart; SeedPerHost (default 100) for seed.
	Hosts, PerHost, SeedPerHost int
	// Rounds is how many restarts are timed (default 5); FleetLease the
	// dispatcher's --fleet-lease (default 3s, its default: a restart after
	// kill -9 waits that long first).
	Rounds     int
	FleetLease time.Duration
	// Spawns is how many remote spawns are timed (default 10).
	Spawns int
	// SeedDuration is how long each dispatcher is driven in seed mode
	// (default 4s, in two halves).
	SeedDuration time.Duration
	// Progress, when set, receives a line per step.
	Progress io.Writer
}

func (c *Config) defaults() {
	if len(c.Scenarios) == 0 {
		c.Scenarios = []string{"restart", "spawn", "seed"}
	}
	if c.Hosts <= 0 {
		c.Hosts = 3
	}
	if c.PerHost <= 0 {
		c.PerHost = 20
	}
	if c.SeedPerHost <= 0 {
		c.SeedPerHost = 100
	}
	if c.Rounds <= 0 {
		c.Rounds = 5
	}
	if c.FleetLease <= 0 {
		c.FleetLease = 3 * time.Second
	}
	if c.Spawns <= 0 {
		c.Spawns = 10
	}
	if c.SeedDuration <= 0 {
		c.SeedDuration = 4 * time.Second
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// Quantiles are milliseconds over the rounds.
type Quantiles struct {
	P50 float64 `json:"p50_ms"`
	Max float64 `json:"max_ms"`
}

func quantiles(ds []time.Duration) Quantiles {
	if len(ds) == 0 {
		return Quantiles{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }
	return Quantiles{P50: ms(s[(len(s)-1)/2]), Max: ms(s[len(s)-1])}
}

// Restart is the restart scenario's figures.
type Restart struct {
	Hosts     int `json:"hosts"`
	Processes int `json:"processes"`
	Rounds    int `json:"rounds"`
	// KillToListen: kill -9 to the new dispatcher listening (its lease
	// wait after a crash, then its start).
	KillToListen Quantiles `json:"kill_to_listen"`
	// ListenToComplete: listening to a complete table (the hosts'
	// reconnect backoff, their registrations).
	ListenToComplete Quantiles `json:"listen_to_complete"`
	// ReconnectToComplete: the first host registered again to a complete
	// table.
	ReconnectToComplete Quantiles `json:"reconnect_to_complete"`
	// KillToComplete: the whole outage as the fleet sees it.
	KillToComplete Quantiles `json:"kill_to_complete"`
	// Exact: every round took back every process with its pid and load,
	// no port twice, none killed.
	Exact bool `json:"exact"`
}

// Spawn is the remote spawn scenario's figures.
type Spawn struct {
	Host   string  `json:"host"`
	Spawns int64   `json:"spawns"`
	P50ms  float64 `json:"p50_ms"`
	P99ms  float64 `json:"p99_ms"`
	Answer string  `json:"example_answer"`
}

// Seed is the seed scenario's figures: per line-protocol mode (seed: a
// connection per get; pipelined: many gets in flight on few
// connections), both dispatchers with --line-seed-wait 0 (the seed's own
// behaviour, so the dispatcher's cost is not hidden behind the wait).
type Seed struct {
	Processes int        `json:"processes"`
	Modes     []SeedMode `json:"modes"`
}

// SeedMode is one mode's figures.
type SeedMode struct {
	Mode   string                `json:"mode"`
	Fleet  dispatchbench.Figures `json:"fleet"`
	Single dispatchbench.Figures `json:"single"`
	// Ratio is the fleet's requests/s over the single host's.
	Ratio float64 `json:"ratio"`
}

// Result is the whole run.
type Result struct {
	Restart *Restart `json:"restart,omitempty"`
	Spawn   *Spawn   `json:"spawn,omitempty"`
	Seed    *Seed    `json:"seed,omitempty"`
}

// Run runs cfg's scenarios.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg.defaults()
	var res Result
	for _, s := range cfg.Scenarios {
		var err error
		switch s {
		case "restart":
			res.Restart, err = runRestart(ctx, cfg)
		case "spawn":
			res.Spawn, err = runSpawn(ctx, cfg)
		case "seed":
			res.Seed, err = runSeed(ctx, cfg)
		default:
			err = fmt.Errorf("unknown scenario %q (restart, spawn, seed)", s)
		}
		if err != nil {
			return res, fmt.Errorf("bench fleet: %s: %w", s, err)
		}
	}
	return res, nil
}

// fakeHosts are host agents in this process whose processes are fakes.
type fakeHosts struct {
	agents   []*host.Agent
	spawners []*fakeproc.Spawner
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

func startFakeHosts(d *benchdisp.Dispatcher, n, perHost int) (*fakeHosts, error) {
	base, err := fakeproc.PortBlock(perHost + 10)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	fh := &fakeHosts{cancel: cancel}
	quiet := slog.New(slog.DiscardHandler)
	for i := range n {
		sp := &fakeproc.Spawner{}
		// The fakes bind nothing: the hosts may share a port range.
		a, err := host.NewAgent(host.Config{Name: fmt.Sprintf("bench-%d", i+1), Advertise: fmt.Sprintf("127.0.1.%d", i+1),
			Bind: "127.0.0.1", Dispatcher: d.HostListen, FleetToken: d.Fleet, Log: quiet, Spawner: sp.Spawn,
			Kinds: map[string]host.Kind{proc.KindFight: {FirstPort: base, LastPort: base + perHost + 9, Max: perHost}}})
		if err != nil {
			fh.stop()
			return nil, err
		}
		fh.agents, fh.spawners = append(fh.agents, a), append(fh.spawners, sp)
		fh.wg.Add(1)
		go func() {
			defer fh.wg.Done()
			_ = a.Run(ctx)
		}()
	}
	return fh, nil
}

func (fh *fakeHosts) stop() {
	fh.cancel()
	fh.wg.Wait()
}

// startFakeFleet starts a dispatcher with no host of its own (plus extra
// flags) and cfg.Hosts fake hosts, and waits until they run the perHost
// fight processes each that the dispatcher's minimum asks for. stop stops
// them all.
func startFakeFleet(ctx context.Context, cfg Config, scenario string, perHost int, extra ...string) (d *benchdisp.Dispatcher, fh *fakeHosts, stop func(), err error) {
	total := cfg.Hosts * perHost
	d, err = benchdisp.Start(benchdisp.Options{Exe: cfg.Exe, Memcache: cfg.Memcache, Extra: append([]string{
		"--min-processes", strconv.Itoa(total), "--min-map-processes", "0", "--idle-timeout", "1h"}, extra...)})
	if err != nil {
		return nil, nil, nil, err
	}
	if err := d.Up(ctx, false); err != nil {
		d.Stop()
		return nil, nil, nil, err
	}
	if fh, err = startFakeHosts(d, cfg.Hosts, perHost); err != nil {
		d.Stop()
		return nil, nil, nil, err
	}
	stop = func() {
		fh.stop()
		d.Stop()
	}
	fmt.Fprintf(cfg.Progress, "%s: %d hosts x %d processes spawning\n", scenario, cfg.Hosts, perHost)
	if _, err := waitTable(ctx, d.Line, 120*time.Second, "the fleet spawned", func(t hostctl.Table) bool { return readyFights(t) == total }); err != nil {
		stop()
		return nil, nil, nil, err
	}
	return d, fh, stop, nil
}

// stat reads the dispatcher's process table over the line protocol.
func stat(addr string) (hostctl.Table, error) {
	var t hostctl.Table
	ans, err := benchdisp.Ask(addr, "stat")
	if err != nil {
		return t, err
	}
	if err := json.Unmarshal([]byte(ans), &t); err != nil {
		return t, fmt.Errorf("stat: %w (%.80q)", err, ans)
	}
	return t, nil
}

// waitTable polls the table every millisecond until ok holds.
func waitTable(ctx context.Context, addr string, within time.Duration, what string, ok func(hostctl.Table) bool) (hostctl.Table, error) {
	deadline := time.Now().Add(within)
	var last hostctl.Table
	var lastErr error
	for time.Now().Before(deadline) {
		t, err := stat(addr)
		if err == nil && ok(t) {
			return t, nil
		}
		last, lastErr = t, err
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return last, fmt.Errorf("%s: not within %v (%d processes, last error %v)", what, within, len(last.Processes), lastErr)
}

func readyFights(t hostctl.Table) int {
	n := 0
	for _, p := range t.Processes {
		if p.Kind == proc.KindFight && p.State == hostctl.Ready {
			n++
		}
	}
	return n
}

// procKey names a process across a restart.
type procKey struct {
	host string
	port int
}

type procWant struct{ pid, load int }

func runRestart(ctx context.Context, cfg Config) (*Restart, error) {
	total := cfg.Hosts * cfg.PerHost
	d, fh, stop, err := startFakeFleet(ctx, cfg, "restart", cfg.PerHost, "--fleet-lease", cfg.FleetLease.String())
	if err != nil {
		return nil, err
	}
	defer stop()
	// Loads: rooms given to the processes behind the dispatcher's back
	// (their hosts learn them from Status), 0 to 3 each.
	for _, sp := range fh.spawners {
		for i, p := range sp.Procs() {
			for r := range i % 4 {
				if _, err := p.AssignRoom(ctx, proc.Room{ID: fmt.Sprintf("bench-%d-%d", p.Port(), r)}); err != nil {
					return nil, err
				}
			}
		}
	}
	want := map[procKey]procWant{}
	for h, sp := range fh.spawners {
		for i, p := range sp.Procs() {
			want[procKey{fh.agents[h].Name(), p.Port()}] = procWant{pid: p.Pid(), load: i % 4}
		}
	}
	complete := func(t hostctl.Table) bool {
		if len(t.Processes) != len(want) {
			return false
		}
		seen := map[procKey]bool{}
		for _, p := range t.Processes {
			k := procKey{p.Host, p.Port}
			w, ok := want[k]
			if !ok || seen[k] || w.pid != p.Pid || w.load != p.Load {
				return false
			}
			seen[k] = true
		}
		return true
	}
	if _, err := waitTable(ctx, d.Line, 10*time.Second, "the loads reported", complete); err != nil {
		return nil, err
	}
	res := &Restart{Hosts: cfg.Hosts, Processes: total, Exact: true}
	var toListen, listenToComplete, reconnectToComplete, killToComplete []time.Duration
	for round := range cfg.Rounds {
		killed := time.Now()
		d.Kill()
		if err := d.Restart(); err != nil {
			return nil, err
		}
		listening, err := waitListening(ctx, d.HostListen, cfg.FleetLease+20*time.Second)
		if err != nil {
			return nil, err
		}
		first := make(chan time.Time, 1)
		stopWatch := make(chan struct{})
		go watchReconnect(fh.agents, first, stopWatch)
		_, err = waitTable(ctx, d.Line, 20*time.Second, "the fleet taken back", complete)
		done := time.Now()
		close(stopWatch)
		if err != nil {
			res.Exact = false
			return res, err
		}
		reconnected := <-first
		toListen = append(toListen, listening.Sub(killed))
		listenToComplete = append(listenToComplete, done.Sub(listening))
		reconnectToComplete = append(reconnectToComplete, done.Sub(reconnected))
		killToComplete = append(killToComplete, done.Sub(killed))
		res.Rounds++
		fmt.Fprintf(cfg.Progress, "restart %d: kill->listen %v, listen->complete %v, first reconnect->complete %v\n", round+1,
			listening.Sub(killed).Round(time.Millisecond), done.Sub(listening).Round(time.Millisecond), done.Sub(reconnected).Round(time.Millisecond))
		for _, sp := range fh.spawners {
			for _, p := range sp.Procs() {
				if p.Exited() {
					res.Exact = false
				}
			}
		}
	}
	res.KillToListen, res.ListenToComplete = quantiles(toListen), quantiles(listenToComplete)
	res.ReconnectToComplete, res.KillToComplete = quantiles(reconnectToComplete), quantiles(killToComplete)
	return res, nil
}

// waitListening dials addr every millisecond until it accepts.
func waitListening(ctx context.Context, addr string, within time.Duration) (time.Time, error) {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			at := time.Now()
			c.Close()
			return at, nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return time.Time{}, fmt.Errorf("the restarted dispatcher did not listen on %s within %v", addr, within)
}

// watchReconnect sends the time the first agent is registered again.
func watchReconnect(agents []*host.Agent, first chan<- time.Time, stop <-chan struct{}) {
	for {
		for _, a := range agents {
			if a.Connected() {
				first <- time.Now()
				return
			}
		}
		select {
		case <-stop:
			first <- time.Now()
			return
		case <-time.After(200 * time.Microsecond):
		}
	}
}

// loopbackAlias returns 127.0.0.2 when this machine can bind it (Linux
// routes all of 127/8 to lo), else 127.0.0.1.
func loopbackAlias() string {
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		return "127.0.0.1"
	}
	ln.Close()
	return "127.0.0.2"
}

func runSpawn(ctx context.Context, cfg Config) (*Spawn, error) {
	d, err := benchdisp.Start(benchdisp.Options{Exe: cfg.Exe, Memcache: cfg.Memcache, Extra: []string{
		"--min-processes", "1", "--min-map-processes", "0", "--idle-timeout", "1h"}})
	if err != nil {
		return nil, err
	}
	defer d.Stop()
	if err := d.Up(ctx, false); err != nil {
		return nil, err
	}
	exe := cfg.Exe
	if exe == "" {
		if exe, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	addr := loopbackAlias()
	span := cfg.Spawns + 10
	fightBase, err := fakeproc.PortBlock(span)
	if err != nil {
		return nil, err
	}
	outbox, err := os.MkdirTemp("", "arena-bench-outbox-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(outbox)
	h := exec.Command(exe, "host", "--dispatcher", d.HostListen, "--advertise", addr, "--name", "remote-1",
		"--memcache", d.Memcache, "--store-prefix", d.Prefix, "--outbox", outbox, "--fight-port-base", strconv.Itoa(fightBase),
		"--map-port-base", strconv.Itoa(fightBase+span), "--port-span", strconv.Itoa(span), "--max-processes", strconv.Itoa(cfg.Spawns+2),
		"--log-level", "warn")
	h.Env = append(os.Environ(), "ARENA_FLEET_TOKEN="+d.Fleet)
	h.Stderr = os.Stderr
	if err := h.Start(); err != nil {
		return nil, fmt.Errorf("start arena host: %w", err)
	}
	defer func() {
		_ = h.Process.Signal(syscall.SIGTERM)
		_ = h.Wait()
	}()
	fmt.Fprintf(cfg.Progress, "spawn: arena host advertised on %s\n", addr)
	if _, err := waitTable(ctx, d.Line, 30*time.Second, "the remote host's first fight process", func(t hostctl.Table) bool { return readyFights(t) >= 1 }); err != nil {
		return nil, err
	}
	r, err := dispatchbench.Run(ctx, dispatchbench.Config{Addr: d.Line, Modes: []string{"spawn"}, Token: d.Fleet, Spawns: cfg.Spawns})
	if err != nil {
		return nil, err
	}
	if len(r.Modes) != 1 {
		return nil, errors.New("no spawn figures")
	}
	f := r.Modes[0].Arena
	return &Spawn{Host: addr, Spawns: f.Requests, P50ms: f.P50us / 1e3, P99ms: f.P99us / 1e3, Answer: f.ExampleAnswer}, nil
}

func runSeed(ctx context.Context, cfg Config) (*Seed, error) {
	total := cfg.Hosts * cfg.SeedPerHost
	single, err := benchdisp.Start(benchdisp.Options{Exe: cfg.Exe, Memcache: cfg.Memcache, LocalHost: true, Extra: []string{
		"--min-map-processes", "0", "--line-seed-wait", "0"}})
	if err != nil {
		return nil, err
	}
	defer single.Stop()
	if err := single.Up(ctx, true); err != nil {
		return nil, err
	}
	big, _, stop, err := startFakeFleet(ctx, cfg, "seed", cfg.SeedPerHost, "--line-seed-wait", "0")
	if err != nil {
		return nil, err
	}
	defer stop()
	s := &Seed{Processes: total}
	for _, mode := range []string{"seed", "pipelined"} {
		// single, fleet, fleet, single: neither always runs second.
		half := cfg.SeedDuration / 2
		var runs [2][]dispatchbench.Figures
		for i, target := range []*benchdisp.Dispatcher{single, big, big, single} {
			r, err := dispatchbench.Run(ctx, dispatchbench.Config{Addr: target.Line, Modes: []string{mode}, Duration: half})
			if err != nil {
				return nil, err
			}
			side, name := 0, "single host"
			if target == big {
				side, name = 1, "fleet"
			}
			runs[side] = append(runs[side], r.Modes[0].Arena)
			fmt.Fprintf(cfg.Progress, "%s run %d (%s): %.0f req/s\n", mode, i+1, name, r.Modes[0].Arena.RequestsPerS)
		}
		m := SeedMode{Mode: mode, Single: dispatchbench.Merge(runs[0]), Fleet: dispatchbench.Merge(runs[1])}
		if m.Single.RequestsPerS > 0 {
			m.Ratio = m.Fleet.RequestsPerS / m.Single.RequestsPerS
		}
		s.Modes = append(s.Modes, m)
	}
	return s, nil
}
