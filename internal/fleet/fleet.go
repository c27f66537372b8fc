// Package fleet is the go-plugin contract between the dispatcher and the
// processes it spawns (fight and map servers): the handshake, the plugin
// map, the Go interface every process implements, and the gRPC adapters
// (grpc.go). Processes call Serve; the dispatcher dispenses a Process from a
// go-plugin client. The wire service is proto/fleet.proto.
package fleet

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/go-plugin"
)

// Handshake is checked by both sides before anything else. A binary started
// without it (by hand) refuses to run; see RefuseManualStart.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "ARENA_FLEET_PLUGIN",
	MagicCookieValue: "8d0d6c5e-arena-fleet-process",
}

// PluginName is the one plugin every fleet process serves.
const PluginName = "process"

// PluginMap is the go-plugin plugin set of a fleet process.
var PluginMap = map[string]plugin.Plugin{PluginName: &GRPCPlugin{}}

// Kinds of fleet process.
const (
	KindFight = "fight"
	KindMap   = "map"
)

// Sentinel errors that cross the gRPC boundary (see grpc.go for the codes).
var (
	// ErrPortInUse: Start could not bind the port; try another.
	ErrPortInUse = errors.New("port in use")
	// ErrDraining: the process accepts no new work.
	ErrDraining = errors.New("process is draining")
	// ErrExists: the room or map instance is already hosted here.
	ErrExists = errors.New("already hosted")
	// ErrUnknownMap: no such map in the world data.
	ErrUnknownMap = errors.New("unknown map")
	// ErrNotStarted: Start has not succeeded yet.
	ErrNotStarted = errors.New("process not started")
)

// StartConfig is what the dispatcher tells a new process. Secret and
// FleetToken travel over the plugin's private gRPC channel, never argv or
// the environment, and must never be logged.
type StartConfig struct {
	Kind        string
	Host        string // bind and advertise
	Port        int
	Memcache    []string
	StorePrefix string
	Secret      string
	FleetToken  string
	Dispatcher  string // host:port of the line protocol, for add/del and get|map
	MaxNum      int
	Options     map[string]string // kind-specific; documented in docs/CONFIG.md
}

// Status is a process's report of itself.
type Status struct {
	Load        int
	Draining    bool
	Connections int
	Maps        map[string]int // map processes: map id -> players
}

// Player is one member of a room.
type Player struct {
	UUID     string
	Username string
	Photo    string
	Score    int
	Bot      bool
}

// Room is a fight to host.
type Room struct {
	ID      string
	Players []Player
	Mode    string
	Expires time.Time // room tokens expire then
}

// Process is what every fleet process serves. Methods take ctx first and
// must return promptly: the dispatcher calls them with deadlines.
type Process interface {
	// Start binds cfg.Port and serves. It returns the advertised address
	// once the port accepts connections, or ErrPortInUse.
	Start(ctx context.Context, cfg StartConfig) (addr string, err error)
	// Status reports load and health.
	Status(ctx context.Context) (Status, error)
	// AssignRoom registers room on a fight process and returns the load
	// after it, which the process has already reported with add.
	// ErrExists if the room is already here; ErrDraining when draining.
	AssignRoom(ctx context.Context, room Room) (load int, err error)
	// HostMap makes a map process host an instance of mapID (a no-op if it
	// already does) and returns the process's load.
	HostMap(ctx context.Context, mapID string) (load int, err error)
	// Drain stops new work and waits until the process is idle or deadline
	// passes; it returns the load left.
	Drain(ctx context.Context, deadline time.Time) (load int, err error)
}
