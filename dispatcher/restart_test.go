package dispatcher

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/arena-game/arena/fleet"
	"github.com/arena-game/arena/fleet/fleettest"
	"github.com/arena-game/arena/hostctl"
	"github.com/arena-game/arena/internal/records"
	"github.com/arena-game/arena/internal/store/storetest"
	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/internal/wsconn"
)

// A room whose process died with no dispatcher watching is marked failed
// by the next dispatcher once the hosts are back, instead of saying
// "assigned" or "playing" for an hour.
func TestRoomsOfAGoneProcessFailAfterARestart(t *testing.T) {
	st := storetest.New(t)
	first := newTestDispatcherOn(t, st, nil)
	m, _ := matchThree(t, first)
	waitfor.Cond(t, "the table with the room saved", func() bool {
		tab, err := hostctl.ReadStoredTable(context.Background(), st)
		if err != nil {
			return false
		}
		for _, p := range tab.Processes {
			for _, r := range p.RoomIDs {
				if r == m.Room {
					return true
				}
			}
		}
		return false
	})
	// The dispatcher stops with its local host: the room's process is
	// gone, and the saved table still names the room.
	saved, _ := hostctl.ReadStoredTable(context.Background(), st)
	first.stop()
	_ = hostctl.WriteStoredTable(context.Background(), st, saved)
	second := newTestDispatcherOn(t, st, nil)
	_ = second
	waitfor.Cond(t, "the room marked failed", func() bool {
		r, _, err := records.GetRoom(context.Background(), st, m.Room)
		return err == nil && r.State == records.RoomFailed && r.Reason == "process_gone"
	})
}

// A second dispatcher on the same store and prefix refuses to start while
// the first one lives, naming the prefix, and touches none of its
// processes.
func TestSecondDispatcherRefusesToStart(t *testing.T) {
	st := storetest.New(t)
	first := newTestDispatcherOn(t, st, nil)
	procs := len(first.fleet.Snapshot())
	d, err := New(Config{Listen: "127.0.0.1:0", HTTP: "127.0.0.1:0", HostListen: "none", MaxNum: 10, FleetToken: "fleet",
		Secret: tSecret, Memcache: []string{"unused"}, StorePrefix: "same:", Database: "sqlite:unused", OutboxDir: t.TempDir(),
		OwnerLease: 300 * time.Millisecond}, Deps{Store: st, Players: first.db}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitfor.Deadline())
	defer cancel()
	err = d.Run(ctx)
	if !errors.Is(err, fleet.ErrLeaseHeld) {
		t.Fatalf("second dispatcher: %v, want ErrLeaseHeld", err)
	}
	if got := len(first.fleet.Snapshot()); got != procs || first.sp.Procs()[0].Port() == 0 {
		t.Fatalf("the first dispatcher's fleet changed: %d processes, had %d", got, procs)
	}
	t.Log(err)
}

// TestFleetTrafficNeverWaitsOnAnonymousClients (#14 item 3): with every
// --max-conns slot of the line protocol held by anonymous clients, rooms
// are still placed and their ends still reach the table: the fleet's own
// traffic goes over host control, not the capped listener.
func TestFleetTrafficNeverWaitsOnAnonymousClients(t *testing.T) {
	td := newTestDispatcher(t, func(c *Config) { c.MaxConns = 3; c.LineIdleTimeout = time.Hour })
	line, _ := td.Addrs()
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", line)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	waitfor.Cond(t, "the line protocol full", func() bool {
		c, err := net.Dial("tcp", line)
		if err != nil {
			return false
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(c)
		return strings.HasPrefix(string(b), "err|busy")
	})
	m, cls := matchThree(t, td)
	ctx := tctx(t)
	var proc *fleettest.Proc
	for _, p := range td.sp.Procs() {
		if len(p.Rooms()) > 0 {
			proc = p
		}
	}
	waitfor.Cond(t, "the room's load in the table", func() bool {
		for _, p := range td.fleet.Snapshot() {
			if p.Port == proc.Port() {
				return p.Load == 1
			}
		}
		return false
	})
	proc.EndRoom(m.Room)
	waitfor.Cond(t, "the room's end reported", func() bool {
		for _, p := range td.fleet.Snapshot() {
			if p.Port == proc.Port() && (p.Load != 0 || len(p.Rooms) != 0) {
				return false
			}
		}
		return true
	})
	// The room's end reached the matchmaker: its players are free to
	// queue again.
	waitfor.Cond(t, "a player of the room queues again", func() bool {
		_ = cls[0].SendJSON(map[string]any{"type": "queue"})
		b, err := cls[0].Recv(ctx)
		return err == nil && strings.Contains(string(b), `"type":"queued"`)
	})
}

// matchThree logs in players a, b and c, queues them and returns their
// match (a room placed) and sockets.
func matchThree(t *testing.T, td *testDispatcher) (matchOut, []*wsconn.Client) {
	t.Helper()
	ctx := tctx(t)
	var cls []*wsconn.Client
	for _, name := range []string{"a", "b", "c"} {
		lr := td.login(t, name)
		cl := td.play(t, lr.Token)
		_ = cl.SendJSON(map[string]any{"type": "queue"})
		cls = append(cls, cl)
	}
	var m matchOut
	for _, cl := range cls {
		if err := cl.RecvType(ctx, "match", &m); err != nil {
			t.Fatalf("no room placed: %v", err)
		}
	}
	return m, cls
}
