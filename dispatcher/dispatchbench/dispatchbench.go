// Package dispatchbench is the load generator behind `arena bench
// dispatch`: it drives a dispatcher's line protocol over loopback in the
// seed's style (a new connection per get) and pipelined (many newline
// requests on few connections), and measures the same two workloads
// against bare Go baseline servers in the same run, so results are reported
// as ratios that survive a noisy shared machine.
package dispatchbench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a run.
type Config struct {
	Addr     string        // dispatcher line protocol address
	Duration time.Duration // per mode and target (default 3s)
	// SeedWorkers is the number of concurrent seed-style clients (default 32).
	SeedWorkers int
	// PipeConns is the number of pipelined connections (default 4), each
	// keeping Window requests in flight (default 128).
	PipeConns int
	Window    int
	// Modes to run: "seed", "pipelined", "spawn" (default seed and
	// pipelined). "spawn" needs Token and changes the target's MAXNUM to 1:
	// use it on a dispatcher started for the benchmark.
	Modes []string
	// Token is the fleet token (spawn mode).
	Token string
	// Spawns is how many spawns the spawn mode times (default 10).
	Spawns int
}

// Figures are one measured workload.
type Figures struct {
	Requests      int64   `json:"requests"`
	Errors        int64   `json:"errors"`
	RequestsPerS  float64 `json:"requests_per_s"`
	P50us         float64 `json:"p50_us"`
	P99us         float64 `json:"p99_us"`
	DurationS     float64 `json:"duration_s"`
	ExampleAnswer string  `json:"example_answer,omitempty"`
	FirstError    string  `json:"first_error,omitempty"`
}

// ModeResult is a mode's figures for the dispatcher and its baseline.
type ModeResult struct {
	Mode     string  `json:"mode"`
	Arena    Figures `json:"arena"`
	Baseline Figures `json:"baseline"`
	// Ratio is arena requests/s divided by baseline requests/s.
	Ratio float64 `json:"ratio"`
	// Flattened copies of the arena figures, for scripts.
	RequestsPerS float64 `json:"requests_per_s"`
	P50us        float64 `json:"p50_us"`
	P99us        float64 `json:"p99_us"`
}

// Result is the whole run.
type Result struct {
	Target string       `json:"target"`
	Modes  []ModeResult `json:"modes"`
}

func (c *Config) defaults() {
	if c.Duration <= 0 {
		c.Duration = 3 * time.Second
	}
	if c.SeedWorkers <= 0 {
		c.SeedWorkers = 32
	}
	if c.PipeConns <= 0 {
		c.PipeConns = 4
	}
	if c.Window <= 0 {
		c.Window = 128
	}
	if len(c.Modes) == 0 {
		c.Modes = []string{"seed", "pipelined"}
	}
}

// Run measures every mode against cfg.Addr and against a baseline server.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg.defaults()
	res := Result{Target: cfg.Addr}
	// Check the target answers a get first.
	if ans, err := seedOnce(cfg.Addr); err != nil || bytes.HasPrefix(ans, []byte("err|")) {
		return res, fmt.Errorf("bench dispatch: %s does not answer get: %q %v", cfg.Addr, ans, err)
	}
	for _, mode := range cfg.Modes {
		var mr ModeResult
		mr.Mode = mode
		var err error
		switch mode {
		case "seed":
			mr.Arena, mr.Baseline, err = alternate(ctx, cfg, true, runSeed)
		case "spawn":
			mr.Arena, err = runSpawn(cfg)
			res.Modes = append(res.Modes, ModeResult{Mode: mode, Arena: mr.Arena, RequestsPerS: mr.Arena.RequestsPerS, P50us: mr.Arena.P50us, P99us: mr.Arena.P99us})
			if err != nil {
				return res, err
			}
			continue
		case "pipelined":
			mr.Arena, mr.Baseline, err = alternate(ctx, cfg, false, runPipelined)
		default:
			return res, fmt.Errorf("bench dispatch: unknown mode %q (seed, pipelined)", mode)
		}
		if err != nil {
			return res, err
		}
		if mr.Baseline.RequestsPerS > 0 {
			mr.Ratio = mr.Arena.RequestsPerS / mr.Baseline.RequestsPerS
		}
		mr.RequestsPerS, mr.P50us, mr.P99us = mr.Arena.RequestsPerS, mr.Arena.P50us, mr.Arena.P99us
		res.Modes = append(res.Modes, mr)
	}
	return res, nil
}

// runSpawn times spawn-to-answer: MAXNUM is set to 1, every fight process
// is filled with add (naming it HOST:PORT, wherever it runs), and a get
// then has to spawn a process and answers once it listens.
func runSpawn(cfg Config) (Figures, error) {
	if cfg.Token == "" {
		return Figures{}, errors.New("bench dispatch: spawn mode needs the fleet token")
	}
	n := cfg.Spawns
	if n <= 0 {
		n = 10
	}
	c, err := net.DialTimeout("tcp", cfg.Addr, 5*time.Second)
	if err != nil {
		return Figures{}, err
	}
	defer c.Close()
	r := bufio.NewReader(c)
	do := func(req string) (string, error) {
		_ = c.SetDeadline(time.Now().Add(60 * time.Second))
		if _, err := c.Write([]byte(req + "\n")); err != nil {
			return "", err
		}
		s, err := r.ReadString('\n')
		s = strings.TrimSuffix(s, "\n")
		if err == nil && strings.HasPrefix(s, "err|") {
			err = fmt.Errorf("%s: %s", req, s)
		}
		return s, err
	}
	if _, err := do("maxnum|1|" + cfg.Token); err != nil {
		return Figures{}, err
	}
	lat := make([]time.Duration, 0, n)
	var ex atomic.Value
	start := time.Now()
	for i := 0; i < n; i++ {
		tab, err := do("stat")
		if err != nil {
			return Figures{}, err
		}
		var t struct {
			Processes []struct {
				Kind  string
				Host  string
				Port  int
				Load  int
				State string
			}
		}
		if err := json.Unmarshal([]byte(tab), &t); err != nil {
			return Figures{}, err
		}
		for _, p := range t.Processes {
			if p.Kind == "fight" && p.Load == 0 {
				if _, err := do(fmt.Sprintf("add|%s|%s", net.JoinHostPort(p.Host, strconv.Itoa(p.Port)), cfg.Token)); err != nil {
					return Figures{}, err
				}
			}
		}
		t0 := time.Now()
		ans, err := do("get")
		if err != nil {
			return Figures{}, err
		}
		lat = append(lat, time.Since(t0))
		ex.Store(ans)
	}
	return figures(int64(n), 0, time.Since(start), [][]time.Duration{lat}, ex), nil
}

// alternate measures arena and the baseline in four alternating halves
// (baseline, arena, arena, baseline), so neither side always runs on a
// machine the other has just filled with TIME_WAIT sockets or warmed up;
// each half runs for Duration/2 and the figures are merged.
func alternate(ctx context.Context, cfg Config, seed bool, run func(context.Context, string, Config) (Figures, error)) (arena, base Figures, err error) {
	addr, stop, err := startBaseline(seed)
	if err != nil {
		return arena, base, err
	}
	defer stop()
	half := cfg
	half.Duration = cfg.Duration / 2
	var a, b []Figures
	for _, target := range []string{addr, cfg.Addr, cfg.Addr, addr} {
		f, err := run(ctx, target, half)
		if err != nil {
			return arena, base, err
		}
		if target == addr {
			b = append(b, f)
		} else {
			a = append(a, f)
		}
	}
	return Merge(a), Merge(b), nil
}

// Merge combines runs of one target: requests and errors add up, rates
// are over the summed time, latencies are the runs' request-weighted means
// of their quantiles.
func Merge(fs []Figures) Figures {
	var m Figures
	var secs float64
	for _, f := range fs {
		m.Requests += f.Requests
		m.Errors += f.Errors
		secs += f.DurationS
		m.P50us += f.P50us * float64(f.Requests)
		m.P99us += f.P99us * float64(f.Requests)
		if m.ExampleAnswer == "" {
			m.ExampleAnswer = f.ExampleAnswer
		}
		if m.FirstError == "" {
			m.FirstError = f.FirstError
		}
	}
	if m.Requests > 0 {
		m.P50us /= float64(m.Requests)
		m.P99us /= float64(m.Requests)
	}
	if secs > 0 {
		m.RequestsPerS = float64(m.Requests) / secs
	}
	m.DurationS = secs
	return m
}

func seedOnce(addr string) ([]byte, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write([]byte("get")); err != nil {
		return nil, err
	}
	return io.ReadAll(c)
}

// startBaseline starts a bare Go server on 127.0.0.1: in seed mode it
// answers the first read with a fixed port and closes; otherwise it
// answers each line with a fixed port and a newline.
func startBaseline(seed bool) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("bench dispatch: baseline: %w", err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				if seed {
					buf := make([]byte, 1024)
					if _, err := c.Read(buf); err == nil {
						_, _ = c.Write([]byte("7000"))
					}
					return
				}
				r := bufio.NewReaderSize(c, 4096)
				w := bufio.NewWriterSize(c, 4096)
				for {
					if _, err := r.ReadSlice('\n'); err != nil {
						return
					}
					_, _ = w.WriteString("7000\n")
					if r.Buffered() == 0 {
						if w.Flush() != nil {
							return
						}
					}
				}
			}(c)
		}
	}()
	return ln.Addr().String(), func() { ln.Close(); wg.Wait() }, nil
}

// runSeed runs SeedWorkers loops of dial, write "get", read to EOF, close.
func runSeed(ctx context.Context, addr string, cfg Config) (Figures, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var reqs, errs atomic.Int64
	lat := make([][]time.Duration, cfg.SeedWorkers)
	var example, firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < cfg.SeedWorkers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			buf := make([]byte, 64)
			d := net.Dialer{Timeout: 5 * time.Second}
			for ctx.Err() == nil {
				t0 := time.Now()
				c, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
						time.Sleep(time.Millisecond)
					}
					continue
				}
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				n := 0
				if _, err = c.Write([]byte("get")); err == nil {
					for {
						m, rerr := c.Read(buf[n:])
						n += m
						if rerr != nil {
							if !errors.Is(rerr, io.EOF) {
								err = rerr
							}
							break
						}
						if n == len(buf) {
							break
						}
					}
				}
				c.Close()
				if err != nil || n == 0 || bytes.HasPrefix(buf[:n], []byte("err|")) {
					if ctx.Err() == nil {
						errs.Add(1)
						if err == nil {
							err = fmt.Errorf("answer %q", buf[:n])
						}
						firstErr.CompareAndSwap(nil, err.Error())
					}
					continue
				}
				lat[w] = append(lat[w], time.Since(t0))
				reqs.Add(1)
				if example.Load() == nil {
					example.Store(string(buf[:n]))
				}
			}
		}(w)
	}
	wg.Wait()
	f := figures(reqs.Load(), errs.Load(), time.Since(start), lat, example)
	if s, ok := firstErr.Load().(string); ok {
		f.FirstError = s
	}
	return f, nil
}

// runPipelined runs PipeConns connections each keeping Window gets in
// flight; latency is from writing a request to reading its answer.
func runPipelined(ctx context.Context, addr string, cfg Config) (Figures, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var reqs, errs atomic.Int64
	lat := make([][]time.Duration, cfg.PipeConns)
	var example atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < cfg.PipeConns; i++ {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return Figures{}, fmt.Errorf("bench dispatch: dial %s: %w", addr, err)
		}
		wg.Add(1)
		go func(i int, c net.Conn) {
			defer wg.Done()
			defer c.Close()
			stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
			defer stop()
			sent := make(chan time.Time, cfg.Window)
			var wwg sync.WaitGroup
			wwg.Add(1)
			go func() {
				defer wwg.Done()
				defer close(sent)
				// Write in batches of up to 32 requests, never more than
				// Window outstanding (sent's capacity bounds it).
				batch := bytes.Repeat([]byte("get\n"), 32)
				for ctx.Err() == nil {
					k := 0
					now := time.Now()
					for k < 32 {
						select {
						case sent <- now:
							k++
							continue
						default:
						}
						if k > 0 {
							break
						}
						select {
						case sent <- now:
							k++
						case <-ctx.Done():
							return
						}
					}
					if _, err := c.Write(batch[:4*k]); err != nil {
						return
					}
				}
			}()
			r := bufio.NewReaderSize(c, 16<<10)
			for t0 := range sent {
				line, err := r.ReadSlice('\n')
				if err != nil {
					break
				}
				if bytes.HasPrefix(line, []byte("err|")) {
					errs.Add(1)
					continue
				}
				if example.Load() == nil {
					example.Store(string(bytes.TrimSpace(line)))
				}
				reqs.Add(1)
				if len(lat[i]) < 2_000_000 {
					lat[i] = append(lat[i], time.Since(t0))
				}
			}
			_ = c.SetDeadline(time.Now())
			for range sent {
			}
			wwg.Wait()
		}(i, c)
	}
	wg.Wait()
	return figures(reqs.Load(), errs.Load(), time.Since(start), lat, example), nil
}

func figures(reqs, errs int64, took time.Duration, lat [][]time.Duration, example atomic.Value) Figures {
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	q := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[int(p*float64(len(all)-1))].Nanoseconds()) / 1e3
	}
	f := Figures{Requests: reqs, Errors: errs, RequestsPerS: float64(reqs) / took.Seconds(),
		P50us: q(0.50), P99us: q(0.99), DurationS: took.Seconds()}
	if s, ok := example.Load().(string); ok {
		f.ExampleAnswer = s
	}
	return f
}
