package matchfn

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/arena-game/arena/examples/matchfn/duo"
	"github.com/arena-game/arena/matchmaking"
)

// benchRequest is one tick's request of the example's profile over n
// candidates (regions eu/us/asia, ratings Normal(1500, 300)).
func benchRequest(b testing.TB, n int) *matchmaking.MatchRequest {
	req, _ := benchQueue(b, n, 0)
	return req
}

// benchQueue is a request of the example's profile over n candidates and
// next, which moves it on by step candidates (the step oldest leave,
// step new arrive) round a ring of n + 64*step candidates (regions
// eu/us/asia, ratings Normal(1500, 300)).
func benchQueue(b testing.TB, n, step int) (req *matchmaking.MatchRequest, next func()) {
	ps, err := matchmaking.LoadProfiles("../../examples/matchfn/profiles.yaml", []string{"duo"})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	// One set per region, shared by its candidates, as the matchmaker
	// gives tickets with equal search fields one set.
	regions := []*matchmaking.SearchFields{
		{Strings: map[string]string{"region": "eu"}}, {Strings: map[string]string{"region": "us"}}, {Strings: map[string]string{"region": "asia"}},
	}
	ring := make([]matchmaking.Candidate, n+64*step)
	for i := range ring {
		ring[i] = matchmaking.Candidate{ID: fmt.Sprintf("c%06d", i), Rating: 1500 + int(rng.NormFloat64()*300), Members: 1,
			Created: time.Unix(0, int64(i)), Search: regions[i%3]}
	}
	pool := make([]matchmaking.Candidate, n)
	from := 0
	fill := func() {
		for i := range pool {
			pool[i] = ring[(from+i)%len(ring)]
		}
	}
	fill()
	req = &matchmaking.MatchRequest{Profile: &ps.Profiles[0], Pools: [][]matchmaking.Candidate{pool}, Now: time.Unix(10, 0)}
	return req, func() { from += step; fill() }
}

// The example function (2 vs 2 by region and rating) on 10,000
// candidates, built in (called in process) and as a plugin binary, one
// call of each after the other in one loop so that the machine's load
// weighs on both alike: the difference is the plugin call's overhead
// (encode, RPC, decode), reported as overhead-ms/op.
//
//   - all-new: every call sends every candidate (the plugin's first call,
//     or after it restarted);
//   - tenth-new: each call 1,000 candidates left and 1,000 new arrived
//     since the last (a queue in steady state): those travel in full,
//     the others as their slot;
//   - encode-decode: all-new's conversions alone, without the RPC.
func BenchmarkFunction10k(b *testing.B) {
	bin := build(b, "github.com/arena-game/arena/examples/matchfn")
	side := func(b *testing.B, fresh bool, step int) {
		req, next := benchQueue(b, 10_000, step)
		m := NewMetrics(nil)
		p := NewPlugin("duo", bin, m, quiet())
		defer p.Close()
		if _, err := p.Match(context.Background(), req); err != nil { // start it
			b.Fatal(err)
		}
		hist := func() *dto.Histogram {
			var h dto.Metric
			_ = m.Overhead.WithLabelValues("duo").(prometheus.Histogram).Write(&h)
			return h.GetHistogram()
		}
		before := hist().GetSampleSum()
		p.mu.Lock()
		pid := p.client.ReattachConfig().Pid
		p.mu.Unlock()
		var builtin, plugin, builtinCPU, pluginCPU time.Duration
		for b.Loop() {
			next()
			if fresh {
				p.mu.Lock()
				clear(p.sessions)
				p.mu.Unlock()
			}
			start, c0 := time.Now(), selfCPU()
			if _, err := duo.TwoVsTwo(context.Background(), req); err != nil {
				b.Fatal(err)
			}
			mid, c1, pc1 := time.Now(), selfCPU(), procCPU(b, pid)
			if _, err := p.Match(context.Background(), req); err != nil {
				b.Fatal(err)
			}
			builtin, plugin = builtin+mid.Sub(start), plugin+time.Since(mid)
			builtinCPU, pluginCPU = builtinCPU+c1-c0, pluginCPU+selfCPU()-c1+procCPU(b, pid)-pc1
		}
		n := float64(b.N) * float64(time.Millisecond)
		b.ReportMetric(float64(builtin)/n, "builtin-ms/op")
		b.ReportMetric(float64(plugin)/n, "plugin-ms/op")
		// The call's own overhead: its time less the function's time in
		// the plugin (arena_mm_function_overhead_seconds).
		b.ReportMetric((hist().GetSampleSum()-before)*1000/float64(b.N), "overhead-ms/op")
		// And the plugin's time less the built-in's: the overhead plus
		// whatever the function loses to running in another process.
		b.ReportMetric(float64(plugin-builtin)/n, "plugin-minus-builtin-ms/op")
		// CPU time, which the machine's load does not inflate: the call's
		// (both processes, the plugin's to the kernel's 10 ms tick) less
		// the built-in's.
		b.ReportMetric(float64(pluginCPU-builtinCPU)/n, "overhead-cpu-ms/op")
	}
	b.Run("all-new", func(b *testing.B) { side(b, true, 0) })
	b.Run("tenth-new", func(b *testing.B) { side(b, false, 1_000) })
	// The conversions alone, both sides, without the RPC.
	conv := func(b *testing.B, fresh bool, step int) {
		req, next := benchQueue(b, 10_000, step)
		props, _ := duo.TwoVsTwo(context.Background(), req)
		s, ts := newSession(), &tables{}
		for b.Loop() {
			next()
			if fresh {
				s = newSession()
			}
			_, t, err := ts.decode(s.encode(req))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.decode(t.encodeResponse(props)); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("convert-all-new", func(b *testing.B) { conv(b, true, 0) })
	b.Run("convert-tenth-new", func(b *testing.B) { conv(b, false, 1_000) })
}

// selfCPU is this process's user + system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is process pid's user + system CPU time (/proc/PID/stat).
func procCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command's closing parenthesis: utime and stime are
	// the 12th and 13th, in clock ticks (100 a second on Linux).
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}
