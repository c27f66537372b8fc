package fleet

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/arena-game/arena/hostctl"
	"github.com/arena-game/arena/proc"
	"github.com/arena-game/arena/proto/hostpb"
)

// fakeSession is a host session with no stream behind it: commands the
// fleet posts to it pile up in its queue (or are dropped when it is full).
func fakeSession(f *Fleet, name string) *session {
	ctx, cancel := context.WithCancelCause(context.Background())
	return &session{f: f, name: name, instance: name, ctx: ctx, cancel: cancel,
		out: make(chan *hostpb.DispatcherMessage, outQueue), limiter: rate.NewLimiter(rate.Inf, 1),
		pending: map[uint64]chan *hostpb.CommandResult{}, spawns: map[string]int{}}
}

// checkIndexLocked compares the ready heaps with a full scan of the
// table: the same least-loaded process per kind, exactly the processes
// that can take work in each heap, and the heap order kept.
func checkIndexLocked(t *testing.T, f *Fleet, step int, op string) {
	t.Helper()
	for _, kind := range []string{proc.KindFight, proc.KindMap} {
		if got, want := f.leastLoaded(kind, nil), f.scanLeastLoaded(kind, func(*Proc) bool { return true }); got != want {
			t.Fatalf("step %d (%s), kind %s: the index picks %s, a scan %s", step, op, kind, keyOf(got), keyOf(want))
		}
		eligible := 0
		for _, p := range f.byKind[kind] {
			if f.eligibleLocked(p) {
				eligible++
				if p.heapPos == 0 {
					t.Fatalf("step %d (%s): %s can take work but is not indexed", step, op, p.Key())
				}
			}
		}
		var h readyHeap
		if f.ready[kind] != nil {
			h = *f.ready[kind]
		}
		if len(h) != eligible {
			t.Fatalf("step %d (%s), kind %s: %d indexed, %d can take work", step, op, kind, len(h), eligible)
		}
		for i, p := range h {
			if p.heapPos != i+1 {
				t.Fatalf("step %d (%s): %s is at %d but says %d", step, op, p.Key(), i+1, p.heapPos)
			}
			if i > 0 && less(p, h[(i-1)/2]) {
				t.Fatalf("step %d (%s): heap order broken at %d", step, op, i)
			}
		}
	}
}

func keyOf(p *Proc) string {
	if p == nil {
		return "nothing"
	}
	return fmt.Sprintf("%s (load %d+%d, maps %d)", p.Key(), p.Load, p.Pending, len(p.Maps))
}

// TestReadyIndexMatchesScan drives a fleet of three hosts through random
// load changes, reservations, map counts, process states, drains, host
// leases, reconnections and MAXNUM changes through the fleet's own
// methods, and after every step compares the ready index with a full scan
// of the table (placement must not change with the index).
func TestReadyIndexMatchesScan(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) { runIndexProperty(t, seed, 3000) })
	}
}

func runIndexProperty(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, seed*7919))
	f := New(Config{MaxNum: 8, Lease: time.Minute, Grace: time.Minute, LocalAddrs: []string{"10.0.0.2"}},
		slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	names := []string{"host-a", "host-b", "host-c"}
	const fightBase, mapBase, span = 7000, 7500, 12
	sessions := map[string]*session{}
	register := func(name string) {
		s := fakeSession(f, name)
		reg := &hostpb.Register{Name: name, Instance: name, Advertise: "10.0.0." + strconv.Itoa(int(name[len(name)-1]-'a')+1),
			Draining: rng.IntN(10) == 0,
			Kinds: []*hostpb.KindCapacity{{Kind: proc.KindFight, FirstPort: fightBase, LastPort: fightBase + span - 1, MaxProcesses: span},
				{Kind: proc.KindMap, FirstPort: mapBase, LastPort: mapBase + span - 1, MaxProcesses: span}}}
		f.mu.Lock()
		for _, p := range f.procs {
			if p.Host == name && rng.IntN(4) > 0 { // a restarted host may have lost some
				reg.Processes = append(reg.Processes, &hostpb.ProcessInfo{Kind: p.Kind, Port: int32(p.Port),
					State: hostpb.ProcessState_PROCESS_STATE_READY, Load: int32(p.reported)})
			}
		}
		f.mu.Unlock()
		if err := f.attach(s, reg, 0); err != nil {
			t.Fatalf("attach %s: %v", name, err)
		}
		sessions[name] = s
	}
	for _, n := range names {
		register(n)
	}
	type reservation struct {
		p    *Proc
		unit string
	}
	var reserved []reservation
	ctx := context.Background()
	states := []hostpb.ProcessState{hostpb.ProcessState_PROCESS_STATE_READY, hostpb.ProcessState_PROCESS_STATE_READY,
		hostpb.ProcessState_PROCESS_STATE_READY, hostpb.ProcessState_PROCESS_STATE_STARTING,
		hostpb.ProcessState_PROCESS_STATE_DRAINING, hostpb.ProcessState_PROCESS_STATE_GONE}
	for step := 0; step < steps; step++ {
		name := names[rng.IntN(len(names))]
		kind, base := proc.KindFight, fightBase
		if rng.IntN(3) == 0 {
			kind, base = proc.KindMap, mapBase
		}
		port := base + rng.IntN(span)
		var op string
		switch r := rng.IntN(100); {
		case r < 30:
			op = "process snapshot"
			info := &hostpb.ProcessInfo{Kind: kind, Port: int32(port), Pid: int32(1000 + port),
				State: states[rng.IntN(len(states))], Load: int32(rng.IntN(11))}
			if kind == proc.KindMap {
				info.Maps = map[string]int32{}
				for m := rng.IntN(4); m > 0; m-- {
					info.Maps["m"+strconv.Itoa(rng.IntN(6))] = int32(rng.IntN(5))
				}
			}
			f.applyProcess(sessions[name], info, true)
		case r < 60:
			op = "line add/del"
			delta := 1
			if rng.IntN(2) == 0 {
				delta = -1
			}
			unit := ""
			if rng.IntN(2) == 0 {
				unit = "m" + strconv.Itoa(rng.IntN(6))
			}
			host := name
			switch rng.IntN(3) {
			case 0:
				host = ""
			case 1:
				host = "10.0.0." + strconv.Itoa(rng.IntN(3)+1)
			}
			_, _ = f.Adjust(host, port, delta, unit)
		case r < 70:
			op = "reserve"
			if _, ok := f.Pick(kind); ok {
				unit := "u" + strconv.Itoa(step)
				p, _, err := f.reserve(ctx, kind, nil, unit)
				if err != nil {
					t.Fatalf("step %d: reserve with a process free: %v", step, err)
				}
				reserved = append(reserved, reservation{p, unit})
			}
		case r < 80:
			op = "release"
			if len(reserved) > 0 {
				i := rng.IntN(len(reserved))
				f.mu.Lock()
				f.releaseLocked(reserved[i].p, reserved[i].unit)
				f.mu.Unlock()
				reserved = append(reserved[:i], reserved[i+1:]...)
			}
		case r < 84:
			op = "drain process"
			_ = f.Drain(Key{name, port}, time.Minute)
		case r < 86:
			op = "drain host"
			_ = f.DrainHost(name, time.Minute)
		case r < 89:
			op = "host lease"
			f.checkHosts(time.Now().Add(f.cfg.Lease + time.Second))
		case r < 92:
			op = "host heard from"
			f.seen(sessions[name])
		case r < 94:
			op = "stream closed"
			f.detach(sessions[name])
		case r < 97:
			op = "reconnect"
			register(name)
		default:
			op = "maxnum"
			f.SetMaxNum(1 + rng.IntN(12))
		}
		f.mu.Lock()
		checkIndexLocked(t, f, step, op)
		f.mu.Unlock()
	}
	if len(f.procs) == 0 {
		t.Fatal("the random walk left no process: it tested nothing")
	}
}

// TestIndexFollowsGone: a process that leaves the table leaves the index,
// and the next pick is the next least loaded.
func TestIndexFollowsGone(t *testing.T) {
	f := New(Config{MaxNum: 8, Lease: time.Minute, Grace: time.Minute}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	s := fakeSession(f, "h")
	reg := &hostpb.Register{Name: "h", Instance: "h", Advertise: "10.0.0.1",
		Kinds: []*hostpb.KindCapacity{{Kind: proc.KindFight, FirstPort: 7000, LastPort: 7009, MaxProcesses: 10}},
		Processes: []*hostpb.ProcessInfo{
			{Kind: proc.KindFight, Port: 7000, State: hostpb.ProcessState_PROCESS_STATE_READY, Load: 1},
			{Kind: proc.KindFight, Port: 7001, State: hostpb.ProcessState_PROCESS_STATE_READY, Load: 3}}}
	if err := f.attach(s, reg, 0); err != nil {
		t.Fatal(err)
	}
	if pl, ok := f.Pick(proc.KindFight); !ok || pl.Port != 7000 {
		t.Fatalf("pick = %+v %v, want port 7000", pl, ok)
	}
	f.applyProcess(s, &hostpb.ProcessInfo{Kind: proc.KindFight, Port: 7000, State: hostpb.ProcessState_PROCESS_STATE_GONE}, false)
	if pl, ok := f.Pick(proc.KindFight); !ok || pl.Port != 7001 {
		t.Fatalf("after 7000 left: pick = %+v %v, want port 7001", pl, ok)
	}
	f.mu.Lock()
	n := len(*f.ready[proc.KindFight])
	state := f.procs[Key{"h", 7001}].State
	f.mu.Unlock()
	if n != 1 || state != hostctl.Ready {
		t.Fatalf("index holds %d processes, 7001 is %v; want 1, ready", n, state)
	}
}
