// Package hostctl is the host-control contract that the dispatcher's fleet
// (package fleet) and `arena host` (package host) share beside the wire
// messages of proto/hostpb: the reasons a host gives when a command fails,
// the states of processes and hosts as they cross the wire and appear in
// the fleet table, and the fleet table a dispatcher keeps in memcached,
// which hosts read to locate maps while the dispatcher is away.
//
// Both sides import it; neither imports the other.
package hostctl

// Reasons of a failed command's result (hostpb.CommandResult.error_reason)
// besides the process contract's (proc.Reason). Callers map the reason to
// their sentinel errors, never the message text.
const (
	// ReasonNoCapacity: the host runs as many processes of the kind as it
	// offers, or has no free port for one.
	ReasonNoCapacity = "NO_CAPACITY"
	// ReasonUnknownProcess: the host runs no process on that port.
	ReasonUnknownProcess = "UNKNOWN_PROCESS"
	// ReasonUnknownCommand: the host does not know the command (a
	// dispatcher newer than the host).
	ReasonUnknownCommand = "UNKNOWN_COMMAND"
	// ReasonUnknownKind: the host runs no process of that kind.
	ReasonUnknownKind = "UNKNOWN_KIND"
)
