package dispatcher

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/fleet"
	"github.com/arena-game/arena/internal/waitfor"
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
	if port, err := f.Get(ctx, fleet.KindFight); err != nil || port != 7000 {
		t.Fatalf("get = %d, %v; want 7000", port, err)
	}
	for i := 0; i < 2; i++ {
		if _, err := f.Adjust(7000, 1, ""); err != nil {
			t.Fatal(err)
		}
	}
	if port, err := f.Get(ctx, fleet.KindFight); err != nil || port != 7001 {
		t.Fatalf("get on a full fleet = %d, %v; want a new process on 7001", port, err)
	}
	// Least loaded wins; ties go to the lower port.
	if _, err := f.Adjust(7000, -1, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Adjust(7001, 1, ""); err != nil {
		t.Fatal(err)
	}
	if port, _ := f.Get(ctx, fleet.KindFight); port != 7000 {
		t.Fatalf("get = %d, want 7000 (tie, lower port)", port)
	}
	if _, err := f.Adjust(7001, -1, ""); err != nil {
		t.Fatal(err)
	}
	if port, _ := f.Get(ctx, fleet.KindFight); port != 7001 {
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
			ports[i], _ = f.Get(context.Background(), fleet.KindFight)
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
	if port, err := f.Get(context.Background(), fleet.KindFight); err != nil || port != 7002 {
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
	sp.procs[0].exited.Store(true)
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
	if port, _ := f.Get(context.Background(), fleet.KindFight); port == 7000 {
		t.Fatal("a dead process's port was answered")
	}
}

func TestIdleProcessesAboveMinimumAreStopped(t *testing.T) {
	sp := &fakeSpawner{}
	f := newTestFleet(sp, 1, 1)
	f.cfg.IdleTimeout = 10 * time.Millisecond
	runFleet(t, f)
	_, _ = f.Adjust(7000, 1, "")
	if port, _ := f.Get(context.Background(), fleet.KindFight); port != 7001 {
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
	if port, _ := f.Get(context.Background(), fleet.KindFight); port != 7000 {
		t.Fatalf("after raising MAXNUM the first process has room; got %d", port)
	}
	if n := sp.spawned.Load(); n != 1 {
		t.Fatalf("%d spawns, want 1", n)
	}
}

func TestAssignRoomReservesSlots(t *testing.T) {
	sp := &fakeSpawner{}
	f := newTestFleet(sp, 2, 1)
	sp.onRoom = func(p *fakeProc, r fleet.Room) { _, _ = f.Adjust(p.port, 1, r.ID) }
	runFleet(t, f)
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if _, err := f.AssignRoom(context.Background(), fleet.Room{ID: string(rune('a' + i))}); err != nil {
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
	_, _ = f.Adjust(7500, 1, "town")
	_, _ = f.Adjust(7500, 1, "town")
	port2, err := f.PlaceMap(ctx, "town")
	if err != nil || port2 != 7501 {
		t.Fatalf("full instance: got %d, %v; want a new instance on 7501", port2, err)
	}
	if _, err := f.PlaceMap(ctx, "nowhere"); !errors.Is(err, fleet.ErrUnknownMap) {
		t.Fatalf("unknown map: %v", err)
	}
}
