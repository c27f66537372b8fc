package hostctl

import (
	"fmt"

	"github.com/arena-game/arena/proto/hostpb"
)

// State is a process's state in the fleet table. Its text form ("ready",
// ...) is what `stat`, /v1/fleet and the stored table show.
type State uint8

// Process states.
const (
	Starting State = iota + 1 // spawned, binding its port
	Ready                     // takes work
	Draining                  // no new work; stopped when idle or at a deadline
	Gone                      // left the table
)

var stateNames = [...]string{Starting: "starting", Ready: "ready", Draining: "draining", Gone: "gone"}

func (s State) String() string {
	if int(s) < len(stateNames) && stateNames[s] != "" {
		return stateNames[s]
	}
	return "unknown"
}

// MarshalText implements encoding.TextMarshaler.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *State) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if n != "" && n == string(b) {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("process state %q: unknown", b)
}

// StateFromPB maps a process state as a host sends it; an unspecified or
// unknown state is Gone.
func StateFromPB(s hostpb.ProcessState) State {
	switch s {
	case hostpb.ProcessState_PROCESS_STATE_STARTING:
		return Starting
	case hostpb.ProcessState_PROCESS_STATE_READY:
		return Ready
	case hostpb.ProcessState_PROCESS_STATE_DRAINING:
		return Draining
	}
	return Gone
}

// HostState is a host's state in the fleet.
type HostState uint8

// Host states.
const (
	HostConnected HostState = iota + 1 // heartbeating; takes new work
	HostDraining                       // takes no new work; exits when idle or at a deadline
	HostLost                           // missed heartbeats past the lease: no new work, its processes kept
	HostGone                           // stream closed and not back within the grace: its processes removed
)

var hostStateNames = [...]string{HostConnected: "connected", HostDraining: "draining", HostLost: "lost", HostGone: "gone"}

func (s HostState) String() string {
	if int(s) < len(hostStateNames) && hostStateNames[s] != "" {
		return hostStateNames[s]
	}
	return "unknown"
}

// MarshalText implements encoding.TextMarshaler.
func (s HostState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *HostState) UnmarshalText(b []byte) error {
	for i, n := range hostStateNames {
		if n != "" && n == string(b) {
			*s = HostState(i)
			return nil
		}
	}
	return fmt.Errorf("host state %q: unknown", b)
}
