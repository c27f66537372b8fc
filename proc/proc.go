// Package proc is the process contract between an arena host and the
// processes it runs: fight and map servers, the chat server, games built on
// the SDK and game servers written in other languages. It is public so that
// game servers can be built on it.
//
// A process is a hashicorp/go-plugin gRPC plugin (wire services in
// proto/proc.proto). It serves one plugin per capability, each with one
// small Go interface:
//
//   - plugin "lifecycle" (Lifecycle): every process. Start, Status, Drain and
//     Watch, a stream of events the process pushes to its host.
//   - plugin "rooms" (Rooms): fight processes and every game. AssignRoom,
//     Backfill.
//   - plugin "maps" (Maps): map processes. HostMap.
//
// Load has one source: the answers of AssignRoom, Backfill and HostMap, the
// events of Watch, and Status, which the host polls about every second to
// correct anything an event missed. Sentinel errors cross the wire as gRPC
// status codes with a google.rpc.ErrorInfo reason (errors.go).
//
// A Go process calls Serve; a host dispenses a Client from a go-plugin
// client (NewPluginClientConfig) and calls it.
package proc

import (
	"context"
	"log/slog"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/arena-game/arena/proto/procpb"
)

// Handshake is checked by host and process before anything else. A process
// binary started without it (by hand) refuses to run; see Serve.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  2,
	MagicCookieKey:   "ARENA_PROC_PLUGIN",
	MagicCookieValue: "3f7c1e0a-arena-proc-v1",
}

// Plugin names: one per capability.
const (
	PluginLifecycle = "lifecycle"
	PluginRooms     = "rooms"
	PluginMaps      = "maps"
)

// Built-in process kinds. A game run with `arena host --game NAME=PATH` is
// of kind NAME and serves lifecycle and rooms.
const (
	KindFight = "fight"
	KindMap   = "map"
	KindChat  = "chat"
)

// Lifecycle is served by every process. Methods must return promptly: the
// host calls them with deadlines.
type Lifecycle interface {
	// Start configures the process from req and makes it listen on
	// req.Port. It returns once the port accepts connections; a taken
	// port is ErrPortInUse, options that do not validate ErrBadOptions.
	Start(ctx context.Context, req StartRequest) (Started, error)
	// Status reports load, units and health; ErrNotStarted before Start.
	Status(ctx context.Context) (Status, error)
	// Drain stops new work (later assignments get ErrDraining) and returns
	// once the process is idle or deadline passed, with the load left.
	Drain(ctx context.Context, deadline time.Time) (load int, err error)
	// Watch returns the process's events until ctx ends (then the channel
	// is closed). Events may be dropped when the watcher falls behind; the
	// host's Status polls correct what a lost event would have told.
	Watch(ctx context.Context) (<-chan Event, error)
}

// Rooms is served by fight processes and games.
type Rooms interface {
	// AssignRoom hosts room and returns the load after it: ErrRoomExists
	// if the room is (or recently was) hosted here, ErrDraining when
	// draining, ErrRoomFull when the process takes no more rooms.
	AssignRoom(ctx context.Context, room Room) (load int, err error)
	// Backfill adds players to a running room and returns the load after
	// it: ErrUnknownRoom if the room is not here, ErrRoomFull if it has
	// no open slots for them.
	Backfill(ctx context.Context, roomID string, players []Player) (load int, err error)
}

// Maps is served by map processes.
type Maps interface {
	// HostMap makes the process host an instance of mapID (a no-op when it
	// already does) and returns its load: ErrUnknownMap for a map not in
	// its world, ErrDraining when draining.
	HostMap(ctx context.Context, mapID string) (load int, err error)
}

// HostServices is what a host offers its processes (over go-plugin's
// GRPCBroker): the fleet's answers a process needs without the line
// protocol.
type HostServices interface {
	// LocateMap returns host:port of a map process hosting mapID with room
	// for one more player, placing a new instance when needed.
	// ErrUnknownMap for a map not in the world.
	LocateMap(ctx context.Context, mapID string) (addr string, err error)
}

// StartRequest is what a host tells a new process. Secret, DatabaseDSN and
// the chat operator token travel over the plugin's private gRPC channel,
// never in argv or the environment, and are never logged (LogValue leaves
// them out).
type StartRequest struct {
	Kind          string
	BindHost      string // address to bind; "" = 127.0.0.1
	AdvertiseHost string // host players and other hosts use; "" = BindHost
	Port          int    // chosen by the host
	Memcache      []string
	StorePrefix   string
	Secret        string
	DatabaseDSN   string // results database; "" = none
	OutboxDir     string // results outbox directory
	MaxNum        int
	HostName      string // the host running the process
	// AllowedOrigins are the browser origins allowed to open the
	// process's WebSockets besides the defaults (wsconn.OriginAllowed).
	AllowedOrigins []string

	// At most one of the option messages is set, matching Kind.
	Fight *procpb.FightOptions
	Map   *procpb.MapOptions
	Chat  *procpb.ChatOptions
	Game  *procpb.GameOptions

	// Host is the host's services, set by the plugin adapter on the
	// process side when the host offers them (nil otherwise). It does not
	// travel as data: the host serves it over the plugin broker.
	Host HostServices
}

// LogValue implements slog.LogValuer without the secrets.
func (r StartRequest) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("kind", r.Kind), slog.String("bind", r.BindHost), slog.String("advertise", r.AdvertiseHost),
		slog.Int("port", r.Port), slog.Any("memcache", r.Memcache), slog.String("store_prefix", r.StorePrefix),
		slog.Bool("database", r.DatabaseDSN != ""), slog.Int("maxnum", r.MaxNum), slog.String("host", r.HostName),
	)
}

// Advertised returns the host players should use: AdvertiseHost, else
// BindHost, else 127.0.0.1.
func (r StartRequest) Advertised() string {
	switch {
	case r.AdvertiseHost != "":
		return r.AdvertiseHost
	case r.BindHost != "" && r.BindHost != "0.0.0.0" && r.BindHost != "::":
		return r.BindHost
	}
	return "127.0.0.1"
}

// Bind returns the address to bind: BindHost, else 127.0.0.1.
func (r StartRequest) Bind() string {
	if r.BindHost == "" {
		return "127.0.0.1"
	}
	return r.BindHost
}

// Started is a process's answer to Start.
type Started struct {
	Addr string // advertised host:port
	Pid  int
	Load int
}

// Status is a process's report of itself.
type Status struct {
	Load        int
	Draining    bool
	Connections int
	Rooms       []string       // rooms hosted (rooms processes)
	Maps        map[string]int // map id -> players (map processes)
}

// Player is one member of a room.
type Player struct {
	UUID     string
	Username string
	Photo    string
	Score    int
	Bot      bool
}

// Room is a room to host.
type Room struct {
	ID      string
	Game    string
	Profile string
	Mode    string
	Players []Player
	Expires time.Time // room tokens expire then
}

// Event is one of RoomEnded, LoadChanged, BackfillWanted.
type Event interface{ isEvent() }

// RoomEnded tells the host a room is over; its result is already recorded
// by the process. Load is the process's load after it.
type RoomEnded struct {
	Room   string
	Load   int
	Reason string
}

// LoadChanged tells the host the process's load changed. Maps (map
// processes) holds the players per hosted map.
type LoadChanged struct {
	Load        int
	Maps        map[string]int
	Connections int
}

// BackfillWanted tells the host a running room has open slots to fill.
type BackfillWanted struct {
	Room  string
	Slots int
}

func (RoomEnded) isEvent()      {}
func (LoadChanged) isEvent()    {}
func (BackfillWanted) isEvent() {}
