package sdk

import (
	"encoding/json"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Game is what a studio implements: it makes the rules of each room. One
// Game value serves every room of a process, so NewRoom may be called
// from many goroutines at once; everything a room needs lives in the
// Handler it returns.
type Game interface {
	// NewRoom is called on the new room's own goroutine when the
	// dispatcher assigns the room, before any player can join. r tells the
	// room's id, mode, players and options; the returned Handler receives
	// the room's events. An error refuses the room (the assignment fails
	// and nothing is hosted). NewRoom may call r.SetTick, r.After and
	// r.Send-family methods (no player is connected yet).
	NewRoom(r *Room) (Handler, error)
}

// Handler is one room's rules. The SDK calls its methods on the room's
// goroutine, one at a time, so a Handler needs no locks: it owns its
// fields. Every call must return within Config.CallbackDeadline (default
// 2 s); a call that takes longer ends the room with reason "stuck", and a
// call that panics ends it with reason "error" (see Room.End).
type Handler interface {
	// Join is called when p connects: for the first time (JoinFirst),
	// again after a drop within the rejoin grace (JoinRejoin), or with a
	// second connection that replaced a live one (JoinReplace: the other
	// players saw nothing). The usual answer sends p the room's state.
	Join(p *Player, how JoinKind)
	// Leave is called when p's connection dropped (LeaveAway: its seat is
	// kept for Config.RejoinGrace), when p sent {"type":"leave"}
	// (LeaveQuit), or when p's grace passed without a rejoin, or it never
	// arrived within the grace (LeaveGone). After LeaveQuit and LeaveGone
	// p is gone for good: it cannot rejoin and messages to it are dropped.
	Leave(p *Player, why LeaveReason)
	// Message is called for every message p sends that is not the SDK's
	// own (ping, leave): m.Type is its "type", m.Raw the whole message
	// (a JSON object; the Handler owns the slice), m.Value what the Game's
	// Parse returned when the Game is a Parser.
	Message(p *Player, m Message)
}

// Ticker is implemented by a Handler that wants a fixed tick: after
// Room.SetTick(d) the SDK calls Tick every d. While a room ticks, what the
// Handler sends is held per player and written at the end of each tick,
// every player's messages of the tick in one write (one system call).
type Ticker interface {
	Tick(now time.Time)
}

// TimeoutHandler is implemented by a Handler that decides the result when
// the room timeout passes without the room having ended. Without it every
// player still seated draws (rank 1) and the others share the last rank.
type TimeoutHandler interface {
	Timeout() Result
}

// Snapshotter is implemented by a Handler whose state can be saved with
// Room.Save, so the room can be restored elsewhere (see Restorer).
type Snapshotter interface {
	// Snapshot encodes the room's game state. It runs on the room's
	// goroutine, so it costs the room its encoding time.
	Snapshot() ([]byte, error)
}

// Restorer is implemented by a Handler that can continue a room from a
// snapshot: when a room is assigned whose id has a snapshot saved (by a
// process that died), Restore is called right after NewRoom.
type Restorer interface {
	Restore(snapshot []byte) error
}

// Backfiller is implemented by a Handler that accepts players into a
// running room (the dispatcher's Backfill). Backfill is called with the
// new players, already members (state Pending, with their rejoin grace to
// arrive); an error refuses them all and they are removed again.
// Without it a room refuses backfill with ErrRoomFull.
type Backfiller interface {
	Backfill(players []*Player) error
}

// Parser is implemented by a Game that decodes and validates its
// messages on the sender's connection goroutine, in parallel with every
// room, instead of on the room's goroutine: Parse gets the message's type
// and bytes (valid only during the call) and returns the value the
// Handler receives as Message.Value. An error is sent to the sender as
// {"type":"error","code","message"} (a *ClientError gives the code,
// anything else is "bad_message") and the message is dropped; the
// connection stays open. Parse must not touch room state.
type Parser interface {
	Parse(typ string, data []byte) (any, error)
}

// Setupper is implemented by a Game that wants its configuration, a
// logger and the process's metrics registry before the first room.
type Setupper interface {
	Setup(env Env) error
}

// Namer is implemented by a Game with a fixed name: its process refuses
// to start as another kind (a start request's kind is the game's name).
type Namer interface {
	Name() string
}

// Env is what Setup receives.
type Env struct {
	// Config is the game's own configuration: the JSON object the
	// operator passed (see docs/your-game.md), "{}" when none.
	Config json.RawMessage
	// Log is the process's logger.
	Log *slog.Logger
	// Metrics is the process's Prometheus registry (served on /metrics).
	Metrics prometheus.Registerer
}

// Message is one client message delivered to Handler.Message.
type Message struct {
	// Type is the message's "type".
	Type string
	// Raw is the whole message (one JSON object), owned by the Handler;
	// nil when the Game is a Parser.
	Raw []byte
	// Value is what Parser.Parse returned; nil for a Game without Parse.
	Value any
}

// JoinKind tells Handler.Join how a player connected.
type JoinKind uint8

// How a player joined.
const (
	JoinFirst   JoinKind = iota + 1 // its first connection to the room
	JoinRejoin                      // back after a drop, within the rejoin grace
	JoinReplace                     // a new connection replaced its live one (a reload, a second tab)
)

func (k JoinKind) String() string {
	switch k {
	case JoinFirst:
		return "first"
	case JoinRejoin:
		return "rejoin"
	case JoinReplace:
		return "replace"
	}
	return "unknown"
}

// LeaveReason tells Handler.Leave why a player left.
type LeaveReason uint8

// Why a player left.
const (
	LeaveAway LeaveReason = iota + 1 // its connection dropped; it may rejoin within the grace
	LeaveQuit                        // it sent {"type":"leave"}: gone for good
	LeaveGone                        // its rejoin grace passed (or it never arrived): gone for good
)

func (r LeaveReason) String() string {
	switch r {
	case LeaveAway:
		return "away"
	case LeaveQuit:
		return "quit"
	case LeaveGone:
		return "gone"
	}
	return "unknown"
}

// PlayerState is where a player is in the room's life.
type PlayerState uint8

// Player states.
const (
	Pending   PlayerState = iota + 1 // a member who has not connected yet
	Connected                        // connected now
	Away                             // dropped; may rejoin within the grace
	Gone                             // quit, or its grace passed: never back
)

func (s PlayerState) String() string {
	switch s {
	case Pending:
		return "pending"
	case Connected:
		return "connected"
	case Away:
		return "away"
	case Gone:
		return "gone"
	}
	return "unknown"
}

// ClientError is an error a client is told about:
// {"type":"error","code":Code,"message":Message}.
type ClientError struct {
	Code    string
	Message string
}

func (e *ClientError) Error() string { return e.Code + ": " + e.Message }

// Errorf returns a *ClientError with code and a message.
func Errorf(code, msg string) *ClientError { return &ClientError{Code: code, Message: msg} }
