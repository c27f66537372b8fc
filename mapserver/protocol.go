package mapserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/proc"

	"github.com/arena-game/arena/internal/jsonnum"
)

// Error codes sent as {"type":"error","code":...}. docs/maps.md lists
// what each means and whether the connection is closed after it.
const (
	CodeBadTicket      = "bad_ticket"      // missing, malformed, forged or wrong-kind ticket (closes)
	CodeExpiredTicket  = "expired_ticket"  // ticket past its expiry (closes)
	CodeWrongServer    = "wrong_server"    // ticket is for another map server (closes)
	CodeUnknownMap     = "unknown_map"     // no such map in the world
	CodeStaleTicket    = "stale_ticket"    // replayed or superseded ticket (closes)
	CodeAlreadyClaimed = "already_claimed" // another connection claimed this ticket first (closes)
	CodeOwnershipLost  = "ownership_lost"  // the record moved to another server (closes)
	CodeDraining       = "draining"        // server is draining; re-enter through the dispatcher (closes)
	CodeUnavailable    = "unavailable"     // the store or the dispatcher failed; retry (closes when joining)
	CodeBadMessage     = "bad_message"     // not a JSON object with the fields its type needs
	CodeUnknownType    = "unknown_type"    // no such message type
	CodeNotReady       = "not_ready"       // a message before the welcome
	CodeOutOfBounds    = "out_of_bounds"   // move off the map; position kept
	CodeTooFast        = "too_fast"        // move faster than max-speed allows; position kept
	CodeNoPortal       = "no_portal"       // switch to a map with no portal from here
	CodeNotAtPortal    = "not_at_portal"   // switch while farther than switch-reach from the portal
	CodeSwitching      = "switching"       // a switch is already under way
	CodeRateLimited    = "rate_limited"    // more messages than max-msg-rate; message dropped
	CodeBusy           = "busy"            // the map instance's queue is full; message dropped (closes when joining)
)

// errCode maps an error to its protocol code.
func errCode(err error) string {
	switch {
	case errors.Is(err, auth.ErrExpired):
		return CodeExpiredTicket
	case errors.Is(err, auth.ErrMalformed), errors.Is(err, auth.ErrBadSignature), errors.Is(err, auth.ErrWrongKind), errors.Is(err, errNoTicket):
		return CodeBadTicket
	case errors.Is(err, errWrongServer):
		return CodeWrongServer
	case errors.Is(err, ErrUnknownMap):
		return CodeUnknownMap
	case errors.Is(err, ErrStaleTicket):
		return CodeStaleTicket
	case errors.Is(err, ErrAlreadyClaimed):
		return CodeAlreadyClaimed
	case errors.Is(err, ErrOwnershipLost):
		return CodeOwnershipLost
	case errors.Is(err, proc.ErrDraining):
		return CodeDraining
	case errors.Is(err, errBusy):
		return CodeBusy
	case errors.Is(err, ErrNoPortal):
		return CodeNoPortal
	case errors.Is(err, ErrNotAtPortal):
		return CodeNotAtPortal
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrCASConflict):
		return CodeStaleTicket
	}
	return CodeUnavailable
}

var (
	errNoTicket    = errors.New("no ticket")
	errWrongServer = errors.New("ticket is for another server")
	errBusy        = errors.New("the map instance is busy; try again")
	// ErrNoPortal: a switch to a map with no portal from the player's map.
	ErrNoPortal = errors.New("no portal to that map from here")
	// ErrNotAtPortal: a switch from farther than switch-reach.
	ErrNotAtPortal = errors.New("not at the portal")
)

// Client message types.
const (
	msgMove   = "move"
	msgSwitch = "switch"
	msgPing   = "ping"
)

// clientMsg is any client message. Fields a client adds beyond these
// (an "id", "uuid" or "from" naming someone else) are ignored: the sender
// is always the connection's ticket holder.
type clientMsg struct {
	Type string   `json:"type"`
	X    *float64 `json:"x"`
	Y    *float64 `json:"y"`
	Map  string   `json:"map"`
}

// parseClientMsg decodes and checks one client message.
func parseClientMsg(b []byte) (clientMsg, error) {
	var m clientMsg
	if x, y, ok := parseCanonicalMove(b); ok {
		m.Type, m.X, m.Y = msgMove, &x, &y
		return m, nil
	}
	if len(b) == 0 || b[0] != '{' {
		return m, fmt.Errorf("parse message: not a JSON object")
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("parse message: %w", err)
	}
	switch m.Type {
	case msgMove:
		if m.X == nil || m.Y == nil {
			return m, fmt.Errorf("parse move: x and y are required numbers")
		}
		if math.IsNaN(*m.X) || math.IsNaN(*m.Y) || math.IsInf(*m.X, 0) || math.IsInf(*m.Y, 0) {
			return m, fmt.Errorf("parse move: x and y must be finite")
		}
	case msgSwitch:
		if m.Map == "" {
			return m, fmt.Errorf("parse switch: map is required")
		}
	case msgPing:
	case "":
		return m, fmt.Errorf("parse message: type is required")
	}
	return m, nil
}

// canonicalMove is how clients (the play page, bots) write a move.
var canonicalMove = []byte(`{"type":"move","x":`)

// parseCanonicalMove parses the common case, a move written exactly as
// {"type":"move","x":X,"y":Y} with finite JSON numbers, without
// encoding/json (moves are most of what map servers read). Anything else
// reports !ok and goes through the full decoder, which gives the same
// answer for this form (FuzzCanonicalMove checks it).
func parseCanonicalMove(b []byte) (x, y float64, ok bool) {
	if !bytes.HasPrefix(b, canonicalMove) {
		return 0, 0, false
	}
	rest := b[len(canonicalMove):]
	n := jsonnum.Len(rest)
	if n == 0 || !bytes.HasPrefix(rest[n:], []byte(`,"y":`)) {
		return 0, 0, false
	}
	xs := rest[:n]
	rest = rest[n+5:]
	m := jsonnum.Len(rest)
	if m == 0 || len(rest) != m+1 || rest[m] != '}' {
		return 0, 0, false
	}
	x, err1 := jsonnum.Parse(xs)
	y, err2 := jsonnum.Parse(rest[:m])
	if err1 != nil || err2 != nil || math.IsInf(x, 0) || math.IsInf(y, 0) {
		return 0, 0, false
	}
	return x, y, true
}

// Server messages.

type errorMsg struct {
	Type    string   `json:"type"`
	Code    string   `json:"code"`
	Message string   `json:"message"`
	X       *float64 `json:"x,omitempty"`
	Y       *float64 `json:"y,omitempty"`
}

func newError(code, msg string) errorMsg { return errorMsg{Type: "error", Code: code, Message: msg} }

// WelcomeMap is the map part of a welcome.
type WelcomeMap struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Width   float64  `json:"width"`
	Height  float64  `json:"height"`
	Portals []Portal `json:"portals"`
}

// WelcomeYou is the player's own state in a welcome.
type WelcomeYou struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	X         float64         `json:"x"`
	Y         float64         `json:"y"`
	HP        int             `json:"hp"`
	Inventory json.RawMessage `json:"inventory,omitempty"`
	Version   uint64          `json:"version"`
}

// Welcome is the first message on a map connection.
type Welcome struct {
	Type        string     `json:"type"` // "welcome"
	You         WelcomeYou `json:"you"`
	Map         WelcomeMap `json:"map"`
	ViewRadius  float64    `json:"view_radius"`
	MaxSpeed    float64    `json:"max_speed"`
	SwitchReach float64    `json:"switch_reach"`
	TickMS      int64      `json:"tick_ms"`
}

// SwitchAnswer is the server's answer to a switch: where to go next.
type SwitchAnswer struct {
	Type   string `json:"type"` // "switch"
	Map    string `json:"map"`
	Addr   string `json:"addr"`
	Ticket string `json:"ticket"`
}
