package matchfn

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/matchmaking"
)

// build compiles a plugin binary for the test.
func build(t testing.TB, pkg string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// harness runs a matchmaker whose rooms are recorded.
type harness struct {
	m     *matchmaking.Matchmaker
	reg   *prometheus.Registry
	mu    sync.Mutex
	rooms []matchmaking.FormedRoom
}

type nobody struct{}

func (nobody) Notify(string, any) {}

func newHarness(t *testing.T, profiles string, fns map[string]matchmaking.Function) *harness {
	t.Helper()
	h := &harness{reg: prometheus.NewRegistry()}
	ps, err := matchmaking.ParseProfiles([]byte(profiles), keys(fns))
	if err != nil {
		t.Fatal(err)
	}
	place := func(_ context.Context, fr matchmaking.FormedRoom) (map[string]matchmaking.MatchMsg, error) {
		h.mu.Lock()
		h.rooms = append(h.rooms, fr)
		h.mu.Unlock()
		out := map[string]matchmaking.MatchMsg{}
		for _, p := range fr.Players {
			out[p.UUID] = matchmaking.MatchMsg{Type: "match", Room: "r-" + fr.Players[0].UUID}
		}
		return out, nil
	}
	h.m, err = matchmaking.NewMatchmaker(matchmaking.Config{Profiles: ps, Functions: fns, Tick: 20 * time.Millisecond,
		FunctionTimeout: 500 * time.Millisecond}, nobody{}, place, quiet())
	if err != nil {
		t.Fatal(err)
	}
	h.m.RegisterMetrics(h.reg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return h
}

func keys(m map[string]matchmaking.Function) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func (h *harness) enqueue(t *testing.T, profile, id string, rating int, region string) {
	t.Helper()
	_, err := h.m.Enqueue(context.Background(), matchmaking.Enqueue{Player: matchmaking.Player{UUID: id, Score: rating},
		Profile: profile, Source: matchmaking.SourceBackend,
		Search: matchmaking.SearchFields{Strings: map[string]string{"region": region}}})
	if err != nil {
		t.Fatal(err)
	}
}

func (h *harness) roomsOf(profile string) [][]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out [][]string
	for _, fr := range h.rooms {
		if fr.Profile != profile {
			continue
		}
		var ids []string
		for _, tm := range fr.Teams {
			ids = append(ids, strings.Join(tm.Players, "+"))
		}
		out = append(out, ids)
	}
	return out
}

func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// The example function (examples/matchfn: 2 vs 2 by region and rating)
// runs as a plugin binary and forms rooms through the matchmaker.
func TestExamplePlugin(t *testing.T) {
	bin := build(t, "github.com/arena-game/arena/examples/matchfn")
	p := NewPlugin("duo", bin, NewMetrics(nil), quiet())
	t.Cleanup(p.Close)
	profiles := `profiles:
  - name: duo
    function: duo
    rosters: [{name: red, size: 2}, {name: blue, size: 2}]
    params: {plugin: {max_spread: 200}}`
	h := newHarness(t, profiles, map[string]matchmaking.Function{"duo": p})
	for i, r := range []int{1000, 1100, 1150, 1190} {
		h.enqueue(t, "duo", fmt.Sprintf("e%d", i), r, "eu")
	}
	h.enqueue(t, "duo", "u0", 1000, "us")
	waitfor.Cond(t, "a 2-vs-2 room", func() bool { return len(h.roomsOf("duo")) == 1 })
	if got := fmt.Sprint(h.roomsOf("duo")[0]); got != "[e0+e3 e1+e2]" {
		t.Fatalf("room %s", got)
	}
	if st := h.m.Status(context.Background(), "u0"); st.State != matchmaking.StateQueued {
		t.Fatalf("the us player: %+v", st)
	}
}

// A plugin that crashes, hangs past its deadline or answers a ticket
// twice loses the tick for its profile only, is restarted and counted;
// the other profile keeps matching, and the plugin matches again once it
// behaves.
func TestMisbehavingPluginIsSupervised(t *testing.T) {
	bin := build(t, "github.com/arena-game/arena/matchmaking/matchfn/testdata/badfn")
	metrics := NewMetrics(nil)
	p := NewPlugin("bad", bin, metrics, quiet())
	t.Cleanup(p.Close)
	profiles := func(mode string) string {
		return `profiles:
  - {name: bad, function: bad, rosters: [{name: a, size: 1}, {name: b, size: 1}], params: {plugin: {mode: ` + mode + `}}}
  - {name: good, rosters: [{name: a, size: 1}, {name: b, size: 1}]}`
	}
	h := newHarness(t, profiles("crash"), map[string]matchmaking.Function{"bad": p})
	reload := func(mode string) {
		ps, err := matchmaking.ParseProfiles([]byte(profiles(mode)), []string{"bad"})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.m.Reload(context.Background(), ps); err != nil {
			t.Fatal(err)
		}
	}
	h.enqueue(t, "bad", "b1", 1500, "eu")
	h.enqueue(t, "bad", "b2", 1500, "eu")
	fails := func(reason string) float64 {
		return valueOf(metrics.Failures.WithLabelValues("bad", reason))
	}
	for i, mode := range []struct{ mode, reason string }{{"crash", FailCrash}, {"hang", FailDeadline}} {
		if i > 0 {
			reload(mode.mode)
		}
		waitfor.Cond(t, mode.mode+" counted", func() bool { return fails(mode.reason) >= 1 })
		// The other profile keeps matching meanwhile.
		a, b := fmt.Sprintf("g%da", i), fmt.Sprintf("g%db", i)
		h.enqueue(t, "good", a, 1500, "eu")
		h.enqueue(t, "good", b, 1500, "eu")
		waitfor.Cond(t, "the good profile matches", func() bool { return len(h.roomsOf("good")) == i+1 })
		if len(h.roomsOf("bad")) != 0 {
			t.Fatalf("%s: a room from a failed call", mode.mode)
		}
	}
	reload("twice")
	waitfor.Cond(t, "a ticket twice rejected", func() bool {
		return counter(t, h.reg, "arena_mm_function_rejected_total", map[string]string{"profile": "bad", "reason": matchmaking.RejectDuplicate}) >= 1
	})
	if len(h.roomsOf("bad")) != 0 {
		t.Fatal("a room from an answer with a ticket twice")
	}
	reload("ok")
	waitfor.Cond(t, "the restarted plugin matches", func() bool { return len(h.roomsOf("bad")) == 1 })
	got := h.roomsOf("bad")[0]
	sort.Strings(got)
	if fmt.Sprint(got) != "[b1 b2]" {
		t.Fatalf("room %v", got)
	}
	if valueOf(metrics.Restarts.WithLabelValues("bad")) < 2 {
		t.Fatalf("restarts %v, want at least 2 (crash, hang)", valueOf(metrics.Restarts.WithLabelValues("bad")))
	}
}

func valueOf(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}

// A plugin that takes longer to start than a call may last (a wrapper
// that sleeps, an interpreter that loads slowly, any start on a loaded
// machine) is kept: its first call fails the deadline the start used up,
// the next one is answered. It was killed for that first call and started
// again on the next, forever, and never formed a room.
func TestSlowStartingPluginIsKept(t *testing.T) {
	bin := build(t, "github.com/arena-game/arena/examples/matchfn")
	// The start lasts at least 1 s; the harness's calls may last 500 ms.
	wrapper := filepath.Join(t.TempDir(), "slow-duo")
	if err := os.WriteFile(wrapper, []byte("#!/bin/sh\nsleep 1\nexec "+bin+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	metrics := NewMetrics(nil)
	p := NewPlugin("duo", wrapper, metrics, quiet())
	t.Cleanup(p.Close)
	profiles := `profiles:
  - name: duo
    function: duo
    rosters: [{name: red, size: 2}, {name: blue, size: 2}]
    params: {plugin: {max_spread: 200}}`
	h := newHarness(t, profiles, map[string]matchmaking.Function{"duo": p})
	for i, r := range []int{1000, 1100, 1150, 1190} {
		h.enqueue(t, "duo", fmt.Sprintf("s%d", i), r, "eu")
	}
	waitfor.Cond(t, "a 2-vs-2 room from the slow-starting plugin", func() bool { return len(h.roomsOf("duo")) == 1 })
	if n := valueOf(metrics.Restarts.WithLabelValues("duo")); n != 0 {
		t.Fatalf("%v restarts of a plugin that only started slowly", n)
	}
}
