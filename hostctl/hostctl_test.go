package hostctl_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/arena-game/arena/hostctl"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/proto/hostpb"
)

func TestStateFromPB(t *testing.T) {
	for pb, want := range map[hostpb.ProcessState]hostctl.State{
		hostpb.ProcessState_PROCESS_STATE_STARTING:    hostctl.Starting,
		hostpb.ProcessState_PROCESS_STATE_READY:       hostctl.Ready,
		hostpb.ProcessState_PROCESS_STATE_DRAINING:    hostctl.Draining,
		hostpb.ProcessState_PROCESS_STATE_GONE:        hostctl.Gone,
		hostpb.ProcessState_PROCESS_STATE_UNSPECIFIED: hostctl.Gone,
	} {
		if got := hostctl.StateFromPB(pb); got != want {
			t.Errorf("StateFromPB(%v) = %v, want %v", pb, got, want)
		}
	}
}

func TestStatesTextRoundTrip(t *testing.T) {
	for _, s := range []hostctl.State{hostctl.Starting, hostctl.Ready, hostctl.Draining, hostctl.Gone} {
		b, _ := s.MarshalText()
		var back hostctl.State
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Errorf("state %v: text %q read back as %v (%v)", s, b, back, err)
		}
	}
	for _, s := range []hostctl.HostState{hostctl.HostConnected, hostctl.HostDraining, hostctl.HostLost, hostctl.HostGone} {
		b, _ := s.MarshalText()
		var back hostctl.HostState
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Errorf("host state %v: text %q read back as %v (%v)", s, b, back, err)
		}
	}
	var s hostctl.State
	if err := s.UnmarshalText([]byte("sleeping")); err == nil {
		t.Error("an unknown process state was accepted")
	}
}

// TestStoredTableRoundTrip: what a dispatcher writes, a host reads back
// with the same processes, states and map counts, in the JSON form
// `arena status --memcache` shows.
func TestStoredTableRoundTrip(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	if _, err := hostctl.ReadStoredTable(ctx, st); err == nil {
		t.Fatal("reading a table nobody wrote succeeded")
	}
	want := hostctl.StoredTable{Dispatcher: "127.0.0.1:6000", Pid: 42, Table: hostctl.Table{MaxNum: 5,
		Hosts:     []hostctl.HostEntry{{Name: "game1", Advertise: "10.0.0.11", State: hostctl.HostLost}},
		Processes: []hostctl.TableEntry{{Kind: "map", Host: "game1", Advertise: "10.0.0.11", Port: 7500, State: hostctl.Ready, Maps: map[string]int{"town": 3}}}}}
	if err := hostctl.WriteStoredTable(ctx, st, want); err != nil {
		t.Fatal(err)
	}
	got, err := hostctl.ReadStoredTable(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Processes) != 1 || got.Processes[0].State != hostctl.Ready || got.Processes[0].Maps["town"] != 3 ||
		len(got.Hosts) != 1 || got.Hosts[0].State != hostctl.HostLost || got.Dispatcher != want.Dispatcher || got.Pid != 42 {
		t.Fatalf("read back %+v, want %+v", got, want)
	}
	raw, _ := json.Marshal(got.Processes[0])
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	if m["state"] != "ready" {
		t.Errorf("a process's state is %v in JSON, want \"ready\"", m["state"])
	}
}
