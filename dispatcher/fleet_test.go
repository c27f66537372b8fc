package dispatcher

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/proc"
)

func runFleet(t *testing.T, f *Fleet) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = f.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitfor.Cond(t, "a ready process", func() bool { s := f.Snapshot(); return len(s) >= 1 && s[0].State == StateReady })
}

func TestGetLeastLoadedAndSpawnWhenFull(t *testing.T) {
	sp := &fakeSpawner{}
	f := newTestFleet(sp, 2, 1)
	runFleet(t, f)
	ctx := context.Background()
	if port, err := f.Get(ctx, proc.KindFight); err != nil || port != 7000 {
		t.Fatalf("get = %d, %v; want 7000", port, err)
	}
	for i := 0; i < 2; i++ {
		if _, err := f.Adjust(7000, 1, ""); err != nil {
			t.Fatal(err)
		}
	}
	if port, err := f.Get(ctx, proc.KindFight); err != nil || port != 7001 {
		t.Fatalf("get on a full fleet = %d, %v; want a new process on 7001", port, err)
	}
	// Least loaded wins; ties go to the lower port.
	if _, err := f.Adjust(7000, -1, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Adjust(7001, 1, ""); err != nil {
		t.Fatal(err)
	}
	if port, _ := f.Get(ctx, proc.KindFight); port != 7000 {
		t.Fatalf("get = %d, want 7000 (tie, lower port)", port)
	}
	if _, err := f.Adjust(7001, -1, ""); err != nil {
		t.Fatal(err)
	}
	if port, _ := f.Get(ctx, proc.KindFight); port != 7001 {
		t.Fatalf("get = %d, want 7001 (least loaded)", port)
	}
}

func TestLoadNeverBelowZeroAndUnknownPort(t *testing.T) {
	sp := &fakeSpawner{}
	f := newTestFleet(sp, 2, 1)
	runFleet(t, f)
	if load, err := f.Adjust(7000, -1, ""); err != nil || load != 0 {
		t.Fatalf("del on idle = %d, %v", load, err)
	}
	if _, err := f.Adjust(7999, 1, ""); !errors.Is(err, ErrUnknownPort) {
		t.Fatalf("add on unknown port: %v", err)
	}
}

func TestConcurrentGetsShareOneSpawn(t *testing.T) {
	sp := &fakeSpawner{}
	f := newTestFleet(sp, 1, 1)
	runFleet(t, f)
	if _, err := f.Adjust(7000, 1, ""); err != nil {
		t.Fatal(err)
	}
	// The next spawn waits until all 100 gets are waiting for it.
	sp.gate = make(chan struct{})
	var waiting atomic.Int32
	var wg sync.WaitGroup
	ports := make([]int, 100)
	for i := range ports {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			waiting.Add(1)
			ports[i], _ = f.Get(context.Background(), proc.KindFight)
		}(i)
	}
	waitfor.Cond(t, "100 gets waiting and the spawn started", func() bool { return waiting.Load() == 100 && sp.spawned.Load() == 2 })
	close(sp.gate)
	wg.Wait()
	for _, p := range ports {
		if p != 7001 {
			t.Fatalf("got port %d, want every get to get the one new process 7001", p)
		}
	}
	if n := sp.spawned.Load(); n != 2 {
		t.Fatalf("%d spawns, want 2 (the minimum and one shared)", n)
	}
}

func TestSpawnSkipsTakenPort(t *testing.T) {
	sp := &fakeSpawner{taken: map[int]bool{7000: true, 7001: true}}
	f := newTestFleet(sp, 1, 1)
	runFleet(t, f)
	if port, err := f.Get(context.Background(), proc.KindFight); err != nil || port != 7002 {
		t.Fatalf("get = %d, %v; want 7002 after two taken ports", port, err)
	}
}

func TestDeadProcessLeavesTableAndIsReplaced(t *testing.T) {
	sp := &fakeSpawner{}
	f := newTestFleet(sp, 5, 1)
	events, cancel := f.Subscribe()
	defer cancel()
	runFleet(t, f)
	if _, err := f.Adjust(7000, 1, "room1"); err != nil {
		t.Fatal(err)
	}
	sp.proc(0).exited.Store(true)
	var exit FleetEvent
	for ev := range events {
		if ev.Type == "exit" {
			exit = ev
			break
		}
	}
	if exit.Port != 7000 || len(exit.Units) != 1 || exit.Units[0] != "room1" {
		t.Fatalf("exit event %+v; want port 7000 with its room", exit)
	}
	waitfor.Cond(t, "a ready replacement on another port", func() bool {
		s := f.Snapshot()
		return len(s) == 1 && s[0].Port != 7000 && s[0].State == StateReady
	})
	if port, _ := f.Get(context.Background(), proc.KindFight); port == 7000 {
		t.Fatal("a dead process's port was answered")
	}
}

func TestIdleProcessesAboveMinimumAreStopped(t *testing.T) {
	sp := &fakeSpawner{}
	f := newTestFleet(sp, 1, 1)
	f.cfg.IdleTimeout = 10 * time.Millisecond
	runFleet(t, f)
	_, _ = f.Adjust(7000, 1, "")
	if port, _ := f.Get(context.Background(), proc.KindFight); port != 7001 {
		t.Fatalf("want a second process")
	}
	// 7001 is idle; 7000 is busy. Within a few status periods 7001 goes.
	waitfor.Cond(t, "the idle process stopped", func() bool { s := f.Snapshot(); return len(s) == 1 && s[0].Port == 7000 })
}

func TestSetMaxNum(t *testing.T) {
	sp := &fakeSpawner{}
	f := newTestFleet(sp, 1, 1)
	runFleet(t, f)
	_, _ = f.Adjust(7000, 1, "")
	f.SetMaxNum(3)
	if port, _ := f.Get(context.Background(), proc.KindFight); port != 7000 {
		t.Fatalf("after raising MAXNUM the first process has room; got %d", port)
	}
	if n := sp.spawned.Load(); n != 1 {
		t.Fatalf("%d spawns, want 1", n)
	}
}

func TestAssignRoomReservesSlots(t *testing.T) {
	sp := &fakeSpawner{}
	f := newTestFleet(sp, 2, 1)
	runFleet(t, f)
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if _, err := f.AssignRoom(context.Background(), proc.Room{ID: string(rune('a' + i))}); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	for _, p := range f.Snapshot() {
		if p.Load > 2 {
			t.Fatalf("process %d has load %d over MAXNUM 2", p.Port, p.Load)
		}
	}
	if n := len(f.Snapshot()); n != 3 {
		t.Fatalf("%d processes for 6 rooms at MAXNUM 2, want 3", n)
	}
}

func TestPlaceMap(t *testing.T) {
	sp := &fakeSpawner{}
	f := newTestFleet(sp, 2, 1)
	runFleet(t, f)
	ctx := context.Background()
	port, err := f.PlaceMap(ctx, "town")
	if err != nil || port != 7500 {
		t.Fatalf("place town = %d, %v", port, err)
	}
	if again, _ := f.PlaceMap(ctx, "town"); again != port {
		t.Fatalf("second place = %d, want the same instance %d", again, port)
	}
	sp.proc(1).setPlayers("town", 2) // the process after the fight minimum
	waitfor.Cond(t, "town full in the table", func() bool { return f.Snapshot()[1].Maps["town"] == 2 })
	port2, err := f.PlaceMap(ctx, "town")
	if err != nil || port2 != 7501 {
		t.Fatalf("full instance: got %d, %v; want a new instance on 7501", port2, err)
	}
	if _, err := f.PlaceMap(ctx, "nowhere"); !errors.Is(err, proc.ErrUnknownMap) {
		t.Fatalf("unknown map: %v", err)
	}
}

// TestLoadFromAnswersAndEvents: the load comes from the process, once:
// AssignRoom's answer, then the room's end on Watch, which also reaches
// OnUnitDone; nobody reports over the line protocol.
func TestLoadFromAnswersAndEvents(t *testing.T) {
	sp := &fakeSpawner{}
	f := newTestFleet(sp, 5, 1)
	ended := make(chan string, 4)
	f.cfg.OnUnitDone = func(_ string, _ int, room string) { ended <- room }
	runFleet(t, f)
	ctx := context.Background()
	for _, id := range []string{"r1", "r2"} {
		if _, err := f.AssignRoom(ctx, proc.Room{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	if p := f.Snapshot()[0]; p.Load != 2 || p.Units != 2 {
		t.Fatalf("after two assignments: %+v", p)
	}
	sp.proc(0).endRoom("r1")
	if got := <-ended; got != "r1" {
		t.Fatalf("ended %q", got)
	}
	waitfor.Cond(t, "the table to agree", func() bool { p := f.Snapshot()[0]; return p.Load == 1 && p.Units == 1 })
}

// TestLostEventIsCorrectedByStatus drops the process's events: the Status
// poll still brings the load right and ends the room.
func TestLostEventIsCorrectedByStatus(t *testing.T) {
	sp := &fakeSpawner{}
	f := newTestFleet(sp, 5, 1)
	ended := make(chan string, 4)
	f.cfg.OnUnitDone = func(_ string, _ int, room string) { ended <- room }
	runFleet(t, f)
	if _, err := f.AssignRoom(context.Background(), proc.Room{ID: "r1"}); err != nil {
		t.Fatal(err)
	}
	p := sp.proc(0)
	p.mu.Lock()
	p.quiet = true
	p.mu.Unlock()
	p.endRoom("r1") // its RoomEnded is lost
	if got := <-ended; got != "r1" {
		t.Fatalf("ended %q", got)
	}
	waitfor.Cond(t, "the table to agree", func() bool { r := f.Snapshot()[0]; return r.Load == 0 && r.Units == 0 })
	if n := testutilCount(f.metrics.Corrections.WithLabelValues(proc.KindFight)); n < 1 {
		t.Fatalf("corrections counted %v", n)
	}
	// Map players likewise.
	port, err := f.PlaceMap(context.Background(), "town")
	if err != nil {
		t.Fatal(err)
	}
	mp := sp.proc(1)
	mp.mu.Lock()
	mp.quiet = true
	mp.mu.Unlock()
	mp.setPlayers("town", 3)
	waitfor.Cond(t, "the table to agree", func() bool {
		for _, r := range f.Snapshot() {
			if r.Port == port {
				return r.Load == 3 && r.Maps["town"] == 3
			}
		}
		return false
	})
}

// TestLineAdjustmentsSurviveStatus: a seed-style add on the line protocol
// adds to what the process reports and is not undone by the Status poll.
func TestLineAdjustmentsSurviveStatus(t *testing.T) {
	sp := &fakeSpawner{}
	f := newTestFleet(sp, 5, 1)
	runFleet(t, f)
	if _, err := f.Adjust(7000, 1, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.AssignRoom(context.Background(), proc.Room{ID: "r1"}); err != nil {
		t.Fatal(err)
	}
	v := f.Version()
	waitfor.Cond(t, "the table to agree", func() bool { return f.Version() > v+5 }) // several polls
	if p := f.Snapshot()[0]; p.Load != 2 {
		t.Fatalf("load %d, want 1 reported + 1 added", p.Load)
	}
}

func testutilCount(c interface{ Write(*dto.Metric) error }) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}
